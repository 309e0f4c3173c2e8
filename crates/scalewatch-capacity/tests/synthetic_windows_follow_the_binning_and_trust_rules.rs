//! Windows fed by hand (known N, X from a USL model, with deterministic noise) go through
//! the same binning, decay, trust rules, ranking and gauges as live ones.

#![allow(clippy::unwrap_used)]

use opentelemetry::metrics::Meter;
use scalewatch_capacity::catalog::{self, attr};
use scalewatch_capacity::{
    BuildError, CapacityModel, Limit, NoFitReason, RegisterError, ResourceKind, SpawnError, Window,
    WindowVerdict,
};
use scalewatch_core::{Tier, TierKind};
use scalewatch_test_support::pipeline::{flush_and_read as flush, grpc_pipeline as pipeline};
use std::time::{Duration, Instant};

fn noop_meter() -> Meter {
    opentelemetry::global::meter_provider().meter("test")
}

/// Uniform noise in [-1, 1) from a fixed seed: the tests are deterministic.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A steady 5-second window at concurrency `n` and throughput `x` (so R = N / X).
fn window(n: f64, x: f64) -> Window {
    Window {
        seconds: 5.0,
        mean_concurrency: n,
        throughput: x,
        mean_latency: n / x,
        completions: (x * 5.0).round() as u64,
        in_flight: n.round() as i64,
    }
}

fn tier(meter: &Meter, name: &'static str, limit: Option<u64>) -> Tier {
    Tier::builder(name, TierKind::Server)
        .maybe_limit(limit)
        .build(meter)
        .unwrap()
}

/// A new tier `name` with `limit`, watched by `model`.
fn watched(model: &CapacityModel, meter: &Meter, name: &'static str, limit: Option<u64>) -> Tier {
    let tier = tier(meter, name, limit);
    model.watch(&tier).unwrap();
    tier
}

/// Feeds `repeats` windows per level from `usl` with ±`noise` relative noise on X.
fn feed(
    model: &CapacityModel,
    tier: &Tier,
    usl: scalewatch_usl::Model,
    levels: &[f64],
    repeats: usize,
    noise: f64,
) {
    let mut rng = Noise(42);
    for _ in 0..repeats {
        for &n in levels {
            let x = usl.throughput_at(n) * (1.0 + noise * rng.next());
            let verdict = model.record_window(tier, &window(n, x)).unwrap();
            assert!(
                matches!(verdict, WindowVerdict::Accepted { .. }),
                "{verdict:?}"
            );
        }
    }
}

const LEVELS: [f64; 12] = [
    1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0,
];

#[test]
fn noisy_usl_windows_recover_sigma_and_kappa_and_export_the_gauges() {
    let (receiver, telemetry) = pipeline();
    let meter = telemetry.meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", Some(512));
    let usl = scalewatch_usl::Model::new(0.04, 0.0008, 50.0);
    feed(&model, &api, usl, &LEVELS, 3, 0.02);

    // Nothing is exported before a fit is trusted.
    let m = flush(&receiver, &telemetry);
    assert!(m.latest(catalog::CAPACITY_CONTENTION.name).is_empty());

    model.refit();
    let report = model.report();
    let t = report.tier("api").unwrap();
    assert_eq!(t.levels.len(), LEVELS.len());
    assert_eq!(t.windows.accepted, 36);
    let fit = t.trusted_fit().unwrap();
    let (sigma, kappa) = (fit.fit.model.sigma, fit.fit.model.kappa);
    assert!((sigma - 0.04).abs() < 0.01, "σ = {sigma}");
    assert!((kappa - 0.0008).abs() < 0.0002, "κ = {kappa}");
    assert!(fit.fit.confidence_intervals.sigma.contains(0.04));
    assert_eq!(fit.limit, Limit::Coherency);
    let peak = fit.peak.unwrap();
    assert!((peak.concurrency / (0.96f64 / 0.0008).sqrt() - 1.0).abs() < 0.1);
    assert_eq!(fit.capacity, Some(peak.throughput));
    assert_eq!(fit.amdahl_ceiling, None);

    // Headroom against the peak, from the latest window (N = 64, past the peak).
    let current = t.current.unwrap();
    assert_eq!(current.concurrency, 64.0);
    let headroom = t.headroom.unwrap();
    assert!((headroom - (1.0 - current.throughput / peak.throughput)).abs() < 1e-12);
    assert!(t.throughput_plateaued, "past the peak throughput falls");
    let at_10x = t.at_10x.unwrap();
    assert_eq!(at_10x.concurrency, 640.0);
    assert!(at_10x.throughput < current.throughput);
    assert!((at_10x.latency * at_10x.throughput - 640.0).abs() < 1e-6);

    let m = flush(&receiver, &telemetry);
    let api_only = [(attr::TIER_NAME, "api")];
    let value = |name: &str| {
        let points = m.matching(name, &api_only);
        assert_eq!(points.len(), 1, "{name}: {points:?}");
        points[0].as_f64()
    };
    assert_eq!(value(catalog::CAPACITY_CONTENTION.name), sigma);
    assert_eq!(value(catalog::CAPACITY_COHERENCY.name), kappa);
    assert_eq!(
        value(catalog::CAPACITY_PEAK_CONCURRENCY.name),
        peak.concurrency
    );
    assert_eq!(
        value(catalog::CAPACITY_PEAK_THROUGHPUT.name),
        peak.throughput
    );
    assert_eq!(value(catalog::CAPACITY_HEADROOM.name), headroom);
    assert_eq!(
        value(catalog::CAPACITY_FIT_R_SQUARED.name),
        fit.fit.r_squared
    );
    // Every gauge with data carries its catalog unit (no resource here tracks the tier's
    // throughput, so there is no saturation throughput to export).
    for signal in catalog::ALL
        .iter()
        .filter(|s| s.name != catalog::RESOURCE_SATURATION_THROUGHPUT.name)
    {
        assert_eq!(
            m.unit(signal.name).as_deref(),
            Some(signal.unit),
            "{}",
            signal.name
        );
    }
    // The tier has a limit, so it is ranked: 64 in flight of 512.
    let tier_utilization = m.matching(
        catalog::RESOURCE_UTILIZATION.name,
        &[(attr::RESOURCE_KIND, "tier"), (attr::RESOURCE_NAME, "api")],
    );
    assert_eq!(tier_utilization.len(), 1);
    assert_eq!(tier_utilization[0].as_f64(), 0.125);
}

#[test]
fn too_few_levels_give_the_reason_and_export_nothing() {
    let (receiver, telemetry) = pipeline();
    let meter = telemetry.meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", None);
    model.refit();
    assert_eq!(model.report().tiers[0].untrusted, Some(NoFitReason::NoData));

    let usl = scalewatch_usl::Model::new(0.04, 0.0008, 50.0);
    feed(&model, &api, usl, &[1.0, 8.0, 64.0], 4, 0.0);
    model.refit();
    let t = model.report().tiers.remove(0);
    assert_eq!(
        t.untrusted,
        Some(NoFitReason::NotEnoughLevels { have: 3, need: 4 })
    );
    assert_eq!((t.fit, t.headroom, t.at_10x), (None, None, None));
    let m = flush(&receiver, &telemetry);
    for signal in &catalog::ALL[..6] {
        assert!(m.latest(signal.name).is_empty(), "{}", signal.name);
    }
    // No limit: the tier is not a resource either.
    assert!(m.latest(catalog::RESOURCE_UTILIZATION.name).is_empty());
}

#[test]
fn linear_scaling_has_no_curvature_and_contention_alone_gives_an_amdahl_ceiling() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let linear = watched(&model, &meter, "linear", None);
    let amdahl = watched(&model, &meter, "amdahl", None);
    let levels = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
    feed(
        &model,
        &linear,
        scalewatch_usl::Model::new(0.0, 0.0, 100.0),
        &levels,
        2,
        0.01,
    );
    feed(
        &model,
        &amdahl,
        scalewatch_usl::Model::new(0.1, 0.0, 100.0),
        &levels,
        2,
        0.01,
    );
    model.refit();
    let report = model.report();

    let l = report.tier("linear").unwrap();
    assert_eq!(l.untrusted, Some(NoFitReason::NoCurvature), "{l:#?}");
    assert_eq!(l.fit.as_ref().unwrap().limit, Limit::Linear);
    assert!(l.trusted_fit().is_none() && l.headroom.is_none());
    assert!(!l.throughput_plateaued);

    let a = report.tier("amdahl").unwrap();
    let fit = a.trusted_fit().unwrap();
    assert_eq!(fit.limit, Limit::Contention);
    assert_eq!(fit.peak, None);
    let ceiling = fit.amdahl_ceiling.unwrap();
    assert!((ceiling / 1000.0 - 1.0).abs() < 0.05, "λ/σ = {ceiling}");
    assert_eq!(fit.capacity, Some(ceiling));
    let current = a.current.unwrap().throughput;
    assert!((a.headroom.unwrap() - (1.0 - current / ceiling)).abs() < 1e-12);
    // With κ not significant the prediction uses κ = 0: it approaches the ceiling.
    let at_10x = a.at_10x.unwrap();
    assert!(at_10x.throughput > current && at_10x.throughput < ceiling);
}

#[test]
fn flat_and_erratic_throughput_are_refused_with_their_reason() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let flat = watched(&model, &meter, "flat", None);
    let erratic = watched(&model, &meter, "erratic", None);
    for (i, n) in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0].into_iter().enumerate() {
        model.record_window(&flat, &window(n, 100.0)).unwrap();
        let x = if i % 2 == 0 { 100.0 } else { 400.0 };
        model.record_window(&erratic, &window(n, x)).unwrap();
    }
    model.refit();
    let report = model.report();
    assert_eq!(
        report.tier("flat").unwrap().untrusted,
        Some(NoFitReason::FlatThroughput)
    );
    let erratic = report.tier("erratic").unwrap();
    assert!(
        matches!(
            erratic.untrusted,
            Some(NoFitReason::PoorFit { need: 0.8, .. } | NoFitReason::Diverged)
        ),
        "{erratic:#?}"
    );
}

#[test]
fn windows_that_fail_littles_law_or_have_few_completions_stay_out_and_are_counted() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", None);
    for n in [1.0, 2.0, 4.0, 8.0, 16.0] {
        // X·R is half of N: the window is far too short for its latencies.
        let mut w = window(n, 100.0);
        w.mean_latency = n / 200.0;
        let verdict = model.record_window(&api, &w).unwrap();
        assert_eq!(verdict, WindowVerdict::LittlesLawViolated { error: 0.5 });
    }
    let mut few = window(4.0, 3.0);
    few.completions = 15;
    assert_eq!(
        model.record_window(&api, &few),
        Some(WindowVerdict::TooFewCompletions { completions: 15 })
    );
    assert_eq!(
        model.record_window(&api, &window(0.01, 1.0)),
        Some(WindowVerdict::Idle)
    );
    assert_eq!(
        model.record_window(&api, &window(f64::NAN, 1.0)),
        Some(WindowVerdict::Invalid)
    );
    model.refit();
    let t = model.report().tiers.remove(0);
    assert_eq!(
        (
            t.windows.accepted,
            t.windows.littles_law_violated,
            t.windows.too_few_completions,
            t.windows.idle,
            t.windows.invalid
        ),
        (0, 5, 1, 1, 1)
    );
    assert!(t.levels.is_empty());
    assert_eq!(
        t.untrusted,
        Some(NoFitReason::LittlesLawViolated {
            violated: 5,
            accepted: 0
        })
    );
    // An unwatched tier is refused.
    assert_eq!(
        model.record_window(&tier(&meter, "other", None), &window(1.0, 1.0)),
        None
    );
}

#[test]
fn nearby_loads_share_a_decaying_level_and_stale_levels_expire() {
    let meter = noop_meter();
    let model = CapacityModel::builder()
        .level_decay(0.5)
        .level_ttl(2)
        .build(&meter)
        .unwrap();
    let api = watched(&model, &meter, "api", None);
    // 1.0 and 1.1 fall in the bin [1, 2^¼ ≈ 1.19); 1.2 in the next one.
    assert_eq!(
        model.record_window(&api, &window(1.0, 100.0)),
        Some(WindowVerdict::Accepted { level: 1.0 })
    );
    model.record_window(&api, &window(1.1, 200.0)).unwrap();
    let Some(WindowVerdict::Accepted { level }) = model.record_window(&api, &window(1.2, 240.0))
    else {
        panic!("accepted")
    };
    assert!((level - 2f64.powf(0.25)).abs() < 1e-12);
    let levels = model.report().tiers.remove(0).levels;
    assert_eq!(levels.len(), 2);
    // Weights 1 for the newest window, 0.5 for the one before.
    assert!((levels[0].throughput - (200.0 + 0.5 * 100.0) / 1.5).abs() < 1e-9);
    assert!((levels[0].concurrency - (1.1 + 0.5 * 1.0) / 1.5).abs() < 1e-12);
    assert_eq!(levels[0].windows, 2);
    assert_eq!((levels[1].windows, levels[1].throughput), (1, 240.0));

    // The first level last received window 2; with a ttl of 2 windows it survives
    // window 4 and is gone at window 5.
    model.record_window(&api, &window(8.0, 800.0)).unwrap();
    assert_eq!(model.report().tiers[0].levels.len(), 3);
    model.record_window(&api, &window(8.0, 800.0)).unwrap();
    let levels = model.report().tiers.remove(0).levels;
    assert_eq!(
        levels.iter().map(|l| l.level).collect::<Vec<_>>(),
        [2f64.powf(0.25), 8.0]
    );
}

/// A resource reading the test sets: an f64 behind an atomic.
#[derive(Clone, Default)]
struct Dial(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Dial {
    fn set(&self, value: f64) {
        self.0
            .store(value.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    fn source(&self) -> impl Fn() -> Option<f64> + Send + Sync + 'static {
        let dial = self.clone();
        move || {
            Some(f64::from_bits(
                dial.0.load(std::sync::atomic::Ordering::Relaxed),
            ))
        }
    }
}

#[test]
fn ranking_orders_by_pressure_and_names_a_bottleneck_only_once_throughput_stalls_on_it() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", Some(40));
    let cache = Dial::default();
    model
        .register_resource(ResourceKind::Pool, "db", || Some(0.5))
        .unwrap();
    model
        .register_resource(ResourceKind::Lock, "cache", cache.source())
        .unwrap();
    model
        .register_resource(ResourceKind::Queue, "jobs", || None)
        .unwrap();
    model
        .register_resource(ResourceKind::Runtime, "tokio", || Some(f64::NAN))
        .unwrap();
    model
        .register_resource(ResourceKind::Shard, "broken", || {
            let empty: Vec<f64> = Vec::new();
            Some(empty[3])
        })
        .unwrap();
    // Each request of `api` holds the lock 2 ms: it is full at 500/s, and past that the
    // excess waits (a reading above 1).
    let step = |n: f64, x: f64| {
        cache.set(0.002 * x);
        model.sample();
        model.record_window(&api, &window(n, x)).unwrap();
    };

    // Throughput still rising: the saturated lock is ranked first but not yet named.
    for n in [1.0, 2.0, 4.0, 8.0] {
        for _ in 0..3 {
            step(n, 100.0 * n);
        }
    }
    let report = model.report();
    let ranked: Vec<_> = report
        .resources
        .iter()
        .map(|r| (r.kind, r.name.as_str(), r.utilization, r.saturated))
        .collect();
    assert_eq!(
        ranked,
        [
            (ResourceKind::Lock, "cache", 1.0, true),
            (ResourceKind::Pool, "db", 0.5, false),
            (ResourceKind::Tier, "api", 0.2, false),
        ]
    );
    // Past full, the excess waits: 1.6 of demand on a lock of 1.
    assert!((report.resources[0].waiting - 0.6).abs() < 1e-9);
    assert!(!report.tiers[0].throughput_plateaued);
    assert_eq!(report.tiers[0].scaling_efficiency, Some(1.0));
    assert_eq!(report.first_bottleneck, None);
    // The lock's demand: 2 ms a request, full at 500/s, from the windows below full.
    let demand = report.resources[0]
        .demand()
        .cloned()
        .expect("the lock tracks `api`");
    assert_eq!(demand.tier, "api");
    assert!(
        (demand.seconds_per_request - 0.002).abs() < 1e-9,
        "{demand:?}"
    );
    assert!(
        (demand.saturation_throughput - 500.0).abs() < 1e-6,
        "{demand:?}"
    );
    // The pool is busy but does not follow the load: no demand, never blamed.
    assert_eq!(report.resources[1].demand(), None);

    // Doubling the load again buys 10 % more throughput: efficiency 0.1, a plateau.
    step(16.0, 880.0);
    let report = model.report();
    assert!(report.tiers[0].throughput_plateaued);
    assert!((report.tiers[0].scaling_efficiency.unwrap() - 0.1).abs() < 1e-12);
    let bottleneck = report.first_bottleneck.unwrap();
    assert_eq!(
        (bottleneck.kind, bottleneck.name.as_str()),
        (ResourceKind::Lock, "cache")
    );
    assert_eq!(bottleneck.tier, "api");
    assert_eq!(bottleneck.plateaued_tiers, ["api"]);
    assert_eq!(bottleneck.hint, ResourceKind::Lock.hint());
    assert_eq!(report.resources[1].name, "db");
    assert_eq!(report.resources[2].utilization, 0.4);
    let wall = report.first_to_saturate.unwrap();
    assert_eq!((wall.name.as_str(), wall.tier.as_str()), ("cache", "api"));
}

#[test]
fn a_saturated_resource_that_does_not_track_the_stalled_tier_is_not_blamed() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", None);
    // A job's lock, busy 95% whatever `api` does; the pool is what `api` waits on.
    let (pool, unrelated) = (Dial::default(), Dial::default());
    model
        .register_resource(ResourceKind::Pool, "db", pool.source())
        .unwrap();
    model
        .register_resource(ResourceKind::Lock, "batch", unrelated.source())
        .unwrap();
    let mut i = 0u32;
    for (n, x) in [
        (1.0, 100.0),
        (2.0, 200.0),
        (4.0, 350.0),
        (8.0, 390.0),
        (16.0, 400.0),
    ] {
        for _ in 0..4 {
            i += 1;
            pool.set(x / 400.0);
            unrelated.set(0.93 + 0.01 * f64::from(i % 5));
            model.sample();
            model.record_window(&api, &window(n, x)).unwrap();
        }
    }
    let report = model.report();
    assert!(report.tiers[0].throughput_plateaued);
    let batch = report.resources.iter().find(|r| r.name == "batch").unwrap();
    assert!(batch.saturated && batch.demand().is_none(), "{batch:?}");
    let bottleneck = report.first_bottleneck.expect("the pool");
    assert_eq!(
        (bottleneck.kind, bottleneck.name.as_str()),
        (ResourceKind::Pool, "db")
    );
}

#[test]
fn the_saturation_threshold_is_configurable() {
    let meter = noop_meter();
    let model = CapacityModel::builder()
        .saturation_threshold(0.5)
        .build(&meter)
        .unwrap();
    model
        .register_resource(ResourceKind::Job, "nightly", || Some(0.6))
        .unwrap();
    model.sample();
    assert!(model.report().resources[0].saturated);
}

#[test]
fn bad_settings_and_duplicate_names_are_refused() {
    let meter = noop_meter();
    let err = |b: scalewatch_capacity::CapacityModelBuilder| b.build(&meter).unwrap_err();
    assert_eq!(
        err(CapacityModel::builder().min_levels(3)),
        BuildError::TooFewLevels(3)
    );
    for (builder, name) in [
        (CapacityModel::builder().min_r_squared(1.5), "min_r_squared"),
        (
            CapacityModel::builder().min_completions(0),
            "min_completions",
        ),
        (
            CapacityModel::builder().max_littles_law_error(f64::NAN),
            "max_littles_law_error",
        ),
        (
            CapacityModel::builder().bins_per_doubling(9),
            "bins_per_doubling",
        ),
        (CapacityModel::builder().level_decay(0.0), "level_decay"),
        (CapacityModel::builder().level_ttl(0), "level_ttl"),
        (
            CapacityModel::builder().saturation_threshold(0.0),
            "saturation_threshold",
        ),
        (
            CapacityModel::builder().plateau_efficiency(-1.0),
            "plateau_efficiency",
        ),
        (
            CapacityModel::builder().confidence_level(1.0),
            "confidence_level",
        ),
    ] {
        match err(builder) {
            BuildError::OutOfRange { name: got, .. } => assert_eq!(got, name),
            other => panic!("{name}: {other:?}"),
        }
    }

    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", None);
    let duplicate = RegisterError::Duplicate {
        kind: ResourceKind::Tier,
        name: "api".into(),
    };
    assert_eq!(model.watch(&api), Err(duplicate.clone()));
    assert_eq!(
        model.register_resource(ResourceKind::Tier, "api", || None),
        Err(duplicate)
    );
    model
        .register_resource(ResourceKind::Lock, "api", || None)
        .unwrap();
    assert!(model
        .register_resource(ResourceKind::Lock, "api", || None)
        .is_err());
    let message = model
        .register_resource(ResourceKind::Lock, "api", || None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "lock `api` is already registered: give each resource a distinct static name"
    );
}

#[test]
fn the_background_sampler_samples_until_its_handle_drops() {
    let meter = noop_meter();
    let model = CapacityModel::builder()
        .refit_every(1)
        .build(&meter)
        .unwrap();
    assert!(matches!(
        model.spawn_sampler(Duration::ZERO),
        Err(SpawnError::ZeroInterval)
    ));
    let sampler = model.spawn_sampler(Duration::from_millis(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while model.report().samples < 3 {
        assert!(Instant::now() < deadline, "the sampler never sampled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopping = Instant::now();
    drop(sampler);
    assert!(stopping.elapsed() < Duration::from_secs(1));
    let samples = model.report().samples;
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(model.report().samples, samples);

    // Dropping the model ends the thread too; the handle then joins at once.
    let sampler = model.spawn_sampler(Duration::from_millis(5)).unwrap();
    drop(model);
    std::thread::sleep(Duration::from_millis(20));
    let stopping = Instant::now();
    sampler.stop();
    assert!(stopping.elapsed() < Duration::from_secs(1));
}

#[test]
fn the_report_round_trips_through_json_and_prints_a_summary() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let api = watched(&model, &meter, "api", Some(100));
    let _db = watched(&model, &meter, "db", None);
    // Each request of `api` holds the lock 1/850 s: full at 850/s.
    let sessions = Dial::default();
    model
        .register_resource(ResourceKind::Lock, "sessions", sessions.source())
        .unwrap();
    let usl = scalewatch_usl::Model::new(0.05, 0.001, 100.0);
    for n in LEVELS {
        let x = usl.throughput_at(n);
        sessions.set(x / 850.0);
        model.sample();
        model.record_window(&api, &window(n, x)).unwrap();
    }
    model.refit();
    let report = model.report();
    #[cfg(feature = "serde")]
    {
        let json = serde_json::to_string(&report).unwrap();
        let back: scalewatch_capacity::CapacityReport = serde_json::from_str(&json).unwrap();
        // serde_json's default float parsing may be off in the last bit, the same way twice.
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        );
        assert_eq!(back.tiers[1].untrusted, report.tiers[1].untrusted);
        assert!(
            json.contains(r#""reason":"not_enough_levels","have":0,"need":4"#),
            "{json}"
        );
    }

    let text = report.to_string();
    println!("{text}");
    for expected in [
        "tier `api` (limit 100): N=64.00",
        "σ=0.0500",
        "peak ",
        "tier `db`: N=0.00",
        "no trusted fit:",
        "first bottleneck: lock `sessions` at 92%",
        // Full now: the wall is here, and the law put it at 850/s from the windows below
        // full.
        "the wall is here: lock `sessions` is 92% used",
        "put it at about 850/s",
    ] {
        assert!(text.contains(expected), "{text}");
    }
}

#[test]
fn dropping_the_sampler_does_not_hang_on_a_source_that_blocks() {
    let meter = noop_meter();
    let model = CapacityModel::new(&meter);
    let (entered, blocked) = std::sync::mpsc::channel::<()>();
    let entered = std::sync::Mutex::new(entered);
    model
        .register_resource(ResourceKind::Queue, "stuck", move || {
            let _ = entered.lock().unwrap().send(());
            std::thread::sleep(Duration::from_secs(4));
            Some(0.1)
        })
        .unwrap();
    let sampler = model.spawn_sampler(Duration::from_millis(5)).unwrap();
    // The sampler thread is inside the blocking source.
    blocked.recv_timeout(Duration::from_secs(10)).unwrap();
    let dropping = Instant::now();
    drop(sampler);
    let waited = dropping.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the drop waited {waited:?} for a source that blocks 4 s"
    );
}
