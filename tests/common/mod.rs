//! Shared pieces of the integration tests: a pipeline exporting to a receiver, a real
//! server on loopback, and a plain HTTP client.
#![allow(dead_code, unreachable_pub, unused_imports)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scalewatch::{Protocol, Telemetry};
use scalewatch_test_support::FakeReceiver;
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) use scalewatch_test_support::pipeline::PROTOCOLS;
pub(crate) use scalewatch_test_support::workload::long;
pub(crate) use scalewatch_test_support::{flush, telemetry_to};

/// `normal`, or `long_variant` when the long variants run (`SCALEWATCH_LONG=1`).
pub(crate) fn normal_or_long<T>(normal: T, long_variant: T) -> T {
    if long() {
        long_variant
    } else {
        normal
    }
}

/// A server layer of tier `tier`, with no other setting, on `telemetry`'s meter.
pub(crate) fn server_layer(
    telemetry: &Telemetry,
    tier: &'static str,
) -> scalewatch::ServerTierLayer {
    scalewatch::ServerTierLayer::builder()
        .tier_name(tier)
        .build(&telemetry.meter())
        .expect("a valid layer")
}

/// A receiver, a pipeline exporting to it over `protocol`, and a [`server_layer`] of tier
/// `tier` on that pipeline's meter: where a test of what the layer exports starts.
pub(crate) async fn server_layer_with_receiver(
    tier: &'static str,
    protocol: Protocol,
) -> (FakeReceiver, Telemetry, scalewatch::ServerTierLayer) {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, protocol);
    let layer = server_layer(&telemetry, tier);
    (receiver, telemetry, layer)
}

/// A plain HTTP/1 client.
pub(crate) fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `method path` and returns the status and the whole body.
pub(crate) async fn request(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Bytes) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let res = client.request(req).await.expect("response");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

/// The same app served twice on loopback, bare and behind a server layer that exports to a
/// receiver: what the transparency tests (R6) compare.
pub(crate) struct Twins {
    pub(crate) receiver: FakeReceiver,
    pub(crate) telemetry: Telemetry,
    pub(crate) layer: scalewatch::ServerTierLayer,
    pub(crate) bare: SocketAddr,
    pub(crate) instrumented: SocketAddr,
}

impl Twins {
    /// Serves `app()` bare and behind a server layer (concurrency limit 64).
    pub(crate) async fn serve(app: impl Fn() -> axum::Router) -> Twins {
        let receiver = FakeReceiver::start().await;
        let telemetry = telemetry_to(&receiver, Protocol::Grpc);
        let layer = scalewatch::ServerTierLayer::builder()
            .concurrency_limit(64)
            .build(&telemetry.meter())
            .expect("a valid layer");
        let bare = scalewatch_test_support::serve_axum(app()).await;
        let instrumented = scalewatch_test_support::serve_axum(app().layer(layer.clone())).await;
        Twins {
            receiver,
            telemetry,
            layer,
            bare,
            instrumented,
        }
    }

    /// Requests the layer has recorded so far, as exported: the counts of the HTTP and gRPC
    /// server duration histograms, once no request is in flight (waited for, bounded).
    pub(crate) async fn recorded(&self) -> u64 {
        for _ in 0..250 {
            if self.layer.tier().in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(self.layer.tier().in_flight(), 0, "requests still in flight");
        flush(&self.telemetry).await;
        let m = self.receiver.metrics();
        m.histogram_count(scalewatch::catalog::HTTP_SERVER_REQUEST_DURATION.name, &[])
            + m.histogram_count(scalewatch::catalog::RPC_SERVER_CALL_DURATION.name, &[])
    }

    /// [`Twins::recorded`] once it reaches `expected`, or after 5 s: for requests whose
    /// client left before the server read them, so they may not have started yet.
    pub(crate) async fn recorded_up_to(&self, expected: u64) -> u64 {
        for _ in 0..100 {
            let recorded = self.recorded().await;
            if recorded >= expected {
                return recorded;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.recorded().await
    }
}

/// Sends `head` on a new connection (then, with `body = Some((total, chunk))`, `total`
/// bytes of chunked body in `chunk`-byte chunks) and reads the whole answer: the requests
/// ask for `Connection: close`, or are refused, so the server closes. Bounded by 60 s.
pub(crate) async fn raw_exchange(
    addr: SocketAddr,
    head: &[u8],
    body: Option<(u64, usize)>,
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let exchange = async {
        stream.write_all(head).await?;
        if let Some((total, chunk)) = body {
            let block = vec![b'x'; chunk];
            let mut sent = 0u64;
            while sent < total {
                let n = chunk.min((total - sent) as usize);
                stream.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                stream.write_all(&block[..n]).await?;
                stream.write_all(b"\r\n").await?;
                sent += n as u64;
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .expect("answered in time");
    // A server may reset a connection it refused; what was read before counts.
    response.unwrap_or_default()
}

/// A raw response without its `date` header, the one part that may differ between servers.
pub(crate) fn without_date(response: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    text.split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

/// A `GET` of `target` with `Host`, `filler` more headers of 1 KiB each, and
/// `Connection: close`: `filler + 2` headers in all.
pub(crate) fn get_with(target: &str, filler: usize) -> Vec<u8> {
    let headers: String = (0..filler)
        .map(|i| format!("x-filler-{i}: {}\r\n", "v".repeat(1024)))
        .collect();
    format!("GET {target} HTTP/1.1\r\nHost: a\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}

/// The longest URI the `http` crate parses, in bytes; one more is refused before any
/// service sees the request (414).
pub(crate) const HTTP_MAX_URI: usize = u16::MAX as usize - 1;
/// The most headers hyper's HTTP/1 server reads by default; one more is refused (431).
pub(crate) const HYPER_MAX_HEADERS: usize = 100;

/// An `/echo/…` target of exactly `len` bytes.
pub(crate) fn echo_target(len: usize) -> String {
    let prefix = "/echo/";
    format!("{prefix}{}", "a".repeat(len - prefix.len()))
}

/// The app the transparency tests serve: `/echo/{*rest}` answers with the method and URI.
pub(crate) fn echo_app() -> axum::Router {
    axum::Router::new().route(
        "/echo/{*rest}",
        axum::routing::any(|req: axum::extract::Request| async move {
            format!("{} {}", req.method(), req.uri())
        }),
    )
}
