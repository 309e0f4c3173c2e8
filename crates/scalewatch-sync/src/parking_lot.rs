//! `parking_lot::Mutex` and `parking_lot::RwLock`, instrumented (feature `parking_lot`).
//! No poisoning, as in parking_lot. The fast paths are `inline(always)`: outlined, the call
//! costs about as much as the accounting itself.

use crate::stats::LockMode;
use std::time::Duration;

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
    /// Acquires the mutex, blocking the thread until it is free.
    #[inline(always)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match self.inner.try_lock() {
            Some(g) => {
                MutexGuard::wrap(&self.stats, self.stats.uncontended(LockMode::Exclusive), g)
            }
            None => self.lock_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, T> {
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let g = self.inner.lock();
        MutexGuard::wrap(&self.stats, wait.acquired(), g)
    }

    /// Acquires the mutex if it is free now; never blocks. A failed attempt counts nothing.
    #[inline(always)]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner
            .try_lock()
            .map(|g| MutexGuard::wrap(&self.stats, self.stats.uncontended(LockMode::Exclusive), g))
    }

    /// Acquires the mutex, waiting at most `timeout`. A wait that times out is not counted
    /// as an acquisition (it leaves the waiter count as it was).
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        if let Some(g) = self.inner.try_lock() {
            return Some(MutexGuard::wrap(
                &self.stats,
                self.stats.uncontended(LockMode::Exclusive),
                g,
            ));
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
    /// Acquires shared access, blocking while a writer holds the lock.
    #[inline(always)]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        match self.try_read() {
            Some(g) => g,
            None => self.read_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn read_contended(&self) -> RwLockReadGuard<'_, T> {
        let wait = self.stats.begin_wait(LockMode::Shared);
        let inner = self.inner.read();
        RwLockReadGuard::wrap(&self.stats, wait.acquired(), inner)
    }

    /// Acquires exclusive access, blocking while anyone holds the lock.
    #[inline(always)]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        match self.try_write() {
            Some(g) => g,
            None => self.write_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn write_contended(&self) -> RwLockWriteGuard<'_, T> {
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let inner = self.inner.write();
        RwLockWriteGuard::wrap(&self.stats, wait.acquired(), inner)
    }

    /// Shared access if available now; never blocks.
    #[inline(always)]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.inner.try_read().map(|inner| {
            RwLockReadGuard::wrap(&self.stats, self.stats.uncontended(LockMode::Shared), inner)
        })
    }

    /// Exclusive access if available now; never blocks.
    #[inline(always)]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.inner.try_write().map(|inner| {
            RwLockWriteGuard::wrap(
                &self.stats,
                self.stats.uncontended(LockMode::Exclusive),
                inner,
            )
        })
    }
}
