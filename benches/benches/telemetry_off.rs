//! What scalewatch's instrumentation costs when telemetry is off (budget B5: at most 1 ns
//! per instrumentation point with the SDK disabled or not initialised).
//!
//! "Off" comes in three forms, all measured here in one criterion group, one process, one
//! run:
//! - not initialised: the meter comes from `opentelemetry::global::meter_provider()` with no
//!   provider installed (the OpenTelemetry API's no-op meter), and the instrumentation is
//!   built as usual: it still measures, for in-process readers such as the capacity model;
//! - disabled: scalewatch's own pipeline built with `OTEL_SDK_DISABLED=true`, its meter,
//!   and the builders given `enabled(telemetry.is_enabled())`, that is `false`;
//! - for context, enabled: a meter whose instruments really aggregate.
//!
//! The instrumentation points:
//! - `http_*`: one request through an axum `Router` serving `GET /users/{id}` (as in
//!   `server_layer_vs_peers.rs`: `ready` + `call` on a current-thread runtime, body collected), bare,
//!   behind an identity layer (the anchor for "any middleware at all"), and behind
//!   `ServerTierLayer` on each meter. Added cost = subject − identity.
//! - `run_*`: a custom tier around a trivial blocking closure (`Tier::run`). Added cost =
//!   subject − `run_bare`.
//! - `instrument_*`: a custom tier around a ready future (`Tier::instrument`), created and
//!   polled once with a no-op waker, so no executor is timed. Added = subject −
//!   `instrument_bare`.
//! - anchors that explain the figures: the OpenTelemetry API's own no-op record (unbound
//!   with five attributes, and bound), scalewatch's clock read, and one start + finish of
//!   the tier statistics (without the clock).
//!
//! The work inside each point is trivial on purpose: the budget is about the overhead.
//! After the run the program prints the added nanoseconds per point from criterion's
//! estimates of this run (when it can find them: `CRITERION_HOME`, else
//! `$CARGO_TARGET_DIR/criterion`).
//!
//! Run: `cargo bench -p scalewatch-benches --bench telemetry_off -- --warm-up-time 1
//! --measurement-time 3`.

use axum::Router;
use criterion::Criterion;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use scalewatch_benches::route::{check, drive, router, runtime, series_attributes};
use scalewatch_benches::{aggregating_meter_provider, IdentityLayer};
use scalewatch_core::clock::now_nanos;
use scalewatch_core::stats::FlightStats;
use scalewatch_core::{Tier, TierKind};
use scalewatch_tower::ServerTierLayer;
use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

const GROUP: &str = "disabled";
/// The work inside a custom tier: next to nothing, so that only the overhead shows.
#[inline]
fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Polls `future` once with a no-op waker; every future timed here is ready at once.
#[inline]
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn custom_tier(meter: &Meter, enabled: bool) -> Tier {
    Tier::builder("custom", TierKind::Custom)
        .enabled(enabled)
        .build(meter)
        .expect("a valid custom tier")
}

fn server_layer(meter: &Meter, enabled: bool) -> ServerTierLayer {
    ServerTierLayer::builder()
        .tier_name("api")
        .enabled(enabled)
        .build(meter)
        .expect("a valid ServerTierLayer")
}

fn disabled(c: &mut Criterion) {
    let rt = runtime();

    // Not initialised: nothing was ever installed globally in this process, so the
    // global provider is the API's no-op one.
    let noop = opentelemetry::global::meter_provider().meter("scalewatch-bench");
    // Disabled: what `scalewatch_otlp::init()` hands out under `OTEL_SDK_DISABLED=true`.
    let telemetry = scalewatch_otlp::TelemetryBuilder::from_vars([(
        "OTEL_SDK_DISABLED".to_owned(),
        "true".to_owned(),
    )])
    .build()
    .expect("a disabled telemetry pipeline");
    assert!(
        telemetry.config().disabled,
        "OTEL_SDK_DISABLED was not taken"
    );
    assert!(
        telemetry.meter_provider().is_none(),
        "disabled yet a provider"
    );
    let sdk_disabled = telemetry.meter();
    // What an application hands its builders: off under `OTEL_SDK_DISABLED`.
    let on = telemetry.is_enabled();
    assert!(!on, "a disabled pipeline says it is enabled");
    // Enabled, for context: instruments that really aggregate.
    let provider = aggregating_meter_provider();
    let enabled = provider.meter("scalewatch-bench");

    let layers = [
        ("http_scalewatch_noop", server_layer(&noop, true)),
        (
            "http_scalewatch_sdk_disabled",
            server_layer(&sdk_disabled, on),
        ),
        ("http_scalewatch_enabled", server_layer(&enabled, true)),
    ];
    // `with_state(())` turns each handler (and its layers) into a route once, as
    // `axum::serve` does (see server_layer.rs).
    let mut subjects: Vec<(&str, Router)> = vec![
        ("http_bare", router().with_state(())),
        (
            "http_identity",
            router().layer(IdentityLayer).with_state(()),
        ),
    ];
    for (name, layer) in &layers {
        subjects.push((name, router().layer(layer.clone()).with_state(())));
    }
    for (name, router) in &subjects {
        check(&rt, name, router);
    }

    let mut group = c.benchmark_group(GROUP);
    for (name, router) in &subjects {
        group.bench_function(*name, |b| {
            b.to_async(&rt).iter_custom(|iters| drive(router, iters));
        });
    }

    // Custom tiers: the same closure and future, bare and measured on each meter.
    let tiers = [
        ("noop", custom_tier(&noop, true)),
        ("sdk_disabled", custom_tier(&sdk_disabled, on)),
        ("enabled", custom_tier(&enabled, true)),
    ];
    // Each tier answers as the bare work does (and so has a completion even when a
    // filter skips its benches).
    for (meter, tier) in &tiers {
        assert_eq!(tier.run(|| work(7)), work(7), "{meter}: run");
        assert_eq!(
            poll_once(tier.instrument(async { work(7) })),
            Some(work(7)),
            "{meter}: instrument"
        );
    }
    group.bench_function("run_bare", |b| {
        let mut x = 0_u64;
        b.iter(|| {
            x += 1;
            work(x)
        });
    });
    for (meter, tier) in &tiers {
        group.bench_function(format!("run_{meter}"), |b| {
            let mut x = 0_u64;
            b.iter(|| {
                x += 1;
                tier.run(|| work(x))
            });
        });
    }
    group.bench_function("instrument_bare", |b| {
        let mut x = 0_u64;
        b.iter(|| {
            x += 1;
            poll_once(async { work(x) })
        });
    });
    for (meter, tier) in &tiers {
        group.bench_function(format!("instrument_{meter}"), |b| {
            let mut x = 0_u64;
            b.iter(|| {
                x += 1;
                poll_once(tier.instrument(async { work(x) }))
            });
        });
    }

    // Anchors. The API's own no-op record: what OpenTelemetry itself costs when off.
    let histogram = noop.f64_histogram("http.server.request.duration").build();
    let attrs = series_attributes();
    group.bench_function("otel_noop_record_unbound", |b| {
        b.iter(|| histogram.record(black_box(0.000_123), black_box(&attrs)));
    });
    let bound = histogram.bind(&attrs);
    group.bench_function("otel_noop_record_bound", |b| {
        b.iter(|| bound.record(black_box(0.000_123)));
    });
    // What every measured point does whatever the meter: read the clock, and move the
    // tier's per-thread statistics (start, then finish).
    group.bench_function("clock_now_nanos", |b| b.iter(now_nanos));
    let stats = FlightStats::new();
    group.bench_function("stats_start_finish", |b| {
        let mut now = 0_u64;
        b.iter(|| {
            now += 100;
            let started = stats.start(black_box(now));
            stats.finish(started, black_box(now + 50));
        });
    });
    group.finish();

    // Sanity: the measured points really went through the tiers that measure (and not
    // through those that are off), none left in flight.
    for (meter, tier) in &tiers {
        let totals = tier.stats().totals(0);
        let measured = totals.completions > 0;
        assert_eq!(
            measured,
            tier.is_enabled(),
            "{meter}: completions {totals:?}"
        );
        assert_eq!(totals.in_flight, 0, "{meter}: work left in flight");
    }
    for (name, layer) in &layers {
        let totals = layer.tier().stats().totals(0);
        let measured = totals.completions > 0;
        assert_eq!(
            measured,
            layer.tier().is_enabled(),
            "{name}: completions {totals:?}"
        );
        assert_eq!(totals.in_flight, 0, "{name}: requests left in flight");
    }
    telemetry
        .shutdown()
        .expect("a disabled pipeline shuts down");
    drop(provider);
}

/// Where criterion writes this run's estimates, when that can be told from the
/// environment (as `server_layer_report.sh` does it).
fn estimates_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("CRITERION_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("CARGO_TARGET_DIR")?).join("criterion"),
    };
    Some(base.join(GROUP))
}

/// Criterion's point estimate for `bench` (slope when sampled linearly, else mean), in ns.
fn estimate(dir: &std::path::Path, bench: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(bench).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pick = |k: &str| json.get(k)?.get("point_estimate")?.as_f64();
    pick("slope").or_else(|| pick("mean"))
}

/// The B5 table: added ns per instrumentation point, all from this run's estimates.
fn report() {
    let Some(dir) = estimates_dir() else {
        eprintln!("(set CARGO_TARGET_DIR or CRITERION_HOME to print the B5 table)");
        return;
    };
    let t = |b: &str| estimate(&dir, b);
    let fmt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} ns"));
    let verdict = |v: Option<f64>| match v {
        Some(v) if v <= 1.0 => "meets",
        Some(_) => "**misses**",
        None => "n/a",
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!();
    println!(
        "B5, {} cores, load average {} at report time; budget: ≤ 1 ns added per point.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    );
    println!();
    println!("| instrumentation point | meter | time | anchor | added | B5 |");
    println!("|---|---|---|---|---|---|");
    let rows = [
        (
            "http_scalewatch_noop",
            "http_identity",
            "request",
            "not initialised",
        ),
        (
            "http_scalewatch_sdk_disabled",
            "http_identity",
            "request",
            "OTEL_SDK_DISABLED",
        ),
        (
            "http_scalewatch_enabled",
            "http_identity",
            "request",
            "enabled (context)",
        ),
        ("run_noop", "run_bare", "Tier::run", "not initialised"),
        (
            "run_sdk_disabled",
            "run_bare",
            "Tier::run",
            "OTEL_SDK_DISABLED",
        ),
        ("run_enabled", "run_bare", "Tier::run", "enabled (context)"),
        (
            "instrument_noop",
            "instrument_bare",
            "Tier::instrument",
            "not initialised",
        ),
        (
            "instrument_sdk_disabled",
            "instrument_bare",
            "Tier::instrument",
            "OTEL_SDK_DISABLED",
        ),
        (
            "instrument_enabled",
            "instrument_bare",
            "Tier::instrument",
            "enabled (context)",
        ),
    ];
    for (subject, anchor, point, meter) in rows {
        let (s, a) = (t(subject), t(anchor));
        let added = s.zip(a).map(|(s, a)| s - a);
        println!(
            "| {point} | {meter} | {} | {} {} | {} | {} |",
            fmt(s),
            anchor,
            fmt(a),
            fmt(added),
            verdict(added)
        );
    }
    println!();
    println!("| anchor | time |");
    println!("|---|---|");
    for b in [
        "http_bare",
        "otel_noop_record_unbound",
        "otel_noop_record_bound",
        "clock_now_nanos",
        "stats_start_finish",
    ] {
        println!("| {b} | {} |", fmt(t(b)));
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    disabled(&mut criterion);
    criterion.final_summary();
    report();
}
