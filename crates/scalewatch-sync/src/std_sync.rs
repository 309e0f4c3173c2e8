//! `std::sync::Mutex` and `std::sync::RwLock`, instrumented. Poisoning is std's own.

use crate::metrics::LockMetrics;
use crate::stats::{Hold, LockMode, LockStats};
use crate::sys;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LockResult, PoisonError, TryLockError, TryLockResult};

// The fast paths below match std's results by hand instead of mapping them through
// closures, and are `inline(always)`: outlined, the call and the guard returned through
// memory cost about as much as the accounting itself.

fn map_lock<G, H>(r: LockResult<G>, f: impl FnOnce(G) -> H) -> LockResult<H> {
    match r {
        Ok(g) => Ok(f(g)),
        Err(p) => Err(PoisonError::new(f(p.into_inner()))),
    }
}

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
pub struct Mutex<T: ?Sized> {
    stats: Arc<LockStats>,
    inner: sys::Mutex<T>,
}

/// The guard of a [`Mutex`]; the lock is released when it drops.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: sys::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A mutex named `name` (static, low-cardinality) around `value`, recording into
    /// `metrics`.
    pub fn new(name: &'static str, value: T, metrics: &LockMetrics) -> Self {
        Self {
            stats: metrics.stats(name, LockMode::Exclusive),
            inner: sys::Mutex::new(value),
        }
    }

    /// Consumes the mutex, returning the value; an error if it is poisoned.
    #[cfg(not(loom))]
    pub fn into_inner(self) -> LockResult<T> {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    #[inline]
    fn guard<'a>(&'a self, inner: sys::MutexGuard<'a, T>, hold: Hold) -> MutexGuard<'a, T> {
        MutexGuard {
            stats: &self.stats,
            hold,
            inner,
        }
    }

    /// Acquires the mutex, blocking the thread until it is free.
    ///
    /// # Errors
    /// When another holder panicked: the error carries the guard, as std's does.
    #[inline(always)]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(self.guard(g, self.stats.uncontended(LockMode::Exclusive))),
            Err(TryLockError::Poisoned(p)) => Err(self.poisoned(p)),
            Err(TryLockError::WouldBlock) => self.lock_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn poisoned<'a>(
        &'a self,
        p: PoisonError<sys::MutexGuard<'a, T>>,
    ) -> PoisonError<MutexGuard<'a, T>> {
        PoisonError::new(self.guard(p.into_inner(), self.stats.uncontended(LockMode::Exclusive)))
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> LockResult<MutexGuard<'_, T>> {
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let r = self.inner.lock();
        let hold = wait.acquired();
        map_lock(r, |g| self.guard(g, hold))
    }

    /// Acquires the mutex if it is free now; never blocks. A failed attempt counts nothing.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] when held elsewhere, [`TryLockError::Poisoned`] as std.
    #[inline(always)]
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(g) => Ok(self.guard(g, self.stats.uncontended(LockMode::Exclusive))),
            Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(self.poisoned(p))),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
        }
    }

    /// Whether a holder panicked (std semantics).
    #[cfg(not(loom))]
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    /// Clears the poisoned state (std semantics).
    #[cfg(not(loom))]
    pub fn clear_poison(&self) {
        self.inner.clear_poison();
    }

    /// A mutable reference to the value, with no locking; an error if poisoned.
    #[cfg(not(loom))]
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }

    /// The static name this mutex records under.
    pub fn name(&self) -> &'static str {
        self.stats.name()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("name", &self.stats.name())
            .field("inner", &&self.inner)
            .finish()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.stats.release(self.hold, LockMode::Exclusive);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

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
pub struct RwLock<T: ?Sized> {
    stats: Arc<LockStats>,
    inner: sys::RwLock<T>,
}

/// The shared guard of a [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: sys::RwLockReadGuard<'a, T>,
}

/// The exclusive guard of a [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: sys::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A reader-writer lock named `name` around `value`, recording into `metrics`.
    pub fn new(name: &'static str, value: T, metrics: &LockMetrics) -> Self {
        let stats = metrics.stats(name, LockMode::Exclusive);
        stats.declare(LockMode::Shared);
        Self {
            stats,
            inner: sys::RwLock::new(value),
        }
    }

    /// Consumes the lock, returning the value; an error if it is poisoned.
    #[cfg(not(loom))]
    pub fn into_inner(self) -> LockResult<T> {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    #[inline]
    fn read_guard<'a>(
        &'a self,
        inner: sys::RwLockReadGuard<'a, T>,
        hold: Hold,
    ) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            stats: &self.stats,
            hold,
            inner,
        }
    }

    #[inline]
    fn write_guard<'a>(
        &'a self,
        inner: sys::RwLockWriteGuard<'a, T>,
        hold: Hold,
    ) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            stats: &self.stats,
            hold,
            inner,
        }
    }

    /// Acquires shared access, blocking while a writer holds the lock.
    ///
    /// # Errors
    /// When a writer panicked: the error carries the guard, as std's does.
    #[inline(always)]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        match self.inner.try_read() {
            Ok(g) => Ok(self.read_guard(g, self.stats.uncontended(LockMode::Shared))),
            Err(TryLockError::Poisoned(p)) => Err(self.read_poisoned(p)),
            Err(TryLockError::WouldBlock) => self.read_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn read_poisoned<'a>(
        &'a self,
        p: PoisonError<sys::RwLockReadGuard<'a, T>>,
    ) -> PoisonError<RwLockReadGuard<'a, T>> {
        PoisonError::new(self.read_guard(p.into_inner(), self.stats.uncontended(LockMode::Shared)))
    }

    #[cold]
    #[inline(never)]
    fn read_contended(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let wait = self.stats.begin_wait(LockMode::Shared);
        let r = self.inner.read();
        let hold = wait.acquired();
        map_lock(r, |g| self.read_guard(g, hold))
    }

    /// Acquires exclusive access, blocking while anyone holds the lock.
    ///
    /// # Errors
    /// When a writer panicked: the error carries the guard, as std's does.
    #[inline(always)]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        match self.inner.try_write() {
            Ok(g) => Ok(self.write_guard(g, self.stats.uncontended(LockMode::Exclusive))),
            Err(TryLockError::Poisoned(p)) => Err(self.write_poisoned(p)),
            Err(TryLockError::WouldBlock) => self.write_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn write_poisoned<'a>(
        &'a self,
        p: PoisonError<sys::RwLockWriteGuard<'a, T>>,
    ) -> PoisonError<RwLockWriteGuard<'a, T>> {
        PoisonError::new(
            self.write_guard(p.into_inner(), self.stats.uncontended(LockMode::Exclusive)),
        )
    }

    #[cold]
    #[inline(never)]
    fn write_contended(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let r = self.inner.write();
        let hold = wait.acquired();
        map_lock(r, |g| self.write_guard(g, hold))
    }

    /// Shared access if available now; never blocks.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`], as std.
    #[inline(always)]
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        match self.inner.try_read() {
            Ok(g) => Ok(self.read_guard(g, self.stats.uncontended(LockMode::Shared))),
            Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(self.read_poisoned(p))),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
        }
    }

    /// Exclusive access if available now; never blocks.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] or [`TryLockError::Poisoned`], as std.
    #[inline(always)]
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        match self.inner.try_write() {
            Ok(g) => Ok(self.write_guard(g, self.stats.uncontended(LockMode::Exclusive))),
            Err(TryLockError::Poisoned(p)) => Err(TryLockError::Poisoned(self.write_poisoned(p))),
            Err(TryLockError::WouldBlock) => Err(TryLockError::WouldBlock),
        }
    }

    /// Whether a writer panicked (std semantics).
    #[cfg(not(loom))]
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    /// Clears the poisoned state (std semantics).
    #[cfg(not(loom))]
    pub fn clear_poison(&self) {
        self.inner.clear_poison();
    }

    /// A mutable reference to the value, with no locking; an error if poisoned.
    #[cfg(not(loom))]
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }

    /// The static name this lock records under.
    pub fn name(&self) -> &'static str {
        self.stats.name()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("name", &self.stats.name())
            .field("inner", &&self.inner)
            .finish()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.stats.release(self.hold, LockMode::Shared);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.stats.release(self.hold, LockMode::Exclusive);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
