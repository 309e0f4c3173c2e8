//! The server of the end-to-end throughput comparison (budget B2,
//! `benches/end_to_end_throughput.sh`): a hello-world axum service, bare, behind an
//! identity layer (what axum's wrapping of any route layer costs on its own), or behind the
//! full `ServerTierLayer`, on one tokio worker.
//!
//! `throughput_server bare|identity|layer ADDR`

use axum::routing::get;
use axum::Router;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_tower::ServerTierLayer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mode, addr) = match (args.next(), args.next()) {
        (Some(mode), Some(addr)) if ["bare", "identity", "layer"].contains(&mode.as_str()) => {
            (mode, addr)
        }
        _ => return Err("usage: throughput_server bare|identity|layer ADDR".into()),
    };
    // Instruments that aggregate as in production; nothing is exported during the run.
    let provider = scalewatch_benches::aggregating_meter_provider();
    let meter = provider.meter("b2");
    let mut app = Router::new().route("/hello", get(|| async { "hello, world\n" }));
    match mode.as_str() {
        "identity" => app = app.layer(scalewatch_benches::IdentityLayer),
        "layer" => app = app.layer(ServerTierLayer::builder().tier_name("api").build(&meter)?),
        _ => {}
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
