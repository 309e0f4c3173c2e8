//! `scalewatch.runtime.schedule.delay` under `--cfg tokio_unstable` and feature
//! `schedule-latency` (run by `scripts/tokio-unstable`): every poll the runtime made while
//! the tier was alive is exported once, and the values are the delays tokio measured, not
//! the open end of its last bucket.
//!
//! The expected count is the test's own: it spawns the tasks and knows how often each is
//! polled. One task is planted behind a worker the test blocks on purpose, so at least one
//! delay is longer than tokio's last bucket boundary (900 µs with the default histogram).
#![cfg(all(tokio_unstable, feature = "schedule-latency"))]
#![allow(clippy::unwrap_used)]

use scalewatch_core::catalog::attr;
use scalewatch_runtime::{catalog, RuntimeTier};
use scalewatch_test_support::{FakeReceiver, Histogram};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Tasks spawned, and how often each yields: each is polled `YIELDS + 1` times.
const TASKS: u64 = 200;
const YIELDS: u64 = 9;
/// How long the planted blocker holds the only worker after the delayed task is queued.
const BLOCK: Duration = Duration::from_millis(3);
/// The same bound for every handshake and wait of the test.
const WAIT: Duration = Duration::from_secs(10);

/// Polls recorded in tokio's own schedule-latency histogram, all buckets and workers.
fn tokio_polls(metrics: &tokio::runtime::RuntimeMetrics) -> u64 {
    (0..metrics.schedule_latency_histogram_num_buckets())
        .flat_map(|b| {
            (0..metrics.num_workers())
                .map(move |w| metrics.schedule_latency_histogram_bucket_count(w, b))
        })
        .sum()
}

#[test]
fn schedule_delay_is_exported_from_tokio_unstable_metrics() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry =
        scalewatch_test_support::telemetry_to(&receiver, scalewatch_otlp::Protocol::Grpc);
    let provider = telemetry.meter_provider().unwrap().clone();
    // One worker: the planted delay below cannot be cut short by another worker stealing.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .enable_metrics_schedule_latency_histogram()
        .build()
        .unwrap();
    let metrics = rt.handle().metrics();
    assert!(metrics.schedule_latency_histogram_enabled());
    let last_bucket = metrics.schedule_latency_histogram_num_buckets() - 1;
    let open_end_starts_at = metrics
        .schedule_latency_histogram_bucket_range(last_bucket)
        .start;
    assert!(
        BLOCK > open_end_starts_at,
        "the planted delay reaches the open-ended bucket"
    );
    let _tier = RuntimeTier::builder(rt.handle().clone())
        .name("unstable")
        .build(&telemetry.meter())
        .unwrap();
    let before = tokio_polls(&metrics);

    // TASKS tasks that yield YIELDS times each.
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            rt.spawn(async {
                for _ in 0..YIELDS {
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    rt.block_on(async {
        for task in tasks {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    });

    // The planted delay: the blocker holds the only worker until `delayed` is queued, then
    // BLOCK more; `delayed` waits at least that long to be polled. Polled once each.
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        started_tx.send(()).unwrap();
        go_rx.recv_timeout(WAIT).unwrap();
        std::thread::sleep(BLOCK);
    });
    started_rx.recv_timeout(WAIT).unwrap();
    let queued = Instant::now();
    let delayed = rt.spawn(async move { queued.elapsed() });
    go_tx.send(()).unwrap();
    let waited = rt.block_on(async {
        tokio::time::timeout(WAIT, blocker).await.unwrap().unwrap();
        tokio::time::timeout(WAIT, delayed).await.unwrap().unwrap()
    });
    assert!(waited >= BLOCK, "the delayed task waited {waited:?}");
    let expected = TASKS * (YIELDS + 1) + 2;

    // Workers hand their histogram to the runtime's metrics in batches (when they park):
    // wait, bounded, until tokio shows every poll.
    let deadline = Instant::now() + WAIT;
    while tokio_polls(&metrics) - before < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        tokio_polls(&metrics) - before,
        expected,
        "polls tokio recorded"
    );

    // The first collection records the polls (in the gauges' callback), the second is
    // certain to carry them; the runtime is idle, so nothing is added in between.
    provider.force_flush().unwrap();
    provider.force_flush().unwrap();
    let m = receiver.metrics();
    let points = m.matching(
        catalog::RUNTIME_SCHEDULE_DELAY.name,
        &[(attr::TIER_NAME, "unstable"), (attr::TIER_KIND, "runtime")],
    );
    assert_eq!(points.len(), 1, "{}", m.describe());
    let Some(&Histogram {
        count,
        sum,
        min: Some(min),
        max: Some(max),
        ..
    }) = points[0].histogram()
    else {
        panic!("a histogram with a min and a max: {}", points[0]);
    };
    assert_eq!(count, expected, "every poll exported once");
    eprintln!(
        "schedule delay: {count} polls, mean {:.1} µs, min {:.1} µs, max {:.1} µs; planted {waited:?}",
        sum / count as f64 * 1e6,
        min * 1e6,
        max * 1e6
    );
    // Sane values: no delay below zero, none longer than the whole test, and the planted
    // one shows at least where tokio's open-ended last bucket starts.
    assert!(min >= 0.0, "min {min}");
    assert!(max >= open_end_starts_at.as_secs_f64(), "max {max}");
    assert!(max <= WAIT.as_secs_f64(), "max {max} s");
    assert!(sum <= count as f64 * max, "sum {sum}");
    assert_eq!(
        m.unit(catalog::RUNTIME_SCHEDULE_DELAY.name).as_deref(),
        Some(catalog::RUNTIME_SCHEDULE_DELAY.unit)
    );
}
