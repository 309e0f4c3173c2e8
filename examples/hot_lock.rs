//! A service whose requests queue on one global lock, and how scalewatch shows it.
//!
//! What it shows: `GET /inventory` takes one process-wide `Mutex` named `inventory` for a
//! short, realistic critical section (a reservation in a shared stock table), so under
//! concurrent load its `scalewatch.lock.wait.duration`, `scalewatch.lock.waiters` and
//! `scalewatch.lock.utilization` climb and `scalewatch.lock.acquisitions` shows
//! `scalewatch.lock.contended=true`. `GET /quiet` takes a per-request lock named `quiet`
//! that nobody else can contend for: all its acquisitions are uncontended. The server tier
//! layer (`scalewatch-tower`) measures the requests themselves.
//!
//! Run it:
//! ```text
//! cargo run --example hot_lock --features axum,sync
//! oha -c 32 -z 10s http://127.0.0.1:3000/inventory   # or any load generator
//! curl 127.0.0.1:3000/quiet
//! ```
//! It exports per the `OTEL_*` variables (`OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`
//! for a collector; without one a summary goes to stderr). `SCALEWATCH_ADDR` changes the
//! listen address (default `127.0.0.1:3000`). Ctrl-C or SIGTERM stops it and flushes.

mod common;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use scalewatch::sync::{LockMetrics, Mutex};
use scalewatch::ServerTierLayer;
use std::collections::HashMap;
use std::sync::Arc;

/// The shared state: one global stock table behind one lock.
#[derive(Clone)]
struct App {
    inventory: Arc<Mutex<HashMap<u64, u64>>>,
    locks: LockMetrics,
}

async fn inventory(State(app): State<App>) -> String {
    // The critical section: find the item, reserve one, compute the remaining total.
    let remaining = {
        let mut stock = app.inventory.lock().unwrap_or_else(|p| p.into_inner());
        let item = stock.entry(42).or_insert(1_000_000);
        *item = item.saturating_sub(1);
        // Summing the table stands for the small scan such handlers often do; the spin
        // makes it last a realistic ~100 µs whatever the machine.
        let until = std::time::Instant::now() + std::time::Duration::from_micros(100);
        let mut total: u64 = stock.values().sum();
        while std::time::Instant::now() < until {
            total = std::hint::black_box(total);
        }
        total
    };
    format!("remaining {remaining}\n")
}

async fn quiet(State(app): State<App>) -> String {
    // A lock only this request can see: never contended.
    let scratch = Mutex::new("quiet", Vec::with_capacity(4), &app.locks);
    scratch.lock().unwrap_or_else(|p| p.into_inner()).push(1u8);
    let n = scratch.lock().unwrap_or_else(|p| p.into_inner()).len();
    format!("quiet {n}\n")
}

/// The router, shared with the integration test.
pub(crate) fn app(
    meter: &opentelemetry::metrics::Meter,
) -> Result<Router, Box<dyn std::error::Error>> {
    let locks = LockMetrics::new(meter);
    let state = App {
        inventory: Arc::new(Mutex::new("inventory", HashMap::new(), &locks)),
        locks,
    };
    let layer = ServerTierLayer::builder().tier_name("api").build(meter)?;
    Ok(Router::new()
        .route("/inventory", get(inventory))
        .route("/quiet", get(quiet))
        .with_state(state)
        .layer(layer))
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = scalewatch::TelemetryBuilder::from_env()
        .service_name("hot-lock")
        .build()?;
    let router = app(&telemetry.meter())?;
    common::serve(common::bind("127.0.0.1:3000").await?, router).await?;
    telemetry.shutdown()?;
    Ok(())
}
