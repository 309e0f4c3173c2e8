//! Loom models of the guard and statistics code of the std-backed wrappers, which run on
//! loom's `Mutex`/`RwLock` and atomics under `--cfg loom`. Every interleaving of two
//! threads is explored. Not part of a normal `cargo test`; run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=/work/target-sync \
//!     cargo test -p scalewatch-sync --release --test loom_stats
//! ```
#![allow(clippy::unwrap_used)] // tests may unwrap
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use scalewatch_sync::{LockMetrics, Mutex, RwLock};

fn metrics() -> LockMetrics {
    LockMetrics::builder()
        .hold_sample_every(2)
        .build(&opentelemetry::global::meter("loom"))
        .unwrap()
}

#[test]
fn mutex_counts_every_acquisition_once_and_waiters_return_to_zero() {
    loom::model(|| {
        let locks = metrics();
        let m = Arc::new(Mutex::new("m", 0u32, &locks));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    *m.lock().unwrap() += 1;
                })
            })
            .collect();
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

#[test]
fn rwlock_counts_reads_and_writes_by_mode() {
    loom::model(|| {
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
