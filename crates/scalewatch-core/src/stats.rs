//! Lock-free statistics of in-flight work, in a cell per thread.
//!
//! The hot path touches only this thread's own cache-padded cell (see [`crate::slot`]):
//! its owner updates it with plain loads and stores, no locked instruction, and no two
//! cores write the same cache line. Readers sum the cells.
//!
//! Time-averaged concurrency comes from a cumulative "busy integral" that needs no lock:
//! at time `t`, `busy(t) = Σ completed durations + Σ over in-flight (t − start)
//! = completed + n·t − Σ starts`. The integral over a window is the difference of two
//! readings. All sums use wrapping arithmetic: differences stay exact for any window whose
//! integral fits in 2^64 ns (584 years of busy time).

use crate::catalog::Signal;
use crate::clock::now_nanos;
use crate::slot::{self, AtomicU64};
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};

/// One thread's counters. Counts that go down (in flight, queued) are kept as wrapping
/// `u64`s, so that one add serves both directions; readers reinterpret the sum as `i64`.
#[derive(Debug, Default)]
struct Cell {
    in_flight: AtomicU64,
    start_sum: AtomicU64,
    completed_busy: AtomicU64,
    completions: AtomicU64,
    queued: AtomicU64,
}

/// In-flight statistics of one unit of work (a tier, a pool, a lock).
#[derive(Debug)]
pub struct FlightStats {
    /// One cell per thread slot, and the shared cell ([`slot::SHARED`]).
    cells: Box<[CachePadded<Cell>]>,
}

/// What [`FlightStats::start`] hands back; give it to [`FlightStats::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The clock reading at start ([`crate::clock::now_nanos`]).
    pub at: u64,
}

/// A consistent-enough reading of the cumulative totals, for windowing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// When the reading was taken (clock nanoseconds).
    pub at: u64,
    /// Work in flight now.
    pub in_flight: i64,
    /// Work waiting for admission now.
    pub queued: i64,
    /// Cumulative busy integral (nanosecond-requests), wrapping.
    pub busy: u64,
    /// Cumulative completions, wrapping.
    pub completions: u64,
    /// Cumulative latency of completed work (nanoseconds), wrapping.
    pub completed_latency: u64,
}

impl Default for FlightStats {
    fn default() -> Self {
        Self::new()
    }
}

/// The sum of one counter over every cell, as the signed count it stands for.
fn signed_sum<'a>(counters: impl Iterator<Item = &'a AtomicU64>) -> i64 {
    counters.fold(0u64, |sum, c| sum.wrapping_add(c.load(Relaxed))) as i64
}

impl FlightStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self {
            cells: (0..slot::cell_count())
                .map(|_| CachePadded::new(Cell::default()))
                .collect(),
        }
    }

    /// Records that a work item started at `now`.
    #[inline]
    pub fn start(&self, now: u64) -> Started {
        if let Some((slot, c)) = slot::current_cell(&self.cells) {
            slot::add(slot, &c.in_flight, 1);
            slot::add(slot, &c.start_sum, now);
        }
        Started { at: now }
    }

    /// Records that the work item begun by `started` ended at `now`.
    /// May run on another thread than `start`; the cells still sum right.
    #[inline]
    pub fn finish(&self, started: Started, now: u64) {
        if let Some((slot, c)) = slot::current_cell(&self.cells) {
            let elapsed = now.saturating_sub(started.at);
            slot::add(slot, &c.in_flight, 1u64.wrapping_neg());
            slot::add(slot, &c.start_sum, started.at.wrapping_neg());
            slot::add(slot, &c.completed_busy, elapsed);
            slot::add(slot, &c.completions, 1);
        }
    }

    /// Records that a work item started waiting for admission.
    #[inline]
    pub fn enqueue(&self) {
        if let Some((slot, c)) = slot::current_cell(&self.cells) {
            slot::add(slot, &c.queued, 1);
        }
    }

    /// Records that a waiting work item left the queue (admitted, rejected or cancelled).
    #[inline]
    pub fn dequeue(&self) {
        if let Some((slot, c)) = slot::current_cell(&self.cells) {
            slot::add(slot, &c.queued, 1u64.wrapping_neg());
        }
    }

    /// Work in flight now.
    ///
    /// The cells are read one after the other while work goes on, and work that starts
    /// on one thread may finish on another: a reader held up mid-scan can see a finish
    /// without its start, so the sum is clamped at 0, as no count of work can be below.
    pub fn in_flight(&self) -> i64 {
        signed_sum(self.cells.iter().map(|c| &c.in_flight)).max(0)
    }

    /// Work waiting for admission now (clamped at 0 as [`FlightStats::in_flight`] is).
    pub fn queued(&self) -> i64 {
        signed_sum(self.cells.iter().map(|c| &c.queued)).max(0)
    }

    /// Reads the cumulative totals at `now`.
    pub fn totals(&self, now: u64) -> Totals {
        let mut t = Totals {
            at: now,
            ..Totals::default()
        };
        let mut start_sum = 0u64;
        let mut completed_busy = 0u64;
        let (mut in_flight, mut queued) = (0u64, 0u64);
        for c in self.cells.iter() {
            in_flight = in_flight.wrapping_add(c.in_flight.load(Relaxed));
            queued = queued.wrapping_add(c.queued.load(Relaxed));
            start_sum = start_sum.wrapping_add(c.start_sum.load(Relaxed));
            completed_busy = completed_busy.wrapping_add(c.completed_busy.load(Relaxed));
            t.completions = t.completions.wrapping_add(c.completions.load(Relaxed));
        }
        (t.in_flight, t.queued) = (in_flight as i64, queued as i64);
        t.completed_latency = completed_busy;
        t.busy = completed_busy
            .wrapping_add(in_flight.wrapping_mul(now))
            .wrapping_sub(start_sum);
        t
    }
}

/// One closed window of a [`FlightStats`]: what happened between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Window length in seconds.
    pub seconds: f64,
    /// Time-averaged concurrency N over the window.
    pub mean_concurrency: f64,
    /// Completions per second X over the window.
    pub throughput: f64,
    /// Mean latency R of the work completed in the window, in seconds (0 if none).
    pub mean_latency: f64,
    /// Work items completed in the window.
    pub completions: u64,
    /// Work in flight at the window's end.
    pub in_flight: i64,
}

impl Window {
    /// Little's law check: how far N is from X·R, relative to N (0 = perfect).
    /// Large values mean the window is too short for its latencies.
    pub fn littles_law_error(&self) -> f64 {
        if self.mean_concurrency <= 0.0 {
            return 0.0;
        }
        ((self.mean_concurrency - self.throughput * self.mean_latency) / self.mean_concurrency)
            .abs()
    }
}

/// A reader's position in a [`FlightStats`]' history. Each consumer (an exporter's
/// utilization gauge, the capacity model) keeps its own cursor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cursor {
    last: Option<Totals>,
}

impl Cursor {
    /// A cursor that will close its first window at its first [`Cursor::advance`].
    pub fn starting_at(totals: Totals) -> Self {
        Self { last: Some(totals) }
    }

    /// Closes the window between the previous reading and `now`; `None` the first time or
    /// when no time has passed.
    pub fn advance(&mut self, now: Totals) -> Option<Window> {
        let prev = self.last.replace(now)?;
        let nanos = now.at.checked_sub(prev.at).filter(|d| *d > 0)?;
        let seconds = nanos as f64 / 1e9;
        let busy = now.busy.wrapping_sub(prev.busy) as f64 / 1e9;
        let completions = now.completions.wrapping_sub(prev.completions);
        let latency = now.completed_latency.wrapping_sub(prev.completed_latency) as f64 / 1e9;
        Some(Window {
            seconds,
            mean_concurrency: busy / seconds,
            throughput: completions as f64 / seconds,
            mean_latency: if completions == 0 {
                0.0
            } else {
                latency / completions as f64
            },
            completions,
            in_flight: now.in_flight,
        })
    }
}

/// A [`Cursor`] over one [`FlightStats`] for a reader that only has `&self`: a collection
/// callback or a utilization reading. Collections of one reader are serialized, so the lock
/// is never contended; a panic elsewhere while it was held leaves the position usable.
#[derive(Debug)]
pub struct SharedCursor(Mutex<Cursor>);

impl SharedCursor {
    /// A cursor positioned at `stats`' current totals.
    pub fn starting_now(stats: &FlightStats) -> Self {
        Self(Mutex::new(Cursor::starting_at(stats.totals(now_nanos()))))
    }

    /// Closes the window from the previous reading to now (see [`Cursor::advance`]).
    pub fn advance(&self, stats: &FlightStats) -> Option<Window> {
        let totals = stats.totals(now_nanos());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .advance(totals)
    }

    /// The mean concurrency of the window [`advance`](Self::advance) closes, as a share
    /// of `capacity`: the utilization of a resource that holds at most `capacity` at once.
    pub fn utilization(&self, stats: &FlightStats, capacity: f64) -> Option<f64> {
        self.advance(stats).map(|w| w.mean_concurrency / capacity)
    }
}

/// The four gauges of a unit measured by a [`FlightStats`] (a tier, a pool): how many are
/// in it and how many wait for it now and, when it has a capacity, that capacity and the
/// unit's utilization over each export interval.
#[derive(Debug, Clone, Copy)]
pub struct OccupancyGauges {
    /// Work in the unit now (an up-down counter).
    pub in_flight: Signal,
    /// Work waiting to enter it now (an up-down counter).
    pub queued: Signal,
    /// Its capacity (a gauge).
    pub capacity: Signal,
    /// Its time-averaged occupancy over the capacity (a gauge).
    pub utilization: Signal,
}

impl OccupancyGauges {
    /// Registers the gauges of `unit` on `meter` with `attributes`, reading the unit's
    /// statistics and its exporter's own window through `parts`; the capacity and
    /// utilization only with a `capacity`. They hold `unit` weakly: once it is dropped,
    /// they report nothing.
    pub fn register<T: Send + Sync + 'static>(
        &self,
        meter: &Meter,
        unit: &Arc<T>,
        attributes: &[KeyValue],
        capacity: Option<f64>,
        parts: for<'a> fn(&'a T) -> (&'a FlightStats, &'a SharedCursor),
    ) {
        self.in_flight
            .i64_observable_up_down_counter_of(meter, unit, attributes, move |u| {
                parts(u).0.in_flight()
            });
        self.queued
            .i64_observable_up_down_counter_of(meter, unit, attributes, move |u| {
                parts(u).0.queued()
            });
        if let Some(capacity) = capacity {
            self.capacity
                .f64_observable_gauge_of(meter, unit, attributes, move |_| capacity);
            self.utilization
                .f64_observable_gauge_of(meter, unit, attributes, move |u| {
                    let (stats, cursor) = parts(u);
                    cursor.utilization(stats, capacity)
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_integral_is_exact_for_a_known_schedule() {
        let s = FlightStats::new();
        let mut cursor = Cursor::starting_at(s.totals(1_000));
        // Two items overlap: [1000, 3000) and [2000, 5000); window [1000, 4000).
        let a = s.start(1_000);
        let b = s.start(2_000);
        s.finish(a, 3_000);
        let w = cursor.advance(s.totals(4_000)).unwrap();
        // busy = 2000 (a) + 2000 (b so far) over 3000 ns.
        assert!((w.mean_concurrency - 4.0 / 3.0).abs() < 1e-12, "{w:?}");
        assert_eq!(w.completions, 1);
        assert_eq!(w.in_flight, 1);
        s.finish(b, 5_000);
        let w = cursor.advance(s.totals(6_000)).unwrap();
        assert!((w.mean_concurrency - 0.5).abs() < 1e-12, "{w:?}");
        assert!((w.mean_latency - 3e-6).abs() < 1e-15);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn a_finish_read_before_its_start_never_shows_negative_work() {
        // What a reader held up mid-scan can add up: a finish in a cell it reads late,
        // without the start in a cell it read early.
        let s = FlightStats::new();
        s.finish(Started { at: 10 }, 20);
        s.dequeue();
        assert_eq!((s.in_flight(), s.queued()), (0, 0));
        // The raw sums stay exact underneath: two more starts make one in flight.
        s.start(30);
        s.start(31);
        s.enqueue();
        s.enqueue();
        assert_eq!((s.in_flight(), s.queued()), (1, 1));
    }

    #[test]
    fn start_and_finish_on_different_threads_sum_to_zero() {
        let s = std::sync::Arc::new(FlightStats::new());
        let started: Vec<_> = (0..1000).map(|i| s.start(i)).collect();
        let s2 = s.clone();
        std::thread::spawn(move || {
            for st in started {
                s2.finish(st, 5_000);
            }
        })
        .join()
        .unwrap();
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.totals(6_000).completions, 1000);
    }

    #[test]
    fn queue_counts_return_to_zero() {
        let s = FlightStats::new();
        s.enqueue();
        s.enqueue();
        assert_eq!(s.queued(), 2);
        s.dequeue();
        s.dequeue();
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn first_advance_and_zero_length_windows_yield_nothing() {
        let s = FlightStats::new();
        let mut c = Cursor::default();
        assert!(c.advance(s.totals(10)).is_none());
        assert!(c.advance(s.totals(10)).is_none());
        assert!(c.advance(s.totals(20)).is_some());
    }

    #[test]
    fn littles_law_holds_for_steady_work() {
        let s = FlightStats::new();
        let mut c = Cursor::starting_at(s.totals(0));
        // One item at a time, each 100 ns, back to back, for 1000 items.
        for i in 0..1000u64 {
            let st = s.start(i * 100);
            s.finish(st, i * 100 + 100);
        }
        let w = c.advance(s.totals(100_000)).unwrap();
        assert!((w.mean_concurrency - 1.0).abs() < 1e-9);
        assert!(w.littles_law_error() < 1e-9);
    }

    #[test]
    fn threads_beyond_the_owned_slots_and_threads_reusing_slots_count_exactly() {
        let stats = FlightStats::new();
        // All alive at once, so the last four find every slot taken and share one cell;
        // the second batch reuses the slots the first gave back.
        let threads = slot::slot_count() + 4;
        let mut held = Vec::new();
        for batch in 0..2u64 {
            let barrier = std::sync::Barrier::new(threads);
            held.extend(std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let (stats, barrier) = (&stats, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            for i in 0..1_000u64 {
                                let started = stats.start(i);
                                stats.finish(started, i + 10);
                            }
                            stats.enqueue();
                            let left = stats.start(batch);
                            barrier.wait();
                            left
                        })
                    })
                    .collect::<Vec<_>>();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("worker"))
                    .collect::<Vec<_>>()
            }));
        }
        let n = 2 * threads as u64;
        let t = stats.totals(100);
        assert_eq!(t.completions, n * 1_000);
        assert_eq!(t.completed_latency, n * 1_000 * 10);
        assert_eq!((t.in_flight, t.queued), (n as i64, n as i64));
        // Each held item started at 0 or 1 and is in flight until 100.
        let held_busy: u64 = held.iter().map(|h| 100 - h.at).sum();
        assert_eq!(t.busy, n * 1_000 * 10 + held_busy);
        for h in held {
            stats.finish(h, 100);
            stats.dequeue();
        }
        assert_eq!((stats.in_flight(), stats.queued()), (0, 0));
    }

    proptest::proptest! {
        #[test]
        fn integral_matches_a_reference_model(events in proptest::collection::vec((0u64..1000, 1u64..1000), 1..200)) {
            // Each event: an item starting at s lasting d; windows read at fixed times.
            let stats = FlightStats::new();
            let horizon = 3000u64;
            let mut cursor = Cursor::starting_at(stats.totals(0));
            let mut items: Vec<(u64, u64)> = events.iter().map(|&(s, d)| (s, s + d)).collect();
            items.sort_unstable();
            // Replay in time order: starts and finishes interleaved.
            let mut timeline: Vec<(u64, bool, usize)> = Vec::new();
            for (i, &(s, e)) in items.iter().enumerate() {
                timeline.push((s, true, i));
                timeline.push((e, false, i));
            }
            timeline.sort_by_key(|&(t, is_start, _)| (t, is_start));
            let mut handles = vec![None; items.len()];
            for (t, is_start, i) in timeline {
                if is_start {
                    handles[i] = Some(stats.start(t));
                } else if let Some(h) = handles[i].take() {
                    stats.finish(h, t);
                }
            }
            let w = cursor.advance(stats.totals(horizon)).unwrap();
            let reference: u64 = items.iter().map(|&(s, e)| e.min(horizon) - s).sum();
            let expected = reference as f64 / horizon as f64;
            proptest::prop_assert!((w.mean_concurrency - expected).abs() < 1e-9);
            proptest::prop_assert_eq!(stats.in_flight(), 0);
        }
    }
}
