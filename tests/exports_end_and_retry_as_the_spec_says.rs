//! R2: against a collector that errors or never answers, every export and the shutdown end
//! within their deadlines; retryable codes are retried, others are not, and recording never
//! waits for any of it.
#![allow(clippy::unwrap_used)]

mod common;

use scalewatch::{Protocol, ServerTierLayer, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, Fault, OtlpListener as _, Signal};
use std::time::{Duration, Instant};

const EXPORT_TIMEOUT: Duration = Duration::from_millis(500);

fn pipeline(receiver: &FakeReceiver, protocol: Protocol) -> scalewatch::Telemetry {
    TelemetryBuilder::from_vars([])
        .endpoint(receiver.endpoint(protocol))
        .protocol(protocol)
        .export_interval(Duration::from_secs(3600))
        .export_timeout(EXPORT_TIMEOUT)
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn attempts_for(protocol: Protocol, fault: Fault) -> u64 {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = pipeline(&receiver, protocol);
    let layer = ServerTierLayer::builder()
        .build(&telemetry.meter())
        .unwrap();
    drop(layer.tier().enter());
    receiver.set_fault(fault);
    assert!(telemetry.force_flush().is_err(), "the export failed");
    let attempts = receiver.export_count(Signal::Metrics);
    receiver.set_fault(Fault::None);
    telemetry.shutdown().unwrap();
    attempts
}

fn check(protocol: Protocol) {
    let retryable = attempts_for(protocol, Fault::status(tonic::Code::Unavailable, 503));
    assert!(
        retryable > 1,
        "UNAVAILABLE/503 is retried ({retryable} attempts)"
    );
    let permanent = attempts_for(protocol, Fault::status(tonic::Code::InvalidArgument, 400));
    assert_eq!(permanent, 1, "INVALID_ARGUMENT/400 is not retried");

    // A black hole: the flush gives up, recording goes on untouched, shutdown returns.
    let receiver = FakeReceiver::start_blocking();
    receiver.set_fault(Fault::BlackHole);
    let telemetry = pipeline(&receiver, protocol);
    let layer = ServerTierLayer::builder()
        .build(&telemetry.meter())
        .unwrap();
    let flusher = {
        let provider = telemetry.meter_provider().unwrap().clone();
        std::thread::spawn(move || provider.force_flush())
    };
    for _ in 0..10_000 {
        drop(layer.tier().enter());
    }
    assert_eq!(layer.tier().in_flight(), 0);
    assert!(
        flusher.join().unwrap().is_err(),
        "a black-holed export fails"
    );
    let started = Instant::now();
    let _ = telemetry.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

scalewatch_test_support::over_both_protocols! {
    check => exports_end_and_retry_as_the_spec_says_over_grpc,
        exports_end_and_retry_as_the_spec_says_over_http;
}
