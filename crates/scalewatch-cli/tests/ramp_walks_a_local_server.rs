//! `scalewatch ramp` run as a process against servers in this test on loopback: an
//! instrumented axum service whose report it reads back, a plain one without a report,
//! and a gRPC method called with a raw protobuf message.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use opentelemetry::metrics::MeterProvider as _;
use prost::Message as _;
use scalewatch_capacity::{CapacityModel, REPORT_PATH};
use scalewatch_example_proto::demo::greeter_server::GreeterServer;
use scalewatch_example_proto::demo::HelloRequest;
use scalewatch_example_proto::DemoGreeter;
use scalewatch_test_support::{serve_axum, serve_grpc};
use scalewatch_tower::ServerTierLayer;
use serde_json::Value;

/// Runs the binary off the test's runtime, so that the servers keep answering.
async fn scalewatch(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_scalewatch"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `scalewatch ramp ARGS --out DIR`, checks that it succeeded, and returns its
/// standard output and the `report.json` it wrote.
async fn ramp_ok(ramp_args: &[&str]) -> (String, Value) {
    let out = tempfile::tempdir().unwrap();
    let mut list = args(&["ramp"]);
    list.extend(args(ramp_args));
    list.extend(args(&["--out", out.path().to_str().unwrap()]));
    let output = scalewatch(list).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, read_report(out.path()))
}

/// Every request holds one permit of 2 for 2 ms: a server that saturates at 2 in flight.
async fn work(
    axum::extract::State(permits): axum::extract::State<Arc<tokio::sync::Semaphore>>,
) -> &'static str {
    let _permit = permits.acquire().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    "done\n"
}

fn read_report(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_measures_an_instrumented_server_and_reads_its_report() {
    let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default().meter("test");
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .build(&meter)
        .unwrap();
    let model = CapacityModel::new(&meter);
    model.watch(layer.tier()).unwrap();
    let _sampler = model.spawn_sampler(Duration::from_millis(250)).unwrap();
    let app = Router::new()
        .route("/work", get(work))
        .with_state(Arc::new(tokio::sync::Semaphore::new(2)))
        .layer(layer)
        .route_service(REPORT_PATH, model.report_service());
    let addr = serve_axum(app).await;

    let (stdout, report) = ramp_ok(&[
        &format!("http://{addr}/work"),
        "--levels",
        "1,2,4,8",
        "--duration",
        "4s",
    ])
    .await;
    assert_eq!(report["command"], "ramp");
    assert_eq!(report["target"], format!("http://{addr}/work"));
    let steps = report["steps"].as_array().unwrap();
    let users: Vec<u64> = steps.iter().map(|s| s["users"].as_u64().unwrap()).collect();
    assert_eq!(users, [1, 2, 4, 8]);
    for step in steps {
        assert_eq!(step["failed"], 0, "{step}");
        // At most 2 in flight at 2 ms each: at most about 1,000/s whatever the users.
        let x = step["throughput"].as_f64().unwrap();
        assert!(x > 0.0 && x < 1_100.0, "{step}");
    }
    // With 8 users and 2 permits, 6 wait: latency grows well past the 2-permit service time.
    let r1 = steps[0]["mean_latency"].as_f64().unwrap();
    let r8 = steps[3]["mean_latency"].as_f64().unwrap();
    assert!(r8 > 2.0 * r1, "latency at 8 users {r8} vs 1 user {r1}");

    let server = &report["server"];
    assert_eq!(server["source"], format!("http://{addr}{REPORT_PATH}"));
    assert_eq!(server["report"]["tiers"][0]["name"], "api");
    assert!(server["report"]["samples"].as_u64().unwrap() > 0);
    assert!(stdout.contains("Inside the service"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_notes_a_target_without_a_report() {
    let app = Router::new().route("/", get(|| async { "hi\n" }));
    let addr = serve_axum(app).await;
    let (_, report) = ramp_ok(&[
        &format!("http://{addr}/"),
        "--levels",
        "1,2,3,4",
        "--duration",
        "3s",
    ])
    .await;
    assert_eq!(report["server"]["report"], Value::Null);
    let note = report["server"]["note"].as_str().unwrap();
    assert!(
        note.contains("does not serve a scalewatch report"),
        "{note}"
    );
    assert_eq!(report["steps"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_calls_a_grpc_method_with_a_raw_message() {
    let addr = serve_grpc(
        tonic::transport::Server::builder().add_service(GreeterServer::new(DemoGreeter)),
    )
    .await;
    let message = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        message.path(),
        HelloRequest {
            name: "ramp".into(),
        }
        .encode_to_vec(),
    )
    .unwrap();
    let (_, report) = ramp_ok(&[
        &format!("http://{addr}"),
        "--grpc",
        "/scalewatch.demo.v1.Greeter/SayHello",
        "--body-file",
        message.path().to_str().unwrap(),
        "--levels",
        "1,2,3,4",
        "--duration",
        "3s",
    ])
    .await;
    assert_eq!(
        report["target"],
        format!("http://{addr}/scalewatch.demo.v1.Greeter/SayHello")
    );
    for step in report["steps"].as_array().unwrap() {
        assert_eq!(step["failed"], 0, "{step}");
        assert!(step["ok"].as_u64().unwrap() > 10, "{step}");
    }

    // A method the server does not have: every call fails with UNIMPLEMENTED, and the ramp
    // stops at once with that reason and a non-zero exit.
    let output = scalewatch(args(&[
        "ramp",
        &format!("http://{addr}"),
        "--grpc",
        "/scalewatch.demo.v1.Greeter/NoSuchMethod",
        "--levels",
        "1,2,3,4",
        "--duration",
        "3s",
    ]))
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("grpc Unimplemented"), "{stderr}");
}
