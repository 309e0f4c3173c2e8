//! Lock signals (`scalewatch.lock.*`), recorded by `scalewatch-sync`'s instrumented
//! locks, their attribute keys and values.

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

signals! {
    /// Every lock signal, in catalog order.
    ALL;
    /// `scalewatch.lock.acquisitions`.
    LOCK_ACQUISITIONS = counter("scalewatch.lock.acquisitions", "{acquisition}", "Lock acquisitions, by mode and by whether the caller had to wait.");
    /// `scalewatch.lock.wait.duration`.
    LOCK_WAIT_DURATION = histogram("scalewatch.lock.wait.duration", "s", LOCK_BUCKETS, "Time a contended acquisition waited for the lock (uncontended ones waited 0 and are only counted).");
    /// `scalewatch.lock.hold.duration`.
    LOCK_HOLD_DURATION = histogram("scalewatch.lock.hold.duration", "s", LOCK_BUCKETS, "Time the lock was held, sampled: one acquisition in N per thread (N = 64 by default).");
    /// `scalewatch.lock.waiters`.
    LOCK_WAITERS = up_down_counter("scalewatch.lock.waiters", "{waiter}", "Threads or tasks waiting for the lock now.");
    /// `scalewatch.lock.utilization`.
    LOCK_UTILIZATION = gauge("scalewatch.lock.utilization", "1", "Fraction of wall time the lock was held exclusively over the interval.");
}

/// Attribute keys of the lock signals.
pub mod attr {
    /// `scalewatch.lock.name`: the static name given at construction.
    pub const LOCK_NAME: &str = "scalewatch.lock.name";
    /// `scalewatch.lock.mode`: [`super::MODE_EXCLUSIVE`] or [`super::MODE_SHARED`].
    pub const LOCK_MODE: &str = "scalewatch.lock.mode";
    /// `scalewatch.lock.contended`: whether the acquisition had to wait (bool).
    pub const LOCK_CONTENDED: &str = "scalewatch.lock.contended";
    /// The field of the slow-wait tracing event that carries the wait, in seconds.
    pub const LOCK_WAIT_SECONDS: &str = "scalewatch.lock.wait_s";
}

/// `scalewatch.lock.mode` of a mutex, a write lock, or anything held by one owner.
pub const MODE_EXCLUSIVE: &str = "exclusive";
/// `scalewatch.lock.mode` of a read lock or a semaphore permit.
pub const MODE_SHARED: &str = "shared";
