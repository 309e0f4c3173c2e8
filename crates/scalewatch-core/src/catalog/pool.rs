//! Pool signals (`scalewatch.pool.*`), recorded by `scalewatch-sync`'s pools and
//! semaphores, and their attribute keys.

use super::InstrumentKind::{Gauge as G, UpDownCounter as U};
use super::{Signal, WAIT_BUCKETS};

/// Buckets for pool waits and use times, in seconds: [`WAIT_BUCKETS`] (1 µs up).
pub const POOL_BUCKETS: &[f64] = WAIT_BUCKETS;

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

/// Every pool signal, in catalog order.
pub const ALL: &[Signal] = &[
    POOL_WAIT_TIME,
    POOL_USE_TIME,
    POOL_USAGE,
    POOL_LIMIT,
    POOL_PENDING_REQUESTS,
    POOL_UTILIZATION,
];

/// Attribute keys of the pool signals.
pub mod attr {
    /// `scalewatch.pool.name`: the static name given at construction.
    pub const POOL_NAME: &str = "scalewatch.pool.name";
}
