//! `scalewatch.runtime.schedule.delay` from tokio's schedule-latency histogram, compiled
//! only with `--cfg tokio_unstable` and feature `schedule-latency` (tokio exposes it nowhere
//! else).
//!
//! tokio keeps per-worker bucket counts; at each collection the new counts of every bucket
//! are recorded into the OpenTelemetry histogram at the bucket's midpoint. At most
//! [`MAX_SAMPLES`] values are recorded per collection: beyond that every bucket is scaled
//! down by the same factor, so the distribution keeps its shape while its count becomes a
//! sample (documented in the crate docs). Recording happens in the collection callback,
//! off the application's path; the values show up in the next export at the latest.

use crate::catalog;
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use std::sync::Mutex;
use tokio::runtime::RuntimeMetrics;

/// The most values recorded per collection.
pub(crate) const MAX_SAMPLES: u64 = 10_000;

pub(crate) struct ScheduleDelay {
    histogram: BoundHistogram<f64>,
    /// Each bucket's representative value, in seconds.
    values: Vec<f64>,
    /// Each bucket's count (all workers) at the previous collection.
    last: Mutex<Vec<u64>>,
}

impl ScheduleDelay {
    /// `None` when the runtime was built without the schedule-latency histogram.
    pub(crate) fn new(meter: &Meter, metrics: &RuntimeMetrics, attrs: &[KeyValue]) -> Option<Self> {
        if !metrics.schedule_latency_histogram_enabled() {
            return None;
        }
        let buckets = metrics.schedule_latency_histogram_num_buckets();
        let values = (0..buckets)
            .map(|b| {
                let r = metrics.schedule_latency_histogram_bucket_range(b);
                // tokio ends its last bucket at u64::MAX nanoseconds: open-ended.
                if r.end >= std::time::Duration::from_nanos(u64::MAX) || r.end <= r.start {
                    r.start.as_secs_f64()
                } else {
                    (r.start.as_secs_f64() + r.end.as_secs_f64()) / 2.0
                }
            })
            .collect();
        let delay = Self {
            histogram: catalog::RUNTIME_SCHEDULE_DELAY
                .f64_histogram(meter)
                .bind(attrs),
            values,
            last: Mutex::new(counts(metrics, buckets)),
        };
        Some(delay)
    }

    /// Records the polls made since the previous collection.
    pub(crate) fn collect(&self, metrics: &RuntimeMetrics) {
        let now = counts(metrics, self.values.len());
        let deltas: Vec<u64> = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let deltas = now
                .iter()
                .zip(last.iter())
                .map(|(n, l)| n.saturating_sub(*l))
                .collect();
            *last = now;
            deltas
        };
        let total: u64 = deltas.iter().sum();
        for (delta, value) in deltas.into_iter().zip(&self.values) {
            let n = if total > MAX_SAMPLES {
                (u128::from(delta) * u128::from(MAX_SAMPLES) / u128::from(total)) as u64
            } else {
                delta
            };
            for _ in 0..n {
                self.histogram.record(*value);
            }
        }
    }
}

fn counts(metrics: &RuntimeMetrics, buckets: usize) -> Vec<u64> {
    (0..buckets)
        .map(|b| {
            (0..metrics.num_workers())
                .map(|w| metrics.schedule_latency_histogram_bucket_count(w, b))
                .sum()
        })
        .collect()
}
