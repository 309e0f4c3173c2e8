//! Job signals (`scalewatch.job.*`): background jobs, recorded by `scalewatch-runtime`,
//! and their attribute keys.

/// Job duration buckets, in seconds: the semconv duration buckets
/// ([`DURATION_BUCKETS`](super::DURATION_BUCKETS), up to 10 s), then 30 s to a day, because
/// jobs are measured in minutes and hours and would all fall in the overflow bucket
/// otherwise.
pub const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 86_400.0,
];

signals! {
    /// Every job signal, in catalog order.
    ALL;
    /// `scalewatch.job.duration`.
    JOB_DURATION = histogram("scalewatch.job.duration", "s", JOB_BUCKETS, "Duration of a job run, whatever its outcome.");
    /// `scalewatch.job.window.utilization`.
    JOB_WINDOW_UTILIZATION = gauge("scalewatch.job.window.utilization", "1", "The last run's duration divided by its allowed window.");
}

/// Attribute keys of the job signals.
pub mod attr {
    /// `scalewatch.job.name`
    pub const JOB_NAME: &str = "scalewatch.job.name";
}
