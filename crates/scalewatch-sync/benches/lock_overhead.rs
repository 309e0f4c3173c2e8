//! B3: the instrumented locks against the bare primitives, in one run.
//!
//! `cargo bench -p scalewatch-sync --features parking_lot --bench lock_overhead`
//! - uncontended lock + unlock: std bare vs instrumented (default hold sampling),
//!   parking_lot bare vs instrumented, and instrumented with hold sampling off (the
//!   counting alone); std `RwLock` reads and writes the same way;
//! - B5, the same locks built from `LockMetrics` with `enabled(false)` (`…/off`): at most
//!   about 1 ns above bare;
//! - contended: 2 threads on one lock behind a barrier (`iter_custom`), bare vs instrumented;
//! - two threads on two different locks: does shared statistics state slow them down?

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_sync::parking_lot::Mutex as ParkingLotMutex;
use scalewatch_sync::{LockMetrics, Mutex, RwLock, DEFAULT_HOLD_SAMPLE_EVERY};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn metrics(
    sample_every: u32,
    enabled: bool,
) -> (opentelemetry_sdk::metrics::SdkMeterProvider, LockMetrics) {
    // A provider with no reader: instruments record as in production, nothing exports.
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let meter = provider.meter("bench");
    let locks = LockMetrics::builder()
        .enabled(enabled)
        .hold_sample_every(sample_every)
        .build(&meter)
        .unwrap();
    (provider, locks)
}

/// Benchmarks `$op` on each `(variant, lock)` as `"$kind/variant"` in the group `$g`, with
/// `$l` bound to the lock behind `black_box`: the bare primitive and its instrumented
/// wrappers have different types but the same operation, written once.
macro_rules! bench_locks {
    ($g:expr, $kind:literal, |$l:ident| $op:expr, [$(($variant:literal, $lock:expr)),+ $(,)?]) => {$({
        let lock = $lock;
        $g.bench_function(concat!($kind, "/", $variant), |b| {
            b.iter(|| {
                let $l = black_box(&lock);
                $op
            })
        });
    })+};
}

fn uncontended(c: &mut Criterion) {
    let (_p, locks) = metrics(DEFAULT_HOLD_SAMPLE_EVERY, true);
    let (_p0, unsampled) = metrics(0, true);
    let (_p_off, off) = metrics(DEFAULT_HOLD_SAMPLE_EVERY, false);
    let mut g = c.benchmark_group("uncontended");
    bench_locks!(
        g,
        "std",
        |l| *l.lock().unwrap() += 1,
        [
            ("bare", std::sync::Mutex::new(0u64)),
            ("instrumented", Mutex::new("bench-std", 0u64, &locks)),
            (
                "instrumented-no-hold-sampling",
                Mutex::new("bench-std-nosample", 0u64, &unsampled)
            ),
            ("off", Mutex::new("bench-std-off", 0u64, &off)),
        ]
    );
    bench_locks!(
        g,
        "parking_lot",
        |l| *l.lock() += 1,
        [
            ("bare", parking_lot::Mutex::new(0u64)),
            (
                "instrumented",
                ParkingLotMutex::new("bench-pl", 0u64, &locks)
            ),
            ("off", ParkingLotMutex::new("bench-pl-off", 0u64, &off)),
        ]
    );
    bench_locks!(
        g,
        "std-rwlock-read",
        |l| *l.read().unwrap(),
        [
            ("bare", std::sync::RwLock::new(0u64)),
            ("instrumented", RwLock::new("bench-rw", 0u64, &locks)),
            ("off", RwLock::new("bench-rw-off", 0u64, &off)),
        ]
    );
    bench_locks!(
        g,
        "std-rwlock-write",
        |l| *l.write().unwrap() += 1,
        [
            ("bare", std::sync::RwLock::new(0u64)),
            ("instrumented", RwLock::new("bench-rw-w", 0u64, &locks)),
            ("off", RwLock::new("bench-rw-w-off", 0u64, &off)),
        ]
    );
    g.finish();
}

/// `threads` threads each doing `per_thread` lock+unlock on `lock_of(thread)`, started
/// together; returns the wall time of the slowest.
fn run_threads<L: Send + Sync + 'static>(
    locks: Vec<Arc<L>>,
    per_thread: u64,
    op: fn(&L),
) -> Duration {
    let barrier = Arc::new(Barrier::new(locks.len()));
    let handles: Vec<_> = locks
        .into_iter()
        .map(|l| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                for _ in 0..per_thread {
                    op(&l);
                }
                t.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap_or_default()
}

fn threads(c: &mut Criterion) {
    let (_p, locks) = metrics(DEFAULT_HOLD_SAMPLE_EVERY, true);
    let mut g = c.benchmark_group("two-threads");
    g.sample_size(20);
    for (case, shared) in [("same-lock", true), ("different-locks", false)] {
        let bare_a = Arc::new(std::sync::Mutex::new(0u64));
        let bare_b = if shared {
            bare_a.clone()
        } else {
            Arc::new(std::sync::Mutex::new(0u64))
        };
        g.bench_function(BenchmarkId::new("std/bare", case), |b| {
            b.iter_custom(|iters| {
                run_threads(vec![bare_a.clone(), bare_b.clone()], iters, |l| {
                    *l.lock().unwrap() += 1
                })
            })
        });
        let ours_a = Arc::new(scalewatch_sync::Mutex::new("bench-a", 0u64, &locks));
        let ours_b = if shared {
            ours_a.clone()
        } else {
            Arc::new(scalewatch_sync::Mutex::new("bench-b", 0u64, &locks))
        };
        g.bench_function(BenchmarkId::new("std/instrumented", case), |b| {
            b.iter_custom(|iters| {
                run_threads(vec![ours_a.clone(), ours_b.clone()], iters, |l| {
                    *l.lock().unwrap() += 1
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, uncontended, threads);
criterion_main!(benches);
