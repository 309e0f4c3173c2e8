//! An audit of the verdict on services whose shape the model was not tuned for: two routes
//! with different mixes, a lock kept busy by a background thread, a lock half taken by a
//! batch job, a limit nobody registered (with registered resources far from full, and with
//! a registered pool held around it), a short hot lock next to a slow downstream behind a
//! client tier, a fan-out to a limited downstream, and a pool whose members are held while
//! the runtime's only worker does blocking work. Every scalewatch setting is at its
//! default, every handle the service uses is registered as a user would, and the model is
//! not told where the limit is.
//!
//! - Held at about half of the planted capacity or less, `first_to_saturate` names the
//!   planted limit, its saturation throughput within ±20% of the highest throughput the
//!   ramp then measures.
//! - Ramped past saturation, `first_bottleneck` names the planted limit, as filling where
//!   its own work predicts; or nothing when the limit is one the model cannot see, or only
//!   a registered resource held around it, named as having filled far below the
//!   throughput its own work predicts.
//!
//! Every planted limit is a sleep (on a blocking thread, for precision), so a 2-core
//! machine measures the plant and not its own load. Run with `-- --nocapture` to read the
//! verdict of each case.
#![allow(clippy::unwrap_used)]

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use scalewatch_capacity::{CapacityModel, CapacityReport, ResourceKind};
use scalewatch_sync::{LockMetrics, Mutex, Pool};
use scalewatch_tower::ServerTierLayer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(500);
const MS: Duration = Duration::from_millis(1);

/// Runs its closure when dropped: stops a background thread or a server's own runtime.
struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

/// A service on loopback, its model, and the paths its users request, in a cycle.
struct Service {
    addr: SocketAddr,
    model: CapacityModel,
    /// The paths the users take in turn (shared by all users, so the mix holds at any
    /// number of users).
    paths: &'static [&'static str],
    next: Arc<AtomicUsize>,
    _provider: SdkMeterProvider,
    _stops: Vec<OnDrop>,
}

/// A meter of its own, the server tier `shop` with its layer, and a model at its defaults
/// that watches it.
fn instrumented() -> (SdkMeterProvider, Meter, ServerTierLayer, CapacityModel) {
    let provider = SdkMeterProvider::builder().build();
    let meter = provider.meter("unfamiliar");
    let layer = ServerTierLayer::builder()
        .tier_name("shop")
        .build(&meter)
        .unwrap();
    let model = CapacityModel::new(&meter);
    model.watch(layer.tier()).unwrap();
    (provider, meter, layer, model)
}

/// Serves `app` on loopback on the test's runtime.
async fn listen(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A precise sleep on a blocking thread (the timer's millisecond steps would make it
/// depend on the load).
async fn blocking_sleep(time: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(time))
        .await
        .unwrap();
}

/// Holds `lock` for `time`, on a blocking thread.
async fn hold_lock(lock: Arc<Mutex<()>>, time: Duration) {
    tokio::task::spawn_blocking(move || {
        let _held = lock.lock().unwrap();
        std::thread::sleep(time);
    })
    .await
    .unwrap();
}

/// Holds a member of `pool` for `time`.
async fn hold_member(pool: &Pool, time: Duration) {
    let _member = pool.acquire().await.unwrap();
    blocking_sleep(time).await;
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Closed-loop users, each waiting `think` between an answer and its next request; one
/// window to settle (skipped), then `windows` windows sampled.
async fn load(service: &Service, users: usize, think: Duration, windows: usize) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, paths) = (service.addr, service.paths);
    let tasks: Vec<_> = (0..users)
        .map(|_| {
            let (client, stop, next) = (client.clone(), stop.clone(), service.next.clone());
            tokio::spawn(async move {
                // Bounded whatever happens.
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Relaxed) && Instant::now() < deadline {
                    let path = paths[next.fetch_add(1, Relaxed) % paths.len()];
                    let req = http::Request::get(format!("http://{addr}{path}"))
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let res = client.request(req).await.unwrap();
                    assert_eq!(res.status(), 200, "{path}");
                    res.into_body().collect().await.unwrap();
                    if !think.is_zero() {
                        tokio::time::sleep(think).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(WINDOW).await;
    service.model.skip();
    for _ in 0..windows {
        tokio::time::sleep(WINDOW).await;
        service.model.sample();
    }
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

/// Holds the service at each (users, think time in ms) of `loads`, three windows each.
async fn hold_below_half(service: &Service, loads: &[(usize, u64)]) -> CapacityReport {
    for &(users, think) in loads {
        load(service, users, Duration::from_millis(think), 3).await;
    }
    service.model.report()
}

/// Ramps 1, 2, 4, 8, 16 users with no think time, three windows a level.
async fn ramp(service: &Service) -> CapacityReport {
    for users in [1, 2, 4, 8, 16] {
        load(service, users, Duration::ZERO, 3).await;
    }
    service.model.refit();
    service.model.report()
}

/// The highest throughput of `tier` over the load levels seen: the planted capacity as
/// the service really has it, once the ramp went past it.
fn measured(report: &CapacityReport, tier: &str) -> f64 {
    report
        .tier(tier)
        .unwrap()
        .levels
        .iter()
        .map(|l| l.throughput)
        .fold(0.0, f64::max)
}

/// One line per regime: the wall, the bottleneck and every resource with its utilization.
fn verdict(case: &str, regime: &str, report: &CapacityReport) {
    let wall = report
        .first_to_saturate
        .as_ref()
        .map_or("the wall: none".to_owned(), |w| {
            format!("{w} [tier `{}`]", w.tier)
        });
    let bottleneck = report
        .first_bottleneck
        .as_ref()
        .map_or("none".to_owned(), |b| {
            format!(
                "{} `{}` {:.0}% on `{}` (saturation {:.0}/s)",
                b.kind,
                b.name,
                b.utilization * 100.0,
                b.tier,
                b.saturation_throughput.unwrap_or(f64::NAN)
            )
        });
    let resources: Vec<String> = report
        .resources
        .iter()
        .map(|r| {
            let demand = r.demand.as_ref().map_or(String::new(), |d| {
                format!(
                    " D={:.2}ms→{:.0}/s",
                    d.seconds_per_request * 1e3,
                    d.saturation_throughput
                )
            });
            format!(
                "{} `{}` {:.0}%{demand}",
                r.kind,
                r.name,
                r.utilization * 100.0
            )
        })
        .collect();
    eprintln!(
        "[{case}] {regime}: shop at most {:.0}/s; first bottleneck: {bottleneck}; {wall}; resources: {}",
        measured(report, "shop"),
        resources.join(", ")
    );
}

fn summary(report: &CapacityReport) -> String {
    format!("{report}\n{report:#?}")
}

/// Below half: every resource but `busy_anyway` at half or less, and the named one as the
/// wall, more than twice today's load away. Returns its saturation throughput and the
/// tier it is counted in.
fn assert_wall(
    report: &CapacityReport,
    kind: ResourceKind,
    name: &str,
    busy_anyway: &[&str],
) -> (f64, String) {
    let text = summary(report);
    for r in report
        .resources
        .iter()
        .filter(|r| !busy_anyway.contains(&r.name.as_str()))
    {
        assert!(r.utilization <= 0.5, "{} above half: {text}", r.name);
    }
    let wall = report.first_to_saturate.as_ref().expect(&text);
    assert_eq!((wall.kind, wall.name.as_str()), (kind, name), "{text}");
    assert!(wall.load_factor.unwrap() > 2.0, "{text}");
    (wall.saturation_throughput, wall.tier.clone())
}

/// Past saturation: the named resource as the first bottleneck.
fn assert_bottleneck(report: &CapacityReport, kind: ResourceKind, name: &str) {
    let text = summary(report);
    let bottleneck = report.first_bottleneck.as_ref().expect(&text);
    assert_eq!(
        (bottleneck.kind, bottleneck.name.as_str()),
        (kind, name),
        "{text}"
    );
    // It filled where its own busy time per request predicts: the limit is its own.
    assert_eq!(bottleneck.filled_early, None, "{text}");
}

/// The prediction made below half load within 20% of the capacity the ramp measured, in
/// the throughput of the tier the prediction is counted in. `planted` is what the sleeps
/// alone would allow, in the same tier's throughput, for the reader.
fn assert_predicted(
    case: &str,
    (predicted, tier): (f64, String),
    planted: f64,
    report: &CapacityReport,
) {
    let measured = measured(report, &tier);
    eprintln!(
        "[{case}] predicted {predicted:.0}/s of `{tier}` below half load; measured {measured:.0}/s at saturation; planted {planted:.0}/s by the sleeps alone"
    );
    assert!(
        (predicted - measured).abs() <= 0.2 * measured,
        "predicted {predicted:.0}/s below half load, measured {measured:.0}/s at saturation: {}",
        summary(report)
    );
}

fn utilization(report: &CapacityReport, name: &str) -> f64 {
    report
        .resources
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} is ranked: {}", summary(report)))
        .utilization
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_reached_by_one_route_of_two_is_named_for_the_whole_service() {
    // 7 requests in 10 take the cache lock for 0.2 ms; 3 in 10 take a member of a pool of
    // 3 for 30 ms: the pool passes 100 of those a second, so the service 333/s. The lock
    // would take about 7,000/s.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let cache = Arc::new(Mutex::new("cache", (), &locks));
    let db = Pool::builder("db", 3).build(&meter).unwrap();
    model.register(&*cache).unwrap();
    model.register(&db).unwrap();
    let app = Router::new()
        .route("/cached", get(move || hold_lock(cache.clone(), MS / 5)))
        .route(
            "/stored",
            get(move || {
                let db = db.clone();
                async move { hold_member(&db, 30 * MS).await }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &[
            "/cached", "/cached", "/stored", "/cached", "/cached", "/stored", "/cached", "/cached",
            "/stored", "/cached",
        ],
        next: Arc::default(),
        _provider: provider,
        _stops: Vec::new(),
    };
    let case = "two routes";
    // Requests take about 10 ms on average: about 15% to 40% of 333/s.
    let before = hold_below_half(&service, &[(1, 10), (2, 6), (1, 3), (1, 0)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Pool, "db", &[]);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Pool, "db");
    assert!(utilization(&past, "cache") < 0.5, "{}", summary(&past));
    assert_predicted(case, predicted, 1000.0 / 3.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_kept_busy_by_a_background_thread_is_not_blamed_for_the_pools_limit() {
    // A compaction thread holds the `compactor` lock 19 ms of every 20 whatever the load
    // (95%, saturated); requests never take it. They take the `ledger` lock for 1 ms
    // (1,000/s), then a member of a pool of 2 for 10 ms: 200/s.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let compactor = Arc::new(Mutex::new("compactor", (), &locks));
    let ledger = Arc::new(Mutex::new("ledger", (), &locks));
    let db = Pool::builder("db", 2).build(&meter).unwrap();
    model.register(&*compactor).unwrap();
    model.register(&*ledger).unwrap();
    model.register(&db).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let compaction = {
        let (compactor, stop) = (compactor.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded whatever happens: at most two minutes.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Relaxed) && Instant::now() < deadline {
                {
                    let _held = compactor.lock().unwrap();
                    std::thread::sleep(19 * MS);
                }
                std::thread::sleep(MS);
            }
        })
    };
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (ledger, db) = (ledger.clone(), db.clone());
                async move {
                    hold_lock(ledger, MS).await;
                    hold_member(&db, 10 * MS).await;
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: vec![OnDrop(Some(Box::new(move || {
            stop.store(true, Relaxed);
            compaction.join().unwrap();
        })))],
    };
    let case = "background lock";
    // Requests take about 11.5 ms: about 15% to 45% of 200/s.
    let before = hold_below_half(&service, &[(1, 20), (2, 10), (1, 8), (1, 2)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Pool, "db", &["compactor"]);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Pool, "db");
    let text = summary(&past);
    let compactor = past
        .resources
        .iter()
        .find(|r| r.name == "compactor")
        .unwrap();
    assert!(compactor.saturated, "busy anyway: {text}");
    assert!(
        !compactor.tracks.iter().any(|t| t == "shop"),
        "its use does not follow the requests: {text}"
    );
    assert_predicted(case, predicted, 200.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_nobody_registered_is_not_pinned_on_a_registered_resource() {
    // Two permits of a plain tokio semaphore, 10 ms each: 200 requests/s, invisible to the
    // model. Then the registered `ledger` lock for 0.5 ms (2,000/s) and a member of the
    // registered pool of 32 for 2 ms (16,000/s): both far from full at 200/s.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let ledger = Arc::new(Mutex::new("ledger", (), &locks));
    let db = Pool::builder("db", 32).build(&meter).unwrap();
    model.register(&*ledger).unwrap();
    model.register(&db).unwrap();
    let hidden = Arc::new(tokio::sync::Semaphore::new(2));
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (hidden, ledger, db) = (hidden.clone(), ledger.clone(), db.clone());
                async move {
                    {
                        let _permit = hidden.acquire().await.unwrap();
                        blocking_sleep(10 * MS).await;
                    }
                    hold_lock(ledger, MS / 2).await;
                    hold_member(&db, 2 * MS).await;
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: Vec::new(),
    };
    let case = "invisible limit";
    // Requests take about 13 ms: about 20% to 40% of 200/s.
    let before = hold_below_half(&service, &[(1, 15), (1, 5), (2, 12), (1, 2)]).await;
    verdict(case, "below half", &before);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    let text = summary(&past);
    // Nothing registered is full, so nothing registered may be blamed; a wall, if the
    // model names one, is the registered resource's own and lies far beyond the load.
    assert_eq!(past.first_bottleneck, None, "{text}");
    for r in &past.resources {
        assert!(!r.saturated, "{} is not full: {text}", r.name);
    }
    if let Some(wall) = &past.first_to_saturate {
        assert!(!wall.saturated, "{text}");
        assert!(wall.load_factor.is_none_or(|f| f > 2.0), "{text}");
    }
    eprintln!("[{case}] report past saturation:\n{past}");
}

/// A downstream service on loopback that sleeps `hold` a call, called through the client
/// tier `downstream` with a concurrency limit of `limit`, watched by `model`.
async fn downstream(
    model: &CapacityModel,
    meter: &Meter,
    hold: Duration,
    limit: usize,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone {
    use tower::{Layer, ServiceExt};
    let app = Router::new().route(
        "/call",
        get(move || async move {
            blocking_sleep(hold).await;
            "done"
        }),
    );
    let addr = listen(app).await;
    let layer = scalewatch_tower::ClientTierLayer::builder()
        .tier_name("downstream")
        .concurrency_limit(limit)
        .max_queued(usize::MAX)
        .build(meter)
        .unwrap();
    model.watch(layer.tier()).unwrap();
    let client = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    move || {
        let client = client.clone();
        Box::pin(async move {
            let req = http::Request::get(format!("http://{addr}/call"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let res = client.oneshot(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_downstream_behind_a_client_limit_comes_before_a_short_hot_lock() {
    // Each request holds the `ledger` lock for 3 ms (about 333/s), then calls a
    // downstream that takes 20 ms, four calls at a time (about 200/s less the call's own
    // overhead). The downstream saturates first; the lock stays below 90% past it.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let ledger = Arc::new(Mutex::new("ledger", (), &locks));
    model.register(&*ledger).unwrap();
    let call = downstream(&model, &meter, 20 * MS, 4).await;
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (ledger, call) = (ledger.clone(), call.clone());
                async move {
                    hold_lock(ledger, 3 * MS).await;
                    call().await;
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: Vec::new(),
    };
    let case = "lock and downstream";
    // Requests take about 25 ms: about 20% to 45% of 200/s.
    let before = hold_below_half(&service, &[(2, 30), (3, 10), (2, 10), (2, 2)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Tier, "downstream", &[]);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Tier, "downstream");
    assert!(utilization(&past, "ledger") < 0.9, "{}", summary(&past));
    assert_predicted(case, predicted, 200.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_held_while_the_runtime_blocks_blames_the_runtime() {
    // The server runs on one worker of its own. Each request takes a member of a pool of
    // 4, blocks the worker 3 ms (CPU-bound work done on the runtime, planted as a sleep),
    // then awaits 4 ms of I/O still holding the member. The worker passes at most 333/s
    // (less its own work); the pool, about 7 ms a member, 570/s. Past saturation the
    // members also wait for the worker, so the pool fills too: its symptom, not its cause.
    let (provider, meter, layer, model) = instrumented();
    let db = Pool::builder("db", 4).build(&meter).unwrap();
    model.register(&db).unwrap();
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let db = db.clone();
                async move {
                    let _member = db.acquire().await.unwrap();
                    // A blocking call on the async runtime: its worker is busy the whole time.
                    std::thread::sleep(3 * MS);
                    blocking_sleep(4 * MS).await;
                }
            }),
        )
        .layer(layer);
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tier = scalewatch_runtime::RuntimeTier::builder(rt.handle().clone())
            .name("server")
            .build(&meter)
            .unwrap();
        ready.send(tier).unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    let tier = is_ready.recv().unwrap();
    model.register(&tier).unwrap();
    let service = Service {
        addr,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: vec![OnDrop(Some(Box::new(move || {
            let _ = stop.send(());
            server.join().unwrap();
        })))],
    };
    let case = "pool around a blocked runtime";
    // Requests take about 8 ms: about 12% to 40% of 300/s.
    let before = hold_below_half(&service, &[(1, 20), (1, 5), (2, 12), (1, 3)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Runtime, "server", &[]);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Runtime, "server");
    assert_predicted(case, predicted, 1000.0 / 3.0, &past);
}

/// A thread that holds `lock` for `hold` at the start of every `period`, on a fixed
/// schedule whatever else takes the lock, until dropped (two minutes at most).
fn background_holder(lock: Arc<Mutex<()>>, hold: Duration, period: Duration) -> OnDrop {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let deadline = start + Duration::from_secs(120);
            let mut tick = start;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                {
                    let _held = lock.lock().unwrap();
                    std::thread::sleep(hold);
                }
                tick += period;
                std::thread::sleep(tick.saturating_duration_since(Instant::now()));
            }
        })
    };
    OnDrop(Some(Box::new(move || {
        stop.store(true, Relaxed);
        thread.join().unwrap();
    })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_half_taken_by_a_batch_job_saturates_before_a_pool_that_looks_hotter_per_request() {
    // A batch job holds the `ledger` lock 10 ms of every 20 (50%) whatever the load; each
    // request takes it for 2 ms, then a member of a pool of 4 for 10 ms. The requests have
    // the other half of the lock: 250/s. The pool would take 400/s. By busy time per
    // request alone (2 ms against 2.5 ms a member) the pool would look first: only the
    // lock's background says otherwise.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let ledger = Arc::new(Mutex::new("ledger", (), &locks));
    let db = Pool::builder("db", 4).build(&meter).unwrap();
    model.register(&*ledger).unwrap();
    model.register(&db).unwrap();
    let batch = background_holder(ledger.clone(), 10 * MS, 20 * MS);
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (ledger, db) = (ledger.clone(), db.clone());
                async move {
                    hold_lock(ledger, 2 * MS).await;
                    hold_member(&db, 10 * MS).await;
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: vec![batch],
    };
    let case = "half-busy lock";
    // Requests take about 15 ms (with the wait for the batch job): about 15% to 40% of
    // 250/s. The lock is above half from the start: the batch job's share.
    let before = hold_below_half(&service, &[(1, 10), (2, 10), (1, 3), (2, 4)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Lock, "ledger", &["ledger"]);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Lock, "ledger");
    assert!(utilization(&past, "db") < 0.9, "{}", summary(&past));
    assert_predicted(case, predicted, 250.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_held_around_a_limit_nobody_registered_is_named_only_as_filling_early() {
    // Each request holds a member of a pool of 4 for its whole life, and inside it one of
    // two permits of a plain tokio semaphore for 10 ms: 200/s, invisible to the model. The
    // pool's own time would let 400/s through; past 200/s it fills only because its members
    // wait on the semaphore. Growing the pool would not raise throughput, so the verdict
    // must not send its reader that way: the pool is named as full, but as having filled
    // at about half the throughput its own work predicts, with its holders possibly
    // waiting on something else.
    let (provider, meter, layer, model) = instrumented();
    let db = Pool::builder("db", 4).build(&meter).unwrap();
    model.register(&db).unwrap();
    let hidden = Arc::new(tokio::sync::Semaphore::new(2));
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (hidden, db) = (hidden.clone(), db.clone());
                async move {
                    let _member = db.acquire().await.unwrap();
                    let _permit = hidden.acquire().await.unwrap();
                    blocking_sleep(10 * MS).await;
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: Vec::new(),
    };
    let case = "pool around an invisible limit";
    // Requests take about 11 ms: about 20% to 40% of 200/s.
    let before = hold_below_half(&service, &[(1, 15), (1, 5), (2, 12), (1, 2)]).await;
    verdict(case, "below half", &before);
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    let text = summary(&past);
    assert!(utilization(&past, "db") >= 0.9, "the pool fills: {text}");
    let named = past.first_bottleneck.as_ref().expect(&text);
    assert_eq!(named.name, "db", "{text}");
    let early = named.filled_early.expect(&text);
    assert!(
        (1.6..=2.5).contains(&early),
        "about 400/s predicted, 200/s reached: {text}"
    );
    assert!(named.advice().contains("wait on something else"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_to_a_limited_downstream_is_named_in_the_downstreams_own_throughput() {
    // Each request takes the `ledger` lock for 1 ms (1,000/s), then makes two concurrent
    // calls to a downstream that takes 20 ms, six calls at a time: about 285 calls/s, so
    // about 143 requests/s. The client tier's throughput is twice the server's.
    let (provider, meter, layer, model) = instrumented();
    let locks = LockMetrics::new(&meter);
    let ledger = Arc::new(Mutex::new("ledger", (), &locks));
    model.register(&*ledger).unwrap();
    let call = downstream(&model, &meter, 20 * MS, 6).await;
    let app = Router::new()
        .route(
            "/work",
            get(move || {
                let (ledger, call) = (ledger.clone(), call.clone());
                async move {
                    hold_lock(ledger, MS).await;
                    tokio::join!(call(), call());
                }
            }),
        )
        .layer(layer);
    let service = Service {
        addr: listen(app).await,
        model,
        paths: &["/work"],
        next: Arc::default(),
        _provider: provider,
        _stops: Vec::new(),
    };
    let case = "fan-out";
    // Requests take about 22 ms: about 20% to 45% of 143/s.
    let before = hold_below_half(&service, &[(1, 10), (2, 10), (1, 0), (2, 20)]).await;
    verdict(case, "below half", &before);
    let predicted = assert_wall(&before, ResourceKind::Tier, "downstream", &[]);
    let planted = if predicted.1 == "downstream" {
        6000.0 / 21.0
    } else {
        3000.0 / 21.0
    };
    let past = ramp(&service).await;
    verdict(case, "past saturation", &past);
    assert_bottleneck(&past, ResourceKind::Tier, "downstream");
    assert!(utilization(&past, "ledger") < 0.5, "{}", summary(&past));
    assert_predicted(case, predicted, planted, &past);
}
