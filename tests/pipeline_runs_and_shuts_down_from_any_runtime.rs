//! The pipeline starts, exports and shuts down from plain `fn main`, a current-thread
//! runtime and a multi-thread runtime; shutdown returns within its deadline (plus 1.5 s
//! of slack for a loaded machine) even when the collector never answers, and twice is
//! harmless.
#![allow(clippy::unwrap_used)]

mod common;

use scalewatch::catalog;
use scalewatch::{Protocol, ServerTierLayer, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, Fault, OtlpListener as _};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(1);
/// The promise is deadline + 0.5 s; the margin beyond covers a loaded test machine.
const SLACK: Duration = Duration::from_millis(1500);

fn record_and_shut_down(receiver: &FakeReceiver, protocol: Protocol) -> Duration {
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(receiver.endpoint(protocol))
        .protocol(protocol)
        .export_interval(Duration::from_secs(3600))
        .export_timeout(Duration::from_millis(500))
        .shutdown_timeout(DEADLINE)
        .build()
        .unwrap();
    let layer = common::server_layer(&telemetry, "shutdown");
    drop(layer.tier().enter());
    let started = Instant::now();
    let _ = telemetry.shutdown();
    started.elapsed()
}

fn check_everywhere(protocol: Protocol) {
    let receiver = FakeReceiver::start_blocking();

    // Plain fn main: no runtime at all.
    let took = record_and_shut_down(&receiver, protocol);
    assert!(took <= DEADLINE + SLACK, "plain thread: {took:?}");
    receiver.wait_for_metrics_blocking(Duration::from_secs(10), |m| {
        m.names().contains(catalog::TIER_CONCURRENCY.name)
    });

    // A current-thread runtime, then a multi-thread one, with the collector black-holed.
    receiver.set_fault(Fault::BlackHole);
    let assert_shuts_down_in_time = |builder: &mut tokio::runtime::Builder, kind: &str| {
        let runtime = builder.enable_all().build().unwrap();
        let took = runtime.block_on(async { record_and_shut_down(&receiver, protocol) });
        assert!(took <= DEADLINE + SLACK, "{kind}, black hole: {took:?}");
    };
    assert_shuts_down_in_time(
        &mut tokio::runtime::Builder::new_current_thread(),
        "current_thread",
    );
    assert_shuts_down_in_time(
        tokio::runtime::Builder::new_multi_thread().worker_threads(1),
        "multi_thread",
    );
    receiver.set_fault(Fault::None);
}

scalewatch_test_support::over_both_protocols! {
    check_everywhere => pipeline_runs_and_shuts_down_from_any_runtime_over_grpc,
        pipeline_runs_and_shuts_down_from_any_runtime_over_http;
}

#[test]
fn shutting_down_twice_and_dropping_is_harmless() {
    for protocol in common::PROTOCOLS {
        let receiver = FakeReceiver::start_blocking();
        let telemetry = common::telemetry_to(&receiver, protocol);
        telemetry.force_flush().unwrap();
        telemetry.shutdown().unwrap();
        // A second pipeline dropped without an explicit shutdown flushes on drop.
        let telemetry = common::telemetry_to(&receiver, protocol);
        let tier = scalewatch::Tier::builder("dropped", scalewatch::TierKind::Custom)
            .build(&telemetry.meter())
            .unwrap();
        drop(tier.enter());
        drop(telemetry);
        receiver.wait_for_metrics_blocking(Duration::from_secs(10), |m| {
            !m.matching(
                catalog::TIER_CONCURRENCY.name,
                &[(catalog::attr::TIER_NAME, "dropped")],
            )
            .is_empty()
        });
    }
}

#[test]
fn invalid_variables_are_errors_that_name_them() {
    let err = TelemetryBuilder::from_vars([(
        "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
        "smoke-signals".to_owned(),
    )])
    .build()
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{text}");
    assert!(text.contains("grpc"), "says what is valid: {text}");
    let err = TelemetryBuilder::from_vars([(
        "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
        "authorization=Bearer%20sentinel-secret,broken".to_owned(),
    )])
    .build()
    .unwrap_err();
    assert!(!err.to_string().contains("sentinel-secret"), "{err}");
}

#[test]
fn disabled_sdk_records_nothing_and_exports_nothing() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = TelemetryBuilder::from_vars([
        ("OTEL_SDK_DISABLED".to_owned(), "true".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            receiver.http_endpoint(),
        ),
    ])
    .build()
    .unwrap();
    assert!(telemetry.meter_provider().is_none());
    let layer = ServerTierLayer::builder()
        .build(&telemetry.meter())
        .unwrap();
    drop(layer.tier().enter());
    telemetry.shutdown().unwrap();
    assert_eq!(
        receiver.export_count(scalewatch_test_support::Signal::Metrics),
        0
    );
}
