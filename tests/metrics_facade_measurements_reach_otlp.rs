//! Measurements an application makes with the `metrics` crate reach the same OTLP pipeline
//! through the bridge recorder, exactly.
#![allow(clippy::unwrap_used)]

mod common;

use scalewatch::metrics_bridge::OtelRecorder;
use scalewatch::Protocol;
use scalewatch_test_support::FakeReceiver;

#[test]
fn metrics_facade_measurements_reach_otlp() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    let recorder = OtelRecorder::new(telemetry.meter());
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!("cache.lookup.duration", metrics::Unit::Seconds, "lookups");
        for i in 0..100 {
            metrics::counter!("cache.hits", "cache" => "users").increment(1);
            metrics::histogram!("cache.lookup.duration").record(f64::from(i) / 1000.0);
        }
        metrics::gauge!("cache.entries").set(42.0);
    });
    telemetry.force_flush().unwrap();
    let m = receiver.metrics();
    assert_eq!(m.sum("cache.hits", &[("cache", "users")]), 100.0);
    assert_eq!(m.histogram_count("cache.lookup.duration", &[]), 100);
    assert_eq!(m.unit("cache.lookup.duration").as_deref(), Some("s"));
    assert_eq!(m.sum("cache.entries", &[]), 42.0);
}
