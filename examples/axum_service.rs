//! An axum service with scalewatch on every tier: the server layer at the front door, a
//! simulated database behind `/users/{id}` as a custom tier with a pool limit, and the
//! tokio runtime itself.
//!
//! What it shows: one `Router::layer(ServerTierLayer)` gives HTTP semconv latency per route
//! template and the server tier's saturation (in flight, utilization against a limit, time
//! in queue, rejections); `Tier::instrument` measures the database calls as tier
//! `database` (kind `custom`, a pool of 8 connections enforced by the tier, so requests
//! beyond 8 wait and their wait is `scalewatch.tier.queue.time`); `RuntimeTier` reports the
//! workers' busy ratio. `scalewatch::init` exports it all per the `OTEL_*` variables.
//!
//! Run it:
//! ```text
//! cargo run --example axum_service --features axum,runtime,tokio
//! curl 127.0.0.1:3000/hello; curl 127.0.0.1:3000/users/42
//! ```
//! With no `OTEL_EXPORTER_OTLP_ENDPOINT`, a per-tier summary is printed to stderr every
//! 10 s (`OTEL_METRIC_EXPORT_INTERVAL=2000` for every 2 s). Set
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` to send metrics and traces to a
//! collector instead, or `OTEL_METRICS_EXPORTER=prometheus` to serve the metrics for
//! Prometheus on `http://localhost:9464/metrics` (`OTEL_EXPORTER_PROMETHEUS_HOST`, `…_PORT`
//! move it). `SCALEWATCH_ADDR` changes the listen address (default
//! `127.0.0.1:3000`). Ctrl-C or SIGTERM stops it and flushes the telemetry.
//!
//! What to look at: `http.server.request.duration` by `http.route` (`/users/{id}`, never
//! `/users/42`); under load, `scalewatch.tier.utilization` of tier `database` reaches 1
//! long before tier `api` does (its pool of 8 is the first bottleneck), its
//! `scalewatch.tier.queue.time` grows, and `scalewatch.runtime.utilization` of runtime
//! `main` stays low, because the database waits rather than computes.

mod common;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use scalewatch::runtime::RuntimeTier;
use scalewatch::{ServerTierLayer, TelemetryBuilder, Tier, TierKind};
use std::time::Duration;

/// A database connection pool of 8, simulated: each query takes 5 ms.
#[derive(Clone, Debug)]
struct Database {
    tier: Tier,
}

impl Database {
    async fn user_name(&self, id: u64) -> String {
        self.tier
            .instrument(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                format!("user {id}")
            })
            .await
    }
}

#[tracing::instrument]
async fn hello() -> &'static str {
    "hello, world\n"
}

#[tracing::instrument(skip(db))]
async fn user(State(db): State<Database>, Path(id): Path<u64>) -> String {
    let name = db.user_name(id).await;
    format!("{name}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = TelemetryBuilder::from_env()
        .service_name("axum-service")
        .install_tracing_subscriber()
        .build()?;
    let meter = telemetry.meter();
    // Under `OTEL_SDK_DISABLED=true` the tiers measure nothing (their limits still gate).
    let on = telemetry.is_enabled();
    // Reports while alive: keep it until the server stops.
    let _runtime = RuntimeTier::builder(tokio::runtime::Handle::current())
        .name("main")
        .build(&meter)?;
    let db = Database {
        tier: Tier::builder("database", TierKind::Custom)
            .limit(8)
            .enforce_limit()
            .enabled(on)
            .build(&meter)?,
    };
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(64)
        .queue_timeout(Duration::from_secs(2))
        .enabled(on)
        .build(&meter)?;
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
        .with_state(db)
        .layer(layer);

    common::serve(common::bind("127.0.0.1:3000").await?, app).await?;
    telemetry.shutdown()?;
    Ok(())
}
