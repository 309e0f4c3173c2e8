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
    /// Acquisitions this thread makes before its next timed hold.
    countdown: AtomicU64,
    /// The code ([`weight`]) of the gap that leads to the next timed hold: its weight.
    plan: AtomicU64,
    /// When this thread last timed a hold (clock ns).
    last_sampled: AtomicU64,
    /// Occupied units now (1 per exclusive hold, n per n permits), each timed hold
    /// weighted by the number of holds it stands for.
    holding: AtomicU64,
    /// Σ weight × start of the timed holds in progress (clock ns), wrapping.
    hold_start_sum: AtomicU64,
    /// Σ weight × length of the ended timed holds (ns), wrapping.
    held: AtomicU64,
    /// Waiters now.
    waiting: AtomicU64,
    /// Σ start of the waits in progress (clock ns), wrapping.
    wait_start_sum: AtomicU64,
    /// Σ length of the ended waits (ns), acquired or cancelled, wrapping.
    waited: AtomicU64,
}

impl Cell {
    fn new(sample_every: u32) -> Self {
        Self {
            acquired: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
            countdown: AtomicU64::new(if sample_every == 0 { u64::MAX } else { 0 }),
            plan: AtomicU64::new(0),
            last_sampled: AtomicU64::new(0),
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

/// How often a busy thread times a hold at most: once per this many nanoseconds (about
/// 15,000 timed holds a second per thread). A thread that takes the lock less often than
/// that times every hold, so utilization is exact at low rates and an estimate from
/// thousands of holds a second at high ones.
const SAMPLE_INTERVAL_NANOS: u64 = 1 << 16;

/// Bits of a timed hold's start that carry the log2 of its weight instead of time.
const WEIGHT_BITS: u32 = 5;
const WEIGHT_MASK: u64 = (1 << WEIGHT_BITS) - 1;

/// The statistics of every lock that carries one name.
pub(crate) struct LockStats {
    /// One cell per thread slot ([`sys`]): the hot path writes only its own. Empty when
    /// measuring is off, which is what the hot path checks first: the length is read anyway
    /// for the bounds check, so no other field has to be loaded.
    cells: Box<[CachePadded<Cell>]>,
    config: Config,
    name: &'static str,
    modes: AtomicU8,
    /// Permits, for a semaphore: what utilization is a fraction of (0 for a lock, whose
    /// exclusive holds count against 1).
    permits: AtomicU64,
    wait: Histogram<f64>,
    hold: Histogram<f64>,
    bound_wait: [OnceLock<BoundHistogram<f64>>; 2],
    bound_hold: [OnceLock<BoundHistogram<f64>>; 2],
    export: std::sync::Mutex<Export>,
    slow_waits: SlowWaits,
}

impl fmt::Debug for LockStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockStats")
            .field("name", &self.name)
            .field("waiters", &self.waiters())
            .finish_non_exhaustive()
    }
}

/// A reader's position for utilization: where its previous window ended.
pub(crate) struct Export {
    cursor: Cursor,
    /// The wait integral at the window's start (ns), for the mean number of waiters.
    waited: u64,
}

/// One window of a lock's occupancy, as a capacity model reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Occupancy {
    /// Fraction of the window the lock was held (exclusive holds, or permits in use out
    /// of the semaphore's permits), 0..1 up to the sampling error.
    pub utilization: f64,
    /// Mean number of threads or tasks waiting during the window, per unit of capacity.
    pub waiting: f64,
}

/// A hold in progress: its start (clock ns) when timed, the low [`WEIGHT_BITS`] bits
/// replaced by the code of its weight ([`weight`]). One word, so the guards stay small enough to be
/// returned cheaply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    started: u64,
}

impl Hold {
    /// Not timed: a start no clock reading reaches (584 years of uptime).
    const UNSAMPLED: Hold = Hold { started: u64::MAX };

    /// Whether this hold is timed, i.e. whether [`LockStats::release`] has work to do.
    #[inline(always)]
    pub(crate) fn is_sampled(self) -> bool {
        self.started != Self::UNSAMPLED.started
    }

    fn at(self) -> u64 {
        self.started & !WEIGHT_MASK
    }

    fn weight(self) -> u64 {
        weight(self.started & WEIGHT_MASK)
    }
}

/// The largest weight, as a power of two: what the codes 16..=31 reach.
const MAX_WEIGHT_LOG2: u32 = 19;

/// The weight a code of [`WEIGHT_BITS`] bits stands for: codes 0..=15 are the gap itself
/// (0, before any plan, counts as 1), codes 16..=31 the powers of two 2^4..=2^19.
fn weight(code: u64) -> u64 {
    if code < 16 {
        code.max(1)
    } else {
        1 << (code - 12)
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

/// Units a hold of `mode` occupies when no permit count says otherwise: an exclusive hold
/// occupies the lock, a shared one (a read) does not.
fn units(mode: LockMode) -> u64 {
    u64::from(mode == LockMode::Exclusive)
}

/// Spreads a clock reading over 64 bits: the random part of a sampling gap.
fn mix(now: u64) -> u64 {
    let x = now.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
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
            cells: (0..cells)
                .map(|_| CachePadded::new(Cell::new(config.sample_every)))
                .collect(),
            config,
            name,
            modes: AtomicU8::new(0),
            permits: AtomicU64::new(0),
            wait,
            hold,
            bound_wait: [OnceLock::new(), OnceLock::new()],
            bound_hold: [OnceLock::new(), OnceLock::new()],
            export: std::sync::Mutex::new(Export {
                cursor: Cursor::starting_at(Totals {
                    at: now,
                    ..Totals::default()
                }),
                waited: 0,
            }),
            slow_waits: SlowWaits::default(),
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

    /// Adds `n` permits (a semaphore of this name was made, or given more); `n` may be
    /// negative as a wrapping add (permits forgotten).
    #[cfg(feature = "tokio")]
    pub(crate) fn add_permits(&self, n: u64) {
        self.permits.fetch_add(n, Relaxed);
    }

    /// What utilization is a fraction of: the permits of a semaphore, else 1.
    fn capacity(&self) -> f64 {
        match self.permits.load(Relaxed) {
            0 => 1.0,
            // A transiently negative count (forgotten before added) reads as 1.
            p if p > 1 << 62 => 1.0,
            p => p as f64,
        }
    }

    /// Whether this name reports utilization: it is held exclusively or has permits.
    pub(crate) fn has_utilization(&self) -> bool {
        self.has(LockMode::Exclusive) || self.permits.load(Relaxed) != 0
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

    /// Counts an acquisition that did not wait: a load and a store on this thread's own
    /// cell, and the countdown to its next timed hold; no clock read unless this hold is
    /// timed. Off, nothing but the check.
    #[inline(always)]
    pub(crate) fn uncontended(&self, mode: LockMode) -> Hold {
        self.uncontended_units(mode, units(mode))
    }

    /// [`Self::uncontended`] for a hold occupying `units` of the capacity (permits).
    #[inline(always)]
    pub(crate) fn uncontended_units(&self, mode: LockMode, units: u64) -> Hold {
        if !self.enabled() {
            return Hold::UNSAMPLED;
        }
        let slot = sys::current();
        let cell = &self.cells[slot];
        sys::add(slot, &cell.acquired[mode as usize * 2], 1);
        let left = cell.countdown.load(Relaxed);
        if left != 0 {
            cell.countdown.store(left - 1, Relaxed);
            Hold::UNSAMPLED
        } else {
            self.start_sampled(slot, units)
        }
    }

    /// Out of line, clock read included, so the inlined fast path stays small.
    #[cold]
    #[inline(never)]
    fn start_sampled(&self, slot: usize, units: u64) -> Hold {
        self.start_hold(slot, units, now_nanos())
    }

    /// Times a hold from `now`, weighted by the number of acquisitions since this thread's
    /// previous timed hold, and plans the next one.
    ///
    /// Why weights: a thread that takes the lock rarely times every hold, a busy one one
    /// hold in up to `sample_every`, so each timed hold stands for the holds of its thread
    /// since the previous one. The weight is that exact gap, so the weights add up to the
    /// acquisitions and a lock whose holds are alike reads exactly. Gaps of up to 15 are
    /// drawn at random around their mean, so that a periodic pattern of short and long
    /// holds cannot line up with the sampling; longer gaps (threads taking the lock more
    /// than 16 times in 64 µs) are powers of two.
    fn start_hold(&self, slot: usize, units: u64, now: u64) -> Hold {
        let cell = &self.cells[slot];
        let plan = cell.plan.load(Relaxed);
        let code = plan & WEIGHT_MASK;
        let gap = weight(code);
        let elapsed = now.saturating_sub(cell.last_sampled.load(Relaxed)).max(1);
        // Acquisitions this thread makes per sampling interval, from the last gap.
        let per_interval =
            (u128::from(gap) * u128::from(SAMPLE_INTERVAL_NANOS) / u128::from(elapsed)) as u64;
        // At most double the gap each time: a burst of acquisitions in a few microseconds
        // (tasks woken by one timer tick) says little about the thread's rate, and a
        // thread that is busy for real reaches its gap in a few timed holds anyway.
        let grown = 64 - gap.leading_zeros();
        let mean_log2 = (63 - per_interval.max(1).leading_zeros())
            .min(grown)
            .min(self.max_weight_log2());
        let next_code = if cfg!(loom) {
            // The loom models explore interleavings, which must not depend on the clock:
            // every hold is timed there.
            1
        } else if mean_log2 < 4 {
            // Uniform in 1..2^(k+1)-1: mean 2^k, at most 15.
            1 + mix(now) % ((2 << mean_log2) - 1)
        } else {
            u64::from(mean_log2) + 12
        };
        cell.countdown.store(weight(next_code) - 1, Relaxed);
        cell.plan.store(next_code, Relaxed);
        cell.last_sampled.store(now, Relaxed);

        let hold = Hold {
            started: (now & !WEIGHT_MASK) | code,
        };
        let weighted = units * gap;
        if weighted != 0 {
            sys::add(slot, &cell.holding, weighted);
            sys::add(slot, &cell.hold_start_sum, weighted.wrapping_mul(hold.at()));
        }
        hold
    }

    /// The most holds one timed hold may stand for, as a power of two.
    fn max_weight_log2(&self) -> u32 {
        // `sample_every` is at least 1 here: with 0 the countdown never runs out.
        (31 - self.config.sample_every.max(1).leading_zeros()).min(MAX_WEIGHT_LOG2)
    }

    /// Ends a hold begun by [`Self::uncontended`] or [`Waiting::acquired`].
    #[inline(always)]
    pub(crate) fn release(&self, hold: Hold, mode: LockMode) {
        if hold.is_sampled() {
            self.end_hold(hold, mode, units(mode));
        }
    }

    /// [`Self::release`] for a hold of `units` permits.
    #[cfg(feature = "tokio")]
    #[inline(always)]
    pub(crate) fn release_units(&self, hold: Hold, mode: LockMode, units: u64) {
        if hold.is_sampled() {
            self.end_hold(hold, mode, units);
        }
    }

    #[cold]
    #[inline(never)]
    fn end_hold(&self, hold: Hold, mode: LockMode, units: u64) {
        let now = now_nanos();
        let started = hold.at();
        let weighted = units * hold.weight();
        if weighted != 0 {
            // The guard may have moved to another thread (tokio): this thread's cell.
            let slot = sys::current();
            let cell = &self.cells[slot];
            sys::add(slot, &cell.holding, weighted.wrapping_neg());
            sys::add(
                slot,
                &cell.hold_start_sum,
                weighted.wrapping_mul(started).wrapping_neg(),
            );
            sys::add(
                slot,
                &cell.held,
                weighted.wrapping_mul(now.saturating_sub(started)),
            );
        }
        self.hold_histogram(mode)
            .record(seconds_between(started, now));
    }

    /// Starts a wait: the caller found the lock taken. The wait ends when the returned
    /// guard is [acquired](Waiting::acquired) or dropped (cancelled, timed out, closed).
    /// Off, the guard has nothing to end and reads no clock.
    pub(crate) fn begin_wait(&self, mode: LockMode) -> Waiting<'_> {
        self.begin_wait_units(mode, units(mode))
    }

    /// [`Self::begin_wait`] for `units` permits.
    pub(crate) fn begin_wait_units(&self, mode: LockMode, units: u64) -> Waiting<'_> {
        if !self.enabled() {
            return Waiting {
                stats: self,
                mode,
                units,
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
            units,
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

    /// The wait integral up to `now` (ns), wrapping.
    fn wait_integral(&self, now: u64) -> u64 {
        integral(
            self.sum(|c| &c.waited),
            self.sum(|c| &c.waiting),
            self.sum(|c| &c.wait_start_sum),
            now,
        )
    }

    pub(crate) fn counts(&self) -> LockCounts {
        let now = now_nanos();
        let total = self.wait_integral(now);
        LockCounts {
            exclusive_uncontended: self.acquisitions(LockMode::Exclusive, false),
            exclusive_contended: self.acquisitions(LockMode::Exclusive, true),
            shared_uncontended: self.acquisitions(LockMode::Shared, false),
            shared_contended: self.acquisitions(LockMode::Shared, true),
            waiters: self.waiters(),
            // A sum read across cells mid-update can be off by one in-flight start;
            // clamp the (rare, tiny) negative reading to zero.
            total_wait: Duration::from_nanos(if total > (1 << 63) { 0 } else { total }),
        }
    }

    /// A utilization window of its own for another reader than the exporter (each reader
    /// closes its own windows), starting now.
    pub(crate) fn utilization_window(&self) -> Export {
        let totals = self.hold_reading();
        Export {
            waited: self.wait_integral(totals.at),
            cursor: Cursor::starting_at(totals),
        }
    }

    /// The weighted busy integral of the holds now.
    fn hold_reading(&self) -> Totals {
        // A hold starting or ending between the reads of `holding` and `hold_start_sum`
        // would add a weight times the clock to the integral: read both again until they
        // agree (a few tries; holds are timed at most every 64 µs per thread).
        let (mut holding, mut start_sum) = (0, 0);
        for _ in 0..8 {
            holding = self.sum(|c| &c.holding);
            start_sum = self.sum(|c| &c.hold_start_sum);
            if holding == self.sum(|c| &c.holding) && start_sum == self.sum(|c| &c.hold_start_sum) {
                break;
            }
        }
        let now = now_nanos();
        let busy = integral(self.sum(|c| &c.held), holding, start_sum, now);
        Totals {
            at: now,
            in_flight: holding as i64,
            busy,
            ..Totals::default()
        }
    }

    /// Closes the exporter's utilization window at now; see [`Self::occupancy_in`].
    pub(crate) fn utilization(&self) -> Option<f64> {
        let mut e = match self.export.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.occupancy_in(&mut e).map(|o| o.utilization)
    }

    /// Closes the window `e` at now: the fraction of it the lock was held (each timed
    /// hold weighted by the holds it stands for), and its mean waiters. `None` on the
    /// first call within a nanosecond.
    pub(crate) fn occupancy_in(&self, e: &mut Export) -> Option<Occupancy> {
        let totals = self.hold_reading();
        let waited = self.wait_integral(totals.at);
        let window = e.cursor.advance(totals)?;
        let wait = waited.wrapping_sub(e.waited);
        e.waited = waited;
        let capacity = self.capacity();
        // A reading across cells mid-update can wrap below zero by one start: read 0.
        let wait = if wait > 1 << 63 { 0 } else { wait };
        Some(Occupancy {
            utilization: (window.mean_concurrency / capacity).max(0.0),
            waiting: wait as f64 / (window.seconds * 1e9) / capacity,
        })
    }
}

/// A wait in progress. Dropping it without [acquiring](Waiting::acquired) ends the wait
/// as cancelled: the waiter count goes back down and nothing else is recorded.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    stats: &'a LockStats,
    mode: LockMode,
    units: u64,
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
        let cell = &stats.cells[slot];
        sys::add(slot, &cell.acquired[self.mode as usize * 2 + 1], 1);
        let waited = now.saturating_sub(self.started);
        stats
            .wait_histogram(self.mode)
            .record(seconds_between(self.started, now));
        if waited >= stats.config.slow_wait_nanos {
            stats.slow_waits.report(stats.name, self.mode, waited, now);
        }
        let left = cell.countdown.load(Relaxed);
        if left != 0 {
            cell.countdown.store(left - 1, Relaxed);
            Hold::UNSAMPLED
        } else {
            stats.start_hold(slot, self.units, now)
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

/// At most one `slow lock wait` event a second per lock name, each saying how many slow
/// waits were left out since the previous one: a convoy must not flood the logs.
struct SlowWaits {
    /// When the latest event was emitted (clock ns); 0 before the first.
    last: AtomicU64,
    /// Slow waits since then that emitted no event.
    suppressed: AtomicU64,
}

/// The least time between two `slow lock wait` events of one lock name.
const SLOW_WAIT_EVENT_INTERVAL_NANOS: u64 = 1_000_000_000;

impl Default for SlowWaits {
    // By hand: the loom models' atomics have no `Default`.
    fn default() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }
}

impl SlowWaits {
    fn report(&self, name: &'static str, mode: LockMode, waited_nanos: u64, now: u64) {
        let last = self.last.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= SLOW_WAIT_EVENT_INTERVAL_NANOS;
        // One thread wins the right to emit; the others count themselves as suppressed.
        if !due
            || self
                .last
                .compare_exchange(last, now.max(1), Relaxed, Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Relaxed);
            return;
        }
        let suppressed = self.suppressed.swap(0, Relaxed);
        slow_wait(name, mode, waited_nanos, suppressed);
    }
}

/// Adds an event to the current span: which lock, which mode, how long the wait was, and
/// how many slow waits of the same lock were left out since the previous event.
#[cold]
fn slow_wait(name: &'static str, mode: LockMode, waited_nanos: u64, suppressed: u64) {
    let span = tracing::Span::current();
    tracing::warn!(
        parent: &span,
        scalewatch.lock.name = name,
        scalewatch.lock.mode = mode.as_str(),
        scalewatch.lock.wait_s = waited_nanos as f64 / 1e9,
        scalewatch.lock.suppressed = suppressed,
        "slow lock wait"
    );
}
