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
use scalewatch_sync::{LockMetrics, DEFAULT_HOLD_SAMPLE_EVERY};
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

fn uncontended(c: &mut Criterion) {
    let (_p, locks) = metrics(DEFAULT_HOLD_SAMPLE_EVERY, true);
    let (_p0, unsampled) = metrics(0, true);
    let (_p_off, off) = metrics(DEFAULT_HOLD_SAMPLE_EVERY, false);
    let mut g = c.benchmark_group("uncontended");
    let bare = std::sync::Mutex::new(0u64);
    g.bench_function("std/bare", |b| {
        b.iter(|| *black_box(&bare).lock().unwrap() += 1)
    });
    let ours = scalewatch_sync::Mutex::new("bench-std", 0u64, &locks);
    g.bench_function("std/instrumented", |b| {
        b.iter(|| *black_box(&ours).lock().unwrap() += 1)
    });
    let ours0 = scalewatch_sync::Mutex::new("bench-std-nosample", 0u64, &unsampled);
    g.bench_function("std/instrumented-no-hold-sampling", |b| {
        b.iter(|| *black_box(&ours0).lock().unwrap() += 1)
    });
    let ours_off = scalewatch_sync::Mutex::new("bench-std-off", 0u64, &off);
    g.bench_function("std/off", |b| {
        b.iter(|| *black_box(&ours_off).lock().unwrap() += 1)
    });
    let bare = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot/bare", |b| {
        b.iter(|| *black_box(&bare).lock() += 1)
    });
    let ours = scalewatch_sync::parking_lot::Mutex::new("bench-pl", 0u64, &locks);
    g.bench_function("parking_lot/instrumented", |b| {
        b.iter(|| *black_box(&ours).lock() += 1)
    });
    let ours_off = scalewatch_sync::parking_lot::Mutex::new("bench-pl-off", 0u64, &off);
    g.bench_function("parking_lot/off", |b| {
        b.iter(|| *black_box(&ours_off).lock() += 1)
    });
    let bare = std::sync::RwLock::new(0u64);
    g.bench_function("std-rwlock-read/bare", |b| {
        b.iter(|| *black_box(&bare).read().unwrap())
    });
    let ours = scalewatch_sync::RwLock::new("bench-rw", 0u64, &locks);
    g.bench_function("std-rwlock-read/instrumented", |b| {
        b.iter(|| *black_box(&ours).read().unwrap())
    });
    let ours_off = scalewatch_sync::RwLock::new("bench-rw-off", 0u64, &off);
    g.bench_function("std-rwlock-read/off", |b| {
        b.iter(|| *black_box(&ours_off).read().unwrap())
    });
    let bare = std::sync::RwLock::new(0u64);
    g.bench_function("std-rwlock-write/bare", |b| {
        b.iter(|| *black_box(&bare).write().unwrap() += 1)
    });
    let ours = scalewatch_sync::RwLock::new("bench-rw-w", 0u64, &locks);
    g.bench_function("std-rwlock-write/instrumented", |b| {
        b.iter(|| *black_box(&ours).write().unwrap() += 1)
    });
    let ours_off = scalewatch_sync::RwLock::new("bench-rw-w-off", 0u64, &off);
    g.bench_function("std-rwlock-write/off", |b| {
        b.iter(|| *black_box(&ours_off).write().unwrap() += 1)
    });
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
