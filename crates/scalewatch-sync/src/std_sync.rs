//! `std::sync::Mutex` and `std::sync::RwLock`, instrumented. Poisoning is std's own.

use crate::stats::{Hold, LockMode, LockStats};
use crate::sys;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

// The fast paths below match std's results by hand instead of mapping them through
// closures, and are `inline(always)`: outlined, the call and the guard returned through
// memory cost about as much as the accounting itself.

fn map_lock<G, H>(r: LockResult<G>, f: impl FnOnce(G) -> H) -> LockResult<H> {
    match r {
        Ok(g) => Ok(f(g)),
        Err(p) => Err(PoisonError::new(f(p.into_inner()))),
    }
}

/// The acquisition methods of one mode of a std lock: the blocking and the non-blocking
/// fast path (`inline(always)`), and the poisoned and contended paths out of line.
macro_rules! acquire {
    (
        $(#[$doc:meta])* $lock:ident,
        $(#[$try_doc:meta])* $try_lock:ident,
        $poisoned:ident, $contended:ident -> $Guard:ident($SysGuard:ident) in $mode:ident
    ) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $lock(&self) -> LockResult<$Guard<'_, T>> {
            match self.inner.$try_lock() {
                Ok(g) => Ok($Guard::wrap(&self.stats, self.stats.uncontended(LockMode::$mode), g)),
                Err(TryLockError::Poisoned(p)) => Err(self.$poisoned(p)),
                Err(TryLockError::WouldBlock) => self.$contended(),
            }
        }

        #[cold]
        #[inline(never)]
        fn $poisoned<'a>(
            &'a self,
            p: PoisonError<sys::$SysGuard<'a, T>>,
        ) -> PoisonError<$Guard<'a, T>> {
            let hold = self.stats.uncontended(LockMode::$mode);
            PoisonError::new($Guard::wrap(&self.stats, hold, p.into_inner()))
        }

        #[cold]
        #[inline(never)]
        fn $contended(&self) -> LockResult<$Guard<'_, T>> {
            let wait = self.stats.begin_wait(LockMode::$mode);
            let r = self.inner.$lock();
            let hold = wait.acquired();
            map_lock(r, |g| $Guard::wrap(&self.stats, hold, g))
        }

        $(#[$try_doc])*
        #[inline(always)]
        pub fn $try_lock(&self) -> TryLockResult<$Guard<'_, T>> {
            match self.inner.$try_lock() {
                Ok(g) => Ok($Guard::wrap(&self.stats, self.stats.uncontended(LockMode::$mode), g)),
                Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(self.$poisoned(p))),
                Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
            }
        }
    };
}

instrumented_lock! {
    /// A [`std::sync::Mutex`] that records `scalewatch.lock.*` under a static name.
    ///
    /// Same API and semantics as std's: [`lock`](Mutex::lock) blocks, a panic while the guard
    /// is held poisons the mutex, [`try_lock`](Mutex::try_lock) never blocks. An acquisition
    /// that finds the mutex free costs one try-lock and a relaxed load and store on the
    /// thread's own cell; only one that has to wait reads the clock.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{LockMetrics, Mutex};
    ///
    /// let locks = LockMetrics::new(&opentelemetry::global::meter_provider().meter("example"));
    /// let stock = Mutex::new("inventory", 10u32, &locks);
    /// *stock.lock().unwrap() -= 1;
    /// assert_eq!(*stock.lock().unwrap(), 9);
    /// ```
    pub struct Mutex(sys::Mutex) modes [Exclusive], poisoning;
    /// A mutex named `name` (static, low-cardinality) around `value`, recording into
    /// `metrics`.
    new;
}

instrumented_guard! {
    /// The guard of a [`Mutex`]; the lock is released when it drops.
    #[must_use = "if unused the Mutex will immediately unlock"]
    pub struct MutexGuard(sys::MutexGuard) in Exclusive;
}

impl<T: ?Sized> Mutex<T> {
    acquire! {
        /// Acquires the mutex, blocking the thread until it is free.
        ///
        /// # Errors
        /// When another holder panicked: the error carries the guard, as std's does.
        lock,
        /// Acquires the mutex if it is free now; never blocks. A failed attempt counts nothing.
        ///
        /// # Errors
        /// [`TryLockError::WouldBlock`] when held elsewhere, [`TryLockError::Poisoned`] as std.
        try_lock,
        poisoned, lock_contended -> MutexGuard(MutexGuard) in Exclusive
    }
}

instrumented_lock! {
    /// A [`std::sync::RwLock`] that records `scalewatch.lock.*` under a static name: reads in
    /// mode `shared`, writes in mode `exclusive` (only writes count towards utilization).
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{LockMetrics, RwLock};
    ///
    /// let locks = LockMetrics::new(&opentelemetry::global::meter_provider().meter("example"));
    /// let config = RwLock::new("config", String::from("v1"), &locks);
    /// assert_eq!(*config.read().unwrap(), "v1");
    /// *config.write().unwrap() = "v2".into();
    /// ```
    pub struct RwLock(sys::RwLock) modes [Exclusive, Shared], poisoning;
    /// A reader-writer lock named `name` around `value`, recording into `metrics`.
    new;
}

instrumented_guard! {
    /// The shared guard of a [`RwLock`].
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockReadGuard(sys::RwLockReadGuard) in Shared, read_only;
}

/// The exclusive guard of a [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    /// `Some` until `drop` moves it out; see the `Drop` impl for why.
    inner: ManuallyDrop<Option<sys::RwLockWriteGuard<'a, T>>>,
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// The guard of a hold that `stats` counted as `hold`.
    #[inline]
    fn wrap(stats: &'a LockStats, hold: Hold, inner: sys::RwLockWriteGuard<'a, T>) -> Self {
        Self {
            stats,
            hold,
            inner: ManuallyDrop::new(Some(inner)),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    acquire! {
        /// Acquires shared access, blocking while a writer holds the lock.
        ///
        /// # Errors
        /// When a writer panicked: the error carries the guard, as std's does.
        read,
        /// Shared access if available now; never blocks.
        ///
        /// # Errors
        /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`], as std.
        try_read,
        read_poisoned, read_contended -> RwLockReadGuard(RwLockReadGuard) in Shared
    }

    acquire! {
        /// Acquires exclusive access, blocking while anyone holds the lock.
        ///
        /// # Errors
        /// When a writer panicked: the error carries the guard, as std's does.
        write,
        /// Exclusive access if available now; never blocks.
        ///
        /// # Errors
        /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`], as std.
        try_write,
        write_poisoned, write_contended -> RwLockWriteGuard(RwLockWriteGuard) in Exclusive
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &*self.inner {
            Some(g) => g,
            None => taken(),
        }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut *self.inner {
            Some(g) => g,
            None => taken(),
        }
    }
}

// Why std's guard is moved out of the write guard instead of being a plain field dropped
// after `drop`, as in the other guards: std's `RwLockWriteGuard::drop`, unlike
// `MutexGuard::drop`, is neither `#[inline]` nor small enough to be inlined across crates
// like the read guard's, so with several codegen units an unwind path that drops it is an
// out-of-line call taking its address. `release` can unwind (a sampled hold records into a
// histogram); were std's guard still in this guard then, the guard's stack slot would
// escape, LLVM could no longer keep it in registers, and `write().unwrap()` would copy it
// through the stack: scalar stores, then 16-byte loads, a store-forwarding stall (+15 ns an
// acquisition in `benches/lock_overhead.rs`, measuring or not). So the inlined `drop` has
// no unwind path: the sampled release gets std's guard by value, the field (`ManuallyDrop`)
// has no drop glue, and `deref` cannot unwind either (`taken`).
impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        let inner = self.inner.take();
        if self.hold.is_sampled() {
            release_sampled_write(self.stats, self.hold, inner);
        }
    }
}

/// The end of a sampled write hold, out of line: counts it, then unlocks (also when
/// counting unwinds, as std's guard is dropped then by this frame).
#[cold]
#[inline(never)]
fn release_sampled_write<T: ?Sized>(
    stats: &LockStats,
    hold: Hold,
    inner: Option<sys::RwLockWriteGuard<'_, T>>,
) {
    stats.release(hold, LockMode::Exclusive);
    drop(inner);
}

/// A write guard whose std guard was taken out, which only its `drop` does. Cannot unwind
/// (a panic leaving an `extern "C"` function aborts), so that this impossible branch gives
/// the callers of `deref` no cleanup path dropping the guard by address.
#[cold]
#[inline(never)]
extern "C" fn taken() -> ! {
    unreachable!("a write guard is used after its drop")
}

guard_fmt!(RwLockWriteGuard);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::metrics::LockMetrics;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// The write guard's two ways out (`drop` unlocks itself when the hold is not
    /// sampled, `release_sampled_write` when it is), normally and while panicking.
    #[test]
    fn write_guards_unlock_and_poison_as_std_whether_sampled_or_not() {
        for every in [0, 1] {
            let meter = opentelemetry::global::meter_provider().meter("test");
            let locks = LockMetrics::builder()
                .hold_sample_every(every)
                .build(&meter)
                .expect("valid configuration");
            let ours = RwLock::new("write-guard", 0u32, &locks);
            let theirs = std::sync::RwLock::new(0u32);
            for _ in 0..3 {
                *ours.write().expect("not poisoned") += 1;
                *ours.try_write().expect("free") += 1;
            }
            assert_eq!(*ours.read().expect("not poisoned"), 6);
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _ours = ours.write().expect("not poisoned");
                let _theirs = theirs.write().expect("not poisoned");
                panic!("boom while holding");
            }));
            assert!(r.is_err());
            assert!(ours.is_poisoned());
            assert_eq!(ours.is_poisoned(), theirs.is_poisoned());
            assert!(matches!(ours.try_write(), Err(TryLockError::Poisoned(_))));
            assert_eq!(*ours.write().unwrap_or_else(PoisonError::into_inner), 6);
            let counts = locks.counts("write-guard").expect("declared");
            assert_eq!(counts.exclusive_uncontended, 9, "every = {every}");
            assert_eq!(counts.waiters, 0);
        }
    }
}
