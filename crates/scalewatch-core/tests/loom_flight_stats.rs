//! Loom models of the in-flight statistics behind every tier, pool and queue
//! ([`FlightStats`]), on loom's atomics under `--cfg loom`: work that starts on one thread
//! and finishes on another (a task moved between workers), read by a third. The models
//! have one owned slot: the first thread to record owns its cell and writes it with plain
//! loads and stores, the others add to the shared cell atomically, so the start and the
//! finish land on different cells. Not part of a normal `cargo test`;
//! run with `scripts/loom`, or
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p scalewatch-core --release --test loom_flight_stats
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the preemption bound.
#![allow(clippy::unwrap_used)] // tests may unwrap
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use scalewatch_core::loom_model::model;
use scalewatch_core::stats::FlightStats;

#[test]
fn a_reader_never_sees_negative_work_when_work_moves_between_threads() {
    model(|| {
        let stats = Arc::new(FlightStats::new());
        // Spawned first, so that it may read the owned cell before the start and the
        // shared one after the finish: the raw sum it adds up is then -1.
        let reader = {
            let stats = stats.clone();
            thread::spawn(move || (stats.in_flight(), stats.queued()))
        };
        // This thread owns the one slot; the finisher counts in the shared cell.
        stats.enqueue();
        let started = stats.start(10);
        let finisher = {
            let stats = stats.clone();
            thread::spawn(move || {
                stats.dequeue();
                stats.finish(started, 30);
            })
        };
        let (in_flight, queued) = reader.join().unwrap();
        finisher.join().unwrap();
        assert!(
            (0..=1).contains(&in_flight),
            "in flight read as {in_flight}"
        );
        assert!((0..=1).contains(&queued), "queued read as {queued}");
        assert_eq!((stats.in_flight(), stats.queued()), (0, 0));
    });
}

#[test]
fn concurrent_work_on_owned_and_shared_cells_sums_exactly() {
    model(|| {
        let stats = Arc::new(FlightStats::new());
        let a = stats.start(10);
        let finisher = {
            let stats = stats.clone();
            thread::spawn(move || stats.finish(a, 30))
        };
        let other = {
            let stats = stats.clone();
            thread::spawn(move || {
                let b = stats.start(20);
                stats.finish(b, 40);
            })
        };
        finisher.join().unwrap();
        other.join().unwrap();
        let t = stats.totals(50);
        assert_eq!((t.in_flight, t.queued), (0, 0));
        assert_eq!(t.completions, 2);
        // Both items were busy 20 ns: the integral is exact once nothing is in flight.
        assert_eq!(t.completed_latency, 40);
        assert_eq!(t.busy, 40);
    });
}
