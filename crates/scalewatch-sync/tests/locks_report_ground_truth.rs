//! Known workloads against what is exported over OTLP: utilization against the measured
//! busy fraction, total wait against every wait timed by hand around the lock call, no
//! contention when there is none, exact waiter and pending counts after cancelled waits,
//! std poisoning, and the slow-wait event.
#![allow(clippy::unwrap_used)] // tests may unwrap

use scalewatch_otlp::Telemetry;
use scalewatch_sync::catalog::{self, attr};
use scalewatch_sync::{LockMetrics, Mutex, Pool, RwLock, DEFAULT_HOLD_SAMPLE_EVERY};
use scalewatch_test_support::pipeline::{flush_and_read as flush, grpc_pipeline as pipeline};
use scalewatch_test_support::MetricsSnapshot;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn acquisitions(m: &MetricsSnapshot, name: &str, mode: &str, contended: &str) -> f64 {
    m.sum(
        catalog::LOCK_ACQUISITIONS.name,
        &[
            (attr::LOCK_NAME, name),
            (attr::LOCK_MODE, mode),
            (attr::LOCK_CONTENDED, contended),
        ],
    )
}

/// Asserts each `(lock, mode, contended, expected)` row's exported acquisition count.
fn assert_acquisitions(m: &MetricsSnapshot, expected: &[(&str, &str, &str, f64)]) {
    for &(name, mode, contended, count) in expected {
        assert_eq!(
            acquisitions(m, name, mode, contended),
            count,
            "{name}: {mode} acquisitions with contended={contended}"
        );
    }
}

/// The workload's own measurements, timed by hand with `Instant` in the test: Σ hold time,
/// and Σ time spent in the lock calls, with how many calls were made.
#[derive(Default)]
struct Truth {
    busy: Duration,
    waited: Duration,
    calls: u32,
}

impl std::ops::Add for Truth {
    type Output = Truth;
    fn add(self, other: Truth) -> Truth {
        Truth {
            busy: self.busy + other.busy,
            waited: self.waited + other.waited,
            calls: self.calls + other.calls,
        }
    }
}

/// What a hand-timed lock call may take beyond the wait the lock records: the first
/// `try_lock` that finds the lock taken, counting the acquisition, and reading the clock,
/// before and after the recorded wait, all inside the test's two `Instant` reads. Measured
/// about 1 µs a call; 20 µs a call leaves room for a few preemptions of a worker inside a
/// call (a few milliseconds each) on a loaded 2-core machine. The gap is printed.
const CALL_OVERHEAD: Duration = Duration::from_micros(20);

fn check_truth(
    m: &MetricsSnapshot,
    name: &str,
    truth: &Truth,
    window: Duration,
    locks: &LockMetrics,
) {
    let utilization = m.sum(catalog::LOCK_UTILIZATION.name, &[(attr::LOCK_NAME, name)]);
    let busy_fraction = truth.busy.as_secs_f64() / window.as_secs_f64();
    assert!(
        (utilization - busy_fraction).abs() <= 0.05,
        "{name}: utilization {utilization:.3}, measured busy fraction {busy_fraction:.3}"
    );
    assert!(
        busy_fraction > 0.2,
        "{name}: the workload was busy enough ({busy_fraction:.3})"
    );

    // The ground truth: every lock call timed by hand. Each recorded wait lies inside its
    // call's two `Instant` reads, so Σ exported ≤ Σ hand-timed, up to the two clocks'
    // rates (the SDK's clock is calibrated against `Instant`: 0.5% covers it); what the
    // hand timing adds is at most CALL_OVERHEAD per call (uncontended calls included).
    let exported_wait = m.sum(catalog::LOCK_WAIT_DURATION.name, &[(attr::LOCK_NAME, name)]);
    let hand = truth.waited.as_secs_f64();
    let overhead = CALL_OVERHEAD.as_secs_f64() * f64::from(truth.calls);
    eprintln!(
        "{name}: Σ waits exported {exported_wait:.4} s, timed by hand {hand:.4} s over {} calls ({:.1} µs a call more)",
        truth.calls,
        (hand - exported_wait) / f64::from(truth.calls) * 1e6
    );
    assert!(
        exported_wait <= hand * 1.005,
        "{name}: Σ exported waits {exported_wait:.4} s > Σ hand-timed {hand:.4} s"
    );
    assert!(
        hand - exported_wait <= overhead,
        "{name}: Σ hand-timed {hand:.4} s − Σ exported waits {exported_wait:.4} s > {overhead:.4} s"
    );
    assert!(
        hand > 0.1 * window.as_secs_f64(),
        "{name}: the workload waited ({hand:.4} s)"
    );
    // Little's law inside the library: Σ wait = ∫ waiters dt, read from its cells.
    let counted = locks.counts(name).unwrap();
    let integral = counted.total_wait.as_secs_f64();
    assert!(
        (exported_wait - integral).abs() <= 0.01 * integral,
        "{name}: Σ exported waits {exported_wait:.4} s vs waiter integral {integral:.4} s"
    );
    assert_eq!(counted.waiters, 0);
    assert_eq!(
        m.sum(catalog::LOCK_WAITERS.name, &[(attr::LOCK_NAME, name)]),
        0.0
    );
}

/// One hold in 4 is timed: ~200 samples in these short runs keep the utilization
/// estimate's noise well under the 5-point tolerance (1 in 16 gives ~50 samples here, and
/// about ±5 points when `thread::sleep` overshoots on a loaded machine).
fn sampled_every_4(telemetry: &Telemetry) -> LockMetrics {
    LockMetrics::builder()
        .hold_sample_every(4)
        .build(&telemetry.meter())
        .unwrap()
}

const RUN: Duration = Duration::from_millis(800);

#[test]
fn threads_holding_a_mutex_report_their_busy_fraction_and_waits() {
    let (receiver, telemetry) = pipeline();
    let locks = sampled_every_4(&telemetry);
    let created = Instant::now();
    let lock = Arc::new(Mutex::new("threads", 0u64, &locks));
    let start = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let mut truth = Truth::default();
                while start.elapsed() < RUN {
                    let asked = Instant::now();
                    let mut g = lock.lock().unwrap();
                    let held = Instant::now();
                    truth.waited += held - asked;
                    truth.calls += 1;
                    *g += 1;
                    std::thread::sleep(Duration::from_millis(1));
                    truth.busy += held.elapsed();
                    drop(g);
                    std::thread::sleep(Duration::from_millis(3));
                }
                truth
            })
        })
        .collect();
    let truth = workers
        .into_iter()
        .map(|w| w.join().unwrap())
        .fold(Truth::default(), |a, b| a + b);
    let window = created.elapsed();
    let m = flush(&receiver, &telemetry);
    check_truth(&m, "threads", &truth, window, &locks);
    assert!(acquisitions(&m, "threads", catalog::MODE_EXCLUSIVE, "true") > 0.0);
}

#[test]
fn tokio_tasks_holding_a_mutex_report_their_busy_fraction_and_waits() {
    let (receiver, telemetry) = pipeline();
    let locks = sampled_every_4(&telemetry);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let created = Instant::now();
    let lock = Arc::new(scalewatch_sync::tokio::Mutex::new("tasks", 0u64, &locks));
    let start = Instant::now();
    let truth = rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                tokio::spawn(async move {
                    let mut truth = Truth::default();
                    while start.elapsed() < RUN {
                        let asked = Instant::now();
                        let mut g = lock.lock().await;
                        let held = Instant::now();
                        truth.waited += held - asked;
                        truth.calls += 1;
                        *g += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        truth.busy += held.elapsed();
                        drop(g);
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    truth
                })
            })
            .collect();
        let mut total = Truth::default();
        for t in tasks {
            total = total + t.await.unwrap();
        }
        total
    });
    let window = created.elapsed();
    let m = flush(&receiver, &telemetry);
    check_truth(&m, "tasks", &truth, window, &locks);
}

#[test]
fn an_uncontended_workload_reports_no_contention() {
    let (receiver, telemetry) = pipeline();
    let locks = LockMetrics::new(&telemetry.meter());
    let quiet = Mutex::new("quiet", 0u64, &locks);
    let config = RwLock::new("config", 0u64, &locks);
    for _ in 0..10_000 {
        *quiet.lock().unwrap() += 1;
        assert_eq!(*config.read().unwrap(), 0);
    }
    *config.write().unwrap() = 1;
    let m = flush(&receiver, &telemetry);
    assert_acquisitions(
        &m,
        &[
            ("quiet", catalog::MODE_EXCLUSIVE, "false", 10_000.0),
            ("quiet", catalog::MODE_EXCLUSIVE, "true", 0.0),
            ("config", catalog::MODE_SHARED, "false", 10_000.0),
            ("config", catalog::MODE_SHARED, "true", 0.0),
            ("config", catalog::MODE_EXCLUSIVE, "false", 1.0),
        ],
    );
    assert_eq!(m.histogram_count(catalog::LOCK_WAIT_DURATION.name, &[]), 0);
    // Holds are timed by time, per thread and lock: the first of each lock and mode is,
    // then at most one per 64 µs of this thread's acquisitions, and at least one in
    // DEFAULT_HOLD_SAMPLE_EVERY.
    let timed = |name: &str, mode: &str| {
        m.histogram_count(
            catalog::LOCK_HOLD_DURATION.name,
            &[(attr::LOCK_NAME, name), (attr::LOCK_MODE, mode)],
        )
    };
    for (name, mode, acquired) in [
        ("quiet", catalog::MODE_EXCLUSIVE, 10_000u64),
        ("config", catalog::MODE_SHARED, 10_000),
    ] {
        let n = timed(name, mode);
        assert!(
            n >= acquired / u64::from(DEFAULT_HOLD_SAMPLE_EVERY) && n <= acquired,
            "{name}: {n} timed holds of {acquired}"
        );
    }
    assert_eq!(m.sum(catalog::LOCK_WAITERS.name, &[]), 0.0);
    // A mutex exports no shared-mode series.
    assert!(m
        .matching(
            catalog::LOCK_ACQUISITIONS.name,
            &[
                (attr::LOCK_NAME, "quiet"),
                (attr::LOCK_MODE, catalog::MODE_SHARED)
            ]
        )
        .is_empty());
}

#[test]
fn a_thousand_cancelled_waits_leave_no_waiter_behind() {
    let (receiver, telemetry) = pipeline();
    let meter = telemetry.meter();
    let locks = LockMetrics::new(&meter);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lock = Arc::new(scalewatch_sync::tokio::Mutex::new("cancelled", (), &locks));
    let sem = Arc::new(scalewatch_sync::tokio::Semaphore::new("slots", 1, &locks));
    let pool = Pool::builder("connections", 1).build(&meter).unwrap();
    rt.block_on(async {
        let held = lock.lock().await;
        let permit = sem.acquire().await.unwrap();
        let conn = pool.acquire().await.unwrap();
        let mut waits = Vec::new();
        for _ in 0..1000 {
            let (lock, sem, pool) = (lock.clone(), sem.clone(), pool.clone());
            waits.push(tokio::spawn(async move {
                let d = Duration::from_millis(200);
                tokio::join!(
                    async { assert!(tokio::time::timeout(d, lock.lock()).await.is_err()) },
                    async { assert!(tokio::time::timeout(d, sem.acquire()).await.is_err()) },
                    async { assert!(tokio::time::timeout(d, pool.acquire()).await.is_err()) },
                );
            }));
        }
        // Everyone is queued before the timeouts fire.
        let deadline = Instant::now() + Duration::from_millis(150);
        while locks.counts("cancelled").unwrap().waiters < 1000 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(locks.counts("cancelled").unwrap().waiters, 1000);
        for w in waits {
            w.await.unwrap();
        }
        drop((held, permit, conn));
    });
    let m = flush(&receiver, &telemetry);
    assert_eq!(locks.counts("cancelled").unwrap().waiters, 0);
    assert_eq!(locks.counts("slots").unwrap().waiters, 0);
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.in_use(), 0);
    for name in ["cancelled", "slots"] {
        assert_eq!(
            m.sum(catalog::LOCK_WAITERS.name, &[(attr::LOCK_NAME, name)]),
            0.0
        );
        assert_eq!(
            m.histogram_count(catalog::LOCK_WAIT_DURATION.name, &[(attr::LOCK_NAME, name)]),
            0,
            "cancelled waits are not acquisitions"
        );
    }
    assert_acquisitions(
        &m,
        &[
            ("cancelled", catalog::MODE_EXCLUSIVE, "false", 1.0),
            ("slots", catalog::MODE_SHARED, "false", 1.0),
        ],
    );
    let pool_filter = [(attr::POOL_NAME, "connections")];
    assert_eq!(
        m.sum(catalog::POOL_PENDING_REQUESTS.name, &pool_filter),
        0.0
    );
    assert_eq!(m.sum(catalog::POOL_USAGE.name, &pool_filter), 0.0);
    assert_eq!(m.sum(catalog::POOL_LIMIT.name, &pool_filter), 1.0);
    assert_eq!(
        m.histogram_count(catalog::POOL_WAIT_TIME.name, &pool_filter),
        1
    );
    assert_eq!(
        m.histogram_count(catalog::POOL_USE_TIME.name, &pool_filter),
        1
    );
}

#[test]
fn a_panic_while_holding_poisons_exactly_as_std_and_statistics_still_export() {
    let (receiver, telemetry) = pipeline();
    let locks = LockMetrics::new(&telemetry.meter());
    let ours = Arc::new(Mutex::new("poisoned", 1u32, &locks));
    let std_mutex = Arc::new(std::sync::Mutex::new(1u32));
    let ours_rw = Arc::new(RwLock::new("poisoned-rw", 1u32, &locks));
    let std_rw = Arc::new(std::sync::RwLock::new(1u32));
    {
        let (a, b, c, d) = (
            ours.clone(),
            std_mutex.clone(),
            ours_rw.clone(),
            std_rw.clone(),
        );
        let r = std::thread::spawn(move || {
            let _g1 = a.lock().unwrap();
            let _g2 = b.lock().unwrap();
            let _g3 = c.write().unwrap();
            let _g4 = d.write().unwrap();
            panic!("boom while holding");
        })
        .join();
        assert!(r.is_err());
    }
    assert_eq!(ours.is_poisoned(), std_mutex.is_poisoned());
    assert!(ours.is_poisoned());
    assert_eq!(ours.lock().is_err(), std_mutex.lock().is_err());
    assert_eq!(*ours.lock().unwrap_err().into_inner(), 1);
    assert!(matches!(
        ours.try_lock(),
        Err(std::sync::TryLockError::Poisoned(_))
    ));
    assert_eq!(ours_rw.is_poisoned(), std_rw.is_poisoned());
    assert_eq!(ours_rw.read().is_err(), std_rw.read().is_err());
    ours.clear_poison();
    std_mutex.clear_poison();
    assert_eq!(ours.lock().is_ok(), std_mutex.lock().is_ok());
    let m = flush(&receiver, &telemetry);
    // 1 in the panicking thread, 3 more after (lock, unwrap_err, try_lock) + 1 after clearing.
    assert_acquisitions(
        &m,
        &[
            ("poisoned", catalog::MODE_EXCLUSIVE, "false", 5.0),
            ("poisoned-rw", catalog::MODE_EXCLUSIVE, "false", 1.0),
        ],
    );
    assert_eq!(
        m.sum(catalog::LOCK_WAITERS.name, &[(attr::LOCK_NAME, "poisoned")]),
        0.0
    );
}

mod slow_wait_event {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// Each event seen: its parent span's name and its fields.
    type Events = Vec<(String, Vec<(String, String)>)>;

    #[derive(Default, Clone)]
    struct Seen(Arc<StdMutex<Events>>);

    struct Fields(Vec<(String, String)>);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Seen {
        fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            let parent = event
                .parent()
                .and_then(|id| ctx.span(id))
                .map_or_else(String::new, |s| s.name().to_owned());
            self.0.lock().unwrap().push((parent, fields.0));
        }
    }

    #[test]
    fn a_wait_past_the_threshold_adds_an_event_to_the_current_span() {
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
            "test",
        );
        let locks = LockMetrics::builder()
            .slow_wait(Duration::from_millis(20))
            .build(&meter)
            .unwrap();
        let lock = Arc::new(Mutex::new("slow", (), &locks));
        let seen = Seen::default();
        let subscriber = tracing_subscriber::registry().with(seen.clone());
        let held = lock.lock().unwrap();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                tracing::subscriber::with_default(subscriber, || {
                    let span = tracing::info_span!("checkout");
                    let _in = span.enter();
                    drop(lock.lock().unwrap());
                });
            })
        };
        std::thread::sleep(Duration::from_millis(60));
        drop(held);
        waiter.join().unwrap();
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let (parent, fields) = &seen[0];
        assert_eq!(parent, "checkout");
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(attr::LOCK_NAME).as_deref(), Some("\"slow\""));
        let waited: f64 = get(attr::LOCK_WAIT_SECONDS).unwrap().parse().unwrap();
        assert!(waited >= 0.02, "waited {waited}");
        // A fast contended wait adds nothing.
        assert_eq!(locks.counts("slow").unwrap().exclusive_contended, 1);
    }
}
