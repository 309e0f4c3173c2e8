//! A custom tier with an enforced limit, whose work is cancelled 1,000 times while queued
//! and while running, ends with `scalewatch.tier.concurrency` and `scalewatch.tier.queued`
//! at 0 in the export, and every admitted item's wait in `scalewatch.tier.queue.time`.

use scalewatch_core::catalog::{self, attr};
use scalewatch_core::{Tier, TierKind};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, telemetry_to, FakeReceiver};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_tier_cancelled_a_thousand_times_leaves_gauges_at_zero() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let db = Tier::builder("database", TierKind::Custom)
        .limit(4)
        .enforce_limit()
        .build(&telemetry.meter())
        .unwrap();
    // Four slow queries hold every permit, so half the cancelled work dies queued.
    let holders: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.instrument(tokio::time::sleep(Duration::from_millis(50)))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut max_queued = 0;
    for i in 0..1_000 {
        let query = db.instrument(std::future::pending::<()>());
        if i % 2 == 0 {
            // Cancelled by a timeout after it arrived (queued or running).
            let _ = tokio::time::timeout(Duration::from_micros(10), query).await;
        } else {
            // Cancelled by aborting its task.
            let task = tokio::spawn(query);
            tokio::task::yield_now().await;
            max_queued = max_queued.max(db.queued());
            task.abort();
            let _ = task.await;
        }
    }
    for h in holders {
        h.await.unwrap();
    }
    // Once the holders are gone, cancelled work is admitted, then cancelled while running.
    for _ in 0..10 {
        let _ = tokio::time::timeout(
            Duration::from_micros(10),
            db.instrument(std::future::pending::<()>()),
        )
        .await;
    }
    assert_eq!((db.in_flight(), db.queued()), (0, 0));
    assert!(max_queued >= 1, "work must have queued behind the holders");

    flush(&telemetry).await;
    let m = receiver.metrics();
    let tier = [(attr::TIER_NAME, "database"), (attr::TIER_KIND, "custom")];
    assert_eq!(m.matching(catalog::TIER_CONCURRENCY.name, &tier).len(), 1);
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
    assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier), 0.0);
    assert_eq!(m.sum(catalog::TIER_LIMIT.name, &tier), 4.0);
    // The four holders and the ten late ones were admitted; whatever else got a permit
    // before its cancellation was admitted too. Nothing is admitted twice.
    let admitted = m.histogram_count(catalog::TIER_QUEUE_TIME.name, &tier);
    assert!((14..=1_014).contains(&admitted), "{admitted}");
    let u = m.sum(catalog::TIER_UTILIZATION.name, &tier);
    assert!((0.0..=1.0).contains(&u), "utilization {u}");
}
