//! B4 and B8: recording one keyspace access, amortised, against a `HashMap<u64, u64>` get
//! of the same key, and two threads recording into one keyspace.
//!
//! Run: `cargo bench -p scalewatch-state --bench keyspace_access -- --measurement-time 2 --warm-up-time 1`
//!
//! Anchors in the same run: the bare key stream (`bare`), the `HashMap` get (`hashmap_get`),
//! recording with the default configuration, which is the one whose accuracy the tests
//! check (`keyspace_read`), recording with every access sampled (`keyspace_read_sample_all`),
//! and B5: recording into a keyspace built with `enabled(false)` (`keyspace_read_off`), whose
//! cost is its time minus `bare`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use scalewatch_state::Keyspace;
use scalewatch_test_support::workload::{XorShift, Zipf};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;
const STREAM: usize = 1 << 16;

/// A Zipf(1.1) key stream over 100,000 keys from a seeded xorshift.
fn zipf_stream() -> Vec<u64> {
    let zipf = Zipf::new(KEYS, 1.1);
    let mut rng = XorShift::new(0x5eed);
    (0..STREAM).map(|_| zipf.sample(&mut rng)).collect()
}

fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter_provider().meter("bench")
}

fn one_access(c: &mut Criterion) {
    let stream = zipf_stream();
    let map: HashMap<u64, u64> = (0..KEYS as u64).map(|k| (k, k)).collect();
    let ks = Keyspace::builder("bench").build(&meter()).expect("valid");
    let all = Keyspace::builder("bench-all")
        .sample_every(1)
        .build(&meter())
        .expect("valid");
    let off = Keyspace::builder("bench-off")
        .enabled(false)
        .build(&meter())
        .expect("valid");
    let mut g = c.benchmark_group("record_one_access");
    let mut i = 0usize;
    g.bench_function("bare", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            black_box(stream[i])
        })
    });
    g.bench_function("hashmap_get", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            black_box(map.get(&stream[i]))
        })
    });
    g.bench_function("keyspace_read", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            ks.read(black_box(&stream[i]))
        })
    });
    g.bench_function("keyspace_read_sample_all", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            all.read(black_box(&stream[i]))
        })
    });
    g.bench_function("keyspace_read_off", |b| {
        b.iter(|| {
            i = (i + 1) & (STREAM - 1);
            off.read(black_box(&stream[i]))
        })
    });
    g.finish();
}

/// `threads` threads each run `access` on `iters` keys of the stream behind a barrier; the
/// time reported is the wall time until all are done, so perfect scaling keeps it equal
/// to one thread's.
fn contended<F>(access: &Arc<F>, stream: &Arc<Vec<u64>>, threads: usize, iters: u64) -> Duration
where
    F: Fn(&u64) + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (access, stream, barrier) = (access.clone(), stream.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut i = t * 7919;
                for _ in 0..iters {
                    i = (i + 1) & (STREAM - 1);
                    access(black_box(&stream[i]));
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed()
}

fn scaling(c: &mut Criterion) {
    let stream = Arc::new(zipf_stream());
    let ks = Keyspace::builder("bench-threads")
        .shards(16)
        .build(&meter())
        .expect("valid");
    let record = Arc::new(move |key: &u64| ks.read(key));
    // The machine's own ceiling: the same threads reading one shared, read-only map,
    // which no write ever contends.
    let map: Arc<HashMap<u64, u64>> = Arc::new((0..KEYS as u64).map(|k| (k, k)).collect());
    let get = Arc::new(move |key: &u64| {
        black_box(map.get(key));
    });
    // And arithmetic on the key alone, which shares nothing but the read-only stream.
    let mix = Arc::new(|key: &u64| {
        black_box(key.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17));
    });
    let mut g = c.benchmark_group("threads_recording_into_one_keyspace");
    for threads in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("keyspace", threads), &threads, |b, &n| {
            b.iter_custom(|iters| contended(&record, &stream, n, iters))
        });
        g.bench_with_input(
            BenchmarkId::new("hashmap_get", threads),
            &threads,
            |b, &n| b.iter_custom(|iters| contended(&get, &stream, n, iters)),
        );
        g.bench_with_input(BenchmarkId::new("mix", threads), &threads, |b, &n| {
            b.iter_custom(|iters| contended(&mix, &stream, n, iters))
        });
    }
    g.finish();
}

criterion_group!(benches, one_access, scaling);
criterion_main!(benches);
