//! A flood of 100,000 requests against a concurrency limit of 4, with no queue settings:
//! the layer's queue holds at most its default bound (4 × the limit), everything past it is
//! answered `503` at once and counted in `scalewatch.tier.rejections`, and the heap the
//! flood holds stays bounded. The same flood with the bound lifted (`max_queued(usize::MAX)`)
//! holds a heap that grows with it, so the measurement can tell the two apart.
//!
//! A counting global allocator measures the heap, so this test has its own binary.
#![allow(clippy::unwrap_used)]

use scalewatch_core::catalog::{self, attr};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, telemetry_to, FakeReceiver};
use scalewatch_tower::{ServerTierLayer, DEFAULT_QUEUE_PER_PERMIT};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tower::{Layer, Service, ServiceExt};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FLOOD: usize = 100_000;
const LIMIT: usize = 4;

/// Bytes live now that were not live when `region` began.
fn net(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

struct Flood {
    /// Requests answered at once (refused).
    shed: usize,
    /// The most requests the tier counted as waiting at any point.
    max_queued: i64,
    /// The most heap the flood held at once, beyond the boxes the test keeps its futures
    /// in (the futures themselves, which any server holds for its requests).
    peak_heap: isize,
}

/// Calls the layered service `FLOOD` times while its handlers are all held back (every
/// future stays alive, as a server's would while its connections wait), polling each
/// once; then lets the handlers finish and drives what is left to completion.
async fn flood(layer: &ServerTierLayer) -> Flood {
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let handler_gate = release.clone();
    let mut service = layer.layer(tower::service_fn(move |_req: http::Request<String>| {
        let gate = handler_gate.clone();
        async move {
            let _permit = gate.acquire().await;
            Ok::<_, Infallible>(http::Response::new(String::from("done")))
        }
    }));
    let tier = layer.tier().clone();
    let mut futures = Vec::with_capacity(FLOOD);
    let mut waiting = Vec::with_capacity(FLOOD);
    let mut cx = Context::from_waker(Waker::noop());
    let region = Region::new(GLOBAL);
    let (mut shed, mut max_queued, mut peak_heap) = (0, 0, 0);
    let mut slot = 0;
    for i in 0..FLOOD {
        service.ready().await.unwrap();
        let mut future = Box::pin(service.call(http::Request::new(String::new())));
        slot = std::mem::size_of_val(&*future) as isize;
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => {
                assert_eq!(response.status(), 503, "only refusals answer at once");
                shed += 1;
            }
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => waiting.push(i),
        }
        // Kept, answered or not: the flood is 100,000 futures alive at once.
        futures.push(future);
        max_queued = max_queued.max(tier.queued());
        if i % 1_000 == 0 {
            peak_heap = peak_heap.max(net(&region) - (i as isize + 1) * slot);
        }
    }
    peak_heap = peak_heap.max(net(&region) - FLOOD as isize * slot);
    assert_eq!(tier.in_flight(), LIMIT as i64);
    // Let every handler through, and drive what is still waiting to its end.
    release.add_permits(FLOOD);
    for i in waiting {
        let response = tokio::time::timeout(Duration::from_secs(30), futures[i].as_mut())
            .await
            .expect("every request that waited completes")
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    drop(futures);
    assert_eq!((tier.in_flight(), tier.queued()), (0, 0));
    Flood {
        shed,
        max_queued,
        peak_heap,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn admission_floods_are_shed_within_a_bounded_queue() {
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let bound = LIMIT * DEFAULT_QUEUE_PER_PERMIT;

    // First the flood with the bound lifted, on a tier the export checks below ignore
    // (it also warms up the runtime and the SDK, whose first allocations are not the
    // flood's).
    let unbounded = ServerTierLayer::builder()
        .tier_name("unbounded")
        .concurrency_limit(LIMIT)
        .max_queued(usize::MAX)
        .build(&telemetry.meter())
        .unwrap();
    let held = flood(&unbounded).await;
    assert_eq!(held.shed, 0);
    assert_eq!(held.max_queued, (FLOOD - LIMIT) as i64);
    // Every waiting request holds its own allocations (the request, the ready service,
    // the semaphore wait): the lifted bound holds them all.
    let per_request = held.peak_heap / FLOOD as isize;
    assert!(
        per_request >= 64,
        "a waiting request holds its request: {per_request} B"
    );

    // Then the default: the limit and no queue settings.
    let bounded = ServerTierLayer::builder()
        .tier_name("flooded")
        .concurrency_limit(LIMIT)
        .build(&telemetry.meter())
        .unwrap();
    let flooded = flood(&bounded).await;
    assert!(
        flooded.max_queued <= bound as i64,
        "{} waited, past the bound of {bound}",
        flooded.max_queued
    );
    assert_eq!(
        flooded.max_queued, bound as i64,
        "the queue fills up to its bound"
    );
    // Requests are called one after the other here, so the split is exact: the limit is
    // admitted, the bound waits, and every other request is shed.
    assert_eq!(flooded.shed, FLOOD - LIMIT - bound);
    assert!(
        flooded.shed * 100 >= FLOOD * 99,
        "most of the flood is shed: {}",
        flooded.shed
    );
    // The bounded flood holds its 20 waiting requests (a few KiB); the allowance covers
    // what other threads (the receiver's, the SDK's) allocate meanwhile. The unbounded
    // flood holds tens of MiB.
    assert!(
        flooded.peak_heap < 1 << 20,
        "bounded flood heap {} B, {per_request} B per waiting request",
        flooded.peak_heap
    );
    assert!(
        flooded.peak_heap * 20 < held.peak_heap,
        "the bounded flood holds {} B, the unbounded one {} B",
        flooded.peak_heap,
        held.peak_heap
    );

    flush(&telemetry).await;
    let m = receiver.metrics();
    let tier = [(attr::TIER_NAME, "flooded")];
    let overloaded = [
        (attr::TIER_NAME, "flooded"),
        (attr::REJECTION_REASON, "overloaded"),
    ];
    assert_eq!(
        m.sum(catalog::TIER_REJECTIONS.name, &overloaded),
        (FLOOD - LIMIT - bound) as f64
    );
    assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0);
    assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier), 0.0);
    // Admitted requests waited (the queue-time histogram counts admissions only).
    assert_eq!(
        m.histogram_count(catalog::TIER_QUEUE_TIME.name, &tier),
        (LIMIT + bound) as u64
    );
    // Every request of both floods is in the duration histogram, as a 200 or a 503.
    let status = |code: &str| {
        m.histogram_count(
            catalog::HTTP_SERVER_REQUEST_DURATION.name,
            &[(attr::HTTP_RESPONSE_STATUS_CODE, code)],
        )
    };
    assert_eq!(status("503"), (FLOOD - LIMIT - bound) as u64);
    assert_eq!(status("200"), (LIMIT + bound + FLOOD) as u64);
    assert_eq!(m.sum(catalog::HTTP_SERVER_ACTIVE_REQUESTS.name, &[]), 0.0);
}
