//! The demo's shop: an axum service instrumented with scalewatch, with three breaking
//! points planted on purpose, each of a kind real services hit.
//!
//! - `GET /checkout/{cart}` reserves stock under one global lock, `inventory`, and while it
//!   holds the lock it re-checks every checkout still waiting for it: the critical section
//!   grows with the queue, so past the saturation point more users make throughput *fall*
//!   (the coherency term of the Universal Scalability Law).
//! - `GET /items/{id}` reads a product from a tracked map of 16 shards, each served by a
//!   storage node that takes one read at a time. Product popularity follows a Zipf law, so
//!   the shard holding the best-seller is hot.
//! - `GET /recommendations/{user}` asks a slow dependency through a pool of 8 connections.
//!
//! Behind them, a back office (`background.rs`) that no request waits for: checkouts
//! feed an `orders` queue, a `restock` job runs every second, and the runtime serving the
//! shop is measured as a tier.
//!
//! Waits and work are sleeps, not spins, so the shape of the curve comes from the planted
//! limits and not from how busy the machine's cores happen to be.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use opentelemetry::metrics::Meter;
use scalewatch_capacity::{busy_fraction, CapacityModel, ResourceKind, REPORT_PATH};
use scalewatch_core::clock::now_nanos;
use scalewatch_state::{Keyspace, TrackedMap};
use scalewatch_sync::{LockMetrics, Mutex, Pool};
use scalewatch_tower::ServerTierLayer;
use tokio::sync::{oneshot, Semaphore};

use super::background::BackOffice;
use crate::error::CliError;

/// The inventory lock is held this long per checkout...
const HOLD: Duration = Duration::from_micros(2_500);
/// ...plus this much for every checkout still waiting for it.
const HOLD_PER_WAITER: Duration = Duration::from_micros(50);
/// One read on a catalog shard's storage node.
const STORAGE_READ: Duration = Duration::from_millis(4);
/// One call to the recommendations dependency.
const DEPENDENCY_CALL: Duration = Duration::from_millis(15);
/// Connections in the recommendations pool.
const POOL_SIZE: u32 = 8;
/// Products in the catalog.
pub(crate) const PRODUCTS: u64 = 10_000;
/// Shards of the catalog, one storage node each.
const SHARDS: usize = 16;
/// Resource names of the shards' storage nodes (names are static: they are series).
const SHARD_NAMES: [&str; SHARDS] = [
    "catalog/00",
    "catalog/01",
    "catalog/02",
    "catalog/03",
    "catalog/04",
    "catalog/05",
    "catalog/06",
    "catalog/07",
    "catalog/08",
    "catalog/09",
    "catalog/10",
    "catalog/11",
    "catalog/12",
    "catalog/13",
    "catalog/14",
    "catalog/15",
];

/// Nanoseconds a storage node spent busy.
#[derive(Debug, Default)]
struct BusyTime(AtomicU64);

impl BusyTime {
    fn add_since(&self, started: u64) {
        self.0
            .fetch_add(now_nanos().saturating_sub(started), Ordering::Relaxed);
    }

    /// A utilization source for the capacity model, for `units` units busy at once.
    fn source(self: &Arc<Self>, units: u32) -> impl Fn() -> Option<f64> + Send + Sync {
        let busy = self.clone();
        busy_fraction(f64::from(units), move || busy.0.load(Ordering::Relaxed))
    }
}

/// A product of the catalog.
#[derive(Debug, Clone)]
struct Product {
    name: String,
    stock: u64,
}

/// One catalog shard's storage node: one read at a time.
#[derive(Debug)]
struct StorageNode {
    slot: Semaphore,
    busy: Arc<BusyTime>,
}

#[derive(Debug)]
struct Shop {
    /// Planted breaking point 1: one lock for all of the stock.
    inventory: Mutex<u64>,
    /// Checkouts waiting for `inventory` right now.
    waiting: AtomicU64,
    /// Planted breaking point 2: a sharded catalog with a best-seller.
    catalog: TrackedMap<u64, Product>,
    nodes: Vec<StorageNode>,
    /// Planted breaking point 3: a small pool in front of a slow dependency.
    recommendations: Pool,
    /// Each checkout's order event, for the back office.
    orders: scalewatch_state::Sender<u64>,
}

impl Shop {
    /// Reserves one item: runs on a blocking thread, as lock-holding code often does.
    fn reserve(&self, cart: u64) -> String {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let mut reserved = self.inventory.lock().unwrap_or_else(|p| p.into_inner());
        let others = self
            .waiting
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        // The re-check of every waiting checkout: the longer the queue, the longer the hold.
        let per_waiter = HOLD_PER_WAITER.saturating_mul(u32::try_from(others).unwrap_or(u32::MAX));
        std::thread::sleep(HOLD + per_waiter);
        *reserved += 1;
        let total = *reserved;
        drop(reserved);
        // Never waits: a full queue drops the event (the back office is not a planted limit).
        let _ = self.orders.try_send(total);
        format!("cart {cart}: reserved (reservation {total})\n")
    }
}

type AppState = Arc<Shop>;

/// A resource's utilization source, boxed so that all of them have one type.
type Source = Box<dyn Fn() -> Option<f64> + Send + Sync>;

async fn checkout(
    State(shop): State<AppState>,
    Path(cart): Path<u64>,
) -> Result<String, StatusCode> {
    tokio::task::spawn_blocking(move || shop.reserve(cart))
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn item(State(shop): State<AppState>, Path(id): Path<u64>) -> Result<String, StatusCode> {
    let product = shop.catalog.get(&id).ok_or(StatusCode::NOT_FOUND)?;
    let keyspace: &Keyspace = shop.catalog.keyspace();
    let shard = keyspace
        .shard_of_fingerprint(keyspace.fingerprint(&id))
        .unwrap_or(0);
    let node = &shop.nodes[shard.min(SHARDS - 1)];
    let _slot = node
        .slot
        .acquire()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let started = now_nanos();
    tokio::time::sleep(STORAGE_READ).await;
    node.busy.add_since(started);
    Ok(format!("{}: {} in stock\n", product.name, product.stock))
}

async fn recommendations(
    State(shop): State<AppState>,
    Path(user): Path<u64>,
) -> Result<String, StatusCode> {
    let _connection = shop
        .recommendations
        .acquire()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    tokio::time::sleep(DEPENDENCY_CALL).await;
    Ok(format!("user {user}: 3 recommendations\n"))
}

/// The running demo service.
pub(crate) struct DemoService {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// Its capacity model; the ramp samples it between steps.
    pub model: CapacityModel,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _back_office: BackOffice,
}

impl DemoService {
    /// Builds the shop on `meter` and serves it on `listen` from `runtime`.
    pub(crate) fn start(
        runtime: &tokio::runtime::Runtime,
        meter: &Meter,
        listen: SocketAddr,
    ) -> Result<Self, CliError> {
        let demo_error = |e: &dyn std::fmt::Display| CliError::Demo(e.to_string());
        let layer = ServerTierLayer::builder()
            .tier_name("shop")
            .build(meter)
            .map_err(|e| demo_error(&e))?;
        let model = CapacityModel::new(meter);
        model.watch(layer.tier()).map_err(|e| demo_error(&e))?;

        let locks = LockMetrics::new(meter);
        let catalog = Keyspace::builder("catalog")
            .shards(SHARDS)
            .build_map(meter)
            .map_err(|e| demo_error(&e))?;
        for id in 0..PRODUCTS {
            catalog.insert(
                id,
                Product {
                    name: format!("product {id}"),
                    stock: 100 + id % 7,
                },
            );
        }
        let back_office = BackOffice::start(runtime, meter)?;
        let shop = Arc::new(Shop {
            inventory: Mutex::new("inventory", 0, &locks),
            waiting: AtomicU64::new(0),
            catalog,
            nodes: (0..SHARDS)
                .map(|_| StorageNode {
                    slot: Semaphore::new(1),
                    busy: Arc::default(),
                })
                .collect(),
            recommendations: Pool::builder("recommendations", POOL_SIZE)
                .build(meter)
                .map_err(|e| demo_error(&e))?,
            orders: back_office.orders.clone(),
        });

        let register = |kind: ResourceKind, name: &'static str, source: Source| {
            model
                .register_resource(kind, name, source)
                .map_err(|e| demo_error(&e))
        };
        // The lock and the pool measure themselves; the storage nodes stand for another
        // service's capacity, so the shop times them.
        model
            .register(&shop.inventory)
            .map_err(|e| demo_error(&e))?;
        model
            .register(&shop.recommendations)
            .map_err(|e| demo_error(&e))?;
        for (node, name) in shop.nodes.iter().zip(SHARD_NAMES) {
            register(ResourceKind::Shard, name, Box::new(node.busy.source(1)))?;
        }

        let app = Router::new()
            .route("/checkout/{cart}", get(checkout))
            .route("/items/{id}", get(item))
            .route("/recommendations/{user}", get(recommendations))
            .with_state(shop)
            .layer(layer)
            .route_service(REPORT_PATH, model.report_service());

        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(CliError::Runtime)?;
        let addr = listener.local_addr().map_err(CliError::Runtime)?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            model,
            shutdown: Some(shutdown),
            server,
            _back_office: back_office,
        })
    }

    /// Stops accepting, lets the requests in flight finish, and waits for the server.
    pub(crate) fn stop(mut self, runtime: &tokio::runtime::Runtime) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let server = &mut self.server;
        let _ =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), server).await });
    }
}
