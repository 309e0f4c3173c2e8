//! R6: malformed and huge requests get byte-identical responses with and without the layer
//! (the `date` header aside), and a 100 MiB streamed request body (2 GiB with
//! `SCALEWATCH_LONG=1`) passes through unbuffered.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::extract::Request;
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_test_support::FakeReceiver;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn app() -> Router {
    Router::new()
        .route(
            "/echo/{*rest}",
            any(|req: Request| async move { format!("{} {}", req.method(), req.uri()) }),
        )
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
}

/// Sends raw bytes, then reads the whole answer (the connection closes after it).
async fn roundtrip(addr: SocketAddr, head: &[u8], body: Option<(u64, usize)>) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
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

fn without_date(response: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    text.split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_byte_identical_with_and_without_the_layer() {
    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    let layer = ServerTierLayer::builder()
        .concurrency_limit(64)
        .build(&telemetry.meter())
        .unwrap();
    let bare = scalewatch_test_support::serve_axum(app()).await;
    let instrumented = scalewatch_test_support::serve_axum(app().layer(layer.clone())).await;

    let long_uri = format!("/echo/{}", "a".repeat(64 * 1024));
    let many_headers: String = (0..100)
        .map(|i| format!("x-filler-{i}: {}\r\n", "v".repeat(1024)))
        .collect();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "64 KiB URI",
            format!("GET {long_uri} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").into_bytes(),
        ),
        (
            "bad percent-encoding",
            b"GET /echo/%zz%ff%?q=%%% HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "huge headers",
            format!("GET /echo/h HTTP/1.1\r\nHost: a\r\n{many_headers}Connection: close\r\n\r\n")
                .into_bytes(),
        ),
        (
            "odd method",
            b"BREW /echo/pot HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "HEAD",
            b"HEAD /echo/h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "no route",
            b"GET /nowhere HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "streamed response",
            b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
        ),
    ];
    let mut non_utf8 = b"GET /echo/".to_vec();
    non_utf8.extend_from_slice(&[0xff, 0xfe, 0x80]);
    non_utf8.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    cases.push(("non-UTF-8 path", non_utf8));
    for (name, raw) in &cases {
        let a = roundtrip(bare, raw, None).await;
        let b = roundtrip(instrumented, raw, None).await;
        assert_eq!(without_date(&a), without_date(&b), "{name}");
    }
    let streamed = without_date(&roundtrip(instrumented, &cases[6].1, None).await);
    assert!(String::from_utf8_lossy(&streamed).contains("chunk 999"));

    // 100 MiB streamed through, in 64 KiB chunks (2 GiB in the long variant).
    let head = b"POST /count HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let total: u64 = if common::long() { 2 << 30 } else { 100 << 20 };
    let a = roundtrip(bare, head, Some((total, 64 * 1024))).await;
    let b = roundtrip(instrumented, head, Some((total, 64 * 1024))).await;
    assert_eq!(without_date(&a), without_date(&b));
    assert!(
        a.ends_with(total.to_string().as_bytes()),
        "{}",
        String::from_utf8_lossy(&a)
    );

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
    for _ in 0..100 {
        if layer.tier().in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(layer.tier().in_flight(), 0);
    assert_eq!(layer.tier().queued(), 0);
}
