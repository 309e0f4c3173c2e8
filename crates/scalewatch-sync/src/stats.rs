//! Per-name lock statistics: thread-striped counters on the hot path, the hold-time busy
//! integral of the core's [`FlightStats`], and the bound histograms of the slow paths.

use crate::catalog::{self, attr};
use crate::sys::{self, AtomicI64, AtomicU64};
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::{BoundHistogram, Histogram};
use opentelemetry::KeyValue;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::{Cursor, FlightStats, Started};
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;

/// How a lock is held: exclusively (mutex, write lock) or shared (read lock, permit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// One holder at a time; counts towards `scalewatch.lock.utilization`.
    Exclusive = 0,
    /// Many holders at a time.
    Shared = 1,
}

impl LockMode {
    /// The `scalewatch.lock.mode` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            LockMode::Exclusive => catalog::MODE_EXCLUSIVE,
            LockMode::Shared => catalog::MODE_SHARED,
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

struct Cell {
    /// Acquisitions, indexed by `mode * 2 + contended`.
    acquired: [AtomicU64; 4],
    /// Exclusive acquisitions whose hold is timed (the sampled ones).
    sampled_exclusive: AtomicU64,
    /// Waiters now (may be negative in one stripe when a wait ends on another thread).
    waiting: AtomicI64,
    /// Σ start of the waits in progress (clock ns), wrapping.
    wait_start_sum: AtomicU64,
    /// Σ length of the ended waits (ns), acquired or cancelled, wrapping.
    waited: AtomicU64,
}

impl Cell {
    fn new() -> Self {
        Self {
            acquired: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
            sampled_exclusive: AtomicU64::new(0),
            waiting: AtomicI64::new(0),
            wait_start_sum: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }
}

/// How the statistics of a lock are configured; shared by every lock of a
/// [`crate::LockMetrics`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) sample_every: u32,
    pub(crate) slow_wait_nanos: u64,
}

/// The statistics of every lock that carries one name.
pub(crate) struct LockStats {
    name: &'static str,
    cells: Box<[CachePadded<Cell>]>,
    mask: usize,
    config: Config,
    modes: AtomicU8,
    /// Sampled exclusive holds; the busy integral behind utilization.
    holds: FlightStats,
    wait: Histogram<f64>,
    hold: Histogram<f64>,
    bound_wait: [OnceLock<BoundHistogram<f64>>; 2],
    bound_hold: [OnceLock<BoundHistogram<f64>>; 2],
    export: std::sync::Mutex<Export>,
}

impl fmt::Debug for LockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockStats")
            .field("name", &self.name)
            .field("waiters", &self.waiters())
            .finish_non_exhaustive()
    }
}

/// The exporter's position for the utilization gauge.
struct Export {
    cursor: Cursor,
    acquired: u64,
    sampled: u64,
    /// Exclusive acquisitions per sampled one, from the last window that had samples.
    scale: f64,
}

/// A hold in progress: its start when sampled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    started: Option<Started>,
}

/// Counts of one lock name at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockCounts {
    /// Exclusive acquisitions that did not wait.
    pub exclusive_uncontended: u64,
    /// Exclusive acquisitions that waited.
    pub exclusive_contended: u64,
    /// Shared acquisitions that did not wait.
    pub shared_uncontended: u64,
    /// Shared acquisitions that waited.
    pub shared_contended: u64,
    /// Threads or tasks waiting now.
    pub waiters: i64,
    /// Σ of every wait up to now (ended, cancelled and in progress): the integral of the
    /// waiter count over time, so `total_wait / elapsed` is the mean number of waiters.
    pub total_wait: Duration,
}

impl LockStats {
    pub(crate) fn new(
        name: &'static str,
        config: Config,
        wait: Histogram<f64>,
        hold: Histogram<f64>,
    ) -> Self {
        let n = sys::stripe_count();
        let holds = FlightStats::new();
        let cursor = Cursor::starting_at(holds.totals(now_nanos()));
        Self {
            name,
            cells: (0..n).map(|_| CachePadded::new(Cell::new())).collect(),
            mask: n - 1,
            config,
            modes: AtomicU8::new(0),
            holds,
            wait,
            hold,
            bound_wait: [OnceLock::new(), OnceLock::new()],
            bound_hold: [OnceLock::new(), OnceLock::new()],
            export: std::sync::Mutex::new(Export {
                cursor,
                acquired: 0,
                sampled: 0,
                scale: f64::from(config.sample_every.max(1)),
            }),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Declares that locks of this name are taken in `mode`, so its series are exported.
    pub(crate) fn declare(&self, mode: LockMode) {
        self.modes.fetch_or(mode.bit(), Relaxed);
    }

    pub(crate) fn has(&self, mode: LockMode) -> bool {
        self.modes.load(Relaxed) & mode.bit() != 0
    }

    fn attrs(&self, mode: LockMode) -> [KeyValue; 2] {
        [
            KeyValue::new(attr::LOCK_NAME, self.name),
            KeyValue::new(attr::LOCK_MODE, mode.as_str()),
        ]
    }

    fn wait_histogram(&self, mode: LockMode) -> &BoundHistogram<f64> {
        self.bound_wait[mode as usize].get_or_init(|| self.wait.bind(&self.attrs(mode)))
    }

    fn hold_histogram(&self, mode: LockMode) -> &BoundHistogram<f64> {
        self.bound_hold[mode as usize].get_or_init(|| self.hold.bind(&self.attrs(mode)))
    }

    /// Counts an acquisition that did not wait. No clock read unless the hold is sampled.
    #[inline]
    pub(crate) fn uncontended(&self, mode: LockMode) -> Hold {
        let (stripe, sampled) = sys::local(self.config.sample_every);
        let cell = &self.cells[stripe & self.mask];
        cell.acquired[mode as usize * 2].fetch_add(1, Relaxed);
        if sampled {
            self.start_hold(cell, mode, now_nanos())
        } else {
            Hold { started: None }
        }
    }

    #[cold]
    #[inline(never)]
    fn start_hold(&self, cell: &Cell, mode: LockMode, now: u64) -> Hold {
        let started = if mode == LockMode::Exclusive {
            cell.sampled_exclusive.fetch_add(1, Relaxed);
            self.holds.start(now)
        } else {
            Started { at: now }
        };
        Hold {
            started: Some(started),
        }
    }

    /// Ends a hold begun by [`Self::uncontended`] or [`Waiting::acquired`].
    #[inline]
    pub(crate) fn release(&self, hold: Hold, mode: LockMode) {
        if let Some(started) = hold.started {
            self.end_hold(started, mode);
        }
    }

    #[cold]
    #[inline(never)]
    fn end_hold(&self, started: Started, mode: LockMode) {
        let now = now_nanos();
        if mode == LockMode::Exclusive {
            self.holds.finish(started, now);
        }
        self.hold_histogram(mode)
            .record(seconds_between(started.at, now));
    }

    /// Starts a wait: the caller found the lock taken. The wait ends when the returned
    /// guard is [acquired](Waiting::acquired) or dropped (cancelled, timed out, closed).
    pub(crate) fn begin_wait(&self, mode: LockMode) -> Waiting<'_> {
        let now = now_nanos();
        let (stripe, _) = sys::local(0);
        let cell = &self.cells[stripe & self.mask];
        cell.waiting.fetch_add(1, Relaxed);
        cell.wait_start_sum.fetch_add(now, Relaxed);
        Waiting {
            stats: self,
            mode,
            started: now,
            done: false,
        }
    }

    fn end_wait(&self, started: u64, now: u64) -> usize {
        let (stripe, _) = sys::local(0);
        let cell = &self.cells[stripe & self.mask];
        cell.waiting.fetch_sub(1, Relaxed);
        cell.wait_start_sum.fetch_sub(started, Relaxed);
        cell.waited.fetch_add(now.saturating_sub(started), Relaxed);
        stripe
    }

    /// Waiters now, never negative (stripes are read one by one, so a wait that moved
    /// between threads can show as -1 for an instant).
    pub(crate) fn waiters(&self) -> i64 {
        self.cells
            .iter()
            .map(|c| c.waiting.load(Relaxed))
            .sum::<i64>()
            .max(0)
    }

    /// Acquisitions of `mode`, `contended` or not, so far.
    pub(crate) fn acquisitions(&self, mode: LockMode, contended: bool) -> u64 {
        let i = mode as usize * 2 + usize::from(contended);
        self.cells
            .iter()
            .fold(0u64, |acc, c| acc.wrapping_add(c.acquired[i].load(Relaxed)))
    }

    pub(crate) fn counts(&self) -> LockCounts {
        let now = now_nanos();
        let (mut waiting, mut start_sum, mut waited) = (0i64, 0u64, 0u64);
        for c in self.cells.iter() {
            waiting += c.waiting.load(Relaxed);
            start_sum = start_sum.wrapping_add(c.wait_start_sum.load(Relaxed));
            waited = waited.wrapping_add(c.waited.load(Relaxed));
        }
        let total = waited
            .wrapping_add((waiting as u64).wrapping_mul(now))
            .wrapping_sub(start_sum);
        LockCounts {
            exclusive_uncontended: self.acquisitions(LockMode::Exclusive, false),
            exclusive_contended: self.acquisitions(LockMode::Exclusive, true),
            shared_uncontended: self.acquisitions(LockMode::Shared, false),
            shared_contended: self.acquisitions(LockMode::Shared, true),
            waiters: waiting.max(0),
            // A sum read across stripes mid-update can be off by one in-flight start;
            // clamp the (rare, tiny) negative reading to zero.
            total_wait: Duration::from_nanos(if total > (1 << 63) { 0 } else { total }),
        }
    }

    /// Closes the utilization window at now: the fraction of it the lock was held
    /// exclusively, estimated from the sampled holds scaled by exclusive acquisitions per
    /// sampled one. `None` on the first call within a nanosecond.
    pub(crate) fn utilization(&self) -> Option<f64> {
        let acquired = self
            .acquisitions(LockMode::Exclusive, false)
            .wrapping_add(self.acquisitions(LockMode::Exclusive, true));
        let sampled = self.cells.iter().fold(0u64, |a, c| {
            a.wrapping_add(c.sampled_exclusive.load(Relaxed))
        });
        let totals = self.holds.totals(now_nanos());
        let mut e = match self.export.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = e.cursor.advance(totals)?;
        let (da, ds) = (
            acquired.wrapping_sub(e.acquired),
            sampled.wrapping_sub(e.sampled),
        );
        (e.acquired, e.sampled) = (acquired, sampled);
        if ds > 0 {
            e.scale = da as f64 / ds as f64;
        }
        Some((window.mean_concurrency * e.scale).max(0.0))
    }
}

/// A wait in progress. Dropping it without [acquiring](Waiting::acquired) ends the wait
/// as cancelled: the waiter count goes back down and nothing else is recorded.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    stats: &'a LockStats,
    mode: LockMode,
    started: u64,
    done: bool,
}

impl Waiting<'_> {
    /// The lock was acquired: records the wait and counts a contended acquisition.
    pub(crate) fn acquired(mut self) -> Hold {
        self.done = true;
        let stats = self.stats;
        let now = now_nanos();
        let stripe = stats.end_wait(self.started, now);
        let cell = &stats.cells[stripe & stats.mask];
        cell.acquired[self.mode as usize * 2 + 1].fetch_add(1, Relaxed);
        let waited = now.saturating_sub(self.started);
        stats
            .wait_histogram(self.mode)
            .record(seconds_between(self.started, now));
        if waited >= stats.config.slow_wait_nanos {
            slow_wait(stats.name, self.mode, waited);
        }
        if sys::local(stats.config.sample_every).1 {
            stats.start_hold(cell, self.mode, now)
        } else {
            Hold { started: None }
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stats.end_wait(self.started, now_nanos());
        }
    }
}

/// Adds an event to the current span: which lock, which mode, how long the wait was.
#[cold]
fn slow_wait(name: &'static str, mode: LockMode, waited_nanos: u64) {
    let span = tracing::Span::current();
    tracing::warn!(
        parent: &span,
        scalewatch.lock.name = name,
        scalewatch.lock.mode = mode.as_str(),
        scalewatch.lock.wait_s = waited_nanos as f64 / 1e9,
        "slow lock wait"
    );
}
