//! The lock and pool signals of SIGNALS.md ("Locks and pools"), their attribute keys and
//! values. Call sites refer to these constants; no metric name is spelled anywhere else.

use scalewatch_core::catalog::InstrumentKind::{Counter as C, Gauge as G, UpDownCounter as U};
use scalewatch_core::catalog::Signal;

/// Buckets for lock waits and hold times, in seconds: 1 µs to 10 s in 1-2.5-5 steps, so an
/// uncontended-but-busy lock (µs) and a convoy (ms) land in different buckets.
pub const LOCK_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
];

/// Buckets for pool waits and use times, in seconds: the core's `WAIT_BUCKETS` (1 µs up).
pub const POOL_BUCKETS: &[f64] = scalewatch_core::catalog::WAIT_BUCKETS;

/// `scalewatch.lock.acquisitions`.
pub const LOCK_ACQUISITIONS: Signal = Signal::new(
    "scalewatch.lock.acquisitions",
    C,
    "{acquisition}",
    "Lock acquisitions, by mode and by whether the caller had to wait.",
);
/// `scalewatch.lock.wait.duration`.
pub const LOCK_WAIT_DURATION: Signal = Signal::histogram(
    "scalewatch.lock.wait.duration",
    "s",
    LOCK_BUCKETS,
    "Time a contended acquisition waited for the lock (uncontended ones waited 0 and are only counted).",
);
/// `scalewatch.lock.hold.duration`.
pub const LOCK_HOLD_DURATION: Signal = Signal::histogram(
    "scalewatch.lock.hold.duration",
    "s",
    LOCK_BUCKETS,
    "Time the lock was held, sampled: one acquisition in N per thread (N = 64 by default).",
);
/// `scalewatch.lock.waiters`.
pub const LOCK_WAITERS: Signal = Signal::new(
    "scalewatch.lock.waiters",
    U,
    "{waiter}",
    "Threads or tasks waiting for the lock now.",
);
/// `scalewatch.lock.utilization`.
pub const LOCK_UTILIZATION: Signal = Signal::new(
    "scalewatch.lock.utilization",
    G,
    "1",
    "Fraction of wall time the lock was held exclusively over the interval.",
);
/// `scalewatch.pool.wait_time`.
pub const POOL_WAIT_TIME: Signal = Signal::histogram(
    "scalewatch.pool.wait_time",
    "s",
    POOL_BUCKETS,
    "Time it took to obtain a permit from the pool.",
);
/// `scalewatch.pool.use_time`.
pub const POOL_USE_TIME: Signal = Signal::histogram(
    "scalewatch.pool.use_time",
    "s",
    POOL_BUCKETS,
    "Time between obtaining a permit and giving it back.",
);
/// `scalewatch.pool.usage`.
pub const POOL_USAGE: Signal = Signal::new(
    "scalewatch.pool.usage",
    U,
    "{permit}",
    "Permits handed out now.",
);
/// `scalewatch.pool.limit`.
pub const POOL_LIMIT: Signal = Signal::new(
    "scalewatch.pool.limit",
    G,
    "{permit}",
    "Permits the pool hands out at most.",
);
/// `scalewatch.pool.pending_requests`.
pub const POOL_PENDING_REQUESTS: Signal = Signal::new(
    "scalewatch.pool.pending_requests",
    U,
    "{request}",
    "Requests waiting for a permit now.",
);
/// `scalewatch.pool.utilization`.
pub const POOL_UTILIZATION: Signal = Signal::new(
    "scalewatch.pool.utilization",
    G,
    "1",
    "Time-averaged permits in use over the interval divided by the limit.",
);

/// Every signal this crate defines, in catalog order.
pub const ALL: &[Signal] = &[
    LOCK_ACQUISITIONS,
    LOCK_WAIT_DURATION,
    LOCK_HOLD_DURATION,
    LOCK_WAITERS,
    LOCK_UTILIZATION,
    POOL_WAIT_TIME,
    POOL_USE_TIME,
    POOL_USAGE,
    POOL_LIMIT,
    POOL_PENDING_REQUESTS,
    POOL_UTILIZATION,
];

/// Attribute keys.
pub mod attr {
    /// `scalewatch.lock.name`: the static name given at construction.
    pub const LOCK_NAME: &str = "scalewatch.lock.name";
    /// `scalewatch.lock.mode`: [`super::MODE_EXCLUSIVE`] or [`super::MODE_SHARED`].
    pub const LOCK_MODE: &str = "scalewatch.lock.mode";
    /// `scalewatch.lock.contended`: whether the acquisition had to wait (bool).
    pub const LOCK_CONTENDED: &str = "scalewatch.lock.contended";
    /// `scalewatch.pool.name`: the static name given at construction.
    pub const POOL_NAME: &str = "scalewatch.pool.name";
    /// The field of the slow-wait tracing event that carries the wait, in seconds.
    pub const LOCK_WAIT_SECONDS: &str = "scalewatch.lock.wait_s";
}

/// `scalewatch.lock.mode` of a mutex, a write lock, or anything held by one owner.
pub const MODE_EXCLUSIVE: &str = "exclusive";
/// `scalewatch.lock.mode` of a read lock or a semaphore permit.
pub const MODE_SHARED: &str = "shared";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.lock.", "scalewatch.pool."]).unwrap();
    }
}
