//! Ten times the label-set cap in distinct keys, through the OTLP pipeline to the fake
//! receiver: the label sets under the cap keep exact values of their own, and past it
//! every measurement keeps its meaning or is dropped and counted, never mixed. Counter
//! increments add up exactly in the overflow series, `absolute` past the cap neither
//! double-counts nor moves it, gauges past the cap are dropped, histogram samples fold
//! with exact count and sum, and `scalewatch.sdk.overflow` counts each one by metric name.
#![allow(clippy::unwrap_used)]

use scalewatch_metrics_bridge::{OtelRecorder, OVERFLOW_ATTRIBUTE};
use scalewatch_test_support::pipeline::grpc_pipeline;

const CAP: u64 = 50;

/// The value recorded for key `k`.
type PerKey = fn(u64) -> u64;
const KEYS: u64 = 10 * CAP;

#[test]
fn ten_times_the_cap_keeps_values_apart() {
    let (receiver, telemetry) = grpc_pipeline();
    let recorder = OtelRecorder::builder(telemetry.meter())
        .max_label_sets(CAP as usize)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        // Each call registers its key again, as a macro at a call site does.
        for _round in 0..2 {
            for k in 0..KEYS {
                metrics::counter!("jobs.done", "k" => k.to_string()).increment(k + 1);
            }
        }
        for round in 1..=3 {
            for k in 0..KEYS {
                metrics::counter!("bytes.total", "k" => k.to_string())
                    .absolute(100 * (k + 1) * round);
            }
        }
        // A handle past the cap, kept and used for both: increments count, totals do not.
        let mixed_under = metrics::counter!("mixed", "k" => "under");
        mixed_under.absolute(7);
        for k in 1..CAP {
            metrics::counter!("mixed", "k" => k.to_string()).increment(1);
        }
        let mixed_over = metrics::counter!("mixed", "k" => "over");
        mixed_over.increment(5);
        mixed_over.absolute(1_000);
        mixed_over.increment(5);
        mixed_over.absolute(2_000);
        for k in 0..KEYS {
            let gauge = metrics::gauge!("queue.depth", "k" => k.to_string());
            gauge.set(k as f64);
            gauge.increment(1.0);
        }
        for _round in 0..2 {
            for k in 0..KEYS {
                metrics::histogram!("latency", "k" => k.to_string()).record(k as f64);
            }
        }
    });
    telemetry.force_flush().unwrap();
    let m = receiver.metrics();
    let overflow = [(OVERFLOW_ATTRIBUTE, "true")];
    let past = KEYS - CAP;
    let sum_over = |f: &dyn Fn(u64) -> u64| (CAP..KEYS).map(f).sum::<u64>() as f64;

    // Under the cap every key is exact: counter increments, counter totals whatever the
    // repetition, and gauges.
    let under_the_cap: [(&str, PerKey); 3] = [
        ("jobs.done", |k| 2 * (k + 1)),
        ("bytes.total", |k| 300 * (k + 1)),
        ("queue.depth", |k| k + 1),
    ];
    for (name, value) in under_the_cap {
        for k in 0..CAP {
            let key = k.to_string();
            assert_eq!(m.sum(name, &[("k", &key)]), value(k) as f64, "{name} k={k}");
        }
    }
    // Past it: counter increments summed exactly, counter totals dropped.
    assert_eq!(m.series("jobs.done"), CAP as usize + 1);
    assert_eq!(m.sum("jobs.done", &overflow), sum_over(&|k| 2 * (k + 1)));
    assert_eq!(m.sum("bytes.total", &overflow), 0.0);

    // A held handle past the cap: its increments, not its totals.
    assert_eq!(m.sum("mixed", &[("k", "under")]), 7.0);
    assert_eq!(m.sum("mixed", &overflow), 10.0);

    // Gauges: none exported past the cap.
    assert_eq!(m.series("queue.depth"), CAP as usize);
    assert!(m.matching("queue.depth", &overflow).is_empty());

    // Histograms: exact count and sum, under the cap and in the overflow series.
    for k in 0..CAP {
        let key = k.to_string();
        assert_eq!(m.histogram_count("latency", &[("k", &key)]), 2, "k={k}");
        assert_eq!(m.sum("latency", &[("k", &key)]), (2 * k) as f64, "k={k}");
    }
    assert_eq!(m.histogram_count("latency", &overflow), 2 * past);
    assert_eq!(m.sum("latency", &overflow), sum_over(&|k| 2 * k));

    // Every measurement past the cap, kept or dropped, counted by metric name.
    let overflowed = |name: &str| {
        m.sum(
            "scalewatch.sdk.overflow",
            &[("scalewatch.sdk.signal", name)],
        )
    };
    assert_eq!(overflowed("jobs.done"), (2 * past) as f64);
    assert_eq!(overflowed("bytes.total"), (3 * past) as f64);
    assert_eq!(overflowed("mixed"), 4.0);
    assert_eq!(overflowed("queue.depth"), (2 * past) as f64);
    assert_eq!(overflowed("latency"), (2 * past) as f64);
    telemetry.shutdown().unwrap();
}
