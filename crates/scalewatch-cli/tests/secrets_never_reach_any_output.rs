//! Credentials given to `scalewatch` never reach its output: not stdout, not stderr, not
//! `report.json`, `report.md` or `curve.svg`. URLs with userinfo are used for Basic
//! authentication and shown as `http://***@host/...`; header values and `OTEL_*` secrets
//! in error messages are not shown at all. Each case runs the real binary against servers
//! on loopback and searches everything it wrote for sentinel values.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use http::StatusCode;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_capacity::{CapacityModel, REPORT_PATH};
use scalewatch_test_support::{serve_axum, silent_listener};

const USER: &str = "ops-USER-SENTINEL";
const PASSWORD: &str = "s3cr3t-SENTINEL";

/// What must never appear: the user, the password, and the header made of them.
fn secrets() -> [String; 3] {
    [
        USER.to_owned(),
        PASSWORD.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")),
    ]
}

/// Runs the binary off the test's runtime (so the servers keep serving), with `env` set
/// and every `OTEL_*` variable of the test's own environment removed.
async fn scalewatch(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scalewatch"));
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("OTEL_")) {
            command.env_remove(name);
        }
        command.args(&args).envs(env).output().unwrap()
    })
    .await
    .unwrap()
}

/// `scalewatch ramp TARGET`, `extra`, four short steps (3 s in all) and the reports
/// written to `out`.
fn ramp_into(out: &Path, target: &str, extra: &[&str]) -> Vec<String> {
    let mut list = args(&["ramp", target]);
    list.extend(args(extra));
    let out = out.to_str().unwrap();
    list.extend(args(&[
        "--levels",
        "1,2,3,4",
        "--duration",
        "3s",
        "--out",
        out,
    ]));
    list
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Fails if any secret is in the run's stdout, stderr or any file under `dir`; returns
/// stdout and stderr.
fn assert_clean(context: &str, output: &Output, dir: Option<&Path>) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut outputs = vec![
        ("stdout".to_owned(), stdout.clone()),
        ("stderr".to_owned(), stderr.clone()),
    ];
    if let Some(dir) = dir {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            outputs.push((path.display().to_string(), text));
        }
    }
    for (name, text) in &outputs {
        for secret in secrets() {
            assert!(
                !text.contains(&secret),
                "{context}: `{secret}` in {name}:\n{text}"
            );
        }
    }
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_authenticate_and_are_shown_as_stars() {
    // A service whose every route, its report included, wants Basic credentials.
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default().meter("test");
    let model = CapacityModel::new(&meter);
    let _sampler = model.spawn_sampler(Duration::from_millis(250)).unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    let expected = format!("Basic {}", secrets()[2]);
    let gate = {
        let refused = refused.clone();
        move |request: Request, next: Next| {
            let refused = refused.clone();
            let allowed = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes());
            async move {
                if allowed {
                    next.run(request).await
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }
        }
    };
    let app = Router::new()
        .route("/work", get(|| async { "done\n" }))
        .route_service(REPORT_PATH, model.report_service())
        .layer(axum::middleware::from_fn(gate));
    let addr = serve_axum(app).await;

    let out = tempfile::tempdir().unwrap();
    let target = format!("http://{USER}:{PASSWORD}@{addr}/work");
    let output = scalewatch(ramp_into(out.path(), &target, &[]), vec![]).await;
    let (stdout, stderr) = assert_clean("ramp with credentials", &output, Some(out.path()));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "requests went without credentials"
    );

    let shown = format!("http://***@{addr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["target"], format!("{shown}/work"));
    assert_eq!(report["server"]["source"], format!("{shown}{REPORT_PATH}"));
    assert!(report["server"]["report"].is_object(), "{report}");
    for step in report["steps"].as_array().unwrap() {
        assert_eq!(step["failed"], 0, "{step}");
    }
    assert!(stdout.contains(&format!("{shown}/work")), "{stdout}");
    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(markdown.contains(&shown), "{markdown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_url_with_credentials_that_never_answers_is_noted_with_stars() {
    let target = serve_axum(Router::new().route("/", get(|| async { "ok\n" }))).await;
    let silent = silent_listener().await;
    let out = tempfile::tempdir().unwrap();
    let report = format!("http://{USER}:{PASSWORD}@{silent}{REPORT_PATH}");
    let extra = ["--server-report", &report, "--timeout", "1s"];
    let output = scalewatch(
        ramp_into(out.path(), &format!("http://{target}/"), &extra),
        vec![],
    )
    .await;
    let (stdout, stderr) = assert_clean("silent report URL", &output, Some(out.path()));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("http://***@{silent}{REPORT_PATH}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_never_echo_credentials_or_header_values() {
    let silent = silent_listener().await;
    let quick = ["--levels", "1,2,3,4", "--duration", "3s", "--timeout", "1s"];
    let cases: Vec<(Vec<String>, i32)> = vec![
        // Nothing listens: every request fails.
        (
            args(&["ramp", &format!("http://{USER}:{PASSWORD}@127.0.0.1:1/x")]),
            1,
        ),
        // Accepts, never answers: every request times out.
        (
            args(&["ramp", &format!("http://{USER}:{PASSWORD}@{silent}/x")]),
            1,
        ),
        // gRPC: the connection is refused.
        (
            args(&[
                "ramp",
                &format!("http://{USER}:{PASSWORD}@127.0.0.1:1"),
                "--grpc",
                "/test.Service/Method",
            ]),
            1,
        ),
        // Invalid URLs.
        (args(&["ramp", &format!("http://{USER}:{PASSWORD}@")]), 2),
        (
            args(&["ramp", &format!("https://{USER}:{PASSWORD}@127.0.0.1:1/")]),
            2,
        ),
        (
            args(&["ramp", &format!("{USER}:{PASSWORD}@127.0.0.1:1/")]),
            2,
        ),
        (
            args(&[
                "ramp",
                &format!("http://{USER}:pa/ss-{PASSWORD}@127.0.0.1:1/"),
            ]),
            2,
        ),
        (
            args(&["ramp", &format!("http://{USER}:{PASSWORD}@127.0.0.1:1:2/")]),
            2,
        ),
        (
            args(&[
                "ramp",
                "http://127.0.0.1:1/",
                "--server-report",
                &format!("http://{USER}:{PASSWORD}@"),
            ]),
            2,
        ),
        // A stray argument, which the argument parser quotes.
        (
            args(&[
                "ramp",
                "http://127.0.0.1:1/",
                &format!("http://{USER}:{PASSWORD}@127.0.0.1:1/"),
            ]),
            2,
        ),
        // Headers whose value cannot be sent, or with no name.
        (
            args(&[
                "ramp",
                "http://127.0.0.1:1/",
                "-H",
                &format!("Authorization: Basic {PASSWORD}\u{1}"),
            ]),
            2,
        ),
        (
            args(&[
                "ramp",
                "http://127.0.0.1:1/",
                "-H",
                &format!("Bearer {PASSWORD}"),
            ]),
            2,
        ),
    ];
    for (mut list, code) in cases {
        list.extend(args(&quick));
        let output = scalewatch(list.clone(), vec![]).await;
        let (_, stderr) = assert_clean(&format!("{list:?}"), &output, None);
        assert_eq!(output.status.code(), Some(code), "{list:?}: {stderr}");
        assert!(stderr.contains("error:"), "{list:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_otel_settings_name_the_variable_not_the_secret() {
    let cases = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{USER}:{PASSWORD}@"),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("ftp://{USER}:{PASSWORD}@127.0.0.1:4318"),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{USER}:pa/ss-{PASSWORD}@127.0.0.1:4318/v1/traces"),
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", format!("{USER}{PASSWORD}")),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Basic%20{PASSWORD}%ff"),
        ),
    ];
    for (variable, value) in cases {
        let mut env = vec![(variable, value.clone())];
        if variable == "OTEL_EXPORTER_OTLP_HEADERS" {
            env.push((
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:1".to_owned(),
            ));
        }
        let output = scalewatch(
            args(&["demo", "--levels", "1,2,3,4", "--duration", "4s"]),
            env,
        )
        .await;
        let context = format!("{variable}={value}");
        let (_, stderr) = assert_clean(&context, &output, None);
        assert_eq!(output.status.code(), Some(1), "{context}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid {variable}")),
            "{context}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_otel_endpoint_with_credentials_stays_out_of_the_demo_output() {
    // Nothing listens on port 1: every export fails while the demo runs and shuts down.
    let out = tempfile::tempdir().unwrap();
    let output = scalewatch(
        args(&[
            "demo",
            "--levels",
            "1,2,3,4",
            "--duration",
            "4s",
            "--out",
            out.path().to_str().unwrap(),
        ]),
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{USER}:{PASSWORD}@127.0.0.1:1"),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("authorization=Basic%20{PASSWORD}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500".to_owned()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500".to_owned()),
        ],
    )
    .await;
    let (stdout, stderr) =
        assert_clean("demo exporting with credentials", &output, Some(out.path()));
    assert!(output.status.success(), "{stdout}\n{stderr}");
}
