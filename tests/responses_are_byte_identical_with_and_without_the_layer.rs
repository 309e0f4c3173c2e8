//! R6: requests that reach the layer get byte-identical responses with and without it (the
//! `date` header aside): the longest URI the `http` crate parses, odd percent-encoding, as
//! many headers as hyper reads, odd methods, no route, streamed responses, a 100 MiB
//! streamed request body (2 GiB with `SCALEWATCH_LONG=1`). Each case is shown to reach the
//! layer: the requests it exported rise by exactly one. A streamed response is not
//! buffered: its first chunk reaches the client while the handler still holds the rest.
//! Requests refused before any service sees them are in
//! `over_limit_requests_are_answered_the_same_with_and_without_the_layer.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::routing::{any, get};
use axum::Router;
use bytes::Bytes;
use common::{echo_target, get_with, raw_exchange, without_date, Twins};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// The bound of every wait on the streaming handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

fn app(release: Arc<Notify>) -> Router {
    common::echo_app()
        .route(
            "/count",
            any(|req: Request| async move {
                // Counts the body frame by frame: nothing is held but the current frame.
                let mut body = req.into_body();
                let mut total = 0u64;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => total += f.data_ref().map_or(0, |d| d.len() as u64),
                        Err(_) => return format!("error after {total}"),
                    }
                }
                total.to_string()
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let chunks = futures_util::stream::iter(0..1000)
                    .map(|i| Ok::<_, std::io::Error>(format!("chunk {i}\n")));
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/handshake",
            // "first", then nothing until the test releases the handler, then "last".
            get(move || async move {
                let chunks = futures_util::stream::unfold(0u8, move |step| {
                    let release = release.clone();
                    async move {
                        let chunk = match step {
                            0 => "first\n",
                            1 => {
                                release.notified().await;
                                "last\n"
                            }
                            _ => return None,
                        };
                        Some((
                            Ok::<_, std::io::Error>(Bytes::from_static(chunk.as_bytes())),
                            step + 1,
                        ))
                    }
                });
                Body::from_stream(chunks)
            }),
        )
}

fn close(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_byte_identical_with_and_without_the_layer() {
    let release = Arc::new(Notify::new());
    let twins = Twins::serve(|| app(release.clone())).await;
    let (bare, instrumented) = (twins.bare, twins.instrumented);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "the longest URI the http crate parses",
            close("GET", &echo_target(common::HTTP_MAX_URI)),
        ),
        ("bad percent-encoding", close("GET", "/echo/%zz%ff%?q=%%%")),
        (
            "as many headers as hyper reads, 1 KiB each",
            get_with("/echo/h", common::HYPER_MAX_HEADERS - 2),
        ),
        ("odd method", close("BREW", "/echo/pot")),
        ("HEAD", close("HEAD", "/echo/h")),
        ("no route", close("GET", "/nowhere")),
        ("streamed response", close("GET", "/stream")),
    ];
    let mut recorded = twins.recorded().await;
    assert_eq!(recorded, 0);
    for (name, raw) in &cases {
        let a = raw_exchange(bare, raw, None).await;
        let b = raw_exchange(instrumented, raw, None).await;
        assert!(a.starts_with(b"HTTP/1.1 "), "{name}: answered by the app");
        assert_eq!(without_date(&a), without_date(&b), "{name}");
        let now = twins.recorded().await;
        assert_eq!(now, recorded + 1, "{name}: reaches the layer once");
        recorded = now;
    }
    let streamed = raw_exchange(instrumented, &close("GET", "/stream"), None).await;
    assert!(String::from_utf8_lossy(&streamed).contains("chunk 999"));
    recorded += 1;

    // 100 MiB streamed through, in 64 KiB chunks (2 GiB in the long variant).
    let head = b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let total: u64 = common::normal_or_long(100 << 20, 2 << 30);
    let a = raw_exchange(bare, head, Some((total, 64 * 1024))).await;
    let b = raw_exchange(instrumented, head, Some((total, 64 * 1024))).await;
    assert_eq!(without_date(&a), without_date(&b));
    assert!(
        a.ends_with(total.to_string().as_bytes()),
        "{}",
        String::from_utf8_lossy(&a)
    );
    assert_eq!(twins.recorded().await, recorded + 1, "the streamed body");
    recorded += 1;

    // A body cut off mid-stream: the client announces 1 MiB, sends half and leaves.
    for addr in [bare, instrumented] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(&vec![b'x'; 512 * 1024]).await.unwrap();
        drop(stream);
    }
    assert_eq!(
        twins.recorded_up_to(recorded + 1).await,
        recorded + 1,
        "the cut-off body"
    );
    assert_eq!(twins.layer.tier().queued(), 0);
}

/// Sends `GET /handshake`, waits (bounded) until the first chunk has arrived, checks that
/// the request is still in flight in `layer` if given, releases the handler, and returns
/// the whole answer.
async fn first_chunk_before_the_end(
    addr: SocketAddr,
    release: &Notify,
    layer: Option<&scalewatch::ServerTierLayer>,
) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&close("GET", "/handshake")).await.unwrap();
    let mut received = Vec::new();
    let first = async {
        let mut buf = [0u8; 4096];
        while !received.windows(6).any(|w| w == b"first\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the first chunk");
            received.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(HANDSHAKE, first)
        .await
        .expect("the first chunk reaches the client while the handler holds the rest");
    assert!(!received.windows(5).any(|w| w == b"last\n"));
    if let Some(layer) = layer {
        assert_eq!(
            layer.tier().in_flight(),
            1,
            "the request is inside the layer"
        );
    }
    release.notify_one();
    tokio::time::timeout(HANDSHAKE, stream.read_to_end(&mut received))
        .await
        .expect("the rest follows the release")
        .unwrap();
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_reaches_the_client_before_its_handler_finishes() {
    let release = Arc::new(Notify::new());
    let twins = Twins::serve(|| app(release.clone())).await;
    let a = first_chunk_before_the_end(twins.bare, &release, None).await;
    let b = first_chunk_before_the_end(twins.instrumented, &release, Some(&twins.layer)).await;
    assert_eq!(without_date(&a), without_date(&b));
    assert!(String::from_utf8_lossy(&b).contains("last\n"));
    assert_eq!(
        twins.recorded().await,
        1,
        "the streamed request reached the layer"
    );
}
