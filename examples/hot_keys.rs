//! A key-value service over a `TrackedMap` with 16 shards, loaded with a built-in Zipf
//! workload, so the export shows hot keys and a skewed shard.
//!
//! What it shows: `scalewatch.state.operations` by operation, `scalewatch.state.entries`,
//! `scalewatch.state.hot_key.share` by rank (keys as redacted digests), the
//! `scalewatch.state.hot_keys.share` total, `scalewatch.state.shard.skew` of the map's
//! 16 shards well above 1 (the shard that holds the hottest key), a full scan in
//! `scalewatch.state.scan.items`, a bounded write-behind queue (`scalewatch.queue.*`), and
//! the server tier from `ServerTierLayer` (`http.server.request.duration`,
//! `scalewatch.tier.*`).
//!
//! Run it:
//! ```text
//! cargo run --example hot_keys --features axum,state
//! curl 127.0.0.1:3000/kv/42; curl -X PUT -d hello 127.0.0.1:3000/kv/42; curl 127.0.0.1:3000/scan
//! ```
//! At start an in-process client sends `SCALEWATCH_LOAD_REQUESTS` (default 20,000)
//! requests over loopback with Zipf(1.1) keys over 10,000 keys (80% reads, 15% writes,
//! 5% deletes), then prints the hot keys it sees and keeps serving. With no
//! `OTEL_EXPORTER_OTLP_ENDPOINT` a summary is printed to stderr every 10 s; set it (and
//! `OTEL_METRIC_EXPORT_INTERVAL=2000`) to send to a collector. `SCALEWATCH_ADDR` changes
//! the listen address (default `127.0.0.1:3000`). Ctrl-C or SIGTERM stops it and flushes.

mod common;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scalewatch::state::{Keyspace, Sender, TrackedMap};
use scalewatch::{ServerTierLayer, TelemetryBuilder};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
struct App {
    kv: Arc<TrackedMap<u64, Bytes>>,
    writes: Sender<u64>,
}

async fn read(State(app): State<App>, Path(key): Path<u64>) -> Result<Bytes, StatusCode> {
    app.kv.get(&key).ok_or(StatusCode::NOT_FOUND)
}

async fn write(State(app): State<App>, Path(key): Path<u64>, body: Bytes) -> StatusCode {
    app.kv.insert(key, body);
    // Write-behind: a bounded queue to a slower persister (its depth and wait are measured).
    let _ = app.writes.send(key).await;
    StatusCode::NO_CONTENT
}

async fn delete(State(app): State<App>, Path(key): Path<u64>) -> StatusCode {
    match app.kv.remove(&key) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

async fn scan(State(app): State<App>) -> String {
    let mut bytes = 0usize;
    app.kv.for_each(|_, v| bytes += v.len());
    format!("{} entries, {bytes} bytes\n", app.kv.len())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = TelemetryBuilder::from_env()
        .service_name("hot-keys")
        .build()?;
    let meter = telemetry.meter();
    let kv: TrackedMap<u64, Bytes> = Keyspace::builder("kv").shards(16).build_map(&meter)?;
    let (writes, mut persisted) = scalewatch::state::channel::<u64>("write-behind", 256, &meter)?;
    tokio::spawn(async move {
        while persisted.recv().await.is_some() {
            tokio::task::yield_now().await;
        }
    });
    let app = App {
        kv: Arc::new(kv),
        writes,
    };
    let layer = ServerTierLayer::builder()
        .tier_name("kv")
        .concurrency_limit(64)
        .build(&meter)?;
    let router = Router::new()
        .route("/kv/{key}", get(read).put(write).delete(delete))
        .route("/scan", get(scan))
        .with_state(app.clone())
        .layer(layer);

    let listener = common::bind("127.0.0.1:3000").await?;
    let local = listener.local_addr()?;
    let requests = std::env::var("SCALEWATCH_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000u64);
    let kv = app.kv.clone();
    tokio::spawn(async move {
        load(local, requests).await;
        eprintln!("load done: {:?}", kv.keyspace().operations());
        for h in kv.keyspace().hot_keys() {
            eprintln!("  hot key #{} {} share {:.3}", h.rank, h.key, h.share);
        }
        if let Some((shard, skew)) = kv.keyspace().shard_skew() {
            eprintln!("  busiest shard {shard}, skew {skew:.2}");
        }
    });
    common::serve(listener, router).await?;
    telemetry.shutdown()?;
    Ok(())
}

/// A bounded Zipf(1.1) workload from 4 concurrent clients over loopback.
async fn load(addr: SocketAddr, requests: u64) {
    const KEYS: usize = 10_000;
    let mut cdf = Vec::with_capacity(KEYS);
    let mut acc = 0.0;
    for i in 1..=KEYS {
        acc += (i as f64).powf(-1.1);
        cdf.push(acc);
    }
    let cdf = Arc::new(cdf);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (client, cdf) = (client.clone(), cdf.clone());
            tokio::spawn(async move {
                let mut x = 0x9e37_79b9_7f4a_7c15 ^ (w + 1);
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 11) as f64 / (1u64 << 53) as f64
                };
                for _ in 0..requests / 4 {
                    let u = next() * acc;
                    let key = cdf.partition_point(|c| *c <= u).min(KEYS - 1);
                    let roll = next();
                    let (method, body) = if roll < 0.80 {
                        ("GET", Bytes::new())
                    } else if roll < 0.95 {
                        ("PUT", Bytes::from_static(b"value"))
                    } else {
                        ("DELETE", Bytes::new())
                    };
                    let Ok(req) = http::Request::builder()
                        .method(method)
                        .uri(format!("http://{addr}/kv/{key}"))
                        .body(Full::new(body))
                    else {
                        continue;
                    };
                    if let Ok(res) = client.request(req).await {
                        let _ = res.into_body().collect().await;
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    // One full scan, as an admin endpoint would.
    if let Ok(req) = http::Request::builder()
        .uri(format!("http://{addr}/scan"))
        .body(Full::new(Bytes::new()))
    {
        let _ = client.request(req).await;
    }
}
