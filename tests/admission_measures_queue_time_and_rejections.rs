//! With a concurrency limit the layer is the admission point: waits are measured as
//! `scalewatch.tier.queue.time`, refused requests are answered 503 and counted by reason.
#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use axum::Router;
use scalewatch::catalog::{self, attr};
use scalewatch::{Protocol, ServerTierLayer};
use scalewatch_test_support::{FakeReceiver, Histogram};
use std::time::Duration;

const WORK: Duration = Duration::from_millis(200);

async fn slow() -> &'static str {
    tokio::time::sleep(WORK).await;
    "done"
}

async fn burst(addr: std::net::SocketAddr, n: usize) -> Vec<u16> {
    let client = common::client();
    let calls = (0..n).map(|_| {
        let client = client.clone();
        async move { common::request(&client, addr, "GET", "/work").await.0 }
    });
    let mut statuses = futures_util::future::join_all(calls).await;
    statuses.sort_unstable();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_measures_queue_time_and_rejections() {
    let receiver = FakeReceiver::start().await;
    let telemetry = common::telemetry_to(&receiver, Protocol::Grpc);
    let meter = telemetry.meter();

    // Queueing: 2 admitted at once, 4 wait at least one full piece of work.
    let queueing = ServerTierLayer::builder()
        .tier_name("queueing")
        .concurrency_limit(2)
        .build(&meter)
        .unwrap();
    let addr = scalewatch_test_support::serve_axum(
        Router::new().route("/work", get(slow)).layer(queueing),
    )
    .await;
    assert_eq!(burst(addr, 6).await, vec![200; 6]);

    // Shedding: 1 admitted, the other 4 refused at once.
    let shedding = ServerTierLayer::builder()
        .tier_name("shedding")
        .concurrency_limit(1)
        .load_shed()
        .build(&meter)
        .unwrap();
    let addr = scalewatch_test_support::serve_axum(
        Router::new().route("/work", get(slow)).layer(shedding),
    )
    .await;
    assert_eq!(burst(addr, 5).await, vec![200, 503, 503, 503, 503]);

    // Timing out: 1 admitted, 2 give up after 50 ms in the queue.
    let timing_out = ServerTierLayer::builder()
        .tier_name("timing-out")
        .concurrency_limit(1)
        .queue_timeout(Duration::from_millis(50))
        .build(&meter)
        .unwrap();
    let addr = scalewatch_test_support::serve_axum(
        Router::new().route("/work", get(slow)).layer(timing_out),
    )
    .await;
    assert_eq!(burst(addr, 3).await, vec![200, 503, 503]);

    common::flush(&telemetry).await;
    let m = receiver.metrics();
    let queue_time = m.matching(
        catalog::TIER_QUEUE_TIME.name,
        &[(attr::TIER_NAME, "queueing")],
    );
    assert_eq!(queue_time.len(), 1);
    let Some(Histogram {
        count,
        bounds,
        bucket_counts,
        ..
    }) = queue_time[0].histogram()
    else {
        panic!("queue time is a histogram");
    };
    assert_eq!(*count, 6);
    assert_eq!(bucket_counts[0], 2, "two were admitted without waiting");
    let waited_long: u64 = bucket_counts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && bounds[*i - 1] >= 0.1)
        .map(|(_, c)| c)
        .sum();
    assert_eq!(
        waited_long, 4,
        "four waited for a whole piece of work: {bucket_counts:?}"
    );

    let rejections = catalog::TIER_REJECTIONS.name;
    for (tier, reason, refused) in [
        ("shedding", "overloaded", 4.0),
        ("timing-out", "timeout", 2.0),
    ] {
        assert_eq!(
            m.sum(
                rejections,
                &[(attr::TIER_NAME, tier), (attr::REJECTION_REASON, reason)]
            ),
            refused,
            "{tier}"
        );
    }
    assert_eq!(m.sum(rejections, &[(attr::TIER_NAME, "queueing")]), 0.0);
    // Refused requests are answered, so they are counted as 503s with their route.
    assert_eq!(
        m.histogram_count(
            catalog::HTTP_SERVER_REQUEST_DURATION.name,
            &[
                (attr::HTTP_RESPONSE_STATUS_CODE, "503"),
                (attr::ERROR_TYPE, "503")
            ]
        ),
        6
    );
    assert_eq!(
        m.sum(catalog::TIER_LIMIT.name, &[(attr::TIER_NAME, "queueing")]),
        2.0
    );
    for tier in ["queueing", "shedding", "timing-out"] {
        assert_eq!(
            m.sum(catalog::TIER_QUEUED.name, &[(attr::TIER_NAME, tier)]),
            0.0
        );
        assert_eq!(
            m.sum(catalog::TIER_CONCURRENCY.name, &[(attr::TIER_NAME, tier)]),
            0.0
        );
    }
}
