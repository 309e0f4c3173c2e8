//! The client layer and an enforced custom tier, given a limit and no queue settings, queue
//! at most their default bound (4 × the limit) and refuse the rest at once: the client with
//! a `ClientError::Refused` whose message names what to change, the custom tier's
//! `try_instrument` with `RejectionReason::Overloaded`. Refusals are counted in
//! `scalewatch.tier.rejections`; a client call that waits past its `queue_timeout` is
//! refused with reason `timeout`. Gauges end at 0.
#![allow(clippy::unwrap_used)]

use scalewatch_core::catalog::{self, attr};
use scalewatch_core::{RejectionReason, Tier, TierKind};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, telemetry_to, FakeReceiver};
use scalewatch_tower::{BuildError, ClientError, ClientTierLayer, DEFAULT_QUEUE_PER_PERMIT};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};

const CALLS: usize = 1_000;
const LIMIT: usize = 2;

#[tokio::test(flavor = "current_thread")]
async fn client_and_custom_tier_queues_are_bounded_by_default() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let meter = telemetry.meter();
    let bound = LIMIT * DEFAULT_QUEUE_PER_PERMIT;

    // The client layer over a dependency that answers only when told to.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let answers = release.clone();
    let layer = ClientTierLayer::builder()
        .tier_name("billing")
        .concurrency_limit(LIMIT)
        .build(&meter)
        .unwrap();
    let mut client = layer.layer(tower::service_fn(move |_req: http::Request<String>| {
        let answers = answers.clone();
        async move {
            let _answer = answers.acquire().await;
            Ok::<_, Infallible>(http::Response::new(String::from("paid")))
        }
    }));
    let mut cx = Context::from_waker(Waker::noop());
    let mut waiting = Vec::new();
    let mut refusals = Vec::new();
    for _ in 0..CALLS {
        client.ready().await.unwrap();
        let request = http::Request::get("http://billing.internal/pay")
            .body(String::new())
            .unwrap();
        let mut call = Box::pin(client.call(request));
        match call.as_mut().poll(&mut cx) {
            Poll::Pending => waiting.push(call),
            Poll::Ready(Err(error)) => refusals.push(error),
            Poll::Ready(Ok(_)) => panic!("no call is answered before its release"),
        }
        assert!(layer.tier().queued() <= bound as i64);
    }
    assert_eq!(waiting.len(), LIMIT + bound);
    assert_eq!(refusals.len(), CALLS - LIMIT - bound);
    let refused = refusals[0]
        .refused()
        .expect("a refusal, not the service's error");
    assert_eq!(refused.tier(), "billing");
    assert_eq!(refused.reason(), RejectionReason::Overloaded);
    let message = refusals[0].to_string();
    for needle in [
        "billing",
        "concurrency_limit",
        "max_queued",
        "2 permits",
        "8 calls",
    ] {
        assert!(message.contains(needle), "{needle} in: {message}");
    }
    // `?` turns it into a `Box<dyn Error>`, as an application's main returns.
    let boxed: Box<dyn std::error::Error> = Box::new(refusals.pop().unwrap());
    assert!(boxed.source().is_some(), "the reason is its source");
    assert!(matches!(refusals[0], ClientError::Refused(_)));
    drop(refusals);
    release.add_permits(CALLS);
    for call in waiting {
        let response = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("every waiting call completes")
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!((layer.tier().in_flight(), layer.tier().queued()), (0, 0));

    // A queue timeout refuses calls that waited too long, with reason `timeout`.
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    let held = hold.clone();
    let patient = ClientTierLayer::builder()
        .tier_name("ledger")
        .concurrency_limit(1)
        .queue_timeout(Duration::from_millis(20))
        .build(&meter)
        .unwrap();
    let ledger = patient.layer(tower::service_fn(move |_req: http::Request<String>| {
        let held = held.clone();
        async move {
            let _ = held.acquire().await;
            Ok::<_, Infallible>(http::Response::new(String::new()))
        }
    }));
    let first = tokio::spawn(ledger.clone().oneshot(http::Request::new(String::new())));
    tokio::task::yield_now().await;
    let late = ledger
        .clone()
        .oneshot(http::Request::new(String::new()))
        .await
        .unwrap_err();
    assert_eq!(late.refused().unwrap().reason(), RejectionReason::Timeout);
    assert!(late.to_string().contains("queue_timeout"), "{late}");
    hold.add_permits(1);
    first.await.unwrap().unwrap();
    assert_eq!(
        (patient.tier().in_flight(), patient.tier().queued()),
        (0, 0)
    );

    // An enforced custom tier: `try_instrument` is refused past the bound.
    let db = Tier::builder("db", TierKind::Custom)
        .limit(LIMIT as u64)
        .enforce_limit()
        .build(&meter)
        .unwrap();
    let mut held_work = Vec::new();
    let mut custom_refused = 0;
    for _ in 0..CALLS {
        let mut work = Box::pin(db.try_instrument(std::future::pending::<()>()));
        match work.as_mut().poll(&mut cx) {
            Poll::Pending => held_work.push(work),
            Poll::Ready(Err(RejectionReason::Overloaded)) => custom_refused += 1,
            Poll::Ready(other) => panic!("unexpected {other:?}"),
        }
        assert!(db.queued() <= bound as i64);
    }
    assert_eq!(custom_refused, CALLS - LIMIT - bound);
    drop(held_work);
    assert_eq!((db.in_flight(), db.queued()), (0, 0));

    flush(&telemetry).await;
    let m = receiver.metrics();
    let rejected = |tier: &str, reason: &str| {
        m.sum(
            catalog::TIER_REJECTIONS.name,
            &[(attr::TIER_NAME, tier), (attr::REJECTION_REASON, reason)],
        )
    };
    assert_eq!(
        rejected("billing", "overloaded"),
        (CALLS - LIMIT - bound) as f64
    );
    assert_eq!(rejected("ledger", "timeout"), 1.0);
    assert_eq!(rejected("db", "overloaded"), (CALLS - LIMIT - bound) as f64);
    for tier in ["billing", "ledger", "db"] {
        let tier = [(attr::TIER_NAME, tier)];
        assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
        assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier), 0.0);
    }
    // Refused calls are recorded on the client side too, as failed calls.
    let refused_calls = m.histogram_count(
        catalog::HTTP_CLIENT_REQUEST_DURATION.name,
        &[(attr::ERROR_TYPE, "scalewatch_tower::client::Refused")],
    );
    assert_eq!(refused_calls, (CALLS - LIMIT - bound + 1) as u64);
}

#[test]
fn client_queue_settings_without_a_limit_are_errors_that_say_so() {
    let meter = opentelemetry::global::meter("t");
    let err = ClientTierLayer::builder()
        .max_queued(3)
        .build(&meter)
        .unwrap_err();
    assert_eq!(err, BuildError::QueueWithoutLimit("max_queued / load_shed"));
    assert!(err.to_string().contains("concurrency_limit"), "{err}");
    let err = ClientTierLayer::builder()
        .concurrency_limit(1)
        .queue_timeout(Duration::ZERO)
        .build(&meter)
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroQueueTimeout);
}
