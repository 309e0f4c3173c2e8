//! [`Pool`]: a fixed set of permits handed out for a while (connections, worker slots),
//! measured like the semconv `db.client.connection.*` metrics (feature `tokio`).

use crate::catalog::{self, attr};
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::{FlightStats, OccupancyGauges, SharedCursor, Started};
use std::fmt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// A [`PoolBuilder`] was given an invalid configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// The name was empty.
    #[error("pool name is empty: give the pool a short static name such as \"postgres\"")]
    EmptyName,
    /// A limit of zero would hand out nothing.
    #[error("pool `{0}` has a limit of 0: use the number of connections or slots it has")]
    ZeroLimit(&'static str),
}

/// The pool was closed: no permit will be handed out.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("pool `{0}` is closed")]
pub struct PoolClosed(pub &'static str);

/// A pool of `limit` permits that records `scalewatch.pool.*` under a static name: the
/// wait for each permit, how long it was used, permits in use and requests pending now,
/// the limit, and usage over the export interval divided by the limit. Cheap to clone;
/// clones share the permits. Create one pool per name. Built with
/// [`enabled(false)`](PoolBuilder::enabled) it still hands out at most `limit` permits at a
/// time, and measures nothing.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_sync::Pool;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let db = Pool::builder("postgres", 8).build(&meter)?;
/// let conn = db.acquire().await?;
/// assert_eq!(db.in_use(), 1);
/// drop(conn);
/// assert_eq!(db.in_use(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    limit: u32,
    enabled: bool,
    permits: Arc<Semaphore>,
    stats: FlightStats,
    wait_time: BoundHistogram<f64>,
    use_time: BoundHistogram<f64>,
    export_cursor: SharedCursor,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("limit", &self.inner.limit)
            .field("enabled", &self.inner.enabled)
            .field("in_use", &self.in_use())
            .field("pending", &self.pending())
            .finish()
    }
}

/// Builds a [`Pool`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PoolBuilder {
    name: &'static str,
    limit: u32,
    enabled: bool,
}

impl PoolBuilder {
    /// Whether to measure at all (default `true`). Built with `false`, the pool's permits
    /// are pass-throughs: they record nothing (no clock read, no count), export nothing
    /// (no instrument is registered on the meter), and their in-process readings stay at
    /// zero ([`Pool::in_use`] and [`Pool::pending`] are 0, the readers of
    /// [`Pool::utilization_source`] return `None`). The pool still hands out at most
    /// `limit` permits at a time. Pass `telemetry.is_enabled()` so that
    /// `OTEL_SDK_DISABLED=true` costs next to nothing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Validates the configuration and registers the pool's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<Pool, PoolError> {
        if self.name.is_empty() {
            return Err(PoolError::EmptyName);
        }
        if self.limit == 0 {
            return Err(PoolError::ZeroLimit(self.name));
        }
        // Off, the histograms go to a no-op meter and no observer is registered, so the
        // meter's readers see no `scalewatch.pool.*` series at all.
        let meter = &scalewatch_core::meter_when(self.enabled, meter);
        let attrs = [KeyValue::new(attr::POOL_NAME, self.name)];
        let stats = FlightStats::new();
        let export_cursor = SharedCursor::starting_now(&stats);
        let inner = Arc::new(Inner {
            name: self.name,
            limit: self.limit,
            enabled: self.enabled,
            permits: Arc::new(Semaphore::new(self.limit as usize)),
            stats,
            wait_time: catalog::POOL_WAIT_TIME.f64_histogram(meter).bind(&attrs),
            use_time: catalog::POOL_USE_TIME.f64_histogram(meter).bind(&attrs),
            export_cursor,
        });
        if self.enabled {
            let limit = Some(f64::from(self.limit));
            GAUGES.register(meter, &inner, &attrs, limit, |p| {
                (&p.stats, &p.export_cursor)
            });
        }
        Ok(Pool { inner })
    }
}

/// A pool's gauges: `scalewatch.pool.usage`, `.pending_requests`, `.limit` and
/// `.utilization`.
const GAUGES: OccupancyGauges = OccupancyGauges {
    in_flight: catalog::POOL_USAGE,
    queued: catalog::POOL_PENDING_REQUESTS,
    capacity: catalog::POOL_LIMIT,
    utilization: catalog::POOL_UTILIZATION,
};

/// A permit of a [`Pool`], in use until it drops.
#[must_use = "the permit goes back to the pool when this drops"]
pub struct PoolPermit {
    pool: Arc<Inner>,
    started: Started,
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for PoolPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolPermit")
            .field("pool", &self.pool.name)
            .field("since", &self.started.at)
            .finish()
    }
}

impl Drop for PoolPermit {
    fn drop(&mut self) {
        if !self.pool.enabled {
            return;
        }
        let now = now_nanos();
        self.pool.stats.finish(self.started, now);
        self.pool
            .use_time
            .record(seconds_between(self.started.at, now));
    }
}

/// A request waiting for a permit; leaves the pending count when dropped.
struct Pending<'a>(&'a FlightStats);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.dequeue();
    }
}

impl Pool {
    /// Starts building a pool named `name` (static, low-cardinality) of `limit` permits.
    pub fn builder(name: &'static str, limit: u32) -> PoolBuilder {
        PoolBuilder {
            name,
            limit,
            enabled: true,
        }
    }

    /// The clock now, when the pool measures; 0 (no clock read) when it does not.
    fn now(&self) -> u64 {
        if self.inner.enabled {
            now_nanos()
        } else {
            0
        }
    }

    fn hand_out(&self, permit: OwnedSemaphorePermit, asked: u64) -> PoolPermit {
        if !self.inner.enabled {
            return PoolPermit {
                pool: self.inner.clone(),
                started: Started { at: 0 },
                _permit: permit,
            };
        }
        let now = now_nanos();
        self.inner.wait_time.record(seconds_between(asked, now));
        PoolPermit {
            pool: self.inner.clone(),
            started: self.inner.stats.start(now),
            _permit: permit,
        }
    }

    /// Takes a permit, waiting (FIFO) while all are in use. Cancel-safe: a dropped wait
    /// leaves the pending count as it was.
    ///
    /// # Errors
    /// When the pool was [closed](Pool::close).
    pub async fn acquire(&self) -> Result<PoolPermit, PoolClosed> {
        let asked = self.now();
        let closed = PoolClosed(self.inner.name);
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(p) => return Ok(self.hand_out(p, asked)),
            Err(TryAcquireError::Closed) => return Err(closed),
            Err(TryAcquireError::NoPermits) => {}
        }
        let pending = self.inner.enabled.then(|| {
            self.inner.stats.enqueue();
            Pending(&self.inner.stats)
        });
        let permit = self.inner.permits.clone().acquire_owned().await;
        drop(pending);
        permit.map(|p| self.hand_out(p, asked)).map_err(|_| closed)
    }

    /// Takes a permit if one is free now (a wait of 0 is recorded).
    ///
    /// # Errors
    /// Tokio's [`TryAcquireError`]: closed, or none free.
    pub fn try_acquire(&self) -> Result<PoolPermit, TryAcquireError> {
        let asked = self.now();
        let p = self.inner.permits.clone().try_acquire_owned()?;
        Ok(self.hand_out(p, asked))
    }

    /// Closes the pool: waiters and later acquisitions fail with [`PoolClosed`].
    pub fn close(&self) {
        self.inner.permits.close();
    }

    /// The pool's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// A utilization reader for a consumer of its own (such as a capacity model's
    /// resource ranking): each call closes a window and returns the time-averaged share of
    /// the pool's members in use over it, like `scalewatch.pool.utilization` (the exporter
    /// keeps its own windows). `None` for a window shorter than a nanosecond, and always
    /// for a pool built with [`enabled(false)`](PoolBuilder::enabled) (nothing is
    /// measured, and `0.0` would claim an idle pool).
    pub fn utilization_source(&self) -> impl Fn() -> Option<f64> + Send + Sync + 'static {
        let inner = self.inner.clone();
        let cursor = SharedCursor::starting_now(&inner.stats);
        move || {
            if !inner.enabled {
                return None;
            }
            cursor.utilization(&inner.stats, f64::from(inner.limit))
        }
    }

    /// The number of permits.
    pub fn limit(&self) -> u32 {
        self.inner.limit
    }

    /// Whether the pool measures at all; see [`PoolBuilder::enabled`].
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Permits in use now (0 when the pool does not measure).
    pub fn in_use(&self) -> i64 {
        self.inner.stats.in_flight()
    }

    /// Requests waiting for a permit now (0 when the pool does not measure).
    pub fn pending(&self) -> i64 {
        self.inner.stats.queued()
    }
}

impl scalewatch_core::resource::Saturable for Pool {
    /// This pool, for `CapacityModel::register`: its members in use out of its limit, and
    /// its pending requests per member, with windows of its own.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        let inner = self.inner.clone();
        let utilization = self.utilization_source();
        scalewatch_core::resource::ResourceSource {
            kind: scalewatch_core::resource::ResourceKind::Pool,
            name: self.inner.name.into(),
            read: Arc::new(move || {
                Some(scalewatch_core::resource::Reading {
                    utilization: utilization()?,
                    // Pending now, per member: the queue behind a full pool.
                    waiting: inner.stats.queued().max(0) as f64 / f64::from(inner.limit),
                })
            }),
        }
    }
}
