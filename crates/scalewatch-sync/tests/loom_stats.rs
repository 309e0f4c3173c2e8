//! Loom models of the guard and statistics code of the std-backed wrappers, which run on
//! loom's `Mutex`/`RwLock` and atomics under `--cfg loom`. The interleavings of the threads
//! are explored up to 4 preemptions per execution
//! ([`scalewatch_core::loom_model::PREEMPTIONS`]): a few seconds in all, where the
//! unbounded search takes minutes (loom's docs find 2 or 3 enough for most bugs). Not
//! part of a normal `cargo test`; run with `scripts/loom`, or
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p scalewatch-sync --release --test loom_stats
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the bound.
#![allow(clippy::unwrap_used)] // tests may unwrap
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use scalewatch_core::loom_model::model;
use scalewatch_sync::{LockMetrics, Mutex, RwLock};

/// Runs `work` on `shared` in two new threads.
fn on_two_threads<T: Send + Sync + 'static>(
    shared: &Arc<T>,
    work: fn(&T),
) -> Vec<thread::JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let shared = shared.clone();
            thread::spawn(move || work(&shared))
        })
        .collect()
}

fn metrics() -> LockMetrics {
    LockMetrics::builder()
        .hold_sample_every(2)
        .build(&opentelemetry::global::meter("loom"))
        .unwrap()
}

#[test]
fn mutex_counts_every_acquisition_once_and_waiters_return_to_zero() {
    model(|| {
        let locks = metrics();
        let m = Arc::new(Mutex::new("m", 0u32, &locks));
        let workers = on_two_threads(&m, |m| *m.lock().unwrap() += 1);
        // A concurrent reader (the exporter) never sees a negative or impossible count.
        let seen = locks.counts("m").unwrap();
        assert!((0..=2).contains(&seen.waiters), "{seen:?}");
        assert!(seen.exclusive_uncontended + seen.exclusive_contended <= 2);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 2);
        let c = locks.counts("m").unwrap();
        assert_eq!(c.waiters, 0);
        assert_eq!(c.exclusive_uncontended + c.exclusive_contended, 3);
    });
}

/// Three threads read at once (shared holds do not order each other's counting). The
/// models have one owned slot (see `scalewatch_core::slot::slot_count`), so two of the
/// readers count in the shared cell: neither may lose the other's update.
#[test]
fn concurrent_reads_lose_no_count_in_owned_or_shared_cells() {
    model(|| {
        let locks = metrics();
        let l = Arc::new(RwLock::new("rw", 0u32, &locks));
        let readers = on_two_threads(&l, |l| assert_eq!(*l.read().unwrap(), 0));
        assert_eq!(*l.read().unwrap(), 0);
        for r in readers {
            r.join().unwrap();
        }
        let c = locks.counts("rw").unwrap();
        assert_eq!(c.waiters, 0);
        assert_eq!(c.shared_uncontended + c.shared_contended, 3);
    });
}

#[test]
fn rwlock_counts_reads_and_writes_by_mode() {
    model(|| {
        let locks = metrics();
        let l = Arc::new(RwLock::new("rw", 0u32, &locks));
        let writer = {
            let l = l.clone();
            thread::spawn(move || {
                *l.write().unwrap() += 1;
            })
        };
        let read = *l.read().unwrap();
        assert!(read <= 1);
        writer.join().unwrap();
        let c = locks.counts("rw").unwrap();
        assert_eq!(c.waiters, 0);
        assert_eq!(c.exclusive_uncontended + c.exclusive_contended, 1);
        assert_eq!(c.shared_uncontended + c.shared_contended, 1);
    });
}
