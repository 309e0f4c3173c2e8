//! The deterministic counterpart of the server-layer bench: instructions per request,
//! counted by callgrind, for the same `GET /users/42` through the same axum router (bare,
//! behind an identity layer, behind `ServerTierLayer` switched off, and enabled).
//!
//! `benches/instructions.sh` runs it under valgrind; on its own it takes a subject and a
//! request count, warms up with 1,000 requests, then sends the counted ones from
//! [`measured`], the function callgrind is told to count in.
//!
//! `instructions bare|identity|off|on REQUESTS`

use axum::Router;
use opentelemetry::metrics::MeterProvider as _;
use scalewatch_benches::route::{one_request, router, runtime};
use scalewatch_benches::IdentityLayer;
use scalewatch_tower::ServerTierLayer;
use std::hint::black_box;
use tokio::runtime::Runtime;

/// The counted requests; never inlined, so that callgrind can toggle on it.
#[inline(never)]
fn measured(rt: &Runtime, app: &Router, requests: u64) {
    drive(rt, app, requests);
}

fn drive(rt: &Runtime, app: &Router, requests: u64) {
    rt.block_on(async {
        let mut svc = app.clone();
        for _ in 0..requests {
            black_box(one_request(&mut svc).await);
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [subject, requests] = args.as_slice() else {
        return Err("usage: instructions bare|identity|off|on REQUESTS".into());
    };
    let requests: u64 = requests.parse()?;
    let provider = scalewatch_benches::aggregating_meter_provider();
    let meter = provider.meter("instructions");
    let app = match subject.as_str() {
        "bare" => router(),
        "identity" => router().layer(IdentityLayer),
        "off" => router().layer(ServerTierLayer::builder().enabled(false).build(&meter)?),
        "on" => router().layer(ServerTierLayer::builder().build(&meter)?),
        other => return Err(format!("unknown subject {other:?}").into()),
    };
    // As `axum::serve` does: each handler, with its layers, becomes a route once.
    let app = app.with_state(());
    let rt = runtime();
    drive(&rt, &app, 1_000);
    measured(&rt, &app, requests);
    Ok(())
}
