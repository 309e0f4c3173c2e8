//! The fake receiver records what the real OpenTelemetry SDK exports over OTLP/gRPC and
//! OTLP/HTTP, and its helpers give exact values.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::Temporality as SdkTemporality;
use scalewatch_test_support::pipeline::Protocol;
use scalewatch_test_support::sdk::{
    flush_meters, flush_tracers, shut_down_meters, shut_down_tracers, Options, SECRET,
};
use scalewatch_test_support::{
    over_both_protocols, FakeReceiver, MetricKind, OtlpListener as _, Signal, Temporality, Value,
};

const WAIT: Duration = Duration::from_secs(10);

async fn metrics_roundtrip(protocol: Protocol) {
    let receiver = FakeReceiver::start().await;
    let mut options = Options::new(protocol);
    options.secret_header = true;
    let provider = options.meter_provider_to(&receiver);
    let meter = provider.meter("test-support-meter");

    let counter = meter
        .u64_counter("test.requests")
        .with_unit("{request}")
        .build();
    counter.add(3, &[KeyValue::new("route", "/a")]);
    counter.add(
        2,
        &[KeyValue::new("route", "/b"), KeyValue::new("code", 200)],
    );
    let histogram = meter
        .f64_histogram("test.duration")
        .with_unit("s")
        .with_description("request duration")
        .with_boundaries(vec![0.1, 1.0])
        .build();
    for v in [0.05, 0.5, 2.0] {
        histogram.record(v, &[KeyValue::new("route", "/a")]);
    }
    histogram.record(0.2, &[KeyValue::new("route", "/b")]);
    let _gauge = meter
        .i64_observable_gauge("test.queue.depth")
        .with_callback(|o| o.observe(7, &[KeyValue::new("queue", "main")]))
        .build();

    flush_meters(&provider).await.expect("first flush");
    let m = receiver
        .wait_for_metrics(WAIT, |m| m.names().contains("test.queue.depth"))
        .await;

    assert_eq!(
        m.names().into_iter().collect::<Vec<_>>(),
        ["test.duration", "test.queue.depth", "test.requests"]
    );
    assert_eq!(m.sum("test.requests", &[]), 5.0);
    assert_eq!(m.sum("test.requests", &[("route", "/a")]), 3.0);
    assert_eq!(
        m.sum("test.requests", &[("route", "/b"), ("code", "200")]),
        2.0
    );
    assert_eq!(m.series("test.requests"), 2);
    assert_eq!(m.unit("test.requests").as_deref(), Some("{request}"));
    assert_eq!(
        m.kind("test.requests"),
        Some(MetricKind::Sum { monotonic: true })
    );
    assert_eq!(
        m.temporality("test.requests"),
        Some(Temporality::Cumulative)
    );
    assert_eq!(
        m.attribute_values("test.requests", "route")
            .into_iter()
            .collect::<Vec<_>>(),
        ["/a", "/b"]
    );

    assert_eq!(m.histogram_count("test.duration", &[]), 4);
    assert_eq!(m.histogram_count("test.duration", &[("route", "/a")]), 3);
    assert_eq!(m.unit("test.duration").as_deref(), Some("s"));
    assert_eq!(
        m.description("test.duration").as_deref(),
        Some("request duration")
    );
    let a = m.matching("test.duration", &[("route", "/a")]);
    assert_eq!(a.len(), 1);
    let h = a[0].histogram().expect("a histogram");
    assert_eq!(h.count, 3);
    assert!((h.sum - 2.55).abs() < 1e-9, "sum {}", h.sum);
    assert_eq!(h.bounds, [0.1, 1.0]);
    assert_eq!(h.bucket_counts, [1, 1, 1]);
    assert_eq!((h.min, h.max), (Some(0.05), Some(2.0)));

    let gauge = m.latest("test.queue.depth");
    assert_eq!(gauge.len(), 1);
    assert_eq!(gauge[0].attr("queue"), Some("main"));
    assert_eq!(gauge[0].value, Value::Int(7));
    assert_eq!(gauge[0].as_f64(), 7.0);

    let resource = m.resource_attributes();
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("test-support-svc")
    );
    assert_eq!(
        resource.get("deployment.environment").map(String::as_str),
        Some("test")
    );
    assert!(m.scope_names().contains("test-support-meter"));

    // A second export: cumulative series report the running total, latest() picks it.
    counter.add(10, &[KeyValue::new("route", "/a")]);
    flush_meters(&provider).await.expect("second flush");
    let m = receiver
        .wait_for_metrics(WAIT, |m| m.sum("test.requests", &[("route", "/a")]) == 13.0)
        .await;
    assert_eq!(m.sum("test.requests", &[]), 15.0);
    assert_eq!(m.series("test.requests"), 2);
    assert_eq!(m.histogram_count("test.duration", &[]), 4);
    assert_eq!(receiver.export_count(Signal::Metrics), 2);
    assert_eq!(receiver.accepted_count(Signal::Metrics), 2);

    // The authorization header/metadata reached the receiver and is searchable.
    assert_eq!(receiver.payload_occurrences(SECRET.as_bytes()), 2);
    assert!(receiver.payload_occurrences(b"test.requests") >= 2);

    shut_down_meters(provider).await;
}

over_both_protocols! {
    async metrics_roundtrip => grpc_metrics_are_recorded_exactly, http_metrics_are_recorded_exactly;
}

async fn delta_roundtrip(protocol: Protocol) {
    let receiver = FakeReceiver::start().await;
    let mut options = Options::new(protocol);
    options.temporality = SdkTemporality::Delta;
    let provider = options.meter_provider_to(&receiver);
    let meter = provider.meter("delta");
    let counter = meter.u64_counter("delta.requests").build();
    let histogram = meter
        .u64_histogram("delta.size")
        .with_boundaries(vec![10.0])
        .build();
    for round in 0..3u64 {
        counter.add(round + 1, &[KeyValue::new("route", "/x")]);
        histogram.record(5, &[]);
        histogram.record(50, &[]);
        flush_meters(&provider).await.expect("flush");
    }
    let m = receiver
        .wait_for_metrics(WAIT, |m| m.histogram_count("delta.size", &[]) == 6)
        .await;
    assert_eq!(m.temporality("delta.requests"), Some(Temporality::Delta));
    assert_eq!(m.sum("delta.requests", &[("route", "/x")]), 6.0);
    let latest = m.latest("delta.size");
    assert_eq!(latest.len(), 1);
    let h = latest[0].histogram().expect("a histogram");
    assert_eq!((h.count, h.sum), (6, 165.0));
    assert_eq!(h.bucket_counts, [3, 3]);
    assert_eq!((h.min, h.max), (Some(5.0), Some(50.0)));
    shut_down_meters(provider).await;
}

over_both_protocols! {
    async delta_roundtrip => grpc_delta_metrics_are_summed, http_delta_metrics_are_summed;
}

async fn spans_roundtrip(protocol: Protocol) {
    let receiver = FakeReceiver::start().await;
    let options = Options::new(protocol);
    let provider = options.tracer_provider_to(&receiver);
    let tracer = provider.tracer("test-support-tracer");
    tracer.in_span("GET /items", |cx| {
        let span = cx.span();
        span.set_attribute(KeyValue::new("http.route", "/items"));
        span.set_attribute(KeyValue::new("http.response.status_code", 200));
        let mut child = tracer.start("load items");
        child.add_event("cache miss", vec![]);
        child.end();
    });
    flush_tracers(&provider).await.expect("flush");
    let spans = receiver.wait_for_spans(WAIT, |s| s.len() == 2).await;
    let parent = spans
        .iter()
        .find(|s| s.name == "GET /items")
        .expect("parent span");
    let child = spans
        .iter()
        .find(|s| s.name == "load items")
        .expect("child span");
    assert_eq!(parent.attr("http.route"), Some("/items"));
    assert_eq!(parent.attr("http.response.status_code"), Some("200"));
    assert_eq!(parent.scope, "test-support-tracer");
    assert_eq!(parent.parent_span_id, "");
    assert_eq!(
        parent
            .resource_attributes
            .get("service.name")
            .map(String::as_str),
        Some("test-support-svc")
    );
    assert_eq!(child.parent_span_id, parent.span_id);
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(child.events, ["cache miss"]);
    assert_eq!(receiver.export_count(Signal::Traces), 1);
    shut_down_tracers(provider).await;
}

over_both_protocols! {
    async spans_roundtrip => grpc_spans_are_recorded, http_spans_are_recorded;
}

#[test]
fn wait_timeout_panics_with_what_was_seen() {
    let receiver = FakeReceiver::start_blocking();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        receiver.wait_for_metrics_blocking(Duration::from_millis(50), |m| !m.is_empty())
    }));
    let panic = result.expect_err("must panic");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("metrics condition not met"), "{message}");
    assert!(message.contains("no metrics received"), "{message}");
}

#[test]
fn gzip_http_bodies_are_accepted() {
    use std::io::{Read as _, Write as _};

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    let receiver = FakeReceiver::start_blocking();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "gzipped".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&request.encode_to_vec()).unwrap();
    let body = gz.finish().unwrap();
    let mut stream = std::net::TcpStream::connect(receiver.http_addr()).unwrap();
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/x-protobuf\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let spans = receiver.wait_for_spans_blocking(WAIT, |s| !s.is_empty());
    assert_eq!(spans[0].name, "gzipped");
    assert_eq!(receiver.payload_occurrences(b"content-encoding: gzip"), 1);
}
