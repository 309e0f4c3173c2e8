//! The tier model: a named unit of capacity (a server, a client, a pool, a queue, a job,
//! the runtime, or any custom work) whose saturation scalewatch measures.

use crate::catalog::{self, attr};
use crate::clock::now_nanos;
use crate::stats::{Cursor, FlightStats, OccupancyGauges, SharedCursor, Started, Window};
use opentelemetry::metrics::{BoundCounter, BoundHistogram, Meter};
use opentelemetry::KeyValue;
use std::fmt;
use std::sync::Arc;

mod instrument;
pub use instrument::Instrumented;

/// What kind of resource a tier is; exported as `scalewatch.tier.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierKind {
    /// Serves requests (an HTTP or gRPC server).
    Server,
    /// Calls a dependency (an HTTP or gRPC client).
    Client,
    /// Hands out a bounded set of resources (connections, workers).
    Pool,
    /// Buffers work between producers and consumers.
    Queue,
    /// Runs in the background within a window.
    Job,
    /// The async runtime itself.
    Runtime,
    /// Anything else the application names.
    Custom,
}

impl TierKind {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            TierKind::Server => "server",
            TierKind::Client => "client",
            TierKind::Pool => "pool",
            TierKind::Queue => "queue",
            TierKind::Job => "job",
            TierKind::Runtime => "runtime",
            TierKind::Custom => "custom",
        }
    }
}

impl fmt::Display for TierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why admission refused work; exported as `scalewatch.rejection.reason`.
///
/// It is also the error of work a tier refused ([`Tier::try_instrument`],
/// [`Tier::try_run`]): its message says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// The tier was full and its queue too (load shedding).
    Overloaded,
    /// The work waited in the queue longer than allowed.
    Timeout,
}

impl RejectionReason {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectionReason::Overloaded => "overloaded",
            RejectionReason::Timeout => "timeout",
        }
    }
}

impl fmt::Display for RejectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectionReason::Overloaded => {
                "refused (overloaded): every permit of the tier was taken and its queue was \
                 full; raise the tier's limit or its `max_queued`, or send less work"
            }
            RejectionReason::Timeout => {
                "refused (timeout): the work waited longer than the tier's queue timeout for a \
                 permit; raise the queue timeout or the limit, or send less work"
            }
        })
    }
}

impl std::error::Error for RejectionReason {}

/// A tier's configuration was invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TierError {
    /// The name was empty.
    #[error("tier name is empty: give the tier a short static name such as \"api\"")]
    EmptyName,
    /// A limit of zero would admit nothing.
    #[error("tier `{0}` has a limit of 0: use a positive limit, or none for an unbounded tier")]
    ZeroLimit(&'static str),
    /// Admission was asked for without a limit to admit against (feature `tokio`).
    #[error(
        "tier `{0}` enforces its limit but has none: set `limit(n)` or drop `enforce_limit()`"
    )]
    EnforceWithoutLimit(&'static str),
    /// The limit is larger than the admission semaphore can hold (feature `tokio`).
    #[error("tier `{0}` has a limit of {1}, too large to enforce: use at most 2^61 - 1")]
    LimitTooLarge(&'static str, u64),
    /// A queue bound was given for a tier that does not enforce its limit (feature `tokio`).
    #[error(
        "tier `{0}` has `max_queued` but no gate to queue for: add `enforce_limit()` (with a \
         `limit(n)`) or drop `max_queued`"
    )]
    QueueWithoutEnforce(&'static str),
}

/// A measured tier. Cheap to clone; all clones share the same statistics.
///
/// Work enters through [`Tier::enter`] (or a middleware that owns the tier) and leaves when
/// the returned guard drops, so cancellation and panics keep the gauges exact.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_core::{Tier, TierKind};
///
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let db = Tier::builder("database", TierKind::Custom).limit(16).build(&meter)?;
/// {
///     let _work = db.enter();
///     assert_eq!(db.in_flight(), 1);
/// }
/// assert_eq!(db.in_flight(), 0);
/// # Ok::<(), scalewatch_core::TierError>(())
/// ```
#[derive(Clone)]
pub struct Tier {
    inner: Arc<TierInner>,
}

struct TierInner {
    name: &'static str,
    /// Built with [`TierBuilder::enabled`] `false`: unadmitted work passes straight through.
    enabled: bool,
    kind: TierKind,
    limit: Option<u64>,
    stats: FlightStats,
    queue_time: BoundHistogram<f64>,
    rejected_overloaded: BoundCounter<u64>,
    rejected_timeout: BoundCounter<u64>,
    /// The exporter's position for the utilization gauge.
    export_cursor: SharedCursor,
    /// Admission in front of [`Tier::instrument`] and [`Tier::run`], when enforced.
    #[cfg(feature = "tokio")]
    admission: Option<instrument::Gate>,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.kind)
            .field("limit", &self.inner.limit)
            .field("in_flight", &self.inner.stats.in_flight())
            .finish()
    }
}

/// Builds a [`Tier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TierBuilder {
    name: &'static str,
    kind: TierKind,
    limit: Option<u64>,
    enabled: bool,
    #[cfg(feature = "tokio")]
    enforce: bool,
    #[cfg(feature = "tokio")]
    max_queued: Option<usize>,
}

impl TierBuilder {
    /// How many work items may wait for an enforced tier's admission per unit of its limit
    /// when `max_queued` is not set: a tier with a limit of 16
    /// queues at most 64. Past a few service times of waiting, work is usually better
    /// refused than served late.
    pub const DEFAULT_QUEUE_PER_PERMIT: usize = 4;

    /// Whether to measure at all (default `true`). Built with `false`, the tier exports
    /// nothing and work that needs no admission passes straight through, uncounted (an
    /// enforced limit still gates). Pass `telemetry.is_enabled()` so that
    /// `OTEL_SDK_DISABLED=true` costs next to nothing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// The tier's capacity (concurrent work items); utilization is measured against it.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets or clears the capacity.
    pub fn maybe_limit(mut self, limit: Option<u64>) -> Self {
        self.limit = limit;
        self
    }

    /// Makes the limit a gate (feature `tokio`): [`Tier::instrument`] and [`Tier::run`]
    /// admit at most `limit` work items at once through a tokio semaphore; the rest wait,
    /// counted in `scalewatch.tier.queued`, and their wait is recorded as
    /// `scalewatch.tier.queue.time`.
    ///
    /// The queue is bounded ([`max_queued`](TierBuilder::max_queued), by default
    /// [`DEFAULT_QUEUE_PER_PERMIT`](TierBuilder::DEFAULT_QUEUE_PER_PERMIT) × `limit`): work
    /// entering through [`Tier::try_instrument`] or [`Tier::try_run`] that finds it full is
    /// refused with [`RejectionReason::Overloaded`] and counted in
    /// `scalewatch.tier.rejections`. [`Tier::instrument`] and [`Tier::run`] cannot refuse
    /// (their output is the work's own): they wait however long the queue, so use the
    /// `try_` forms wherever the amount of waiting work is not already bounded upstream.
    ///
    /// Without it the limit is only the capacity utilization is measured against: right
    /// for a resource that already enforces its own limit (a connection pool), where a
    /// second gate would only add a second queue.
    #[cfg(feature = "tokio")]
    pub fn enforce_limit(mut self) -> Self {
        self.enforce = true;
        self
    }

    /// Lets at most `max` work items wait for an enforced tier's admission (feature
    /// `tokio`); default [`DEFAULT_QUEUE_PER_PERMIT`](TierBuilder::DEFAULT_QUEUE_PER_PERMIT)
    /// × `limit`. `0` refuses whatever finds every permit taken (load shedding);
    /// `usize::MAX` lifts the bound. Needs [`enforce_limit`](TierBuilder::enforce_limit).
    #[cfg(feature = "tokio")]
    pub fn max_queued(mut self, max: usize) -> Self {
        self.max_queued = Some(max);
        self
    }

    /// Validates the configuration and registers the tier's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<Tier, TierError> {
        if self.name.is_empty() {
            return Err(TierError::EmptyName);
        }
        if self.limit == Some(0) {
            return Err(TierError::ZeroLimit(self.name));
        }
        #[cfg(feature = "tokio")]
        let admission = match (self.enforce, self.limit) {
            (false, _) if self.max_queued.is_some() => {
                return Err(TierError::QueueWithoutEnforce(self.name))
            }
            (false, _) => None,
            (true, None) => return Err(TierError::EnforceWithoutLimit(self.name)),
            (true, Some(limit)) => match usize::try_from(limit) {
                Ok(permits) if permits <= tokio::sync::Semaphore::MAX_PERMITS => {
                    let max_queued = self.max_queued.unwrap_or_else(|| {
                        permits.saturating_mul(TierBuilder::DEFAULT_QUEUE_PER_PERMIT)
                    });
                    Some(instrument::Gate::new(permits, max_queued))
                }
                _ => return Err(TierError::LimitTooLarge(self.name, limit)),
            },
        };
        // Off: the instruments record into nothing, and no observer is kept.
        let meter = &crate::meter_when(self.enabled, meter);
        let attrs = [
            KeyValue::new(attr::TIER_NAME, self.name),
            KeyValue::new(attr::TIER_KIND, self.kind.as_str()),
        ];
        let rejections = catalog::TIER_REJECTIONS.u64_counter(meter);
        let with_reason = |reason: RejectionReason| {
            let mut a = attrs.to_vec();
            a.push(KeyValue::new(attr::REJECTION_REASON, reason.as_str()));
            rejections.bind(&a)
        };
        let stats = FlightStats::new();
        // The first export closes a window that starts now, at the tier's creation.
        let export_cursor = SharedCursor::starting_now(&stats);
        let inner = Arc::new(TierInner {
            name: self.name,
            enabled: self.enabled,
            kind: self.kind,
            limit: self.limit,
            stats,
            queue_time: catalog::TIER_QUEUE_TIME.f64_histogram(meter).bind(&attrs),
            rejected_overloaded: with_reason(RejectionReason::Overloaded),
            rejected_timeout: with_reason(RejectionReason::Timeout),
            export_cursor,
            #[cfg(feature = "tokio")]
            admission,
        });
        let limit = inner.limit.map(|l| l as f64);
        GAUGES.register(meter, &inner, &attrs, limit, |t| {
            (&t.stats, &t.export_cursor)
        });
        Ok(Tier { inner })
    }
}

/// A tier's gauges: `scalewatch.tier.concurrency`, `.queued`, and with a limit `.limit` and
/// `.utilization`.
const GAUGES: OccupancyGauges = OccupancyGauges {
    in_flight: catalog::TIER_CONCURRENCY,
    queued: catalog::TIER_QUEUED,
    capacity: catalog::TIER_LIMIT,
    utilization: catalog::TIER_UTILIZATION,
};

/// Work in flight in a [`Tier`]; leaving it (drop) records the completion.
#[must_use = "the work is counted as in flight until this guard drops"]
#[derive(Debug)]
pub struct InFlight {
    /// `None` for a tier that is not [enabled](TierBuilder::enabled): nothing to record.
    tier: Option<Tier>,
    started: Started,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(tier) = &self.tier {
            tier.inner.stats.finish(self.started, now_nanos());
        }
    }
}

impl InFlight {
    /// When the work started (clock nanoseconds).
    pub fn started_at(&self) -> u64 {
        self.started.at
    }
}

impl Tier {
    /// Starts building a tier named `name` (static, low-cardinality) of `kind`.
    pub fn builder(name: &'static str, kind: TierKind) -> TierBuilder {
        TierBuilder {
            name,
            kind,
            limit: None,
            enabled: true,
            #[cfg(feature = "tokio")]
            enforce: false,
            #[cfg(feature = "tokio")]
            max_queued: None,
        }
    }

    /// Whether the tier measures ([`TierBuilder::enabled`]).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The tier's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The tier's kind.
    pub fn kind(&self) -> TierKind {
        self.inner.kind
    }

    /// The tier's capacity, when one was configured.
    pub fn limit(&self) -> Option<u64> {
        self.inner.limit
    }

    /// The raw statistics, for scalewatch's own middleware, which manages its own guards.
    /// Hidden: its type lives in the internal `stats` module, not covered by semver.
    #[doc(hidden)]
    pub fn stats(&self) -> &FlightStats {
        &self.inner.stats
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> i64 {
        self.inner.stats.in_flight()
    }

    /// Work waiting for admission now.
    pub fn queued(&self) -> i64 {
        self.inner.stats.queued()
    }

    /// Marks one work item as started now; it completes when the guard drops.
    #[inline]
    pub fn enter(&self) -> InFlight {
        if !self.inner.enabled {
            return InFlight {
                tier: None,
                started: Started { at: 0 },
            };
        }
        self.enter_at(now_nanos())
    }

    /// Like [`Tier::enter`] with a clock reading the caller already has.
    pub fn enter_at(&self, now: u64) -> InFlight {
        if !self.inner.enabled {
            return InFlight {
                tier: None,
                started: Started { at: now },
            };
        }
        InFlight {
            tier: Some(self.clone()),
            started: self.inner.stats.start(now),
        }
    }

    /// Counts a work item as in flight from `now`, when the tier is enabled; the caller
    /// ends it with [`Self::finish`], as [`InFlight`] does.
    #[inline]
    pub(crate) fn start_at(&self, now: u64) -> Option<Started> {
        self.inner.enabled.then(|| self.inner.stats.start(now))
    }

    /// Ends, now, a work item begun by [`Self::start_at`].
    #[inline]
    pub(crate) fn finish(&self, started: Option<Started>) {
        if let Some(started) = started {
            self.inner.stats.finish(started, now_nanos());
        }
    }

    /// Records how long a work item waited for admission, in seconds.
    #[inline]
    pub fn record_queue_time(&self, seconds: f64) {
        self.inner.queue_time.record(seconds);
    }

    /// Counts one refused work item.
    #[inline]
    pub fn record_rejection(&self, reason: RejectionReason) {
        match reason {
            RejectionReason::Overloaded => self.inner.rejected_overloaded.add(1),
            RejectionReason::Timeout => self.inner.rejected_timeout.add(1),
        }
    }

    /// A new independent cursor over this tier's history, positioned now, for consumers
    /// such as the capacity model that close their own windows.
    pub fn cursor(&self) -> Cursor {
        Cursor::starting_at(self.inner.stats.totals(now_nanos()))
    }

    /// Closes `cursor`'s window now.
    pub fn advance(&self, cursor: &mut Cursor) -> Option<Window> {
        cursor.advance(self.inner.stats.totals(now_nanos()))
    }
}
