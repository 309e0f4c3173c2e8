//! Runtime signals (`scalewatch.runtime.*`): the async runtime's saturation, recorded by
//! `scalewatch-runtime`.
//!
//! They carry [`tier::attr::TIER_NAME`](super::tier::attr::TIER_NAME) (the name given to
//! the runtime tier) and [`tier::attr::TIER_KIND`](super::tier::attr::TIER_KIND) =
//! `runtime`.

use super::WAIT_BUCKETS;

/// Schedule-delay buckets, in seconds: from 1 µs (as for queue waits), then the semconv
/// duration buckets. Only used with `--cfg tokio_unstable` and feature `schedule-latency`.
pub const SCHEDULE_DELAY_BUCKETS: &[f64] = WAIT_BUCKETS;

signals! {
    /// Every runtime signal, in catalog order.
    ALL;
    /// `scalewatch.runtime.utilization`.
    RUNTIME_UTILIZATION = gauge("scalewatch.runtime.utilization", "1", "Tokio workers' busy ratio over the interval: busy time / (workers x elapsed).");
    /// `scalewatch.runtime.workers`.
    RUNTIME_WORKERS = gauge("scalewatch.runtime.workers", "{thread}", "Worker threads of the runtime.");
    /// `scalewatch.runtime.tasks`.
    RUNTIME_TASKS = gauge("scalewatch.runtime.tasks", "{task}", "Alive tasks in the runtime.");
    /// `scalewatch.runtime.global_queue.depth`.
    RUNTIME_GLOBAL_QUEUE_DEPTH = gauge("scalewatch.runtime.global_queue.depth", "{task}", "Tasks waiting in the runtime's injection queue.");
    /// `scalewatch.runtime.schedule.delay` (only where tokio exposes it).
    RUNTIME_SCHEDULE_DELAY = histogram("scalewatch.runtime.schedule.delay", "s", SCHEDULE_DELAY_BUCKETS, "Time a task was runnable before it was polled.");
}

/// Attribute keys of the runtime signals: the tier's.
pub mod attr {
    pub use super::super::tier::attr::{TIER_KIND, TIER_NAME};
}
