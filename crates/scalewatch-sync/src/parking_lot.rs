//! `parking_lot::Mutex` and `parking_lot::RwLock`, instrumented (feature `parking_lot`).
//! No poisoning, as in parking_lot. The fast paths are `inline(always)`: outlined, the call
//! costs about as much as the accounting itself.

use crate::metrics::LockMetrics;
use crate::stats::{Hold, LockMode, LockStats};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

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
pub struct Mutex<T: ?Sized> {
    stats: Arc<LockStats>,
    inner: parking_lot::Mutex<T>,
}

/// The guard of a parking_lot [`Mutex`].
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: parking_lot::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    /// A mutex named `name` around `value`, recording into `metrics`.
    pub fn new(name: &'static str, value: T, metrics: &LockMetrics) -> Self {
        Self {
            stats: metrics.stats(name, LockMode::Exclusive),
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Consumes the mutex, returning the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    fn guard<'a>(&'a self, inner: parking_lot::MutexGuard<'a, T>, hold: Hold) -> MutexGuard<'a, T> {
        MutexGuard {
            stats: &self.stats,
            hold,
            inner,
        }
    }

    /// Acquires the mutex, blocking the thread until it is free.
    #[inline(always)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match self.inner.try_lock() {
            Some(g) => self.guard(g, self.stats.uncontended(LockMode::Exclusive)),
            None => self.lock_contended(),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) -> MutexGuard<'_, T> {
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let g = self.inner.lock();
        self.guard(g, wait.acquired())
    }

    /// Acquires the mutex if it is free now; never blocks. A failed attempt counts nothing.
    #[inline(always)]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner
            .try_lock()
            .map(|g| self.guard(g, self.stats.uncontended(LockMode::Exclusive)))
    }

    /// Acquires the mutex, waiting at most `timeout`. A wait that times out is not counted
    /// as an acquisition (it leaves the waiter count as it was).
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        if let Some(g) = self.inner.try_lock() {
            return Some(self.guard(g, self.stats.uncontended(LockMode::Exclusive)));
        }
        let wait = self.stats.begin_wait(LockMode::Exclusive);
        let g = self.inner.try_lock_for(timeout)?;
        Some(self.guard(g, wait.acquired()))
    }

    /// Whether the mutex is held now.
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// A mutable reference to the value, with no locking.
    pub fn get_mut(&mut self) -> &mut T {
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

/// A [`parking_lot::RwLock`] that records `scalewatch.lock.*`: reads `shared`, writes
/// `exclusive`.
pub struct RwLock<T: ?Sized> {
    stats: Arc<LockStats>,
    inner: parking_lot::RwLock<T>,
}

/// The shared guard of a parking_lot [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: parking_lot::RwLockReadGuard<'a, T>,
}

/// The exclusive guard of a parking_lot [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    stats: &'a LockStats,
    hold: Hold,
    inner: parking_lot::RwLockWriteGuard<'a, T>,
}

impl<T> RwLock<T> {
    /// A reader-writer lock named `name` around `value`, recording into `metrics`.
    pub fn new(name: &'static str, value: T, metrics: &LockMetrics) -> Self {
        let stats = metrics.stats(name, LockMode::Exclusive);
        stats.declare(LockMode::Shared);
        Self {
            stats,
            inner: parking_lot::RwLock::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
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
        RwLockReadGuard {
            stats: &self.stats,
            hold: wait.acquired(),
            inner,
        }
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
        RwLockWriteGuard {
            stats: &self.stats,
            hold: wait.acquired(),
            inner,
        }
    }

    /// Shared access if available now; never blocks.
    #[inline(always)]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.inner.try_read().map(|inner| RwLockReadGuard {
            stats: &self.stats,
            hold: self.stats.uncontended(LockMode::Shared),
            inner,
        })
    }

    /// Exclusive access if available now; never blocks.
    #[inline(always)]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.inner.try_write().map(|inner| RwLockWriteGuard {
            stats: &self.stats,
            hold: self.stats.uncontended(LockMode::Exclusive),
            inner,
        })
    }

    /// A mutable reference to the value, with no locking.
    pub fn get_mut(&mut self) -> &mut T {
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

impl<T: ?Sized> scalewatch_core::resource::Saturable for Mutex<T> {
    /// The locks of this one's name, for `CapacityModel::register`: the fraction of time
    /// they were held exclusively, and their mean waiters.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        crate::metrics::lock_resource(&self.stats)
    }
}

impl<T: ?Sized> scalewatch_core::resource::Saturable for RwLock<T> {
    /// The locks of this one's name, for `CapacityModel::register`: the fraction of time
    /// they were held exclusively, and their mean waiters.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        crate::metrics::lock_resource(&self.stats)
    }
}
