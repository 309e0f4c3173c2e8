//! [`LockMetrics`]: the handle every instrumented lock records through.

use crate::catalog::{self, attr};
use crate::stats::{Config, LockCounts, LockMode, LockStats, Occupancy};
use opentelemetry::metrics::{Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter};
use opentelemetry::KeyValue;
use scalewatch_core::resource::{Reading, ResourceKind, ResourceSource};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The default cap on hold-time sampling: a thread times at most one hold in 1024. A timed
/// hold costs two clock reads and a histogram record (tens of nanoseconds). Threads time
/// holds by time, not count: at most one every 64 µs each, and every hold when they take
/// the lock less often than that, so this cap only matters for threads taking a lock
/// millions of times a second, where it keeps the cost well under 1 ns per acquisition.
pub const DEFAULT_HOLD_SAMPLE_EVERY: u32 = 1024;
/// The default wait beyond which a tracing event is added to the current span.
pub const DEFAULT_SLOW_WAIT: Duration = Duration::from_millis(10);

/// A [`LockMetricsBuilder`] was given an invalid configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The slow-wait threshold does not fit in 584 years of nanoseconds.
    #[error("slow wait threshold {0:?} is too long: use at most a few seconds, or Duration::MAX to turn the event off")]
    SlowWaitTooLong(Duration),
}

type Names = Arc<Mutex<HashMap<&'static str, Arc<LockStats>>>>;

/// Where locks record: the instruments, resolved once from a [`Meter`], and the statistics
/// of every lock name. Cheap to clone; create one per meter and hand it to every lock.
///
/// Locks that share a name share their statistics: their acquisitions and waits add up,
/// and their utilization is the mean number of them held (for one lock, the fraction of
/// time it was held). Names are static and few, so their statistics live as long as the
/// meter provider.
///
/// Built with [`enabled(false)`](LockMetricsBuilder::enabled), its locks only lock: they
/// record and export nothing, and cost at most about a nanosecond more than the bare
/// primitive.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_sync::{LockMetrics, Mutex};
/// use std::time::Duration;
///
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let locks = LockMetrics::builder()
///     .hold_sample_every(64)
///     .slow_wait(Duration::from_millis(50))
///     .build(&meter)?;
/// let cache = Mutex::new("cache", Vec::<u32>::new(), &locks);
/// cache.lock().unwrap().push(1);
/// assert_eq!(locks.counts("cache").unwrap().exclusive_uncontended, 1);
/// # Ok::<(), scalewatch_sync::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct LockMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    wait: opentelemetry::metrics::Histogram<f64>,
    hold: opentelemetry::metrics::Histogram<f64>,
    names: Names,
    _observers: (
        ObservableCounter<u64>,
        ObservableUpDownCounter<i64>,
        ObservableGauge<f64>,
    ),
}

impl fmt::Debug for LockMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.inner.names.lock().map(|n| n.len()).unwrap_or(0);
        f.debug_struct("LockMetrics")
            .field("config", &self.inner.config)
            .field("names", &names)
            .finish()
    }
}

/// Builds a [`LockMetrics`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LockMetricsBuilder {
    enabled: bool,
    sample_every: u32,
    slow_wait: Duration,
}

impl Default for LockMetricsBuilder {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_every: DEFAULT_HOLD_SAMPLE_EVERY,
            slow_wait: DEFAULT_SLOW_WAIT,
        }
    }
}

impl LockMetricsBuilder {
    /// Whether to measure at all (default `true`). Built with `false`, the locks and
    /// semaphores recording into the [`LockMetrics`] are pass-throughs: they record nothing,
    /// export nothing (no instrument is registered on the meter), and their in-process
    /// readings stay at zero ([`LockMetrics::counts`] is all zeros, the readers of
    /// [`LockMetrics::utilization_source`] return `None`). Locking itself is unchanged.
    /// Pass `telemetry.is_enabled()` so that `OTEL_SDK_DISABLED=true` costs next to nothing.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{LockMetrics, Mutex};
    ///
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// let locks = LockMetrics::builder().enabled(false).build(&meter)?;
    /// let cache = Mutex::new("cache", Vec::<u32>::new(), &locks);
    /// cache.lock().unwrap().push(1);
    /// assert_eq!(locks.counts("cache").unwrap().exclusive_uncontended, 0);
    /// # Ok::<(), scalewatch_sync::ConfigError>(())
    /// ```
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Caps hold-time sampling at one acquisition in `n` per thread (rounded down to a
    /// power of two, at most 2^30). Each thread times at most one hold every 64 µs of its
    /// own acquisitions and every hold when it takes the lock less often than that; each
    /// timed hold counts for the holds it stands for, so utilization is exact at low rates
    /// and estimated from thousands of holds a second at high ones. The choice needs no
    /// clock read on the untimed path (a countdown per thread and lock, with random gaps so
    /// periodic patterns do not bias it). `1` times every hold, `0` none (then
    /// `scalewatch.lock.hold.duration` and `scalewatch.lock.utilization` stay empty).
    /// Default [`DEFAULT_HOLD_SAMPLE_EVERY`].
    pub fn hold_sample_every(mut self, n: u32) -> Self {
        self.sample_every = n;
        self
    }

    /// A wait at least this long adds a `slow lock wait` event, with the lock's name, mode
    /// and wait, to the current `tracing` span. Default [`DEFAULT_SLOW_WAIT`];
    /// `Duration::MAX` turns it off.
    pub fn slow_wait(mut self, threshold: Duration) -> Self {
        self.slow_wait = threshold;
        self
    }

    /// Validates the configuration and registers the lock instruments on `meter`.
    pub fn build(self, meter: &Meter) -> Result<LockMetrics, ConfigError> {
        let slow_wait_nanos = if self.slow_wait == Duration::MAX {
            u64::MAX
        } else {
            u64::try_from(self.slow_wait.as_nanos())
                .map_err(|_| ConfigError::SlowWaitTooLong(self.slow_wait))?
        };
        Ok(LockMetrics::with_config(
            Config {
                enabled: self.enabled,
                sample_every: self.sample_every,
                slow_wait_nanos,
            },
            meter,
        ))
    }
}

fn each(names: &Names, mut f: impl FnMut(&LockStats)) {
    let names = match names.lock() {
        Ok(n) => n,
        Err(poisoned) => poisoned.into_inner(),
    };
    for stats in names.values() {
        f(stats);
    }
}

const MODES: [LockMode; 2] = [LockMode::Exclusive, LockMode::Shared];

fn observe_acquisitions(meter: &Meter, names: Names) -> ObservableCounter<u64> {
    catalog::LOCK_ACQUISITIONS.u64_observable_counter(meter, move |o| {
        each(&names, |s| {
            for mode in MODES.into_iter().filter(|m| s.has(*m)) {
                for contended in [false, true] {
                    o.observe(
                        s.acquisitions(mode, contended),
                        &[
                            KeyValue::new(attr::LOCK_NAME, s.name()),
                            KeyValue::new(attr::LOCK_MODE, mode.as_str()),
                            KeyValue::new(attr::LOCK_CONTENDED, contended),
                        ],
                    );
                }
            }
        });
    })
}

fn observe_waiters(meter: &Meter, names: Names) -> ObservableUpDownCounter<i64> {
    catalog::LOCK_WAITERS.i64_observable_up_down_counter(meter, move |o| {
        each(&names, |s| {
            o.observe(s.waiters(), &[KeyValue::new(attr::LOCK_NAME, s.name())]);
        });
    })
}

fn observe_utilization(meter: &Meter, names: Names) -> ObservableGauge<f64> {
    catalog::LOCK_UTILIZATION.f64_observable_gauge(meter, move |o| {
        each(&names, |s| {
            if !s.has_utilization() {
                return;
            }
            if let Some(u) = s.utilization() {
                o.observe(u, &[KeyValue::new(attr::LOCK_NAME, s.name())]);
            }
        });
    })
}

/// The resource a capacity model ranks for the locks of one name: a reader of its own.
pub(crate) fn lock_resource(stats: &Arc<LockStats>) -> ResourceSource {
    let occupancy = occupancy_reader(stats.clone());
    ResourceSource {
        kind: ResourceKind::Lock,
        name: stats.name().into(),
        read: Arc::new(move || {
            occupancy().map(|o| Reading {
                utilization: o.utilization,
                waiting: o.waiting,
            })
        }),
    }
}

/// A reader with windows of its own over `stats`; `None` when measuring is off.
pub(crate) fn occupancy_reader(
    stats: Arc<LockStats>,
) -> impl Fn() -> Option<Occupancy> + Send + Sync + 'static {
    let window = Mutex::new(stats.utilization_window());
    move || {
        if !stats.enabled() {
            return None;
        }
        let mut window = match window.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        stats.occupancy_in(&mut window)
    }
}

impl LockMetrics {
    /// Starts configuring lock metrics.
    pub fn builder() -> LockMetricsBuilder {
        LockMetricsBuilder::default()
    }

    /// Lock metrics with the default configuration on `meter`.
    pub fn new(meter: &Meter) -> LockMetrics {
        LockMetrics::with_config(
            Config {
                enabled: true,
                sample_every: DEFAULT_HOLD_SAMPLE_EVERY,
                slow_wait_nanos: DEFAULT_SLOW_WAIT.as_nanos() as u64,
            },
            meter,
        )
    }

    fn with_config(config: Config, meter: &Meter) -> LockMetrics {
        // Off, the instruments go to a no-op meter: nothing is registered on `meter`, so
        // its readers see no `scalewatch.lock.*` series at all (not even zeros).
        let meter = &scalewatch_core::meter_when(config.enabled, meter);
        let names: Names = Arc::default();
        let observers = (
            observe_acquisitions(meter, names.clone()),
            observe_waiters(meter, names.clone()),
            observe_utilization(meter, names.clone()),
        );
        LockMetrics {
            inner: Arc::new(Inner {
                config,
                wait: catalog::LOCK_WAIT_DURATION.f64_histogram(meter),
                hold: catalog::LOCK_HOLD_DURATION.f64_histogram(meter),
                names,
                _observers: observers,
            }),
        }
    }

    /// The statistics of the locks named `name`, created on first use.
    pub(crate) fn stats(&self, name: &'static str, mode: LockMode) -> Arc<LockStats> {
        let mut names = match self.inner.names.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stats = names.entry(name).or_insert_with(|| {
            Arc::new(LockStats::new(
                name,
                self.inner.config,
                self.inner.wait.clone(),
                self.inner.hold.clone(),
            ))
        });
        stats.declare(mode);
        stats.clone()
    }

    /// What the locks named `name` have counted so far; `None` when no lock of that name
    /// was created through this handle, all zeros when the metrics were built with
    /// [`enabled(false)`](LockMetricsBuilder::enabled).
    pub fn counts(&self, name: &str) -> Option<LockCounts> {
        let names = match self.inner.names.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        names.get(name).map(|s| s.counts())
    }

    /// A utilization reader of the locks named `name`, for a consumer of its own (such as
    /// a capacity model's resource ranking): each call closes a window and returns the
    /// fraction of it the lock was held exclusively (for a semaphore: the share of its
    /// permits in use), from the timed holds like
    /// `scalewatch.lock.utilization` (the exporter keeps its own windows, so the two never
    /// disturb each other). `None` when no lock of that name was created through this
    /// handle; the reader itself yields `None` for a window shorter than a nanosecond, and
    /// always when the metrics were built with [`enabled(false)`](LockMetricsBuilder::enabled)
    /// (nothing is measured, and `0.0` would claim an idle lock).
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_sync::{LockMetrics, Mutex};
    ///
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// let locks = LockMetrics::new(&meter);
    /// let inventory = Mutex::new("inventory", 0u64, &locks);
    /// let utilization = locks.utilization_source("inventory").expect("a lock of that name");
    /// {
    ///     let _held = inventory.lock().unwrap();
    ///     std::thread::sleep(std::time::Duration::from_millis(20));
    /// }
    /// std::thread::sleep(std::time::Duration::from_millis(20));
    /// let held = utilization().expect("a window");
    /// assert!(held > 0.2 && held < 0.8, "{held}");
    /// # Ok::<(), scalewatch_sync::ConfigError>(())
    /// ```
    pub fn utilization_source(
        &self,
        name: &str,
    ) -> Option<impl Fn() -> Option<f64> + Send + Sync + 'static> {
        let occupancy = self.occupancy_source(name)?;
        Some(move || occupancy().map(|o| o.utilization))
    }

    /// Like [`utilization_source`](Self::utilization_source), with the mean number of
    /// waiters per unit of capacity in each window as well: a capacity model orders
    /// saturated resources by it.
    pub fn occupancy_source(
        &self,
        name: &str,
    ) -> Option<impl Fn() -> Option<Occupancy> + Send + Sync + 'static> {
        let stats = {
            let names = match self.inner.names.lock() {
                Ok(n) => n,
                Err(poisoned) => poisoned.into_inner(),
            };
            names.get(name)?.clone()
        };
        Some(occupancy_reader(stats))
    }

    /// Whether the locks of this handle measure at all; see [`LockMetricsBuilder::enabled`].
    pub fn is_enabled(&self) -> bool {
        self.inner.config.enabled
    }

    /// The cap on hold sampling: at most one acquisition in this many per thread is timed
    /// (0: none).
    pub fn hold_sample_every(&self) -> u32 {
        self.inner.config.sample_every
    }
}
