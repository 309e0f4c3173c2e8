//! An axum service with the scalewatch server layer: the main job's first step.
//!
//! What it shows: one `Router::layer(ServerTierLayer)` gives HTTP semconv latency per route
//! template and the server tier's saturation (in flight, utilization against a limit, time
//! in queue, rejections); `scalewatch::init` exports it per the `OTEL_*` variables.
//!
//! Run it:
//! ```text
//! cargo run --example axum_service --features axum
//! curl 127.0.0.1:3000/hello; curl 127.0.0.1:3000/users/42
//! ```
//! With no `OTEL_EXPORTER_OTLP_ENDPOINT`, a per-tier summary is printed to stderr every
//! 10 s (`OTEL_METRIC_EXPORT_INTERVAL=2000` for every 2 s). Set
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` to send metrics and traces to a
//! collector instead. `SCALEWATCH_ADDR` changes the listen address (default
//! `127.0.0.1:3000`). Ctrl-C or SIGTERM stops it and flushes the telemetry.
//!
//! What to look at: `http.server.request.duration` by `http.route` (`/users/{id}`, never
//! `/users/42`), and `scalewatch.tier.utilization` of tier `api` rising towards 1 as load
//! approaches the limit of 64 concurrent requests.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use scalewatch::{ServerTierLayer, TelemetryBuilder};
use std::time::Duration;

#[tracing::instrument]
async fn hello() -> &'static str {
    "hello, world\n"
}

#[tracing::instrument]
async fn user(Path(id): Path<u64>) -> String {
    // A short, realistic piece of work.
    tokio::time::sleep(Duration::from_millis(2)).await;
    format!("user {id}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = TelemetryBuilder::from_env()
        .service_name("axum-service")
        .install_tracing_subscriber()
        .build()?;
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(64)
        .queue_timeout(Duration::from_secs(2))
        .build(&telemetry.meter())?;
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
        .layer(layer);

    let addr = std::env::var("SCALEWATCH_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    telemetry.shutdown()?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("shutting down, flushing telemetry");
}
