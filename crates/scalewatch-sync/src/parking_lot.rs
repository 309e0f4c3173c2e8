//! `parking_lot::Mutex` and `parking_lot::RwLock`, instrumented (feature `parking_lot`).
//! No poisoning, as in parking_lot. The fast paths are `inline(always)`: outlined, the call
//! costs about as much as the accounting itself.

use crate::stats::LockMode;
use std::time::Duration;

/// The acquisition methods of one mode of a parking_lot lock: the blocking and the
/// non-blocking fast path (`inline(always)`), and the contended path out of line.
macro_rules! acquire {
    (
        $(#[$doc:meta])* $lock:ident,
        $(#[$try_doc:meta])* $try_lock:ident,
        $contended:ident -> $Guard:ident in $mode:ident
    ) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $lock(&self) -> $Guard<'_, T> {
            match self.$try_lock() {
                Some(g) => g,
                None => self.$contended(),
            }
        }

        #[cold]
        #[inline(never)]
        fn $contended(&self) -> $Guard<'_, T> {
            let wait = self.stats.begin_wait(LockMode::$mode);
            let inner = self.inner.$lock();
            $Guard::wrap(&self.stats, wait.acquired(), inner)
        }

        $(#[$try_doc])*
        #[inline(always)]
        pub fn $try_lock(&self) -> Option<$Guard<'_, T>> {
            self.inner
                .$try_lock()
                .map(|inner| $Guard::wrap(&self.stats, self.stats.uncontended(LockMode::$mode), inner))
        }
    };
}

instrumented_lock! {
    /// A [`parking_lot::Mutex`] that records `scalewatch.lock.*` under a static name.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{parking_lot::Mutex, LockMetrics};
    ///
    /// let locks = LockMetrics::new(&opentelemetry::global::meter_provider().meter("example"));
    /// let hits = Mutex::new("hits", 0u64, &locks);
    /// *hits.lock() += 1;
    /// assert_eq!(*hits.lock(), 1);
    /// ```
    pub struct Mutex(parking_lot::Mutex) modes [Exclusive];
    /// A mutex named `name` around `value`, recording into `metrics`.
    new;
}

instrumented_guard! {
    /// The guard of a parking_lot [`Mutex`].
    #[must_use = "if unused the Mutex will immediately unlock"]
    pub struct MutexGuard(parking_lot::MutexGuard) in Exclusive;
}

impl<T: ?Sized> Mutex<T> {
    acquire! {
        /// Acquires the mutex, blocking the thread until it is free.
        lock,
        /// Acquires the mutex if it is free now; never blocks. A failed attempt counts nothing.
        try_lock,
        lock_contended -> MutexGuard in Exclusive
    }

    /// Acquires the mutex, waiting at most `timeout`. A wait that times out is not counted
    /// as an acquisition (it leaves the waiter count as it was).
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        if let Some(g) = self.try_lock() {
            return Some(g);
        }
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let g = self.inner.try_lock_for(timeout)?;
        Some(MutexGuard::wrap(&self.stats, wait.acquired(), g))
    }

    /// Whether the mutex is held now.
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

instrumented_lock! {
    /// A [`parking_lot::RwLock`] that records `scalewatch.lock.*`: reads `shared`, writes
    /// `exclusive`.
    pub struct RwLock(parking_lot::RwLock) modes [Exclusive, Shared];
    /// A reader-writer lock named `name` around `value`, recording into `metrics`.
    new;
}

instrumented_guard! {
    /// The shared guard of a parking_lot [`RwLock`].
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockReadGuard(parking_lot::RwLockReadGuard) in Shared, read_only;
}

instrumented_guard! {
    /// The exclusive guard of a parking_lot [`RwLock`].
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockWriteGuard(parking_lot::RwLockWriteGuard) in Exclusive;
}

impl<T: ?Sized> RwLock<T> {
    acquire! {
        /// Acquires shared access, blocking while a writer holds the lock.
        read,
        /// Shared access if available now; never blocks.
        try_read,
        read_contended -> RwLockReadGuard in Shared
    }

    acquire! {
        /// Acquires exclusive access, blocking while anyone holds the lock.
        write,
        /// Exclusive access if available now; never blocks.
        try_write,
        write_contended -> RwLockWriteGuard in Exclusive
    }
}
