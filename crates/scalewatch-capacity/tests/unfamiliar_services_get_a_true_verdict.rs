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
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use scalewatch_capacity::{CapacityModel, CapacityReport, ResourceKind, ResourceUtilization};
use scalewatch_sync::{LockMetrics, Mutex, Pool};
use scalewatch_test_support::closed_loop::{blocking, fetch, http_client};
use scalewatch_test_support::{serve_axum, Close, ClosedLoop, RuntimeThread};
use scalewatch_tower::ServerTierLayer;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Runs its closure when dropped: stops a background thread.
struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

/// A service on loopback, its model, and its users.
struct Service {
    /// Closed-loop users taking the service's paths in turn (one cycle shared by all
    /// users, so the mix holds at any number of users). Each level's windows close the
    /// model's: the transition skipped, then three windows of 0.5 s sampled.
    load: ClosedLoop,
    model: CapacityModel,
    _provider: SdkMeterProvider,
    /// Background threads and the server's own runtime, stopped when dropped.
    _guards: Vec<Box<dyn Any>>,
}

/// A service being put together: a meter of its own, the server tier `shop` with its
/// layer, and a model at its defaults that watches it. Every handle made here is
/// registered with the model, as a user would.
struct Shop {
    provider: SdkMeterProvider,
    meter: Meter,
    locks: LockMetrics,
    layer: ServerTierLayer,
    model: CapacityModel,
    guards: Vec<Box<dyn Any>>,
}

impl Shop {
    fn new() -> Self {
        let provider = SdkMeterProvider::builder().build();
        let meter = provider.meter("unfamiliar");
        let layer = ServerTierLayer::builder()
            .tier_name("shop")
            .build(&meter)
            .unwrap();
        let model = CapacityModel::new(&meter);
        model.watch(layer.tier()).unwrap();
        Self {
            locks: LockMetrics::new(&meter),
            provider,
            meter,
            layer,
            model,
            guards: Vec::new(),
        }
    }

    /// The lock `name`, registered.
    fn lock(&self, name: &'static str) -> Arc<Mutex<()>> {
        let lock = Arc::new(Mutex::new(name, (), &self.locks));
        self.model.register(&*lock).unwrap();
        lock
    }

    /// The pool `db` of `size` members, registered.
    fn pool(&self, size: u32) -> Pool {
        let db = Pool::builder("db", size).build(&self.meter).unwrap();
        self.model.register(&db).unwrap();
        db
    }

    /// Keeps `guard` (a background thread, a runtime) until the service is dropped.
    fn keep(&mut self, guard: impl Any) {
        self.guards.push(Box::new(guard));
    }

    /// A downstream service on loopback that sleeps `hold` a call, called through the
    /// client tier `downstream` with a concurrency limit of `limit`, watched by the model.
    async fn downstream(
        &self,
        hold: Duration,
        limit: usize,
    ) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone {
        use tower::Layer;
        let app = Router::new().route(
            "/call",
            get(move || async move {
                blocking_sleep(hold).await;
                "done"
            }),
        );
        let addr = serve_axum(app).await;
        let layer = scalewatch_tower::ClientTierLayer::builder()
            .tier_name("downstream")
            .concurrency_limit(limit)
            .max_queued(usize::MAX)
            .build(&self.meter)
            .unwrap();
        self.model.watch(layer.tier()).unwrap();
        let client = layer.layer(http_client());
        move || {
            let client = client.clone();
            Box::pin(async move {
                fetch(client, addr, "/call").await;
            })
        }
    }

    /// Serves `routes` behind the tier's layer on the test's runtime; its users take
    /// `paths` in turn.
    async fn serve(self, routes: Router, paths: &[&str]) -> Service {
        let addr = serve_axum(routes.layer(self.layer.clone())).await;
        self.service(addr, paths)
    }

    /// Serves `routes` behind the tier's layer on a runtime of one worker of its own,
    /// registered as the runtime `server`; its users take `paths` in turn.
    fn serve_on_its_own_runtime(mut self, routes: Router, paths: &[&str]) -> Service {
        let (server, addr) = RuntimeThread::serve(routes.layer(self.layer.clone()));
        let tier = scalewatch_runtime::RuntimeTier::builder(server.handle().clone())
            .name("server")
            .build(&self.meter)
            .unwrap();
        self.model.register(&tier).unwrap();
        self.keep(server);
        self.service(addr, paths)
    }

    fn service(self, addr: SocketAddr, paths: &[&str]) -> Service {
        let windows = self.model.clone();
        Service {
            load: ClosedLoop::new(addr, paths, move |close| {
                if close == Close::Transition {
                    windows.skip();
                } else {
                    windows.sample();
                }
            }),
            model: self.model,
            _provider: self.provider,
            _guards: self.guards,
        }
    }
}

/// The one route `/work`, running `work` for each request.
fn work<F, Fut>(work: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Router::new().route("/work", get(work))
}

/// A precise sleep on a blocking thread (the timer's millisecond steps would make it
/// depend on the load).
async fn blocking_sleep(time: Duration) {
    blocking(move || std::thread::sleep(time)).await;
}

/// Holds `lock` for `time`, on a blocking thread.
async fn hold_lock(lock: Arc<Mutex<()>>, time: Duration) {
    blocking(move || {
        let _held = lock.lock().unwrap();
        std::thread::sleep(time);
    })
    .await;
}

/// Holds a member of `pool` for `time`.
async fn hold_member(pool: &Pool, time: Duration) {
    let _member = pool.acquire().await.unwrap();
    blocking_sleep(time).await;
}

/// The route `/work`: `ledger` held for `lock`, then a member of `db` for `member`.
fn lock_then_member(ledger: Arc<Mutex<()>>, lock: Duration, db: Pool, member: Duration) -> Router {
    work(move || {
        let (ledger, db) = (ledger.clone(), db.clone());
        async move {
            hold_lock(ledger, lock).await;
            hold_member(&db, member).await;
        }
    })
}

/// How many calls a request makes to the downstream, at once.
#[derive(Clone, Copy)]
enum Calls {
    One,
    TwoConcurrent,
}

/// A service whose requests hold the `ledger` lock for `lock`, then make `calls` to a
/// downstream that takes 20 ms, `limit` calls at a time.
async fn lock_then_downstream(lock: Duration, limit: usize, calls: Calls) -> Service {
    let shop = Shop::new();
    let ledger = shop.lock("ledger");
    let call = shop.downstream(20 * MS, limit).await;
    let routes = work(move || {
        let (ledger, call) = (ledger.clone(), call.clone());
        async move {
            hold_lock(ledger, lock).await;
            match calls {
                Calls::One => call().await,
                Calls::TwoConcurrent => _ = tokio::join!(call(), call()),
            }
        }
    });
    shop.serve(routes, &["/work"]).await
}

/// Holds the service at each (users, think time in ms) of `loads`, three windows each,
/// then ramps it past saturation (1, 2, 4, 8, 16 users with no think time, three windows
/// a level); prints the verdict of both regimes and returns the report past saturation.
async fn below_half_then_past_saturation(
    service: &Service,
    case: &str,
    loads: &[(usize, u64)],
) -> CapacityReport {
    hold_below_half(service, case, loads).await;
    ramp(service, case).await
}

/// Holds the service at each (users, think time in ms) of `loads`, three windows each;
/// prints the verdict.
async fn hold_below_half(service: &Service, case: &str, loads: &[(usize, u64)]) -> CapacityReport {
    service.load.hold(loads).await;
    let report = service.model.report();
    verdict(case, "below half", &report);
    report
}

/// Ramps 1, 2, 4, 8, 16 users with no think time, three windows a level; prints the
/// verdict.
async fn ramp(service: &Service, case: &str) -> CapacityReport {
    service.load.ramp(16).await;
    service.model.refit();
    let report = service.model.report();
    verdict(case, "past saturation", &report);
    report
}

/// Holds the service at `loads` and expects the named resource as the wall (every
/// resource but `busy_anyway` at half or less); then ramps it past saturation and expects
/// the same resource as the first bottleneck. Returns the prediction made below half load
/// (see [`assert_wall`]) and the report past saturation.
async fn named_before_and_past_saturation(
    service: &Service,
    case: &str,
    loads: &[(usize, u64)],
    (kind, name): (ResourceKind, &str),
    busy_anyway: &[&str],
) -> ((f64, String), CapacityReport) {
    let before = hold_below_half(service, case, loads).await;
    let predicted = assert_wall(&before, kind, name, busy_anyway);
    let past = ramp(service, case).await;
    assert_bottleneck(&past, kind, name);
    (predicted, past)
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
            let demand = r.demand().map_or(String::new(), |d| {
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

/// The resource `name` as ranked in `report`.
fn resource<'a>(report: &'a CapacityReport, name: &str) -> &'a ResourceUtilization {
    report
        .resources
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} is ranked: {}", summary(report)))
}

fn utilization(report: &CapacityReport, name: &str) -> f64 {
    resource(report, name).utilization
}

/// When a background holder takes its lock again.
#[derive(Clone, Copy)]
enum Pace {
    /// At the start of every period, on a fixed schedule whatever else takes the lock.
    Every(Duration),
    /// After letting it go for this long.
    After(Duration),
}

/// Set while a background holder waits for its lock: requests that honour it step aside
/// (std's lock is not fair, and a dozen request threads could otherwise starve the holder
/// and change the plant under load).
type Waiting = Arc<AtomicBool>;

/// A thread that holds `lock` for `hold` at the `pace` given, until dropped (two minutes
/// at most), raising `waiting` while it waits for the lock.
fn background_holder(lock: Arc<Mutex<()>>, hold: Duration, pace: Pace, waiting: Waiting) -> OnDrop {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let deadline = start + Duration::from_secs(120);
            let mut tick = start;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                {
                    waiting.store(true, Relaxed);
                    let _held = lock.lock().unwrap();
                    waiting.store(false, Relaxed);
                    std::thread::sleep(hold);
                }
                match pace {
                    Pace::Every(period) => {
                        tick += period;
                        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                    }
                    Pace::After(gap) => std::thread::sleep(gap),
                }
            }
        })
    };
    OnDrop(Some(Box::new(move || {
        stop.store(true, Relaxed);
        thread.join().unwrap();
    })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_reached_by_one_route_of_two_is_named_for_the_whole_service() {
    // 7 requests in 10 take the cache lock for 0.2 ms; 3 in 10 take a member of a pool of
    // 3 for 30 ms: the pool passes 100 of those a second, so the service 333/s. The lock
    // would take about 7,000/s.
    let shop = Shop::new();
    let (cache, db) = (shop.lock("cache"), shop.pool(3));
    let routes = Router::new()
        .route("/cached", get(move || hold_lock(cache.clone(), MS / 5)))
        .route(
            "/stored",
            get(move || {
                let db = db.clone();
                async move { hold_member(&db, 30 * MS).await }
            }),
        );
    let paths = [
        "/cached", "/cached", "/stored", "/cached", "/cached", "/stored", "/cached", "/cached",
        "/stored", "/cached",
    ];
    let service = shop.serve(routes, &paths).await;
    let case = "two routes";
    // Requests take about 10 ms on average: about 15% to 40% of 333/s.
    let loads = [(1, 10), (2, 6), (1, 3), (1, 0)];
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, (ResourceKind::Pool, "db"), &[])
            .await;
    assert!(utilization(&past, "cache") < 0.5, "{}", summary(&past));
    assert_predicted(case, predicted, 1000.0 / 3.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_kept_busy_by_a_background_thread_is_not_blamed_for_the_pools_limit() {
    // A compaction thread holds the `compactor` lock 19 ms of every 20 whatever the load
    // (95%, saturated); requests never take it. They take the `ledger` lock for 1 ms
    // (1,000/s), then a member of a pool of 2 for 10 ms: 200/s.
    let mut shop = Shop::new();
    let compactor = shop.lock("compactor");
    let (ledger, db) = (shop.lock("ledger"), shop.pool(2));
    shop.keep(background_holder(
        compactor,
        19 * MS,
        Pace::After(MS),
        Waiting::default(),
    ));
    let routes = lock_then_member(ledger, MS, db, 10 * MS);
    let service = shop.serve(routes, &["/work"]).await;
    let case = "background lock";
    // Requests take about 11.5 ms: about 15% to 45% of 200/s.
    let loads = [(1, 20), (2, 10), (1, 8), (1, 2)];
    let pool = (ResourceKind::Pool, "db");
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, pool, &["compactor"]).await;
    let text = summary(&past);
    let compactor = resource(&past, "compactor");
    assert!(compactor.saturated, "busy anyway: {text}");
    assert!(
        !compactor.tracks().any(|t| t == "shop"),
        "its use does not follow the requests: {text}"
    );
    assert_predicted(case, predicted, 200.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_nobody_registered_is_not_pinned_on_a_registered_resource() {
    // Two permits of a plain tokio semaphore, 10 ms each: 200 requests/s, invisible to the
    // model. Then the registered `ledger` lock for 0.5 ms (2,000/s) and a member of the
    // registered pool of 32 for 2 ms (16,000/s): both far from full at 200/s.
    let shop = Shop::new();
    let (ledger, db) = (shop.lock("ledger"), shop.pool(32));
    let hidden = Arc::new(tokio::sync::Semaphore::new(2));
    let routes = work(move || {
        let (hidden, ledger, db) = (hidden.clone(), ledger.clone(), db.clone());
        async move {
            {
                let _permit = hidden.acquire().await.unwrap();
                blocking_sleep(10 * MS).await;
            }
            hold_lock(ledger, MS / 2).await;
            hold_member(&db, 2 * MS).await;
        }
    });
    let service = shop.serve(routes, &["/work"]).await;
    let case = "invisible limit";
    // Requests take about 13 ms: about 20% to 40% of 200/s.
    let loads = [(1, 15), (1, 5), (2, 12), (1, 2)];
    let past = below_half_then_past_saturation(&service, case, &loads).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_downstream_behind_a_client_limit_comes_before_a_short_hot_lock() {
    // Each request holds the `ledger` lock for 3 ms (about 333/s), then calls a
    // downstream that takes 20 ms, four calls at a time (about 200/s less the call's own
    // overhead). The downstream saturates first; the lock stays below 90% past it.
    let service = lock_then_downstream(3 * MS, 4, Calls::One).await;
    let case = "lock and downstream";
    // Requests take about 25 ms: about 20% to 45% of 200/s.
    let loads = [(2, 30), (3, 10), (2, 10), (2, 2)];
    let downstream = (ResourceKind::Tier, "downstream");
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, downstream, &[]).await;
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
    let shop = Shop::new();
    let db = shop.pool(4);
    let routes = work(move || {
        let db = db.clone();
        async move {
            let _member = db.acquire().await.unwrap();
            // A blocking call on the async runtime: its worker is busy the whole time.
            std::thread::sleep(3 * MS);
            blocking_sleep(4 * MS).await;
        }
    });
    let service = shop.serve_on_its_own_runtime(routes, &["/work"]);
    let case = "pool around a blocked runtime";
    // Requests take about 8 ms: about 12% to 40% of 300/s.
    let loads = [(1, 20), (1, 5), (2, 12), (1, 3)];
    let runtime = (ResourceKind::Runtime, "server");
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, runtime, &[]).await;
    assert_predicted(case, predicted, 1000.0 / 3.0, &past);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_half_taken_by_a_batch_job_saturates_before_a_pool_that_looks_hotter_per_request() {
    // A batch job holds the `ledger` lock 10 ms of every 20 (50%) whatever the load; each
    // request takes it for 2 ms, then a member of a pool of 4 for 10 ms. The requests have
    // the other half of the lock: 250/s. The pool would take 400/s. By busy time per
    // request alone (2 ms against 2.5 ms a member) the pool would look first: only the
    // lock's background says otherwise.
    let mut shop = Shop::new();
    let (ledger, db) = (shop.lock("ledger"), shop.pool(4));
    let waiting = Waiting::default();
    let batch = background_holder(
        ledger.clone(),
        10 * MS,
        Pace::Every(20 * MS),
        waiting.clone(),
    );
    shop.keep(batch);
    // Requests never queue inside the lock and step aside while the batch job waits for
    // it, so that the batch job keeps its half at any load: they poll with `try_lock`.
    let routes = work(move || {
        let (ledger, db, waiting) = (ledger.clone(), db.clone(), waiting.clone());
        async move {
            blocking(move || {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if !waiting.load(Relaxed) {
                        if let Ok(_held) = ledger.try_lock() {
                            std::thread::sleep(2 * MS);
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                panic!("the ledger lock was not had within 10 s");
            })
            .await;
            hold_member(&db, 10 * MS).await;
        }
    });
    let service = shop.serve(routes, &["/work"]).await;
    let case = "half-busy lock";
    // Requests take about 15 ms (with the wait for the batch job): about 15% to 40% of
    // 250/s. The lock is above half from the start: the batch job's share.
    let loads = [(1, 10), (2, 10), (1, 3), (2, 4)];
    let lock = (ResourceKind::Lock, "ledger");
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, lock, &["ledger"]).await;
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
    let shop = Shop::new();
    let db = shop.pool(4);
    let hidden = Arc::new(tokio::sync::Semaphore::new(2));
    let routes = work(move || {
        let (hidden, db) = (hidden.clone(), db.clone());
        async move {
            let _member = db.acquire().await.unwrap();
            let _permit = hidden.acquire().await.unwrap();
            blocking_sleep(10 * MS).await;
        }
    });
    let service = shop.serve(routes, &["/work"]).await;
    let case = "pool around an invisible limit";
    // Requests take about 11 ms: about 20% to 40% of 200/s.
    let loads = [(1, 15), (1, 5), (2, 12), (1, 2)];
    let past = below_half_then_past_saturation(&service, case, &loads).await;
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
    let service = lock_then_downstream(MS, 6, Calls::TwoConcurrent).await;
    let case = "fan-out";
    // Requests take about 22 ms: about 20% to 45% of 143/s.
    let loads = [(1, 10), (2, 10), (1, 0), (2, 20)];
    let downstream = (ResourceKind::Tier, "downstream");
    let (predicted, past) =
        named_before_and_past_saturation(&service, case, &loads, downstream, &[]).await;
    let planted = if predicted.1 == "downstream" {
        6000.0 / 21.0
    } else {
        3000.0 / 21.0
    };
    assert!(utilization(&past, "ledger") < 0.5, "{}", summary(&past));
    assert_predicted(case, predicted, planted, &past);
}
