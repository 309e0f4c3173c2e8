//! Lock and semaphore utilization, with the default configuration, against an independent
//! oracle: every hold is timed by hand (`Instant` around the critical section) and the
//! oracle's busy time per window is the overlap of those holds with the window.
//!
//! Every reading of a window of 0.5 s must be within ±5 percentage points of the oracle,
//! and a lock busy for 10% of a window or more never reads 0. Covered: thread-per-request
//! (`spawn_blocking`), async tasks and a fixed thread pool; from about 10 acquisitions a
//! second to about 100,000; std, parking_lot and tokio mutexes and a tokio semaphore.
//! Holds are sleeps where they can be (so that a 2-core machine measures the plant, not
//! its own load), and short spins only for the high-rate case.
#![allow(clippy::unwrap_used)] // tests may unwrap

use opentelemetry::metrics::MeterProvider as _;
use scalewatch_sync::{LockMetrics, Occupancy};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};
use tokio::time::sleep;

const WINDOW: Duration = Duration::from_millis(500);
const TOLERANCE: f64 = 0.05;

/// Hand-timed holds: (start, end) of each.
#[derive(Clone, Default)]
struct Oracle {
    holds: Arc<StdMutex<Vec<(Instant, Instant)>>>,
}

impl Oracle {
    fn record(&self, start: Instant, end: Instant) {
        self.holds.lock().unwrap().push((start, end));
    }

    /// Runs `hold` with `guard` held, then releases it, and records the hand-timed hold:
    /// from the moment the guard was in hand to just before its release.
    fn hold<G>(&self, guard: G, hold: impl FnOnce()) {
        let start = Instant::now();
        hold();
        let end = Instant::now();
        drop(guard);
        self.record(start, end);
    }

    /// [`Oracle::hold`] for a hold across awaits: `hold` runs with `guard` held.
    async fn hold_across<G>(&self, guard: G, hold: impl Future<Output = ()>) {
        let start = Instant::now();
        hold.await;
        let end = Instant::now();
        drop(guard);
        self.record(start, end);
    }

    /// The fraction of `from..to` covered by holds, per unit of `capacity`.
    fn busy(&self, from: Instant, to: Instant, capacity: f64) -> f64 {
        let holds = self.holds.lock().unwrap();
        let busy: f64 = holds
            .iter()
            .map(|&(s, e)| {
                let (s, e) = (s.max(from), e.min(to));
                e.saturating_duration_since(s).as_secs_f64()
            })
            .sum();
        busy / (to - from).as_secs_f64() / capacity
    }
}

fn metrics() -> (opentelemetry_sdk::metrics::SdkMeterProvider, LockMetrics) {
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let locks = match std::env::var("SW_EVERY") {
        Ok(v) => LockMetrics::builder()
            .hold_sample_every(v.parse().unwrap())
            .build(&provider.meter("u"))
            .unwrap(),
        Err(_) => LockMetrics::new(&provider.meter("utilization")),
    };
    (provider, locks)
}

/// Reads `reader` every [`WINDOW`] for `windows` windows while the workload runs, then
/// checks every window against the oracle.
fn check_windows(
    what: &str,
    windows: usize,
    capacity: f64,
    oracle: &Oracle,
    reader: impl Fn() -> Option<Occupancy>,
) {
    // Let the workload reach its steady state, then open the first window.
    std::thread::sleep(Duration::from_millis(300));
    let _ = reader();
    let mut from = Instant::now();
    let mut readings = Vec::new();
    for _ in 0..windows {
        std::thread::sleep(WINDOW);
        let reading = reader().expect("a window").utilization;
        let to = Instant::now();
        readings.push((reading, from, to));
        from = to;
    }
    // Let holds in progress at the last window's end finish before the oracle reads them.
    std::thread::sleep(Duration::from_millis(100));
    for (i, (measured, from, to)) in readings.into_iter().enumerate() {
        let truth = oracle.busy(from, to, capacity);
        eprintln!("{what}: window {i}: measured {measured:.3}, hand-timed {truth:.3}");
        assert!(
            (measured - truth).abs() <= TOLERANCE,
            "{what}: window {i} reads {measured:.3}, the hand-timed holds say {truth:.3}"
        );
        if truth >= 0.1 {
            assert!(measured > 0.0, "{what}: window {i} busy {truth:.3} reads 0");
        }
    }
}

/// Runs `body` on `threads` threads until `stop`, each call one acquisition.
fn thread_pool(threads: usize, stop: &Arc<AtomicBool>, body: impl Fn() + Send + Sync + 'static) {
    let body = Arc::new(body);
    for _ in 0..threads {
        let (stop, body) = (stop.clone(), body.clone());
        std::thread::spawn(move || {
            // Bounded whatever happens: the tests stop it after a few seconds.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                body();
            }
        });
    }
}

/// tokio's own bound on blocking threads.
const DEFAULT_BLOCKING_THREADS: usize = 512;

/// A runtime with 2 workers and at most `blocking_threads` blocking threads.
fn runtime(blocking_threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(blocking_threads)
        .enable_all()
        .build()
        .unwrap()
}

/// Spawns `tasks` tasks on `rt`, each awaiting `body()` in a loop until `stop` is set
/// (bounded: the tests stop them after a few seconds).
fn task_pool<F, Fut>(rt: &tokio::runtime::Runtime, tasks: usize, stop: &Arc<AtomicBool>, body: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    for _ in 0..tasks {
        let (stop, body) = (stop.clone(), body.clone());
        rt.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                body().await;
            }
        });
    }
}

/// Runs `body` on `threads` threads while [`check_windows`] reads `windows` windows of
/// `reader` (a lock: capacity 1), then stops them. Each call of `body` is one acquisition,
/// whose hold it records in the oracle it is given.
fn check_on_threads(
    what: &str,
    windows: usize,
    reader: impl Fn() -> Option<Occupancy>,
    threads: usize,
    body: impl Fn(&Oracle) + Send + Sync + 'static,
) {
    let (oracle, stop) = (Oracle::default(), Arc::new(AtomicBool::new(false)));
    {
        let oracle = oracle.clone();
        thread_pool(threads, &stop, move || body(&oracle));
    }
    check_windows(what, windows, 1.0, &oracle, reader);
    stop.store(true, Ordering::Relaxed);
}

/// [`check_on_threads`] for `tasks` tasks on `rt`, each awaiting `body` in a loop, against
/// a `capacity` of permits; shuts `rt` down after.
fn check_on_tasks<F, Fut>(
    what: &str,
    windows: usize,
    capacity: f64,
    reader: impl Fn() -> Option<Occupancy>,
    rt: tokio::runtime::Runtime,
    tasks: usize,
    body: F,
) where
    F: Fn(Oracle) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (oracle, stop) = (Oracle::default(), Arc::new(AtomicBool::new(false)));
    {
        let oracle = oracle.clone();
        task_pool(&rt, tasks, &stop, move || body(oracle.clone()));
    }
    check_windows(what, windows, capacity, &oracle, reader);
    stop.store(true, Ordering::Relaxed);
    rt.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn a_lock_taken_ten_times_a_second_reads_its_hand_timed_share() {
    let (_p, locks) = metrics();
    let lock = Arc::new(scalewatch_sync::Mutex::new("slow", (), &locks));
    let reader = locks.occupancy_source("slow").unwrap();
    check_on_threads("10/s, one thread", 6, reader, 1, move |oracle| {
        oracle.hold(lock.lock().unwrap(), || {
            std::thread::sleep(Duration::from_millis(20))
        });
        std::thread::sleep(Duration::from_millis(80));
    });
}

#[test]
fn a_saturated_lock_behind_spawn_blocking_reads_near_full() {
    let (_p, locks) = metrics();
    let lock = Arc::new(scalewatch_sync::Mutex::new("ledger", (), &locks));
    let reader = locks.occupancy_source("ledger").unwrap();
    // 32 "requests" at a time, each a blocking task holding the lock for 4 ms.
    let what = "spawn_blocking, 32 at a time";
    check_on_tasks(what, 6, 1.0, reader, runtime(64), 32, move |oracle| {
        let lock = lock.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                oracle.hold(lock.lock().unwrap(), || {
                    std::thread::sleep(Duration::from_millis(4))
                });
            })
            .await
            .unwrap();
        }
    });
}

#[test]
fn a_parking_lot_lock_in_a_fixed_pool_reads_its_hand_timed_share() {
    let (_p, locks) = metrics();
    let lock = Arc::new(scalewatch_sync::parking_lot::Mutex::new("pl", (), &locks));
    let reader = locks.occupancy_source("pl").unwrap();
    // 4 threads, each holding 1 ms then resting 6 ms: about 4/7 busy.
    let what = "parking_lot, fixed pool of 4";
    check_on_threads(what, 6, reader, 4, move |oracle| {
        oracle.hold(lock.lock(), || std::thread::sleep(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(6));
    });
}

#[test]
fn a_lock_taken_a_hundred_thousand_times_a_second_reads_its_hand_timed_share() {
    let (_p, locks) = metrics();
    let lock = Arc::new(scalewatch_sync::Mutex::new("hot", (), &locks));
    let reader = locks.occupancy_source("hot").unwrap();
    {
        let lock = lock.clone();
        // One thread: hold about 2 µs, rest about 8 µs (spins: sleeps are too coarse).
        check_on_threads("about 100k/s, spinning", 4, reader, 1, move |oracle| {
            oracle.hold(lock.lock().unwrap(), || spin(Duration::from_micros(2)));
            spin(Duration::from_micros(8));
        });
    }
    let rate = lock_rate(&locks, "hot");
    eprintln!("hot: {rate} acquisitions in all");
}

/// Busy-waits for `duration`.
fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

fn lock_rate(locks: &LockMetrics, name: &str) -> u64 {
    let c = locks.counts(name).unwrap();
    c.exclusive_uncontended + c.exclusive_contended
}

#[test]
fn a_tokio_mutex_held_across_awaits_by_tasks_reads_its_hand_timed_share() {
    let (_p, locks) = metrics();
    let lock = Arc::new(scalewatch_sync::tokio::Mutex::new("session", (), &locks));
    let reader = locks.occupancy_source("session").unwrap();
    let rt = runtime(DEFAULT_BLOCKING_THREADS);
    // 8 tasks, each holding 2 ms across an await and resting 20 ms.
    check_on_tasks(
        "tokio mutex, 8 tasks",
        6,
        1.0,
        reader,
        rt,
        8,
        move |oracle| {
            let lock = lock.clone();
            async move {
                let guard = lock.lock().await;
                oracle
                    .hold_across(guard, sleep(Duration::from_millis(2)))
                    .await;
                sleep(Duration::from_millis(20)).await;
            }
        },
    );
}

#[test]
fn a_semaphore_reads_the_hand_timed_share_of_its_permits_in_use() {
    let (_p, locks) = metrics();
    let permits = 4;
    let sem = Arc::new(scalewatch_sync::tokio::Semaphore::new(
        "workers", permits, &locks,
    ));
    let reader = locks.occupancy_source("workers").unwrap();
    let rt = runtime(DEFAULT_BLOCKING_THREADS);
    // 6 tasks on 4 permits, each holding one 5 ms and resting 5 ms: about 6/8 of the
    // permits in use, some waiting.
    let what = "semaphore of 4, 6 tasks";
    check_on_tasks(what, 6, permits as f64, reader, rt, 6, move |oracle| {
        let sem = sem.clone();
        async move {
            let permit = sem.acquire().await.unwrap();
            oracle
                .hold_across(permit, sleep(Duration::from_millis(5)))
                .await;
            sleep(Duration::from_millis(5)).await;
        }
    });
}
