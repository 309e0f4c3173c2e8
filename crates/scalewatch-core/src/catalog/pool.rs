//! Pool signals (`scalewatch.pool.*`), recorded by `scalewatch-sync`'s pools and
//! semaphores, and their attribute keys.

use super::WAIT_BUCKETS;

/// Buckets for pool waits and use times, in seconds: [`WAIT_BUCKETS`] (1 µs up).
pub const POOL_BUCKETS: &[f64] = WAIT_BUCKETS;

signals! {
    /// Every pool signal, in catalog order.
    ALL;
    /// `scalewatch.pool.wait_time`.
    POOL_WAIT_TIME = histogram("scalewatch.pool.wait_time", "s", POOL_BUCKETS, "Time it took to obtain a permit from the pool.");
    /// `scalewatch.pool.use_time`.
    POOL_USE_TIME = histogram("scalewatch.pool.use_time", "s", POOL_BUCKETS, "Time between obtaining a permit and giving it back.");
    /// `scalewatch.pool.usage`.
    POOL_USAGE = up_down_counter("scalewatch.pool.usage", "{permit}", "Permits handed out now.");
    /// `scalewatch.pool.limit`.
    POOL_LIMIT = gauge("scalewatch.pool.limit", "{permit}", "Permits the pool hands out at most.");
    /// `scalewatch.pool.pending_requests`.
    POOL_PENDING_REQUESTS = up_down_counter("scalewatch.pool.pending_requests", "{request}", "Requests waiting for a permit now.");
    /// `scalewatch.pool.utilization`.
    POOL_UTILIZATION = gauge("scalewatch.pool.utilization", "1", "Time-averaged permits in use over the interval divided by the limit.");
}

/// Attribute keys of the pool signals.
pub mod attr {
    /// `scalewatch.pool.name`: the static name given at construction.
    pub const POOL_NAME: &str = "scalewatch.pool.name";
}
