//! R6, the requests hyper refuses before any service sees them: a URI one byte longer than
//! the `http` crate parses, one header more than hyper reads, a path that is not UTF-8, and
//! bytes that are not HTTP. The answers are byte-identical with and without the layer (the
//! `date` header aside), and the layer records none of them: they never reach it, which is
//! why they are apart from `responses_are_byte_identical_with_and_without_the_layer.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{echo_target, get_with, raw_exchange, without_date, Twins};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_requests_are_answered_the_same_with_and_without_the_layer() {
    let twins = Twins::serve(common::echo_app).await;
    let too_long = format!(
        "GET {} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        echo_target(common::HTTP_MAX_URI + 1)
    );
    let mut non_utf8 = b"GET /echo/".to_vec();
    non_utf8.extend_from_slice(&[0xff, 0xfe, 0x80]);
    non_utf8.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    // (case, raw request, the status hyper answers with, if any)
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "a URI one byte longer than the http crate parses",
            too_long.into_bytes(),
            Some("414"),
        ),
        (
            "one header more than hyper reads",
            get_with("/echo/h", common::HYPER_MAX_HEADERS - 1),
            Some("431"),
        ),
        ("a path that is not UTF-8", non_utf8, Some("400")),
        (
            "bytes that are not HTTP",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            None,
        ),
    ];
    for (name, raw, status) in &cases {
        let a = raw_exchange(twins.bare, raw, None).await;
        let b = raw_exchange(twins.instrumented, raw, None).await;
        assert_eq!(without_date(&a), without_date(&b), "{name}");
        if let Some(status) = status {
            let line = format!("HTTP/1.1 {status} ");
            assert!(
                a.starts_with(line.as_bytes()),
                "{name}: {}",
                String::from_utf8_lossy(&a[..a.len().min(200)])
            );
        }
        assert_eq!(twins.recorded().await, 0, "{name}: never reaches the layer");
    }
}
