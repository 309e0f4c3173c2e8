//! Each scripted fault of the fake receiver does to a real OpenTelemetry SDK exporter what a
//! misbehaving collector would: error statuses fail (and are retried), a black hole makes a
//! flush time out in bounded time, a delay slows the export; faulted data is never recorded.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::RetryPolicy;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use scalewatch_test_support::pipeline::Protocol;
use scalewatch_test_support::sdk::{
    flush_meters, flush_tracers, shut_down_meters, shut_down_tracers, Options,
};
use scalewatch_test_support::{
    over_both_protocols, FakeReceiver, Fault, OtlpListener as _, Signal,
};

/// A fresh receiver, and a meter provider exporting to it over `protocol` with the
/// options `configure` sets, which has counted `n` requests.
async fn recording(
    protocol: Protocol,
    n: u64,
    configure: impl FnOnce(&mut Options),
) -> (FakeReceiver, SdkMeterProvider) {
    let receiver = FakeReceiver::start().await;
    let mut options = Options::new(protocol);
    configure(&mut options);
    let provider = options.meter_provider_to(&receiver);
    provider
        .meter("faults")
        .u64_counter("fault.requests")
        .build()
        .add(n, &[KeyValue::new("route", "/f")]);
    (receiver, provider)
}

async fn flush(provider: &SdkMeterProvider) -> (Result<(), String>, Duration) {
    let start = Instant::now();
    let result = flush_meters(provider).await;
    (result.map_err(|e| e.to_string()), start.elapsed())
}

async fn status_fault(protocol: Protocol) {
    let (receiver, provider) = recording(protocol, 4, |o| {
        o.retry = RetryPolicy::recommended().with_max_retries(2)
    })
    .await;

    // Retryable: the initial attempt and 2 retries, all rejected.
    receiver.set_fault(Fault::status(tonic::Code::Unavailable, 503));
    let (result, _) = flush(&provider).await;
    assert!(
        result.is_err(),
        "flush must fail while the receiver answers 503/UNAVAILABLE"
    );
    assert_eq!(receiver.export_count(Signal::Metrics), 3);
    assert_eq!(receiver.accepted_count(Signal::Metrics), 0);
    assert!(
        receiver.metrics().is_empty(),
        "faulted data must not be recorded"
    );

    // Not retryable: one attempt.
    receiver.set_fault(Fault::status(tonic::Code::PermissionDenied, 400));
    let (result, _) = flush(&provider).await;
    assert!(result.is_err());
    assert_eq!(receiver.export_count(Signal::Metrics), 4);
    assert!(receiver.metrics().is_empty());

    // Cleared: the cumulative total arrives.
    receiver.set_fault(Fault::None);
    let (result, _) = flush(&provider).await;
    result.expect("flush after the fault is cleared");
    assert_eq!(receiver.export_count(Signal::Metrics), 5);
    assert_eq!(receiver.accepted_count(Signal::Metrics), 1);
    assert_eq!(receiver.metrics().sum("fault.requests", &[]), 4.0);
    shut_down_meters(provider).await;
}

over_both_protocols! {
    async status_fault => grpc_status_fault_fails_flushes_and_drops_data, http_status_fault_fails_flushes_and_drops_data;
}

async fn retry_after_fault(protocol: Protocol) {
    let (receiver, provider) = recording(protocol, 1, |o| {
        o.retry = RetryPolicy::recommended().with_max_retries(1)
    })
    .await;
    receiver.set_fault(Fault::Status {
        grpc: tonic::Code::ResourceExhausted,
        http: 429,
        retry_after: Some(Duration::from_secs(1)),
    });
    let (result, elapsed) = flush(&provider).await;
    assert!(result.is_err());
    assert_eq!(
        receiver.export_count(Signal::Metrics),
        2,
        "one throttled retry"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "the retry must wait for the server's 1 s hint, took {elapsed:?}"
    );
    // Shutdown exports once more: let it through.
    receiver.set_fault(Fault::None);
    shut_down_meters(provider).await;
}

over_both_protocols! {
    async retry_after_fault => grpc_retry_after_is_honoured, http_retry_after_is_honoured;
}

async fn black_hole(protocol: Protocol) {
    let (receiver, provider) =
        recording(protocol, 2, |o| o.timeout = Duration::from_millis(500)).await;
    receiver.set_fault(Fault::BlackHole);
    let (result, elapsed) = flush(&provider).await;
    assert!(result.is_err(), "a black-holed flush must fail");
    assert!(
        elapsed < Duration::from_secs(5),
        "black-holed flush took {elapsed:?}"
    );
    assert!(receiver.export_count(Signal::Metrics) >= 1);
    assert_eq!(receiver.accepted_count(Signal::Metrics), 0);
    assert!(receiver.metrics().is_empty());

    receiver.set_fault(Fault::None);
    let (result, _) = flush(&provider).await;
    result.expect("flush after the black hole is cleared");
    assert_eq!(receiver.metrics().sum("fault.requests", &[]), 2.0);
    shut_down_meters(provider).await;
}

over_both_protocols! {
    async black_hole => grpc_black_hole_makes_flush_time_out, http_black_hole_makes_flush_time_out;
}

async fn delay(protocol: Protocol) {
    let (receiver, provider) = recording(protocol, 3, |_| {}).await;
    receiver.set_fault(Fault::Delay(Duration::from_millis(400)));
    let (result, elapsed) = flush(&provider).await;
    result.expect("a delayed export still succeeds");
    assert!(elapsed >= Duration::from_millis(400), "took {elapsed:?}");
    assert_eq!(receiver.metrics().sum("fault.requests", &[]), 3.0);
    assert_eq!(receiver.accepted_count(Signal::Metrics), 1);
    shut_down_meters(provider).await;
}

over_both_protocols! {
    async delay => grpc_delay_slows_but_accepts, http_delay_slows_but_accepts;
}

async fn trace_status_fault(protocol: Protocol) {
    let receiver = FakeReceiver::start().await;
    let options = Options::new(protocol);
    let provider = options.tracer_provider_to(&receiver);
    receiver.set_fault(Fault::status(tonic::Code::InvalidArgument, 400));
    provider.tracer("faults").in_span("dropped", |_| {});
    let _ = flush_tracers(&provider).await;
    assert_eq!(receiver.export_count(Signal::Traces), 1);
    assert!(receiver.traces().is_empty());
    receiver.set_fault(Fault::None);
    provider.tracer("faults").in_span("kept", |_| {});
    flush_tracers(&provider).await.expect("flush");
    let spans = receiver.traces();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "kept");
    shut_down_tracers(provider).await;
}

over_both_protocols! {
    async trace_status_fault => grpc_trace_status_fault_drops_spans, http_trace_status_fault_drops_spans;
}

#[test]
fn dropping_the_receiver_releases_black_holed_requests() {
    let receiver = FakeReceiver::start_blocking();
    receiver.set_fault(Fault::BlackHole);
    let addr = receiver.http_addr();
    let client = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .write_all(
                b"POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
            )
            .expect("write");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let start = Instant::now();
    while receiver.export_count(Signal::Metrics) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "request never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(receiver);
    let answer = client.join().expect("client thread");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
}
