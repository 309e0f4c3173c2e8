//! `tokio::sync` `Mutex`, `RwLock` and `Semaphore`, instrumented (feature `tokio`).
//!
//! Waits are cancellation-safe: dropping a `lock()` or `acquire()` future while it waits
//! takes the waiter back out of `scalewatch.lock.waiters` and records nothing else. As in
//! tokio, a waiter keeps its place in the FIFO queue; the first, non-waiting attempt is
//! tokio's own `try_*`, which never jumps that queue.

use crate::metrics::LockMetrics;
use crate::stats::{Hold, LockMode, LockStats};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{AcquireError, TryAcquireError, TryLockError};

/// The acquisition methods of one mode of a tokio lock: the waiting one, which first tries
/// tokio's own `try_*` (it never jumps the FIFO queue) and counts a waiter only when that
/// fails, and the non-waiting one.
macro_rules! acquire {
    ($(#[$doc:meta])* $lock:ident, $(#[$try_doc:meta])* $try_lock:ident -> $Guard:ident in $mode:ident) => {
        $(#[$doc])*
        pub async fn $lock(&self) -> $Guard<'_, T> {
            if let Ok(inner) = self.inner.$try_lock() {
                return $Guard::wrap(&self.stats, self.stats.uncontended(LockMode::$mode), inner);
            }
            let wait = self.stats.begin_wait(LockMode::$mode);
            let inner = self.inner.$lock().await;
            $Guard::wrap(&self.stats, wait.acquired(), inner)
        }

        $(#[$try_doc])*
        pub fn $try_lock(&self) -> Result<$Guard<'_, T>, TryLockError> {
            let inner = self.inner.$try_lock()?;
            Ok($Guard::wrap(&self.stats, self.stats.uncontended(LockMode::$mode), inner))
        }
    };
}

instrumented_lock! {
    /// A [`tokio::sync::Mutex`] that records `scalewatch.lock.*` under a static name.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{tokio::Mutex, LockMetrics};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let locks = LockMetrics::new(&opentelemetry::global::meter_provider().meter("example"));
    /// let sessions = Mutex::new("sessions", Vec::<u64>::new(), &locks);
    /// sessions.lock().await.push(7);
    /// assert_eq!(sessions.lock().await.len(), 1);
    /// # }
    /// ```
    pub struct Mutex(tokio::sync::Mutex) modes [Exclusive];
    /// A mutex named `name` around `value`, recording into `metrics`.
    new;
}

instrumented_guard! {
    /// The guard of a tokio [`Mutex`].
    #[must_use = "if unused the Mutex will immediately unlock"]
    pub struct MutexGuard(tokio::sync::MutexGuard) in Exclusive;
}

impl<T: ?Sized> Mutex<T> {
    acquire! {
        /// Locks the mutex, waiting (asynchronously, in FIFO order) while it is held.
        /// Cancel-safe: a dropped wait leaves no waiter behind and keeps tokio's semantics.
        lock,
        /// Locks the mutex if it is free now. A failed attempt counts nothing.
        ///
        /// # Errors
        /// When the mutex is held (tokio's [`TryLockError`]).
        try_lock -> MutexGuard in Exclusive
    }
}

instrumented_lock! {
    /// A [`tokio::sync::RwLock`] that records `scalewatch.lock.*`: reads `shared`, writes
    /// `exclusive`.
    pub struct RwLock(tokio::sync::RwLock) modes [Exclusive, Shared];
    /// A reader-writer lock named `name` around `value`, recording into `metrics`.
    new;
}

instrumented_guard! {
    /// The shared guard of a tokio [`RwLock`].
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockReadGuard(tokio::sync::RwLockReadGuard) in Shared, read_only;
}

instrumented_guard! {
    /// The exclusive guard of a tokio [`RwLock`].
    #[must_use = "if unused the RwLock will immediately unlock"]
    pub struct RwLockWriteGuard(tokio::sync::RwLockWriteGuard) in Exclusive;
}

impl<T: ?Sized> RwLock<T> {
    acquire! {
        /// Shared access, waiting (FIFO) while a writer holds or waits for the lock. Cancel-safe.
        read,
        /// Shared access if available now.
        ///
        /// # Errors
        /// When a writer holds the lock (tokio's [`TryLockError`]).
        try_read -> RwLockReadGuard in Shared
    }

    acquire! {
        /// Exclusive access, waiting (FIFO) while anyone holds the lock. Cancel-safe.
        write,
        /// Exclusive access if available now.
        ///
        /// # Errors
        /// When anyone holds the lock (tokio's [`TryLockError`]).
        try_write -> RwLockWriteGuard in Exclusive
    }
}

/// A [`tokio::sync::Semaphore`] that records `scalewatch.lock.*` in mode `shared`: each
/// successful `acquire*` is one acquisition, contended when it had to wait. For a fixed
/// set of permits handed out for a while (connections, worker slots) with usage and
/// utilization, use [`crate::Pool`].
pub struct Semaphore {
    stats: Arc<LockStats>,
    inner: tokio::sync::Semaphore,
    /// The permits this semaphore counts in its name's capacity (made, added, less
    /// forgotten), taken back out when it drops.
    permits: AtomicU64,
}

/// Permits from a [`Semaphore`]; given back when dropped.
#[must_use = "the permits are given back when this drops"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    hold: Hold,
    units: u64,
    inner: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl Semaphore {
    /// A semaphore named `name` with `permits` permits, recording into `metrics`. Its
    /// utilization (`scalewatch.lock.utilization`) is the share of its permits in use.
    pub fn new(name: &'static str, permits: usize, metrics: &LockMetrics) -> Self {
        let stats = metrics.stats(name, LockMode::Shared);
        stats.add_permits(permits as u64);
        Self {
            stats,
            inner: tokio::sync::Semaphore::new(permits),
            permits: AtomicU64::new(permits as u64),
        }
    }

    fn permit<'a>(
        &'a self,
        p: tokio::sync::SemaphorePermit<'a>,
        hold: Hold,
        units: u32,
    ) -> SemaphorePermit<'a> {
        SemaphorePermit {
            semaphore: self,
            hold,
            units: u64::from(units),
            inner: Some(p),
        }
    }

    /// Counts `n` (wrapping: negative to take away) permits in the name's capacity.
    fn count_permits(&self, n: u64) {
        self.permits.fetch_add(n, Relaxed);
        self.stats.add_permits(n);
    }

    /// Acquires one permit, waiting (FIFO) while none is free. Cancel-safe.
    ///
    /// # Errors
    /// When the semaphore is closed.
    pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_many(1).await
    }

    /// Acquires `n` permits at once, waiting (FIFO) until they are free. Cancel-safe.
    ///
    /// # Errors
    /// When the semaphore is closed.
    pub async fn acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, AcquireError> {
        match self.inner.try_acquire_many(n) {
            Ok(p) => return Ok(self.permit(p, self.uncontended(n), n)),
            Err(TryAcquireError::Closed) => {
                // Let tokio produce the `AcquireError`: on a closed semaphore it fails at once.
                let p = self.inner.acquire_many(n).await?;
                return Ok(self.permit(p, self.uncontended(n), n));
            }
            Err(TryAcquireError::NoPermits) => {}
        }
        let wait = self.stats.begin_wait_units(LockMode::Shared, u64::from(n));
        let p = self.inner.acquire_many(n).await?;
        Ok(self.permit(p, wait.acquired(), n))
    }

    fn uncontended(&self, n: u32) -> Hold {
        self.stats.uncontended_units(LockMode::Shared, u64::from(n))
    }

    /// One permit if one is free now.
    ///
    /// # Errors
    /// Tokio's [`TryAcquireError`]: closed, or no permits.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// `n` permits if they are free now.
    ///
    /// # Errors
    /// Tokio's [`TryAcquireError`]: closed, or not enough permits.
    pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        let p = self.inner.try_acquire_many(n)?;
        Ok(self.permit(p, self.uncontended(n), n))
    }

    /// Adds `n` permits.
    pub fn add_permits(&self, n: usize) {
        self.inner.add_permits(n);
        self.count_permits(n as u64);
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.inner.available_permits()
    }

    /// Closes the semaphore: waiters and later acquisitions fail.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the semaphore is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The static name this semaphore records under.
    pub fn name(&self) -> &'static str {
        self.stats.name()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("name", &self.stats.name())
            .field("inner", &&self.inner)
            .finish()
    }
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.inner.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Forgets the permits without giving them back (tokio's `forget`); the hold ends now.
    pub fn forget(mut self) {
        if let Some(p) = self.inner.take() {
            self.semaphore
                .count_permits((p.num_permits() as u64).wrapping_neg());
            p.forget();
        }
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore
            .stats
            .release_units(self.hold, LockMode::Shared, self.units);
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        self.stats
            .add_permits(self.permits.load(Relaxed).wrapping_neg());
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("name", &self.semaphore.stats.name())
            .field("permits", &self.num_permits())
            .finish()
    }
}

impl scalewatch_core::resource::Saturable for Semaphore {
    /// The semaphores of this one's name, for `CapacityModel::register`: the share of
    /// their permits in use, and their mean waiters per permit.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        crate::metrics::lock_resource(&self.stats)
    }
}
