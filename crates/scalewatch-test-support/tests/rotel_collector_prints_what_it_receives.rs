//! The rotel harness installs and starts a real OTLP collector that prints the metrics and
//! spans the OpenTelemetry SDK sends it over OTLP/gRPC and OTLP/HTTP.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use scalewatch_test_support::pipeline::Protocol;
use scalewatch_test_support::sdk::{blocking, flush_meters, flush_tracers, Options};
use scalewatch_test_support::{rotel_printed_metric, rotel_printed_span, OtlpListener as _, Rotel};

const WAIT: Duration = Duration::from_secs(15);

async fn roundtrip(protocol: Protocol, tag: &str) {
    let started = Instant::now();
    let rotel = tokio::task::spawn_blocking(Rotel::start)
        .await
        .expect("start task")
        .expect("rotel collector");
    eprintln!("rotel ready in {:?}", started.elapsed());
    let options = Options::new(protocol);

    let metric = format!("rotel.{tag}.requests");
    let span = format!("rotel {tag} span");
    let meters = options.meter_provider_to(&rotel);
    meters
        .meter("rotel-test")
        .u64_counter(metric.clone())
        .build()
        .add(5, &[KeyValue::new("route", "/r")]);
    meters
        .meter("rotel-test")
        .f64_histogram(format!("{metric}.duration"))
        .with_unit("s")
        .with_boundaries(vec![0.5])
        .build()
        .record(0.25, &[KeyValue::new("route", "/r")]);
    let tracers = options.tracer_provider_to(&rotel);
    tracers.tracer("rotel-test").in_span(span.clone(), |cx| {
        cx.span().set_attribute(KeyValue::new("http.route", "/r"));
        cx.span()
            .set_attribute(KeyValue::new("http.response.status_code", 200));
    });

    flush_meters(&meters).await.expect("metrics flush to rotel");
    flush_tracers(&tracers)
        .await
        .expect("traces flush to rotel");

    let output = blocking(move || {
        rotel
            .wait_for_output(
                |o| rotel_printed_metric(o, &metric) && rotel_printed_span(o, &span),
                WAIT,
            )
            .map(|o| (o, rotel))
    })
    .await
    .expect("rotel printed the metric and the span");
    if std::env::var_os("SHOW_ROTEL_OUTPUT").is_some() {
        eprintln!("{}", output.0);
    }
    let (m, t) = blocking(move || (meters.shutdown(), tracers.shutdown())).await;
    m.expect("metrics shutdown");
    t.expect("traces shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_prints_grpc_metrics_and_spans() {
    roundtrip(Protocol::Grpc, "grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_prints_http_metrics_and_spans() {
    roundtrip(Protocol::HttpProtobuf, "http").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_forwards_to_the_fake_receiver_and_restarts_on_the_same_ports() {
    let receiver = scalewatch_test_support::FakeReceiver::start().await;
    let config = scalewatch_test_support::RotelConfig {
        forward_to: Some(receiver.grpc_endpoint()),
        ..Default::default()
    };
    let mut rotel = blocking(move || Rotel::start_with(config))
        .await
        .expect("rotel collector");
    let options = Options::new(Protocol::Grpc);
    let meters = options.meter_provider_to(&rotel);
    let counter = meters
        .meter("rotel-forward")
        .u64_counter("forwarded.requests")
        .build();
    counter.add(2, &[]);
    flush_meters(&meters).await.expect("flush");
    receiver
        .wait_for_metrics(WAIT, |m| m.sum("forwarded.requests", &[]) == 2.0)
        .await;

    let grpc_addr = rotel.grpc_addr();
    let (mut rotel, refused) = blocking(move || {
        rotel.stop();
        let refused = std::net::TcpStream::connect(grpc_addr).is_err();
        (rotel, refused)
    })
    .await;
    assert!(refused, "a stopped rotel must not accept connections");
    assert!(!rotel.is_running());

    rotel = blocking(move || rotel.restart().map(|()| rotel))
        .await
        .expect("restart");
    assert_eq!(rotel.grpc_addr(), grpc_addr);
    counter.add(3, &[]);
    flush_meters(&meters).await.expect("flush after restart");
    receiver
        .wait_for_metrics(WAIT, |m| m.sum("forwarded.requests", &[]) == 5.0)
        .await;
    assert!(rotel
        .output()
        .contains("--- scalewatch-test-support: restart ---"));
    blocking(move || meters.shutdown()).await.expect("shutdown");
}
