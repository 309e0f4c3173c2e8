//! The server of the end-to-end throughput comparison (budget B2, `benches/b2.sh`): a
//! hello-world axum service, bare or behind the full `ServerTierLayer`, on one tokio worker.
//!
//! `b2_server bare|layer ADDR`

use axum::routing::get;
use axum::Router;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_tower::ServerTierLayer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mode, addr) = match (args.next(), args.next()) {
        (Some(mode), Some(addr)) if mode == "bare" || mode == "layer" => (mode, addr),
        _ => return Err("usage: b2_server bare|layer ADDR".into()),
    };
    // Instruments that aggregate as in production; nothing is exported during the run.
    let provider = scalewatch_benches::aggregating_meter_provider();
    let meter = provider.meter("b2");
    let mut app = Router::new().route("/hello", get(|| async { "hello, world\n" }));
    if mode == "layer" {
        app = app.layer(ServerTierLayer::builder().tier_name("api").build(&meter)?);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            axum::serve(listener, app).await
        })?;
    Ok(())
}
