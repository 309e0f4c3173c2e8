//! A real axum server on loopback whose every request holds one global lock for a fixed
//! time: driven by a closed-loop client at rising concurrency, the live USL fit recovers
//! the serial fraction the workload was designed with, the ranking names the lock as the
//! first bottleneck, and the `scalewatch.capacity.*` and `scalewatch.resource.utilization`
//! series reach an OTLP receiver.
//!
//! # The expected σ
//!
//! Each request first runs a parallel part of `PARALLEL` (2 ms, a sleep: any number of
//! requests overlap), then takes the global `std::sync::Mutex` and holds it for `SERIAL`
//! (6 ms, a sleep: one request at a time). The work of one request is
//! `PARALLEL + SERIAL` = 8 ms, so alone it completes λ = 1/8 ms = 125/s per unit of
//! concurrency; however many requests are in flight, the lock lets through at most
//! 1/`SERIAL` = 167/s. The USL without coherency tends to the Amdahl ceiling λ/σ, so
//! σ = λ · `SERIAL` = `SERIAL` / (`SERIAL` + `PARALLEL`) = 0.75: the serial fraction.
//!
//! Both parts sleep (in the blocking pool, with `std::thread::sleep`), so the design holds
//! on a 2-core machine shared with other work: no part of it needs a CPU while it waits.
//! A real lock gives a sharp knee (throughput rises linearly to the ceiling, then stays
//! flat) where the USL curve is smooth, so the fit sits a little below the design (about
//! 0.69 for an exact knee at these levels). The server's own overhead (about 1 ms per
//! request in a debug build: the blocking-pool hop, routing, sleep overshoot) adds to
//! the parallel part and lowers the effective σ to about 6 / 8.9 = 0.68. Runs on a
//! loaded 2-core machine found 0.63 to 0.68; the test accepts σ within 25 % of 0.75.
//!
//! The same knee makes R² a weak judge here: most levels sit at the ceiling, so there is
//! little variance to explain and R² lands between 0.8 and 0.9 even for clean data. The
//! test lowers `min_r_squared` to 0.6 so that scheduling noise on a shared machine cannot
//! hide a fit whose σ is right; the other trust rules keep their defaults.

#![allow(clippy::unwrap_used)]

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use scalewatch_capacity::catalog::{self, attr};
use scalewatch_capacity::{busy_fraction, CapacityModel, ResourceKind};
use scalewatch_otlp::Protocol;
use scalewatch_test_support::{
    flush, serve_axum, telemetry_to, Close, ClosedLoop, FakeReceiver, Schedule,
};
use scalewatch_tower::ServerTierLayer;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARALLEL: Duration = Duration::from_millis(2);
const SERIAL: Duration = Duration::from_millis(6);
/// σ = serial / (serial + parallel), see the module docs.
const EXPECTED_SIGMA: f64 = 0.75;
const LEVELS: [usize; 6] = [1, 2, 4, 8, 16, 32];
const WARM_UP: Duration = Duration::from_millis(60);
const MEASURE: Duration = Duration::from_millis(400);
/// The ramp runs twice: each load level then averages two windows.
const PASSES: usize = 2;

/// The one global lock every request needs.
static GLOBAL: Mutex<()> = Mutex::new(());

/// Handler: the parallel part, then the critical section; `held` sums the nanoseconds the
/// lock was held (the test's busy integral for its utilization).
async fn work(State(held): State<Arc<AtomicU64>>) -> &'static str {
    let done = tokio::task::spawn_blocking(move || {
        std::thread::sleep(PARALLEL);
        let guard = GLOBAL.lock().unwrap_or_else(|p| p.into_inner());
        let acquired = Instant::now();
        std::thread::sleep(SERIAL);
        held.fetch_add(acquired.elapsed().as_nanos() as u64, Relaxed);
        drop(guard);
    })
    .await;
    if done.is_ok() {
        "ok"
    } else {
        "failed"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fit_of_a_lock_bound_server_finds_its_serial_fraction() {
    let started = Instant::now();
    let receiver = FakeReceiver::start().await;
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let meter = telemetry.meter();

    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .build(&meter)
        .unwrap();
    let model = CapacityModel::builder()
        .min_r_squared(0.6)
        .build(&meter)
        .unwrap();
    model.watch(layer.tier()).unwrap();
    let held = Arc::new(AtomicU64::new(0));
    let source = busy_fraction(1.0, {
        let held = held.clone();
        move || held.load(Relaxed)
    });
    model
        .register_resource(ResourceKind::Lock, "global", source)
        .unwrap();

    let app = Router::new()
        .route("/work", get(work))
        .with_state(held.clone())
        .layer(layer.clone());
    let addr = serve_axum(app).await;

    // The load ramp: at each step closed-loop clients (each sends its next request when
    // the previous one is answered) warm up, the transition is dropped (skip), one window
    // is measured (sample), then the clients stop before the next step.
    let windows = model.clone();
    let load = ClosedLoop::new(addr, &["/work"], move |close| {
        if close == Close::Transition {
            windows.skip();
        } else {
            windows.sample();
        }
    })
    .schedule(Schedule::new(MEASURE, 1).settle(WARM_UP));
    for clients in [LEVELS; PASSES].concat() {
        load.run(clients, Duration::ZERO).await;
        let report = model.report();
        let (api, lock) = (&report.tiers[0], &report.resources[0]);
        println!(
            "{clients:>2} clients: {:?}, lock {:.3}",
            api.current.unwrap(),
            lock.utilization
        );
    }
    model.refit();
    let report = model.report();
    println!("{report}");
    println!("ramp took {:?}", started.elapsed());

    let api = report.tier("api").unwrap();
    // One step may fail the Little's-law check when the unfair mutex starves a request
    // for longer than the window; the level still has the other pass.
    assert!(
        api.windows.accepted >= (PASSES * LEVELS.len()) as u64 - 1,
        "{api:#?}"
    );
    assert_eq!(api.levels.len(), LEVELS.len(), "{api:#?}");
    let fit = api
        .trusted_fit()
        .unwrap_or_else(|| panic!("no trusted fit: {:?}\n{api:#?}", api.untrusted));
    let sigma = fit.fit.model.sigma;
    assert!(
        (sigma - EXPECTED_SIGMA).abs() <= 0.25 * EXPECTED_SIGMA,
        "σ = {sigma:.3}, expected {EXPECTED_SIGMA} ± 25 %"
    );
    assert!(api.throughput_plateaued, "{api:#?}");
    let headroom = api.headroom.unwrap();
    assert!(
        (0.0..=0.3).contains(&headroom),
        "at the ceiling: {headroom}"
    );

    // The lock leads the ranking and is the first bottleneck.
    let lock = &report.resources[0];
    assert_eq!(
        (lock.kind, lock.name.as_str()),
        (ResourceKind::Lock, "global")
    );
    assert!(lock.saturated, "{lock:?}");
    let bottleneck = report.first_bottleneck.as_ref().unwrap();
    assert_eq!(bottleneck.name, "global");
    assert_eq!(bottleneck.plateaued_tiers, ["api"]);

    flush(&telemetry).await;
    let m = receiver.metrics();
    let api_filter = [(attr::TIER_NAME, "api")];
    for signal in [
        catalog::CAPACITY_CONTENTION,
        catalog::CAPACITY_COHERENCY,
        catalog::CAPACITY_HEADROOM,
        catalog::CAPACITY_FIT_R_SQUARED,
    ] {
        assert_eq!(
            m.matching(signal.name, &api_filter).len(),
            1,
            "{}",
            signal.name
        );
    }
    assert_eq!(m.sum(catalog::CAPACITY_CONTENTION.name, &api_filter), sigma);
    assert_eq!(
        m.matching(catalog::CAPACITY_PEAK_CONCURRENCY.name, &api_filter)
            .len(),
        usize::from(fit.peak.is_some())
    );
    let lock_series = m.matching(
        catalog::RESOURCE_UTILIZATION.name,
        &[
            (attr::RESOURCE_KIND, "lock"),
            (attr::RESOURCE_NAME, "global"),
        ],
    );
    assert_eq!(lock_series.len(), 1);
    assert_eq!(lock_series[0].as_f64(), lock.utilization);
    assert_eq!(
        m.unit(catalog::CAPACITY_PEAK_THROUGHPUT.name).is_some(),
        fit.peak.is_some()
    );
}
