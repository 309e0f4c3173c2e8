//! [`RuntimeTier`]: a tokio runtime's saturation, sampled at collection time.

use crate::catalog;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use scalewatch_core::catalog::attr;
use scalewatch_core::TierKind;
use std::fmt;
use std::sync::{Arc, Mutex};
use tokio::runtime::{Handle, RuntimeMetrics};

/// A [`RuntimeTier`] could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeTierError {
    /// The name was empty.
    #[error("runtime tier name is empty: give it a short static name such as \"main\"")]
    EmptyName,
}

/// A tokio runtime measured as a tier (`scalewatch.tier.kind` = `runtime`):
/// `scalewatch.runtime.utilization`, `.workers`, `.tasks` and `.global_queue.depth`, read
/// from the runtime's own metrics when the exporter collects. Nothing runs on the
/// runtime and nothing is added to its hot path.
///
/// The instruments report while this value (or a clone) is alive; drop it to stop.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_runtime::RuntimeTier;
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), scalewatch_runtime::RuntimeTierError> {
/// let meter = opentelemetry::global::meter_provider().meter("my-service");
/// let runtime = RuntimeTier::builder(tokio::runtime::Handle::current())
///     .name("main")
///     .build(&meter)?;
/// assert_eq!(runtime.workers(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "the runtime's instruments report only while the RuntimeTier is alive"]
pub struct RuntimeTier {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    metrics: RuntimeMetrics,
    /// The previous busy sample: the utilization window runs from it to now.
    last: Mutex<BusySample>,
    #[cfg(all(tokio_unstable, feature = "schedule-latency"))]
    schedule: Option<crate::schedule::ScheduleDelay>,
}

impl fmt::Debug for RuntimeTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeTier")
            .field("name", &self.inner.name)
            .field("workers", &self.inner.metrics.num_workers())
            .finish_non_exhaustive()
    }
}

/// Configures a [`RuntimeTier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RuntimeTierBuilder {
    handle: Handle,
    name: &'static str,
}

impl RuntimeTierBuilder {
    /// The tier's name (`scalewatch.tier.name`); defaults to `main`.
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Validates the configuration and registers the runtime's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<RuntimeTier, RuntimeTierError> {
        if self.name.is_empty() {
            return Err(RuntimeTierError::EmptyName);
        }
        let metrics = self.handle.metrics();
        let attrs = [
            KeyValue::new(attr::TIER_NAME, self.name),
            KeyValue::new(attr::TIER_KIND, TierKind::Runtime.as_str()),
        ];
        let inner = Arc::new(Inner {
            name: self.name,
            last: Mutex::new(BusySample::read(&metrics)),
            #[cfg(all(tokio_unstable, feature = "schedule-latency"))]
            schedule: crate::schedule::ScheduleDelay::new(meter, &metrics, &attrs),
            metrics,
        });
        register(meter, &inner, &attrs);
        Ok(RuntimeTier { inner })
    }
}

impl RuntimeTier {
    /// Starts configuring the tier of the runtime `handle` belongs to.
    pub fn builder(handle: Handle) -> RuntimeTierBuilder {
        RuntimeTierBuilder {
            handle,
            name: "main",
        }
    }

    /// The tier's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Worker threads of the runtime.
    pub fn workers(&self) -> usize {
        self.inner.metrics.num_workers()
    }

    /// Alive tasks now.
    pub fn tasks(&self) -> usize {
        self.inner.metrics.num_alive_tasks()
    }

    /// Tasks in the injection queue now.
    pub fn global_queue_depth(&self) -> usize {
        self.inner.metrics.global_queue_depth()
    }
}

/// Cumulative busy time of all workers at one instant.
#[derive(Debug, Clone, Copy)]
struct BusySample {
    at: u64,
    busy_nanos: u128,
}

impl BusySample {
    fn read(metrics: &RuntimeMetrics) -> Self {
        Self {
            at: scalewatch_core::clock::now_nanos(),
            busy_nanos: total_busy_nanos(metrics),
        }
    }
}

#[cfg(target_has_atomic = "64")]
fn total_busy_nanos(metrics: &RuntimeMetrics) -> u128 {
    (0..metrics.num_workers())
        .map(|w| metrics.worker_total_busy_duration(w).as_nanos())
        .sum()
}

#[cfg(not(target_has_atomic = "64"))]
fn total_busy_nanos(_metrics: &RuntimeMetrics) -> u128 {
    0
}

impl Inner {
    /// Closes the utilization window at now: busy time gained over workers × elapsed.
    ///
    /// Workers publish their busy time in batches (when they park, and every few dozen
    /// polls), so a window can hold a little busy time from before it; the ratio is capped
    /// at 1. `None` when no time has passed.
    fn utilization(&self) -> Option<f64> {
        let now = BusySample::read(&self.metrics);
        let prev = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *last, now)
        };
        let elapsed = now.at.checked_sub(prev.at).filter(|d| *d > 0)?;
        let workers = self.metrics.num_workers().max(1);
        let busy = now.busy_nanos.saturating_sub(prev.busy_nanos) as f64;
        Some((busy / (workers as f64 * elapsed as f64)).clamp(0.0, 1.0))
    }
}

/// Observable gauges read the runtime through a weak reference: a dropped tier stops
/// reporting.
fn register(meter: &Meter, inner: &Arc<Inner>, attrs: &[KeyValue; 2]) {
    catalog::RUNTIME_UTILIZATION.f64_observable_gauge_of(meter, inner, attrs, |rt| {
        // The schedule-delay histogram is brought up to date once per collection, here.
        #[cfg(all(tokio_unstable, feature = "schedule-latency"))]
        if let Some(schedule) = &rt.schedule {
            schedule.collect(&rt.metrics);
        }
        rt.utilization()
    });
    catalog::RUNTIME_WORKERS
        .f64_observable_gauge_of(meter, inner, attrs, |rt| rt.metrics.num_workers() as f64);
    catalog::RUNTIME_TASKS.f64_observable_gauge_of(meter, inner, attrs, |rt| {
        rt.metrics.num_alive_tasks() as f64
    });
    catalog::RUNTIME_GLOBAL_QUEUE_DEPTH.f64_observable_gauge_of(meter, inner, attrs, |rt| {
        rt.metrics.global_queue_depth() as f64
    });
}

impl scalewatch_core::resource::Saturable for RuntimeTier {
    /// The runtime, for `CapacityModel::register`: its workers' busy ratio over windows
    /// of its own, and the tasks waiting in its global queue per worker.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        let inner = self.inner.clone();
        let last = Mutex::new(BusySample::read(&inner.metrics));
        scalewatch_core::resource::ResourceSource {
            kind: scalewatch_core::resource::ResourceKind::Runtime,
            name: inner.name.into(),
            read: Arc::new(move || {
                let now = BusySample::read(&inner.metrics);
                let prev =
                    std::mem::replace(&mut *last.lock().unwrap_or_else(|p| p.into_inner()), now);
                let elapsed = now.at.checked_sub(prev.at).filter(|d| *d > 0)?;
                let workers = inner.metrics.num_workers().max(1) as f64;
                let busy = now.busy_nanos.saturating_sub(prev.busy_nanos) as f64;
                Some(scalewatch_core::resource::Reading {
                    utilization: (busy / (workers * elapsed as f64)).clamp(0.0, 1.0),
                    waiting: inner.metrics.global_queue_depth() as f64 / workers,
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_is_a_ratio_of_busy_time() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let meter = opentelemetry::global::meter_provider().meter("test");
        let tier = RuntimeTier::builder(rt.handle().clone())
            .build(&meter)
            .unwrap();
        assert_eq!(tier.workers(), 2);
        assert_eq!(tier.name(), "main");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let idle = tier.inner.utilization().unwrap();
        assert!((0.0..=0.2).contains(&idle), "{idle}");
        let err = RuntimeTier::builder(rt.handle().clone())
            .name("")
            .build(&meter)
            .unwrap_err();
        assert_eq!(err, RuntimeTierError::EmptyName);
    }
}
