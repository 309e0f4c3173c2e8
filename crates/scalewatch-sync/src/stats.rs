//! Per-name lock statistics: counters in a cell per thread slot on the hot path, the
//! sampled holds' busy integral, and the bound histograms of the slow paths.

use crate::catalog::{self, attr};
use crate::sys::{self, AtomicU64};
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::{BoundHistogram, Histogram};
use opentelemetry::KeyValue;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::{Cursor, Totals};
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

/// One slot's counters. Signed quantities (holders, waiters) are stored wrapping and
/// summed as `i64`, so a hold or wait that ends on another thread than it began still sums
/// right.
struct Cell {
    /// Acquisitions, indexed by `mode * 2 + contended`.
    acquired: [AtomicU64; 4],
    /// Exclusive acquisitions whose hold is timed (the sampled ones).
    sampled_exclusive: AtomicU64,
    /// Sampled exclusive holds in progress.
    holding: AtomicU64,
    /// Σ start of the sampled exclusive holds in progress (clock ns), wrapping.
    hold_start_sum: AtomicU64,
    /// Σ length of the ended sampled exclusive holds (ns), wrapping.
    held: AtomicU64,
    /// Waiters now.
    waiting: AtomicU64,
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
            holding: AtomicU64::new(0),
            hold_start_sum: AtomicU64::new(0),
            held: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            wait_start_sum: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }
}

/// How the statistics of a lock are configured; shared by every lock of a
/// [`crate::LockMetrics`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) enabled: bool,
    pub(crate) sample_every: u32,
    pub(crate) slow_wait_nanos: u64,
}

/// The statistics of every lock that carries one name.
pub(crate) struct LockStats {
    /// One cell per thread slot ([`sys`]): the hot path writes only its own. Empty when
    /// measuring is off, which is what the hot path checks first: the length is read anyway
    /// for the bounds check, so no other field has to be loaded.
    cells: Box<[CachePadded<Cell>]>,
    config: Config,
    name: &'static str,
    modes: AtomicU8,
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
pub(crate) struct Export {
    cursor: Cursor,
    acquired: u64,
    sampled: u64,
    /// Exclusive acquisitions per sampled one, from the last window that had samples.
    scale: f64,
}

/// A hold in progress: its start (clock ns) when sampled. One word, so the guards stay
/// small enough to be returned cheaply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    started: u64,
}

impl Hold {
    /// Not sampled: a start no clock reading reaches (584 years of uptime).
    const UNSAMPLED: Hold = Hold { started: u64::MAX };

    /// Whether this hold is timed, i.e. whether [`LockStats::release`] has work to do.
    #[inline(always)]
    pub(crate) fn is_sampled(self) -> bool {
        self.started != Self::UNSAMPLED.started
    }
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

/// The busy integral at `now` of things that start and end: Σ ended + n·now − Σ starts,
/// wrapping, so the difference of two readings is exact (as in the core's `FlightStats`).
fn integral(ended: u64, in_progress: u64, start_sum: u64, now: u64) -> u64 {
    ended
        .wrapping_add(in_progress.wrapping_mul(now))
        .wrapping_sub(start_sum)
}

impl LockStats {
    pub(crate) fn new(
        name: &'static str,
        config: Config,
        wait: Histogram<f64>,
        hold: Histogram<f64>,
    ) -> Self {
        let now = now_nanos();
        let cells = if config.enabled { sys::cell_count() } else { 0 };
        Self {
            cells: (0..cells).map(|_| CachePadded::new(Cell::new())).collect(),
            config,
            name,
            modes: AtomicU8::new(0),
            wait,
            hold,
            bound_wait: [OnceLock::new(), OnceLock::new()],
            bound_hold: [OnceLock::new(), OnceLock::new()],
            export: std::sync::Mutex::new(Export {
                cursor: Cursor::starting_at(Totals {
                    at: now,
                    ..Totals::default()
                }),
                acquired: 0,
                sampled: 0,
                scale: f64::from(config.sample_every.max(1)),
            }),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Whether these statistics measure at all; when not, every recording is skipped and
    /// every reading is zero.
    #[inline(always)]
    pub(crate) fn enabled(&self) -> bool {
        !self.cells.is_empty()
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

    /// Sums one counter over every cell.
    fn sum(&self, counter: impl Fn(&Cell) -> &AtomicU64) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |acc, c| acc.wrapping_add(counter(c).load(Relaxed)))
    }

    /// Counts an acquisition that did not wait: one load and one store on this thread's
    /// own cell, and no clock read unless the hold is sampled. Off, nothing but the check.
    #[inline(always)]
    pub(crate) fn uncontended(&self, mode: LockMode) -> Hold {
        if !self.enabled() {
            return Hold::UNSAMPLED;
        }
        let (slot, sampled) = sys::current_sampled(self.config.sample_every);
        sys::add(slot, &self.cells[slot].acquired[mode as usize * 2], 1);
        if sampled {
            self.start_sampled(slot, mode)
        } else {
            Hold::UNSAMPLED
        }
    }

    /// Out of line, clock read included, so the inlined fast path stays small.
    #[cold]
    #[inline(never)]
    fn start_sampled(&self, slot: usize, mode: LockMode) -> Hold {
        self.start_hold(slot, mode, now_nanos())
    }

    fn start_hold(&self, slot: usize, mode: LockMode, now: u64) -> Hold {
        if mode == LockMode::Exclusive {
            let cell = &self.cells[slot];
            sys::add(slot, &cell.sampled_exclusive, 1);
            sys::add(slot, &cell.holding, 1);
            sys::add(slot, &cell.hold_start_sum, now);
        }
        Hold { started: now }
    }

    /// Ends a hold begun by [`Self::uncontended`] or [`Waiting::acquired`].
    #[inline(always)]
    pub(crate) fn release(&self, hold: Hold, mode: LockMode) {
        if hold.is_sampled() {
            self.end_hold(hold.started, mode);
        }
    }

    #[cold]
    #[inline(never)]
    fn end_hold(&self, started: u64, mode: LockMode) {
        let now = now_nanos();
        if mode == LockMode::Exclusive {
            // The guard may have moved to another thread (tokio): this thread's cell.
            let slot = sys::current();
            let cell = &self.cells[slot];
            sys::add(slot, &cell.holding, 1u64.wrapping_neg());
            sys::add(slot, &cell.hold_start_sum, started.wrapping_neg());
            sys::add(slot, &cell.held, now.saturating_sub(started));
        }
        self.hold_histogram(mode)
            .record(seconds_between(started, now));
    }

    /// Starts a wait: the caller found the lock taken. The wait ends when the returned
    /// guard is [acquired](Waiting::acquired) or dropped (cancelled, timed out, closed).
    /// Off, the guard has nothing to end and reads no clock.
    pub(crate) fn begin_wait(&self, mode: LockMode) -> Waiting<'_> {
        if !self.enabled() {
            return Waiting {
                stats: self,
                mode,
                started: 0,
                done: true,
            };
        }
        let now = now_nanos();
        let slot = sys::current();
        let cell = &self.cells[slot];
        sys::add(slot, &cell.waiting, 1);
        sys::add(slot, &cell.wait_start_sum, now);
        Waiting {
            stats: self,
            mode,
            started: now,
            done: false,
        }
    }

    /// Ends a wait on the current thread's cell (a task may have moved); returns the slot.
    fn end_wait(&self, started: u64, now: u64) -> usize {
        let slot = sys::current();
        let cell = &self.cells[slot];
        sys::add(slot, &cell.waiting, 1u64.wrapping_neg());
        sys::add(slot, &cell.wait_start_sum, started.wrapping_neg());
        sys::add(slot, &cell.waited, now.saturating_sub(started));
        slot
    }

    /// Waiters now, never negative (cells are read one by one, so a wait that moved
    /// between threads can show as -1 for an instant).
    pub(crate) fn waiters(&self) -> i64 {
        (self.sum(|c| &c.waiting) as i64).max(0)
    }

    /// Acquisitions of `mode`, `contended` or not, so far.
    pub(crate) fn acquisitions(&self, mode: LockMode, contended: bool) -> u64 {
        let i = mode as usize * 2 + usize::from(contended);
        self.sum(|c| &c.acquired[i])
    }

    pub(crate) fn counts(&self) -> LockCounts {
        let now = now_nanos();
        let waiting = self.sum(|c| &c.waiting);
        let total = integral(
            self.sum(|c| &c.waited),
            waiting,
            self.sum(|c| &c.wait_start_sum),
            now,
        );
        LockCounts {
            exclusive_uncontended: self.acquisitions(LockMode::Exclusive, false),
            exclusive_contended: self.acquisitions(LockMode::Exclusive, true),
            shared_uncontended: self.acquisitions(LockMode::Shared, false),
            shared_contended: self.acquisitions(LockMode::Shared, true),
            waiters: (waiting as i64).max(0),
            // A sum read across cells mid-update can be off by one in-flight start;
            // clamp the (rare, tiny) negative reading to zero.
            total_wait: Duration::from_nanos(if total > (1 << 63) { 0 } else { total }),
        }
    }

    /// A utilization window of its own for another reader than the exporter (each reader
    /// closes its own windows), starting now.
    pub(crate) fn utilization_window(&self) -> Export {
        let (totals, acquired, sampled) = self.hold_reading();
        Export {
            cursor: Cursor::starting_at(totals),
            acquired,
            sampled,
            scale: f64::from(self.config.sample_every.max(1)),
        }
    }

    /// What the utilization readers read together: the sampled holds' totals now, the
    /// exclusive acquisitions and the sampled ones so far.
    fn hold_reading(&self) -> (Totals, u64, u64) {
        let acquired = self
            .acquisitions(LockMode::Exclusive, false)
            .wrapping_add(self.acquisitions(LockMode::Exclusive, true));
        let sampled = self.sum(|c| &c.sampled_exclusive);
        let now = now_nanos();
        let holding = self.sum(|c| &c.holding);
        let busy = integral(
            self.sum(|c| &c.held),
            holding,
            self.sum(|c| &c.hold_start_sum),
            now,
        );
        let totals = Totals {
            at: now,
            in_flight: holding as i64,
            busy,
            ..Totals::default()
        };
        (totals, acquired, sampled)
    }

    /// Closes the exporter's utilization window at now; see [`Self::utilization_in`].
    pub(crate) fn utilization(&self) -> Option<f64> {
        let mut e = match self.export.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.utilization_in(&mut e)
    }

    /// Closes the window `e` at now: the fraction of it the lock was held exclusively,
    /// estimated from the sampled holds' busy integral scaled by exclusive acquisitions per
    /// sampled one. `None` on the first call within a nanosecond.
    pub(crate) fn utilization_in(&self, e: &mut Export) -> Option<f64> {
        let (totals, acquired, sampled) = self.hold_reading();
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
    /// Nothing left to end: set once acquired, and from the start when measuring is off.
    done: bool,
}

impl Waiting<'_> {
    /// The lock was acquired: records the wait and counts a contended acquisition.
    pub(crate) fn acquired(mut self) -> Hold {
        if self.done {
            return Hold::UNSAMPLED;
        }
        self.done = true;
        let stats = self.stats;
        let now = now_nanos();
        let slot = stats.end_wait(self.started, now);
        sys::add(
            slot,
            &stats.cells[slot].acquired[self.mode as usize * 2 + 1],
            1,
        );
        let waited = now.saturating_sub(self.started);
        stats
            .wait_histogram(self.mode)
            .record(seconds_between(self.started, now));
        if waited >= stats.config.slow_wait_nanos {
            slow_wait(stats.name, self.mode, waited);
        }
        if sys::current_sampled(stats.config.sample_every).1 {
            stats.start_hold(slot, self.mode, now)
        } else {
            Hold::UNSAMPLED
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
