//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the demo shop exports its signals over OTLP as
//! it runs: the server tier's requests by route, the planted lock, the pool, the catalog's
//! keyspace and the capacity model's ranking reach an in-process receiver.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use scalewatch_test_support::{FakeReceiver, OtlpListener as _};

#[test]
fn demo_exports_its_signals_when_an_endpoint_is_set() {
    let receiver = FakeReceiver::start_blocking();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .args(["demo", "--levels", "1,2,3,4", "--duration", "4s"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Shutdown flushed before the process exited: everything is here already.
    let metrics = receiver.wait_for_metrics_blocking(Duration::from_secs(5), |m| {
        m.histogram_count(
            "http.server.request.duration",
            &[("http.route", "/checkout/{cart}")],
        ) > 0
    });
    assert_eq!(
        metrics
            .resource_attributes()
            .get("service.name")
            .map(String::as_str),
        Some("scalewatch-demo")
    );
    for route in ["/checkout/{cart}", "/items/{id}", "/recommendations/{user}"] {
        assert!(
            metrics.histogram_count("http.server.request.duration", &[("http.route", route)]) > 0,
            "no requests of {route}"
        );
    }
    let names = metrics.names();
    for name in [
        "scalewatch.tier.concurrency",
        "scalewatch.lock.wait.duration",
        "scalewatch.state.shard.skew",
        "scalewatch.lock.acquisitions",
        "scalewatch.pool.usage",
        "scalewatch.state.operations",
        "scalewatch.resource.utilization",
    ] {
        assert!(names.contains(name), "{name} not exported; got {names:?}");
    }
    let inventory = metrics.matching(
        "scalewatch.resource.utilization",
        &[("scalewatch.resource.name", "inventory")],
    );
    assert_eq!(inventory.len(), 1, "{}", metrics.describe());
}
