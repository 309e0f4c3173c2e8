//! Heap memory per series (budget B6: at most 600 B per histogram series; every tracker
//! under a stated cap whatever the input).
//!
//! A program, not a criterion bench: a counting global allocator (`stats_alloc`) measures
//! the bytes live after building each subject and after creating N series in it, and the
//! program prints a markdown table. Everything runs on this one thread (a current-thread
//! runtime for axum), so the counts are this subject's alone.
//!
//! - `sdk_*` (the anchor): the OpenTelemetry SDK alone, the `http.server.request.duration`
//!   histogram (scalewatch's catalog definition, so the same buckets) with N distinct
//!   attribute sets recorded once each: unbound with the attributes in the order
//!   scalewatch builds them (`http.route` first, not sorted by key), unbound with them
//!   sorted by key, and bound with the handles kept (as scalewatch keeps its series).
//! - `scalewatch_routes`: a `ServerTierLayer` on an axum router with N routes `/r{i}`, each
//!   hit once through `ServiceExt::oneshot`. The same router without the layer is measured
//!   first and subtracted, so the figure is scalewatch's own memory (its route table,
//!   per-route services and pre-bound series) plus the SDK's storage of those series.
//! - `scalewatch_routes_over_cap`: the same with the default route cap (256) and 4× as
//!   many routes: past the cap, routes fold into `_OTHER` and memory must stop growing.
//! - `keyspace_*`: a `scalewatch_state::Keyspace` fed 1,000,000 unique keys, against its
//!   documented cap `memory_cap(1)`.
//!
//! "Fixed" is what building the subject costs before any series exists (the SDK sizes each
//! instrument's series map for its whole cardinality limit up front); "per series" is the
//! growth from there divided by N. The cardinality limit of the measured histogram is
//! raised above N by a view, or the SDK would fold series past 2,000 into its overflow
//! series.
//!
//! Run: `cargo bench -p scalewatch-benches --bench heap_per_series`.

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{Instrument, ManualReader, SdkMeterProvider, Stream};
use scalewatch_core::catalog::HTTP_SERVER_REQUEST_DURATION;
use scalewatch_state::{Keyspace, Operation};
use scalewatch_tower::ServerTierLayer;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::hint::black_box;
use tokio::runtime::Runtime;
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// B6: heap bytes per histogram series.
const BUDGET: f64 = 600.0;
/// Series counts: large enough to amortise hash-table steps.
const COUNTS: [usize; 2] = [1_000, 10_000];
const DURATION: &str = HTTP_SERVER_REQUEST_DURATION.name;

/// Bytes live now that were not live when `region` began (stats_alloc already counts
/// reallocations into allocated and deallocated bytes).
fn live(region: &Region<'_, System>) -> i64 {
    let s = region.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// A provider whose instruments aggregate (a reader that never collects here), with the
/// duration histogram's cardinality limit raised to hold `series` series.
fn provider(series: usize) -> SdkMeterProvider {
    let limit = series.max(2_000) + 64;
    SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .with_view(move |i: &Instrument| {
            if i.name() == DURATION {
                Stream::builder().with_cardinality_limit(limit).build().ok()
            } else {
                None
            }
        })
        .build()
}

/// One measured subject.
struct Row {
    subject: String,
    n: usize,
    /// Bytes live after building, before any series.
    fixed: i64,
    /// Bytes live after the N series, subject's own (baselines subtracted).
    total: i64,
    /// Whether the per-series figure is the B6 one (histogram series), or context.
    budgeted: bool,
}

/// The attributes of server series `i`, in the order scalewatch builds them.
fn route_attributes(i: usize, sorted: bool) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new("http.route", format!("/r{i}")),
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("http.response.status_code", 200_i64),
    ];
    if sorted {
        a.sort_by(|x, y| x.key.cmp(&y.key));
    }
    a
}

#[derive(Clone, Copy)]
enum Sdk {
    Unbound { sorted: bool },
    Bound,
}

/// The SDK alone: N series of one histogram.
fn sdk(n: usize, how: Sdk) -> Row {
    let region = Region::new(GLOBAL);
    let provider = provider(n);
    let histogram: Histogram<f64> =
        HTTP_SERVER_REQUEST_DURATION.f64_histogram(&provider.meter("b6"));
    let fixed = live(&region);
    let mut handles = Vec::new();
    match how {
        Sdk::Unbound { sorted } => {
            for i in 0..n {
                histogram.record(0.012, &route_attributes(i, sorted));
            }
        }
        Sdk::Bound => {
            handles.reserve_exact(n);
            for i in 0..n {
                let bound = histogram.bind(&route_attributes(i, false));
                bound.record(0.012);
                handles.push(bound);
            }
        }
    }
    let total = live(&region);
    drop(black_box(handles));
    drop(histogram);
    drop(provider);
    let subject = match how {
        Sdk::Unbound { sorted: false } => "sdk_unbound (scalewatch's attribute order)",
        Sdk::Unbound { sorted: true } => "sdk_unbound (attributes sorted by key)",
        Sdk::Bound => "sdk_bound (handles kept)",
    };
    Row {
        subject: subject.to_owned(),
        n,
        fixed,
        total,
        budgeted: true,
    }
}

async fn ok() -> &'static str {
    "ok"
}

fn routes(n: usize) -> Router {
    (0..n).fold(Router::new(), |r, i| r.route(&format!("/r{i}"), get(ok)))
}

/// Each of `n` routes once, through `oneshot` on clones of `router`.
fn hit_all(rt: &Runtime, router: &Router, n: usize) {
    rt.block_on(async {
        for i in 0..n {
            let req = Request::get(format!("/r{i}"))
                .body(Body::empty())
                .expect("a request");
            let Ok(res) = router.clone().oneshot(req).await;
            assert_eq!(res.status(), StatusCode::OK, "/r{i}");
            let body = res.into_body().collect().await.expect("a body");
            black_box(body);
        }
    });
}

/// Bytes a plain router of `n` routes keeps after each route was hit once (or none).
fn bare_routes(rt: &Runtime, n: usize, hit: bool) -> i64 {
    let region = Region::new(GLOBAL);
    let router = routes(n).with_state(());
    if hit {
        hit_all(rt, &router, n);
    }
    let total = live(&region);
    drop(router);
    total
}

/// scalewatch's server layer on `n` routes, each hit once (or none, with `hit` false: the
/// per-route services alone); `cap` is the layer's route cap.
fn scalewatch_routes(rt: &Runtime, n: usize, cap: Option<usize>, hit: bool) -> Row {
    let bare = bare_routes(rt, n, hit);
    let region = Region::new(GLOBAL);
    let provider = provider(n);
    let mut builder = ServerTierLayer::builder().tier_name("api");
    if let Some(cap) = cap {
        builder = builder.route_cap(cap);
    }
    let layer = builder
        .build(&provider.meter("b6"))
        .expect("a valid ServerTierLayer");
    let fixed = live(&region);
    let router = routes(n).layer(layer.clone()).with_state(());
    if hit {
        hit_all(rt, &router, n);
    }
    let total = live(&region) - bare;
    let totals = layer.tier().stats().totals(0);
    let expected = if hit { n as u64 } else { 0 };
    assert_eq!(totals.completions, expected, "every request recorded");
    drop(router);
    drop(layer);
    drop(provider);
    let (subject, budgeted) = match cap {
        Some(_) if !hit => (
            "scalewatch_routes, none hit (per-route services only)".to_owned(),
            false,
        ),
        Some(_) => ("scalewatch_routes (route_cap = N)".to_owned(), true),
        None => (
            format!(
                "scalewatch_routes_over_cap (default cap {}, so {} route series)",
                scalewatch_tower::DEFAULT_ROUTE_CAP,
                scalewatch_tower::DEFAULT_ROUTE_CAP
            ),
            false,
        ),
    };
    Row {
        subject,
        n,
        fixed,
        total,
        budgeted,
    }
}

/// A keyspace fed 1,000,000 unique keys: bytes used against its stated cap.
fn keyspace(raw: bool) -> (String, i64, usize) {
    const KEYS: u64 = 1_000_000;
    let meter = opentelemetry::global::meter_provider().meter("b6");
    let region = Region::new(GLOBAL);
    let ks = Keyspace::builder("unique")
        .raw_keys(raw)
        .build(&meter)
        .expect("a valid keyspace");
    for i in 0..KEYS {
        if raw {
            // Long unique labels: the worst case for raw keys.
            let key = format!("user-{i:0>80}");
            ks.record_labeled(Operation::Write, key.as_str());
        } else {
            ks.record(Operation::Write, &i);
        }
        if i % 100_000 == 0 {
            black_box(ks.top_keys(20));
        }
    }
    black_box(ks.hot_keys());
    let used = live(&region);
    let cap = ks.memory_cap(1);
    assert_eq!(ks.operations().write, KEYS);
    drop(ks);
    let subject = if raw {
        "keyspace, raw 80-byte labels"
    } else {
        "keyspace, hashed keys"
    };
    (subject.to_owned(), used, cap)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime");
    // Warm-up: lazy statics and thread-locals (the SDK's overflow attributes, the clock,
    // the runtime's) are allocated once per process, never per series.
    black_box(sdk(16, Sdk::Bound));
    black_box(scalewatch_routes(&rt, 16, Some(16), true));

    let mut rows = Vec::new();
    for n in COUNTS {
        rows.push(sdk(n, Sdk::Unbound { sorted: false }));
        rows.push(sdk(n, Sdk::Unbound { sorted: true }));
        rows.push(sdk(n, Sdk::Bound));
        rows.push(scalewatch_routes(&rt, n, Some(n), true));
        rows.push(scalewatch_routes(&rt, n, Some(n), false));
    }
    let over = scalewatch_tower::DEFAULT_ROUTE_CAP * 4;
    rows.push(scalewatch_routes(
        &rt,
        scalewatch_tower::DEFAULT_ROUTE_CAP,
        None,
        true,
    ));
    rows.push(scalewatch_routes(&rt, over, None, true));

    println!("B6: heap bytes per series (budget ≤ {BUDGET:.0} B per histogram series).");
    println!();
    println!("| subject | N | fixed (built, no series) | after N series | per series | B6 |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let per = (r.total - r.fixed) as f64 / r.n as f64;
        let verdict = match (r.budgeted, per <= BUDGET) {
            (false, _) => "context",
            (true, true) => "meets",
            (true, false) => "**misses**",
        };
        println!(
            "| {} | {} | {} B | {} B | {per:.0} B | {verdict} |",
            r.subject, r.n, r.fixed, r.total
        );
    }
    println!();
    // What the per-series figures are made of.
    println!(
        "Sizes: `KeyValue` {} B, `BoundHistogram<f64>` {} B, one pre-bound slot \
         `OnceLock<(u32, BoundHistogram<f64>)>` {} B.",
        size_of::<KeyValue>(),
        size_of::<opentelemetry::metrics::BoundHistogram<f64>>(),
        size_of::<std::sync::OnceLock<(u32, opentelemetry::metrics::BoundHistogram<f64>)>>(),
    );
    println!();
    println!("| tracker | input | used | stated cap | under cap |");
    println!("|---|---|---|---|---|");
    for raw in [false, true] {
        let (subject, used, cap) = keyspace(raw);
        let under = used >= 0 && used as usize <= cap;
        println!(
            "| {subject} | 1,000,000 unique keys | {used} B | {cap} B (`memory_cap(1)`) | {} |",
            if under { "yes" } else { "**no**" }
        );
    }
}
