//! Services with a limit planted in them, run on loopback with every setting at its
//! default, and a model that is not told which limit it is: it must name the planted one.
//!
//! - Ramped past saturation, `first_bottleneck` names the planted limit, and a resource
//!   that is busy but is not what the stalled tier waits on is not blamed.
//! - Held at 50% or less of the planted capacity, `first_to_saturate` names it before it
//!   saturates, with a saturation throughput within ±20% of the planted capacity.
//!
//! Every planted limit is a sleep (a lock held, a pool member held), so a 2-core machine
//! measures the plant, not its own load. Windows are closed by `sample` every 0.5 s as a
//! service's sampler would.
#![allow(clippy::unwrap_used)]

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use scalewatch_capacity::{CapacityModel, CapacityReport, ResourceKind};
use scalewatch_sync::{LockMetrics, Mutex, Pool};
use scalewatch_test_support::closed_loop::{blocking, fetch, http_client};
use scalewatch_test_support::{serve_axum, Close, ClosedLoop, RuntimeThread};
use scalewatch_tower::ServerTierLayer;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// What one request does, planted by each test.
#[derive(Clone, Copy)]
enum Plant {
    /// The lock for `lock`, on a blocking thread; then a pool member for `pool`.
    LockThenPool { lock: Duration, pool: Duration },
    /// A pool member held for `pool`, and inside it the lock for `lock` (a connection
    /// held while waiting on the lock).
    PoolAroundLock { lock: Duration, pool: Duration },
    /// A permit of the `slots` semaphore held for `hold`, then the lock for 1 ms.
    Semaphore { hold: Duration },
    /// A sleep of `hold` behind the server layer's concurrency limit.
    TierLimit { hold: Duration },
    /// The runtime's only worker blocked for `hold` (a blocking call on the runtime),
    /// then the lock for 1 ms.
    Runtime { hold: Duration },
    /// A call to a downstream service (which sleeps `hold`) through a client tier with a
    /// concurrency limit.
    Client { hold: Duration },
    /// A job put on the bounded `orders` queue, and its answer awaited: one worker takes
    /// the jobs off the queue, `hold` each.
    Queue { hold: Duration },
    /// A read of the best-seller on its shard's storage node (one read at a time, `hold`
    /// each), then a read on the next of the other shards' nodes (1 ms).
    Shard { hold: Duration },
}

/// The `catalog` keyspace of 8 shards, each served by a storage node that takes one read
/// at a time; the best-seller lives on shard 3.
struct Catalog {
    keyspace: scalewatch_state::Keyspace,
    nodes: Arc<[std::sync::Mutex<()>]>,
    next: std::sync::atomic::AtomicUsize,
}

const CATALOG_SHARDS: usize = 8;
const BEST_SELLER_SHARD: usize = 3;

impl Catalog {
    /// The keyspace declares what one node can take (`capacity` reads/s); the nodes are
    /// not registered: the model sees the shards only through the keyspace.
    fn new(model: &CapacityModel, meter: &opentelemetry::metrics::Meter, capacity: f64) -> Self {
        let keyspace = scalewatch_state::Keyspace::builder("catalog")
            .shards(CATALOG_SHARDS)
            .shard_capacity(capacity)
            .build(meter)
            .unwrap();
        model.register(&keyspace).unwrap();
        Self {
            keyspace,
            nodes: (0..CATALOG_SHARDS)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
            next: Default::default(),
        }
    }

    /// One read on `shard`'s node: a precise sleep on a blocking thread while holding
    /// the node (the timer's millisecond steps would make the read's length depend on
    /// the load).
    async fn read(&self, key: u64, shard: usize, time: Duration) {
        let op = scalewatch_state::Operation::Read;
        self.keyspace.record_in_shard(op, &key, shard);
        let nodes = self.nodes.clone();
        tokio::task::spawn_blocking(move || {
            let _node = nodes[shard].lock().unwrap();
            std::thread::sleep(time);
        })
        .await
        .unwrap();
    }
}

/// A job on the `orders` queue: answered when the worker is done with it.
type Order = tokio::sync::oneshot::Sender<()>;

/// Calls the downstream service once through the client tier.
type Downstream =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

struct Shop {
    plant: Plant,
    ledger: Arc<Mutex<()>>,
    db: Pool,
    slots: scalewatch_sync::tokio::Semaphore,
    downstream: Option<Downstream>,
    orders: Option<scalewatch_state::Sender<Order>>,
    catalog: Option<Catalog>,
}

async fn hold_lock(ledger: Arc<Mutex<()>>, time: Duration) {
    blocking(move || {
        let _held = ledger.lock().unwrap();
        std::thread::sleep(time);
    })
    .await;
}

async fn work(State(shop): State<Arc<Shop>>) -> &'static str {
    match shop.plant {
        Plant::LockThenPool { lock, pool } => {
            hold_lock(shop.ledger.clone(), lock).await;
            let _conn = shop.db.acquire().await.unwrap();
            tokio::time::sleep(pool).await;
        }
        Plant::PoolAroundLock { lock, pool } => {
            let _conn = shop.db.acquire().await.unwrap();
            hold_lock(shop.ledger.clone(), lock).await;
            tokio::time::sleep(pool).await;
        }
        Plant::Semaphore { hold } => {
            {
                let _slot = shop.slots.acquire().await.unwrap();
                tokio::time::sleep(hold).await;
            }
            hold_lock(shop.ledger.clone(), Duration::from_millis(1)).await;
        }
        Plant::TierLimit { hold } => tokio::time::sleep(hold).await,
        Plant::Client { .. } => {
            if let Some(call) = &shop.downstream {
                call().await;
            }
        }
        Plant::Queue { .. } => {
            if let Some(orders) = &shop.orders {
                let (done, answered) = tokio::sync::oneshot::channel();
                orders.send(done).await.unwrap();
                answered.await.unwrap();
            }
        }
        Plant::Shard { hold } => {
            if let Some(catalog) = &shop.catalog {
                catalog.read(0, BEST_SELLER_SHARD, hold).await;
                let n = catalog.next.fetch_add(1, Relaxed) % (CATALOG_SHARDS - 1);
                let cold = if n >= BEST_SELLER_SHARD { n + 1 } else { n };
                catalog
                    .read(n as u64 + 1, cold, Duration::from_millis(1))
                    .await;
            }
        }
        Plant::Runtime { hold } => {
            // A blocking call on the async runtime: its worker is busy the whole time.
            std::thread::sleep(hold);
            hold_lock(shop.ledger.clone(), Duration::from_millis(1)).await;
        }
    }
    "ok"
}

struct Service {
    /// Closed-loop users on `/work`; each level's windows close the model's: the
    /// transition skipped, then three windows of 0.5 s sampled, as a service's sampler
    /// would.
    load: ClosedLoop,
    model: CapacityModel,
    _provider: opentelemetry_sdk::metrics::SdkMeterProvider,
    /// The server's own runtime, when it has one (stopped when dropped).
    _runtime: Option<RuntimeThread>,
}

/// Serves the shop with defaults everywhere: the layer, the lock metrics, the pool, the
/// semaphore, the runtime tier, the model. Each resource is registered with one call.
/// The pool has `pool_size` members, the semaphore `permits`, the layer a concurrency
/// limit when `limit` is given. `Plant::Runtime` runs the server on a runtime of one
/// worker of its own.
async fn serve(plant: Plant, pool_size: u32) -> Service {
    serve_with(plant, pool_size, 2, None).await
}

async fn serve_with(plant: Plant, pool_size: u32, permits: usize, limit: Option<usize>) -> Service {
    use opentelemetry::metrics::MeterProvider as _;
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let meter = provider.meter("planted");
    let mut layer = ServerTierLayer::builder().tier_name("shop");
    if let Some(limit) = limit {
        layer = layer.concurrency_limit(limit);
    }
    let layer = layer.build(&meter).unwrap();
    let model = CapacityModel::new(&meter);
    model.watch(layer.tier()).unwrap();
    let locks = LockMetrics::new(&meter);
    let downstream = match plant {
        Plant::Client { hold } => Some(downstream(&model, &meter, hold).await),
        _ => None,
    };
    let orders = match plant {
        Plant::Queue { hold } => Some(orders(&model, &meter, hold)),
        _ => None,
    };
    let shop = Arc::new(Shop {
        plant,
        ledger: Arc::new(Mutex::new("ledger", (), &locks)),
        db: Pool::builder("db", pool_size).build(&meter).unwrap(),
        slots: scalewatch_sync::tokio::Semaphore::new("slots", permits, &locks),
        downstream,
        orders,
        catalog: match plant {
            Plant::Shard { hold } => Some(Catalog::new(&model, &meter, 1.0 / hold.as_secs_f64())),
            _ => None,
        },
    });
    model.register(&*shop.ledger).unwrap();
    model.register(&shop.db).unwrap();
    model.register(&shop.slots).unwrap();
    let app = Router::new()
        .route("/work", get(work))
        .with_state(shop)
        .layer(layer);
    let (addr, runtime) = if matches!(plant, Plant::Runtime { .. }) {
        let (server, addr) = RuntimeThread::serve(app);
        let tier = scalewatch_runtime::RuntimeTier::builder(server.handle().clone())
            .name("server")
            .build(&meter)
            .unwrap();
        model.register(&tier).unwrap();
        (addr, Some(server))
    } else {
        (serve_axum(app).await, None)
    };
    let windows = model.clone();
    Service {
        load: ClosedLoop::new(addr, &["/work"], move |close| {
            if close == Close::Transition {
                windows.skip();
            } else {
                windows.sample();
            }
        }),
        model,
        _provider: provider,
        _runtime: runtime,
    }
}

/// A downstream service on loopback that sleeps `hold` a call, and a client tier named
/// `downstream` with a limit of 2 in front of it, watched by `model`. Its queue is not
/// bounded here: the test is about the limit, not about shedding.
async fn downstream(
    model: &CapacityModel,
    meter: &opentelemetry::metrics::Meter,
    hold: Duration,
) -> Downstream {
    use tower::Layer;
    let app = Router::new().route(
        "/call",
        get(move || async move {
            tokio::time::sleep(hold).await;
            "done"
        }),
    );
    let addr = serve_axum(app).await;
    let layer = scalewatch_tower::ClientTierLayer::builder()
        .tier_name("downstream")
        .concurrency_limit(2)
        .max_queued(usize::MAX)
        .build(meter)
        .unwrap();
    model.watch(layer.tier()).unwrap();
    let client = layer.layer(http_client());
    Arc::new(move || {
        let client = client.clone();
        Box::pin(async move {
            fetch(client, addr, "/call").await;
        })
    })
}

/// The bounded `orders` queue (8 jobs) and its one worker, measured as the custom tier
/// `orders-worker` with a limit of 1; both watched by `model`.
fn orders(
    model: &CapacityModel,
    meter: &opentelemetry::metrics::Meter,
    hold: Duration,
) -> scalewatch_state::Sender<Order> {
    let (tx, mut rx) = scalewatch_state::QueueBuilder::new("orders")
        .channel::<Order>(8, meter)
        .unwrap();
    let worker = scalewatch_core::Tier::builder("orders-worker", scalewatch_core::TierKind::Custom)
        .limit(1)
        .build(meter)
        .unwrap();
    model.register(&tx).unwrap();
    model.watch(&worker).unwrap();
    tokio::spawn(async move {
        while let Some(done) = rx.recv().await {
            // A precise sleep on a blocking thread (the timer's millisecond steps would
            // make the job's length depend on the load).
            let job = tokio::task::spawn_blocking(move || std::thread::sleep(hold));
            let _ = worker.instrument(job).await;
            let _ = done.send(());
        }
    });
    tx
}

/// Ramps 1 to `top` users with no think time, three windows a level: past saturation.
async fn ramp(service: &Service, top: usize) -> CapacityReport {
    service.load.ramp(top).await;
    service.model.refit();
    service.model.report()
}

/// Four loads (users, think time in ms) between about 10% and 45% of a planted capacity
/// of 200/s at about `request` a request: every resource stays at or below half.
fn below_half(request: Duration) -> [(usize, u64); 4] {
    // Users and think time: X ≈ users / (request + think).
    let ms = request.as_millis() as u64;
    [(1, 4 * ms), (1, ms), (2, 2 * ms), (2, ms / 2)]
}

/// The named resource as `first_to_saturate` below half load; returns its saturation
/// throughput.
fn assert_wall(report: &CapacityReport, kind: ResourceKind, name: &str) -> f64 {
    let text = summary(report);
    for r in &report.resources {
        assert!(r.utilization <= 0.5, "{} above half: {text}", r.name);
    }
    let wall = report.first_to_saturate.as_ref().expect(&text);
    assert_eq!((wall.kind, wall.name.as_str()), (kind, name), "{text}");
    assert!(wall.load_factor.unwrap() > 2.0, "{text}");
    wall.saturation_throughput
}

/// The planted capacity as the service really has it (the sleeps plus the server's own
/// time per request): the highest throughput of the ramp past saturation, measured by
/// the tier's windows. The prediction made below half load must be within 20% of it.
fn assert_predicted(predicted: f64, report: &CapacityReport) {
    let measured = report
        .tier("shop")
        .unwrap()
        .levels
        .iter()
        .map(|l| l.throughput)
        .fold(0.0, f64::max);
    let named = report.first_bottleneck.as_ref().map(|b| b.name.as_str());
    eprintln!("{named:?}: predicted {predicted:.0}/s below half load, measured {measured:.0}/s");
    assert!(
        (predicted - measured).abs() <= 0.2 * measured,
        "predicted {predicted:.0}/s below half load, measured {measured:.0}/s at saturation: {}",
        summary(report)
    );
}

/// The named resource as `first_bottleneck` past saturation, tracking `shop`.
fn assert_bottleneck(report: &CapacityReport, kind: ResourceKind, name: &str) {
    let text = summary(report);
    let bottleneck = report.first_bottleneck.as_ref().expect(&text);
    assert_eq!(
        (
            bottleneck.kind,
            bottleneck.name.as_str(),
            bottleneck.tier.as_str()
        ),
        (kind, name, "shop"),
        "{text}"
    );
    // It filled where its own busy time per request predicts: the limit is its own.
    assert_eq!(bottleneck.filled_early, None, "{text}");
}

fn summary(report: &CapacityReport) -> String {
    format!("{report}\n{report:#?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_bound_service_names_the_lock_and_not_the_pool_before_and_past_saturation() {
    // The lock lets 250 requests/s through; the pool of 32 × 20 ms would take 1,600/s.
    let service = serve(
        Plant::LockThenPool {
            lock: Duration::from_millis(4),
            pool: Duration::from_millis(20),
        },
        32,
    )
    .await;
    // Four loads of about 6% to 36% of 250/s: requests take about 25 ms end to end.
    let below_half = [(1, 40), (2, 40), (2, 10), (4, 20)];
    let (_, report) =
        named_before_and_past_saturation(&service, &below_half, ResourceKind::Lock, "ledger").await;
    let text = summary(&report);
    let ledger = report
        .resources
        .iter()
        .find(|r| r.name == "ledger")
        .unwrap();
    assert!(ledger.utilization > 0.9, "{text}");
    let bottleneck = report.first_bottleneck.as_ref().expect(&text);
    assert_eq!(
        (
            bottleneck.kind,
            bottleneck.name.as_str(),
            bottleneck.tier.as_str()
        ),
        (ResourceKind::Lock, "ledger", "shop"),
        "{text}"
    );
    let db = report.resources.iter().find(|r| r.name == "db").unwrap();
    assert!(!db.saturated, "{text}");
    // The utilization law puts the lock's wall at 250/s (4 ms a request).
    let x = bottleneck.saturation_throughput.unwrap();
    assert!((x - 250.0).abs() <= 50.0, "{x}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_bound_service_names_the_pool_before_and_past_saturation() {
    // A pool of 4 × 20 ms: 200 requests/s; the lock, 1 ms a request, would take 1,000/s.
    let service = serve(
        Plant::LockThenPool {
            lock: Duration::from_millis(1),
            pool: Duration::from_millis(20),
        },
        4,
    )
    .await;
    // Four loads from about 12% to about 45% of the pool's capacity.
    let below_half = [(1, 40), (1, 10), (2, 15), (2, 0)];
    let (report, _) =
        named_before_and_past_saturation(&service, &below_half, ResourceKind::Pool, "db").await;
    let text = summary(&report);
    let wall = report.first_to_saturate.as_ref().expect(&text);
    assert_eq!(
        (wall.kind, wall.name.as_str(), wall.tier.as_str()),
        (ResourceKind::Pool, "db", "shop"),
        "{text}"
    );
    // Each request holds a member a little over 20 ms (the sleep's overshoot), so the
    // planted capacity is at most 200/s.
    let x = wall.saturation_throughput;
    assert!((x - 200.0).abs() <= 40.0, "{x}: {text}");
    assert!(wall.load_factor.unwrap() > 2.0, "{text}");
    assert_eq!(report.first_bottleneck, None, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_held_while_waiting_on_the_lock_blames_the_lock_before_and_past_saturation() {
    // Each request holds a member of 8 for its whole life, and inside it the lock for 3 ms
    // (333/s). The pool fills up too, but only because its members wait on the lock.
    let service = serve(
        Plant::PoolAroundLock {
            lock: Duration::from_millis(3),
            pool: Duration::from_millis(10),
        },
        8,
    )
    .await;
    // Four loads of about 5% to 32% of 333/s: requests take about 14 ms end to end.
    let below_half = [(1, 40), (1, 10), (2, 15), (2, 5)];
    named_before_and_past_saturation(&service, &below_half, ResourceKind::Lock, "ledger").await;
}

const TWENTY_MS: Duration = Duration::from_millis(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_bound_service_is_named_past_saturation_and_before_it() {
    // 4 permits × 20 ms: 200 requests/s; the lock, 1 ms a request, 1,000/s.
    let plant = Plant::Semaphore { hold: TWENTY_MS };
    let service = serve_with(plant, 32, 4, None).await;
    let loads = below_half(TWENTY_MS);
    named_before_and_past_saturation(&service, &loads, ResourceKind::Lock, "slots").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_limit_bound_service_is_named_past_saturation_and_before_it() {
    // A limit of 4 on requests of 20 ms: 200 requests/s.
    let plant = Plant::TierLimit { hold: TWENTY_MS };
    let service = serve_with(plant, 32, 4, Some(4)).await;
    let loads = below_half(TWENTY_MS);
    named_before_and_past_saturation(&service, &loads, ResourceKind::Tier, "shop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_bound_service_is_named_past_saturation_and_before_it() {
    // One worker blocked 4 ms a request: at most 250 requests/s, less the worker's own
    // work (accepting, routing) on the same thread.
    let hold = Duration::from_millis(4);
    let service = serve_with(Plant::Runtime { hold }, 32, 4, None).await;
    // Four loads of about 10% to 40%: requests take about 5 ms end to end.
    let below_half = [(1, 45), (1, 20), (2, 30), (2, 20)];
    named_before_and_past_saturation(&service, &below_half, ResourceKind::Runtime, "server").await;
}

/// Holds `service` at each of `below_half` (users, think time in ms) and expects `name` as
/// the wall; then ramps it past saturation and expects `name` as the bottleneck, at the
/// throughput predicted below half load. Returns the reports of both regimes.
async fn named_before_and_past_saturation(
    service: &Service,
    below_half: &[(usize, u64)],
    kind: ResourceKind,
    name: &str,
) -> (CapacityReport, CapacityReport) {
    service.load.hold(below_half).await;
    let before = service.model.report();
    let predicted = assert_wall(&before, kind, name);
    let past = ramp(service, 16).await;
    assert_bottleneck(&past, kind, name);
    assert_predicted(predicted, &past);
    (before, past)
}

/// Holds `service` at each of `below_half` (users, think time in ms) and expects `name` as
/// the wall; then ramps it to `top` users and expects `name` as the first bottleneck.
/// Returns the throughput predicted below half load and the report past saturation.
async fn wall_then_bottleneck(
    service: &Service,
    below_half: &[(usize, u64)],
    (kind, name): (ResourceKind, &str),
    top: usize,
) -> (f64, CapacityReport) {
    service.load.hold(below_half).await;
    let predicted = assert_wall(&service.model.report(), kind, name);
    let report = ramp(service, top).await;
    let text = summary(&report);
    let bottleneck = report.first_bottleneck.as_ref().expect(&text);
    assert_eq!(
        (bottleneck.kind, bottleneck.name.as_str()),
        (kind, name),
        "{text}"
    );
    (predicted, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_tier_bound_service_is_named_past_saturation_and_before_it() {
    // Two calls at a time to a dependency that takes 20 ms: 100 requests/s.
    let service = serve(Plant::Client { hold: TWENTY_MS }, 32).await;
    // Four loads of about 10% to 45% of 100/s.
    let below_half = [(1, 80), (1, 40), (1, 20), (1, 5)];
    let downstream = (ResourceKind::Tier, "downstream");
    let (predicted, report) = wall_then_bottleneck(&service, &below_half, downstream, 8).await;
    assert_predicted(predicted, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_bound_service_names_the_worker_behind_its_queue() {
    // One worker, 5 ms a job: at most 200 jobs/s; the queue in front of it holds 8.
    let service = serve(
        Plant::Queue {
            hold: Duration::from_millis(5),
        },
        32,
    )
    .await;
    // Four loads of about 10% to 45% of the worker's capacity.
    let below_half = [(1, 60), (1, 25), (2, 30), (2, 18)];
    // Past saturation the queue fills up too, but only because its worker is full: the
    // worker is named, the queue is the symptom.
    let worker = (ResourceKind::Tier, "orders-worker");
    let (predicted, report) = wall_then_bottleneck(&service, &below_half, worker, 16).await;
    let text = summary(&report);
    let queue = report
        .resources
        .iter()
        .find(|r| r.name == "orders")
        .unwrap();
    assert!(
        queue.utilization > 0.5,
        "the queue fills behind the worker: {text}"
    );
    assert_predicted(predicted, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_shard_with_a_declared_capacity_is_named_past_saturation_and_before_it() {
    // The best-seller's node takes one read at a time, 5 ms each: 200 requests/s; every
    // other node sees a seventh of the requests, 1 ms each.
    let hold = Duration::from_millis(5);
    let service = serve(Plant::Shard { hold }, 32).await;
    // Four loads of about 10% to 45% of 200/s: requests take about 6 ms end to end.
    let below_half = [(1, 45), (1, 20), (2, 30), (2, 18)];
    named_before_and_past_saturation(&service, &below_half, ResourceKind::Shard, "catalog/3").await;
}
