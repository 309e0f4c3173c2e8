//! The signals this crate adds to the catalog: the async runtime's saturation and
//! background jobs. Names, units and meanings are those of the contract (SIGNALS.md,
//! "Runtime and jobs"); no metric name is spelled anywhere else in this crate.
//!
//! Attributes: runtime signals carry `scalewatch.tier.name` (the name given to
//! [`RuntimeTier`](crate::RuntimeTier)) and `scalewatch.tier.kind` = `runtime`; job signals
//! carry [`attr::JOB_NAME`].

use scalewatch_core::catalog::{InstrumentKind, Signal};

/// Job duration buckets, in seconds: the semconv duration buckets
/// ([`DURATION_BUCKETS`](scalewatch_core::catalog::DURATION_BUCKETS), up to 10 s), then 30 s to a day, because jobs are measured in
/// minutes and hours and would all fall in the overflow bucket otherwise.
pub const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 86_400.0,
];

/// Schedule-delay buckets, in seconds: from 1 µs (as for queue waits), then the semconv
/// duration buckets. Only used with `--cfg tokio_unstable` and feature `schedule-latency`.
pub const SCHEDULE_DELAY_BUCKETS: &[f64] = scalewatch_core::catalog::WAIT_BUCKETS;

/// `scalewatch.runtime.utilization`.
pub const RUNTIME_UTILIZATION: Signal = Signal::new(
    "scalewatch.runtime.utilization",
    InstrumentKind::Gauge,
    "1",
    "Tokio workers' busy ratio over the interval: busy time / (workers x elapsed).",
);
/// `scalewatch.runtime.workers`.
pub const RUNTIME_WORKERS: Signal = Signal::new(
    "scalewatch.runtime.workers",
    InstrumentKind::Gauge,
    "{thread}",
    "Worker threads of the runtime.",
);
/// `scalewatch.runtime.tasks`.
pub const RUNTIME_TASKS: Signal = Signal::new(
    "scalewatch.runtime.tasks",
    InstrumentKind::Gauge,
    "{task}",
    "Alive tasks in the runtime.",
);
/// `scalewatch.runtime.global_queue.depth`.
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: Signal = Signal::new(
    "scalewatch.runtime.global_queue.depth",
    InstrumentKind::Gauge,
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
/// `scalewatch.job.duration`.
pub const JOB_DURATION: Signal = Signal::histogram(
    "scalewatch.job.duration",
    "s",
    JOB_BUCKETS,
    "Duration of a job run, whatever its outcome.",
);
/// `scalewatch.job.window.utilization`.
pub const JOB_WINDOW_UTILIZATION: Signal = Signal::new(
    "scalewatch.job.window.utilization",
    InstrumentKind::Gauge,
    "1",
    "The last run's duration divided by its allowed window.",
);

/// Every signal this crate defines, in catalog order.
pub const ALL: &[Signal] = &[
    RUNTIME_UTILIZATION,
    RUNTIME_WORKERS,
    RUNTIME_TASKS,
    RUNTIME_GLOBAL_QUEUE_DEPTH,
    RUNTIME_SCHEDULE_DELAY,
    JOB_DURATION,
    JOB_WINDOW_UTILIZATION,
];

/// Attribute keys this crate adds.
pub mod attr {
    /// `scalewatch.job.name`
    pub const JOB_NAME: &str = "scalewatch.job.name";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.runtime.", "scalewatch.job."]).unwrap();
    }
}
