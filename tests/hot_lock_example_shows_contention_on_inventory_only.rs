//! The `hot_lock` example under concurrent load on loopback: `inventory` is contended,
//! `quiet` never is, and both are counted exactly.
#![allow(clippy::unwrap_used)] // tests may unwrap

#[allow(dead_code)]
#[path = "../examples/hot_lock.rs"]
mod hot_lock;

use scalewatch::sync::catalog::{self, attr};
use scalewatch::Protocol;
use scalewatch_test_support::{flush, serve_axum, telemetry_to, FakeReceiver};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_lock_example_shows_contention_on_inventory_only() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let addr = serve_axum(hot_lock::app(&telemetry.meter()).unwrap()).await;

    // 16 clients, 25 requests each, to both routes.
    let clients: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..25 {
                    assert!(get(addr, "/inventory").await.starts_with("HTTP/1.1 200"));
                    assert!(get(addr, "/quiet").await.starts_with("HTTP/1.1 200"));
                }
            })
        })
        .collect();
    for c in clients {
        c.await.unwrap();
    }
    flush(&telemetry).await;
    let m = receiver.metrics();
    let acq = |name: &str, contended: &str| {
        m.sum(
            catalog::LOCK_ACQUISITIONS.name,
            &[(attr::LOCK_NAME, name), (attr::LOCK_CONTENDED, contended)],
        )
    };
    assert_eq!(acq("inventory", "true") + acq("inventory", "false"), 400.0);
    assert!(acq("inventory", "true") > 0.0, "inventory was contended");
    assert!(
        m.histogram_count(
            catalog::LOCK_WAIT_DURATION.name,
            &[(attr::LOCK_NAME, "inventory")]
        ) > 0
    );
    assert_eq!(
        acq("quiet", "false"),
        800.0,
        "two acquisitions per /quiet request"
    );
    assert_eq!(acq("quiet", "true"), 0.0);
    assert_eq!(
        m.histogram_count(
            catalog::LOCK_WAIT_DURATION.name,
            &[(attr::LOCK_NAME, "quiet")]
        ),
        0
    );
    let utilization = m.sum(
        catalog::LOCK_UTILIZATION.name,
        &[(attr::LOCK_NAME, "inventory")],
    );
    assert!(utilization > 0.0, "inventory utilization {utilization}");
    assert_eq!(m.sum(catalog::LOCK_WAITERS.name, &[]), 0.0);
    assert_eq!(
        m.histogram_count(
            scalewatch::catalog::HTTP_SERVER_REQUEST_DURATION.name,
            &[(scalewatch::catalog::attr::HTTP_ROUTE, "/inventory")]
        ),
        400
    );
}
