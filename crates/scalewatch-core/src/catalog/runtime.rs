//! Runtime signals (`scalewatch.runtime.*`): the async runtime's saturation, recorded by
//! `scalewatch-runtime`.
//!
//! They carry [`tier::attr::TIER_NAME`](super::tier::attr::TIER_NAME) (the name given to
//! the runtime tier) and [`tier::attr::TIER_KIND`](super::tier::attr::TIER_KIND) =
//! `runtime`.

use super::InstrumentKind::Gauge as G;
use super::{Signal, WAIT_BUCKETS};

/// Schedule-delay buckets, in seconds: from 1 µs (as for queue waits), then the semconv
/// duration buckets. Only used with `--cfg tokio_unstable` and feature `schedule-latency`.
pub const SCHEDULE_DELAY_BUCKETS: &[f64] = WAIT_BUCKETS;

/// `scalewatch.runtime.utilization`.
pub const RUNTIME_UTILIZATION: Signal = Signal::new(
    "scalewatch.runtime.utilization",
    G,
    "1",
    "Tokio workers' busy ratio over the interval: busy time / (workers x elapsed).",
);
/// `scalewatch.runtime.workers`.
pub const RUNTIME_WORKERS: Signal = Signal::new(
    "scalewatch.runtime.workers",
    G,
    "{thread}",
    "Worker threads of the runtime.",
);
/// `scalewatch.runtime.tasks`.
pub const RUNTIME_TASKS: Signal = Signal::new(
    "scalewatch.runtime.tasks",
    G,
    "{task}",
    "Alive tasks in the runtime.",
);
/// `scalewatch.runtime.global_queue.depth`.
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: Signal = Signal::new(
    "scalewatch.runtime.global_queue.depth",
    G,
    "{task}",
    "Tasks waiting in the runtime's injection queue.",
);
/// `scalewatch.runtime.schedule.delay` (only where tokio exposes it).
pub const RUNTIME_SCHEDULE_DELAY: Signal = Signal::histogram(
    "scalewatch.runtime.schedule.delay",
    "s",
    SCHEDULE_DELAY_BUCKETS,
    "Time a task was runnable before it was polled.",
);

/// Every runtime signal, in catalog order.
pub const ALL: &[Signal] = &[
    RUNTIME_UTILIZATION,
    RUNTIME_WORKERS,
    RUNTIME_TASKS,
    RUNTIME_GLOBAL_QUEUE_DEPTH,
    RUNTIME_SCHEDULE_DELAY,
];

/// Attribute keys of the runtime signals: the tier's.
pub mod attr {
    pub use super::super::tier::attr::{TIER_KIND, TIER_NAME};
}
