//! `OTEL_METRICS_EXPORTER=prometheus` serves the metrics on
//! `OTEL_EXPORTER_PROMETHEUS_HOST`:`OTEL_EXPORTER_PROMETHEUS_PORT` at `/metrics`, named by the
//! OpenTelemetry–Prometheus compatibility rules; `otlp,prometheus` runs both; shutting the
//! pipeline down frees the port; bad values and a taken port are errors that say which
//! variable to change.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use scalewatch_core::catalog::{InstrumentKind, Signal};
use scalewatch_otlp::{InitError, Telemetry, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, OtlpListener as _};

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn build(vars: &[(&str, &str)]) -> Result<Telemetry, InitError> {
    TelemetryBuilder::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
        .build()
}

/// A pipeline with `OTEL_METRICS_EXPORTER=exporter` and the Prometheus endpoint (if any) on
/// a free loopback port, and that port.
fn on_a_free_port(exporter: &str) -> (u16, Telemetry) {
    let port = free_port();
    let telemetry = build(&[
        ("OTEL_METRICS_EXPORTER", exporter),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", &port.to_string()),
    ])
    .unwrap();
    (port, telemetry)
}

/// One HTTP/1.1 request on a fresh connection: (status line, body).
fn get(port: u16, method: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    // Bodies here are small: hyper sends them with a content-length, never chunked.
    Ok((status, body.to_owned()))
}

fn scrape(port: u16) -> String {
    let (status, body) = get(port, "GET", "/metrics").unwrap();
    assert!(status.contains(" 200 "), "{status}\n{body}");
    body
}

/// The name a Prometheus series of `signal` gets under the OpenTelemetry–Prometheus
/// compatibility rules, spelled out independently of the exporter: dots become
/// underscores, a unit becomes a suffix (`s` → `_seconds`, `1` → `_ratio`, `{x}/s` →
/// `_per_second`, annotations alone none), counters end in `_total`.
fn prometheus_name(signal: &Signal) -> String {
    let mut name = signal.name.replace('.', "_");
    let suffix = match signal.unit {
        "s" => Some("seconds"),
        "1" => Some("ratio"),
        unit if unit.starts_with('{') && unit.ends_with("}/s") => Some("per_second"),
        unit if unit.starts_with('{') && unit.ends_with('}') => None,
        other => panic!("no rule in this test for unit {other}"),
    };
    if let Some(suffix) = suffix {
        name = format!("{name}_{suffix}");
    }
    if signal.instrument == InstrumentKind::Counter {
        name.push_str("_total");
    }
    name
}

/// Records one value on every signal of the core and capacity catalogs.
fn record_every_signal(telemetry: &Telemetry, signals: &[Signal]) {
    let meter = telemetry.meter();
    let attrs = [KeyValue::new("scalewatch.tier.name", "api")];
    for signal in signals {
        match signal.instrument {
            InstrumentKind::Counter => signal.u64_counter(&meter).add(1, &attrs),
            InstrumentKind::UpDownCounter => signal.i64_up_down_counter(&meter).add(1, &attrs),
            InstrumentKind::Gauge => signal.f64_gauge(&meter).record(0.5, &attrs),
            InstrumentKind::Histogram => signal.f64_histogram(&meter).record(0.01, &attrs),
        }
    }
}

fn signals() -> Vec<Signal> {
    scalewatch_core::catalog::ALL
        .iter()
        .chain(scalewatch_capacity::catalog::ALL)
        .copied()
        .collect()
}

#[test]
fn every_signal_is_served_under_its_compatibility_name() {
    let port = free_port().to_string();
    let telemetry = build(&[
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", &port),
        ("OTEL_SERVICE_NAME", "checkout"),
    ])
    .unwrap();
    let port: u16 = port.parse().unwrap();
    let signals = signals();
    record_every_signal(&telemetry, &signals);
    let body = scrape(port);
    for signal in &signals {
        let name = prometheus_name(signal);
        let series = if signal.instrument == InstrumentKind::Histogram {
            format!("{name}_bucket{{")
        } else {
            format!("{name}{{")
        };
        assert!(
            body.lines().any(|l| l.starts_with(&series)),
            "{} ({}) is not served as {series}…\n{body}",
            signal.name,
            signal.unit
        );
    }
    // The ones the ops kit relies on most, spelled out.
    for series in [
        "scalewatch_capacity_peak_throughput_per_second{",
        "scalewatch_resource_saturation_throughput_per_second{",
        "scalewatch_tier_rejections_total{",
        "scalewatch_tier_utilization_ratio{",
        "http_server_request_duration_seconds_bucket{",
        "scalewatch_tier_concurrency{",
    ] {
        assert!(body.contains(series), "{series}\n{body}");
    }
    // Attributes become labels; the resource goes to target_info.
    assert!(body.contains("scalewatch_tier_name=\"api\""), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("target_info{") && l.contains("service_name=\"checkout\"")),
        "{body}"
    );
    telemetry.shutdown().unwrap();
}

#[test]
fn only_get_metrics_is_served() {
    let (port, telemetry) = on_a_free_port("prometheus");
    let (status, _) = get(port, "GET", "/").unwrap();
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = get(port, "POST", "/metrics").unwrap();
    assert!(status.contains(" 405 "), "{status}");
    let (status, body) = get(port, "HEAD", "/metrics").unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.is_empty(), "{body}");
    drop(telemetry);
}

#[test]
fn otlp_and_prometheus_run_side_by_side() {
    let receiver = FakeReceiver::start_blocking();
    let port = free_port();
    let telemetry = build(&[
        ("OTEL_METRICS_EXPORTER", "otlp,prometheus"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.grpc_endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", &port.to_string()),
    ])
    .unwrap();
    let rejections = scalewatch_core::catalog::TIER_REJECTIONS.u64_counter(&telemetry.meter());
    rejections.add(3, &[KeyValue::new("scalewatch.tier.name", "api")]);
    let body = scrape(port);
    assert!(
        body.lines()
            .any(|l| l.starts_with("scalewatch_tier_rejections_total{")
                && l.contains("scalewatch_tier_name=\"api\"")
                && l.ends_with(" 3")),
        "{body}"
    );
    telemetry.force_flush().unwrap();
    let metrics = receiver.wait_for_metrics_blocking(Duration::from_secs(10), |m| {
        m.sum("scalewatch.tier.rejections", &[]) >= 3.0
    });
    assert_eq!(metrics.sum("scalewatch.tier.rejections", &[]), 3.0);
    telemetry.shutdown().unwrap();
}

#[test]
fn shutdown_stops_serving_and_frees_the_port() {
    let port = free_port();
    let vars = [
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", &port.to_string()),
    ];
    let telemetry = build(&vars).unwrap();
    scrape(port);
    telemetry.shutdown().unwrap();
    assert!(
        get(port, "GET", "/metrics").is_err(),
        "still served after shutdown"
    );
    // The same port again: the first pipeline let go of it. Dropped this time, from a
    // tokio runtime, which must stop the server as well.
    let deadline = Instant::now() + Duration::from_secs(5);
    let telemetry = loop {
        match build(&vars) {
            Ok(t) => break t,
            Err(e) if Instant::now() < deadline => {
                eprintln!("port not free yet: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    scrape(port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move { drop(telemetry) });
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(port, "GET", "/metrics").is_ok() {
        assert!(Instant::now() < deadline, "still served after drop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_taken_port_names_the_variables() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let err = build(&[
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", &port),
    ])
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.contains("OTEL_EXPORTER_PROMETHEUS_PORT"),
        "{message}"
    );
    assert!(matches!(err, InitError::Prometheus(_)), "{err:?}");
}

#[test]
fn bad_host_and_port_values_name_their_variable() {
    for (var, value) in [
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "9464x"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "http://0.0.0.0"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0:9464"),
    ] {
        let err = build(&[("OTEL_METRICS_EXPORTER", "prometheus"), (var, value)]).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("invalid {var}: ")),
            "{var}={value}: {err}"
        );
    }
    // Well-formed but not resolvable: still named.
    let err = build(&[
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "no-such-host.invalid"),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid OTEL_EXPORTER_PROMETHEUS_HOST: "),
        "{err}"
    );
}

#[test]
fn none_serves_nothing() {
    let (port, telemetry) = on_a_free_port("none");
    assert_eq!(telemetry.config().prometheus, None);
    assert!(get(port, "GET", "/metrics").is_err());
    telemetry.shutdown().unwrap();
}
