//! Handlers that panic under load, through the server layer (axum on loopback behind
//! tower-http's `CatchPanicLayer`), the client layer (an inner service that panics in its
//! task) and custom tiers (`Tier::instrument`, `Tier::try_instrument` and `Tier::run`
//! inside the handlers): the process goes on, every panic is recorded with
//! `error.type` = `panic`, and active requests, tier concurrency and queues read exactly 0
//! through the fake receiver afterwards.
#![allow(clippy::unwrap_used)]

use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scalewatch_core::catalog::{self, attr};
use scalewatch_core::{Tier, TierKind};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{flush, telemetry_to, FakeReceiver};
use scalewatch_tower::{ClientTierLayer, ServerTierLayer};
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;
use tower::{Layer, ServiceExt};
use tower_http::catch_panic::CatchPanicLayer;

/// The payload of every deliberate panic, kept out of the test's output.
const PANIC: &str = "handler panic";

/// Panics with [`PANIC`], in a way the compiler cannot see through.
fn boom() {
    if std::hint::black_box(true) {
        std::panic::panic_any(PANIC);
    }
}

/// Yields once, then panics with [`PANIC`]: the panic comes on a later poll than the first,
/// as in a handler that has already awaited something.
async fn boom_after_a_yield() {
    tokio::task::yield_now().await;
    boom();
}

/// What each request of the load does, by its index.
const KINDS: [&str; 6] = [
    "/ok",
    "/panic",
    "/instrument",
    "/try-instrument",
    "/run",
    "client-panic",
];
const TASKS: usize = 8;
const PER_TASK: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handlers_leave_exact_gauges() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&PANIC) {
            default_hook(info);
        }
    }));
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let meter = telemetry.meter();

    // Custom tiers used inside the handlers, both gated, so a leaked permit would show.
    let db = Tier::builder("db", TierKind::Custom)
        .limit(2)
        .enforce_limit()
        .build(&meter)
        .unwrap();
    let cpu = Tier::builder("cpu", TierKind::Custom)
        .limit(2)
        .enforce_limit()
        .build(&meter)
        .unwrap();
    let server_layer = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(4)
        .build(&meter)
        .unwrap();
    let (db_, db2, cpu_) = (db.clone(), db.clone(), cpu.clone());
    let app = axum::Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/panic",
            get(|| async {
                boom_after_a_yield().await;
                "unreachable"
            }),
        )
        .route(
            "/instrument",
            get(move || async move {
                db_.instrument(boom_after_a_yield()).await;
                "unreachable"
            }),
        )
        .route(
            "/try-instrument",
            get(move || async move {
                let _ = db2.try_instrument(boom_after_a_yield()).await;
                "unreachable"
            }),
        )
        .route(
            "/run",
            get(move || async move {
                let cpu = cpu_.clone();
                // Blocking work belongs on the blocking pool; its panic comes back here.
                match tokio::task::spawn_blocking(move || cpu.run(boom)).await {
                    Ok(()) => "unreachable",
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }),
        )
        .layer(server_layer.clone())
        .layer(CatchPanicLayer::new());
    let addr = scalewatch_test_support::serve_axum(app).await;

    // The client side: calls through the client layer, over an inner service that panics
    // for the calls marked so, in the calling task.
    let client_layer = ClientTierLayer::builder()
        .tier_name("outbound")
        .concurrency_limit(4)
        .build(&meter)
        .unwrap();
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let client = client_layer.layer(tower::service_fn(move |req: http::Request<Full<Bytes>>| {
        let hyper = hyper.clone();
        async move {
            if req.headers().contains_key("x-client-panic") {
                boom_after_a_yield().await;
            }
            hyper.request(req).await
        }
    }));

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..PER_TASK {
                    let kind = KINDS[(task + i) % KINDS.len()];
                    let mut request = http::Request::get(format!(
                        "http://{addr}{}",
                        if kind == "client-panic" { "/ok" } else { kind }
                    ));
                    if kind == "client-panic" {
                        request = request.header("x-client-panic", "1");
                    }
                    let request = request.body(Full::new(Bytes::new())).unwrap();
                    // Each call in a task of its own, as a server's handler would make it:
                    // a panic ends that task, not the load.
                    let client = client.clone();
                    let call = tokio::spawn(async move {
                        let response = client.oneshot(request).await.unwrap();
                        let status = response.status().as_u16();
                        response.into_body().collect().await.unwrap();
                        status
                    });
                    match tokio::time::timeout(Duration::from_secs(30), call).await {
                        Ok(Ok(status)) => statuses.push((kind, status)),
                        Ok(Err(e)) if e.is_panic() => statuses.push((kind, 0)),
                        other => panic!("call {kind} did not end: {other:?}"),
                    }
                }
                statuses
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    assert_eq!(outcomes.len(), TASKS * PER_TASK);
    let count = |kind: &str| outcomes.iter().filter(|(k, _)| *k == kind).count();
    for (kind, status) in &outcomes {
        let expected = match *kind {
            "/ok" => 200,
            "client-panic" => 0,
            _ => 500,
        };
        assert_eq!(*status, expected, "{kind}");
    }

    // Every gauge exact in process...
    for tier in [server_layer.tier(), client_layer.tier(), &db, &cpu] {
        assert_eq!((tier.in_flight(), tier.queued()), (0, 0), "{}", tier.name());
    }
    // ...every permit back: each gated tier admits its whole limit at once again.
    let mut cx = Context::from_waker(Waker::noop());
    let mut held: Vec<_> = (0..2)
        .map(|_| Box::pin(db.try_instrument(std::future::pending::<()>())))
        .collect();
    for work in &mut held {
        assert!(work.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(
        (db.in_flight(), db.queued()),
        (2, 0),
        "both admitted at once"
    );
    drop(held);
    assert_eq!(
        cpu.try_run(|| cpu.try_run(|| (cpu.in_flight(), cpu.queued()))),
        Ok(Ok((2, 0)))
    );

    // ...and through the export.
    flush(&telemetry).await;
    let m = receiver.metrics();
    assert_eq!(m.sum(catalog::HTTP_SERVER_ACTIVE_REQUESTS.name, &[]), 0.0);
    for name in ["api", "outbound", "db", "cpu"] {
        let tier = [(attr::TIER_NAME, name)];
        assert_eq!(
            m.matching(catalog::TIER_CONCURRENCY.name, &tier).len(),
            1,
            "{name} is exported"
        );
        assert_eq!(m.sum(catalog::TIER_CONCURRENCY.name, &tier), 0.0, "{name}");
        assert_eq!(m.sum(catalog::TIER_QUEUED.name, &tier), 0.0, "{name}");
    }
    let panicked = [(attr::ERROR_TYPE, "panic")];
    let server_panics = count("/panic") + count("/instrument") + count("/try-instrument");
    assert_eq!(
        m.histogram_count(catalog::HTTP_SERVER_REQUEST_DURATION.name, &panicked),
        (server_panics + count("/run")) as u64,
        "every server-side panic is recorded as one"
    );
    assert_eq!(
        m.histogram_count(catalog::HTTP_CLIENT_REQUEST_DURATION.name, &panicked),
        count("client-panic") as u64,
        "every client-side panic is recorded as one"
    );
    // Every call is recorded once on the client side, whatever its end.
    assert_eq!(
        m.histogram_count(catalog::HTTP_CLIENT_REQUEST_DURATION.name, &[]),
        (TASKS * PER_TASK) as u64
    );
    let _ = std::panic::take_hook();
}
