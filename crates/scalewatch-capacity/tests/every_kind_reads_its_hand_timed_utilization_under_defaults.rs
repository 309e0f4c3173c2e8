//! Every kind of resource the capacity model ranks reads, in every window of 0.5 s, within
//! 5 percentage points of what the test itself timed, with every setting at its default:
//! pools, tiers with a limit, queues, keyspace shards with a declared capacity and the
//! runtime. (Locks and semaphores have their own test in `scalewatch-sync`.)
//!
//! The ground truth is independent of the code under test: each workload stamps with
//! `Instant` when a unit of capacity starts and stops being used (a pool member held, a
//! request in flight, an item waiting in the queue, the runtime's worker blocked), or
//! counts its operations itself; a window's truth is the stamped busy time inside it over
//! its length times the capacity. Windows are closed by `CapacityModel::sample`, as a
//! service's sampler would, and the time of each close is stamped around the call.
#![allow(clippy::unwrap_used)]

use opentelemetry::metrics::{Meter, MeterProvider as _};
use scalewatch_capacity::{CapacityModel, ResourceKind};
use scalewatch_test_support::{Close, RuntimeThread, Schedule};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(500);
const WINDOWS: usize = 4;
/// Percentage points a window may be off by.
const TOLERANCE: f64 = 0.05;

/// Busy intervals stamped by a workload: each from when a unit of capacity was taken to
/// when it was given back.
#[derive(Default, Clone)]
struct Stamps(Arc<Mutex<Vec<(Instant, Instant)>>>);

impl Stamps {
    fn add(&self, from: Instant, to: Instant) {
        self.0.lock().unwrap().push((from, to));
    }

    /// Busy time inside `[from, to]`, counting a unit still in use at `to` (`open`) up
    /// to `to`.
    fn busy(&self, from: Instant, to: Instant, open: &[Instant]) -> f64 {
        let closed = self.0.lock().unwrap().clone();
        closed
            .into_iter()
            .chain(open.iter().map(|&start| (start, to)))
            .map(|(a, b)| {
                let (a, b) = (a.max(from), b.min(to));
                b.saturating_duration_since(a).as_secs_f64()
            })
            .sum()
    }
}

/// Units in use right now, by the instant each was taken: so that a window's truth
/// counts work still under way at its close.
#[derive(Default, Clone)]
struct Open(Arc<Mutex<Vec<(u64, Instant)>>>);

impl Open {
    fn start(&self, id: u64) {
        self.0.lock().unwrap().push((id, Instant::now()));
    }

    fn stop(&self, id: u64, stamps: &Stamps) {
        let mut open = self.0.lock().unwrap();
        let i = open.iter().position(|(o, _)| *o == id).unwrap();
        let (_, started) = open.swap_remove(i);
        stamps.add(started, Instant::now());
    }

    /// Forgets a unit that was not taken after all.
    fn cancel(&self, id: u64) {
        self.0.lock().unwrap().retain(|(o, _)| *o != id);
    }

    fn snapshot(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(_, at)| *at).collect()
    }
}

/// What the test knows of one resource: its busy time over a window, as a share of its
/// capacity.
trait Truth: Send + Sync {
    fn utilization(&self, from: Instant, to: Instant) -> f64;
}

/// Stamped busy intervals over `units` of capacity.
struct Timed {
    stamps: Stamps,
    open: Open,
    units: f64,
}

impl Timed {
    fn new(units: usize) -> Arc<Self> {
        Arc::new(Self {
            stamps: Stamps::default(),
            open: Open::default(),
            units: units as f64,
        })
    }

    /// Runs `work` as one unit of use stamped from its start to its end.
    async fn span<T>(&self, id: u64, work: impl std::future::Future<Output = T>) -> T {
        self.open.start(id);
        let out = work.await;
        self.open.stop(id, &self.stamps);
        out
    }
}

impl Truth for Timed {
    fn utilization(&self, from: Instant, to: Instant) -> f64 {
        // Read the open units at the close, before the closed ones, so none is missed.
        let open = self.open.snapshot();
        let busy = self.stamps.busy(from, to, &open);
        busy / (to - from).as_secs_f64() / self.units
    }
}

/// Operations counted by the workload, over what one shard can take per second.
struct Counted {
    operations: AtomicU64,
    last: Mutex<u64>,
    capacity: f64,
}

impl Truth for Counted {
    fn utilization(&self, from: Instant, to: Instant) -> f64 {
        let now = self.operations.load(Relaxed);
        let then = std::mem::replace(&mut *self.last.lock().unwrap(), now);
        (now - then) as f64 / (to - from).as_secs_f64() / self.capacity
    }
}

/// A meter on a provider of its own (kept alive by the caller), a model reading it, and
/// the flag that stops the workload.
fn setup() -> (
    opentelemetry_sdk::metrics::SdkMeterProvider,
    Meter,
    CapacityModel,
    Arc<AtomicBool>,
) {
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let meter = provider.meter("truth");
    let model = CapacityModel::new(&meter);
    (provider, meter, model, Arc::default())
}

/// A little pseudo-random think time (so that use does not line up with the windows):
/// `0..max_ms` milliseconds from a per-worker sequence.
fn think(state: &mut u64, max_ms: u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_micros(*state % (max_ms * 1000))
}

/// Closes `WINDOWS` windows of 0.5 s with `model.sample()` while the workload runs, and
/// checks the resource's reading in each against `truth`. Returns the readings.
async fn windows(
    model: &CapacityModel,
    kind: ResourceKind,
    name: &str,
    truth: &dyn Truth,
) -> Vec<(f64, f64)> {
    let mut from = Instant::now();
    let mut seen = Vec::new();
    Schedule::new(WINDOW, WINDOWS)
        .run(|close| match close {
            // The first window is the workload's ramp-up: dropped, as a sampler's first is.
            Close::Transition => {
                model.sample();
                from = Instant::now();
                truth.utilization(from - Duration::from_nanos(1), from);
            }
            Close::Window(_) => {
                let before = Instant::now();
                model.sample();
                let after = Instant::now();
                let to = before + (after - before) / 2;
                let expected = truth.utilization(from, to);
                let report = model.report();
                let measured = report
                    .resources
                    .iter()
                    .find(|r| r.kind == kind && r.name == name)
                    .unwrap_or_else(|| panic!("{kind} `{name}` has no reading: {report}"))
                    .utilization;
                seen.push((measured, expected));
                from = to;
            }
        })
        .await;
    let pairs: Vec<String> = seen.iter().map(|(m, e)| format!("{m:.3}/{e:.3}")).collect();
    eprintln!("{kind} `{name}`, measured/hand-timed: {}", pairs.join(" "));
    for &(measured, expected) in &seen {
        assert!(
            (measured - expected).abs() <= TOLERANCE,
            "{kind} `{name}`: measured against hand-timed per window {seen:?}"
        );
    }
    assert!(
        seen.iter().all(|&(_, e)| e >= 0.1),
        "the workload keeps `{name}` at least 10% busy: {seen:?}"
    );
    seen
}

/// Runs `worker(i, stop)` on `n` tasks until the windows are read; bounded by a deadline.
fn spawn_workers<F, Fut>(
    n: usize,
    stop: &Arc<AtomicBool>,
    worker: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    (0..n as u64)
        .map(|i| {
            let work = worker(i);
            let stop = stop.clone();
            tokio::spawn(async move {
                let deadline = tokio::time::sleep(Duration::from_secs(30));
                tokio::select! {
                    () = work => {}
                    () = deadline => {}
                    () = async { while !stop.load(Relaxed) { tokio::time::sleep(Duration::from_millis(5)).await } } => {}
                }
            })
        })
        .collect()
}

async fn stop_all(stop: &AtomicBool, tasks: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_reads_the_share_of_its_members_held() {
    let (_provider, meter, model, stop) = setup();
    let pool = scalewatch_sync::Pool::builder("db", 4)
        .build(&meter)
        .unwrap();
    model.register(&pool).unwrap();
    let truth = Timed::new(4);
    // Six users on four members: held 2-10 ms, then 0-12 ms of think time.
    let tasks = spawn_workers(6, &stop, |i| {
        let (pool, truth) = (pool.clone(), truth.clone());
        async move {
            let mut seed = 0x9e37_79b9 + i;
            for n in 0.. {
                let member = pool.acquire().await.unwrap();
                truth
                    .span(
                        i << 32 | n,
                        tokio::time::sleep(Duration::from_millis(2) + think(&mut seed, 8)),
                    )
                    .await;
                drop(member);
                tokio::time::sleep(think(&mut seed, 12)).await;
            }
        }
    });
    windows(&model, ResourceKind::Pool, "db", &*truth).await;
    stop_all(&stop, tasks).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_with_a_limit_reads_its_concurrency_over_the_limit() {
    let (_provider, meter, model, stop) = setup();
    let tier = scalewatch_core::Tier::builder("work", scalewatch_core::TierKind::Custom)
        .limit(8)
        .build(&meter)
        .unwrap();
    model.watch(&tier).unwrap();
    let truth = Timed::new(8);
    let tasks = spawn_workers(6, &stop, |i| {
        let (tier, truth) = (tier.clone(), truth.clone());
        async move {
            let mut seed = 0x5851_f42d + i;
            for n in 0.. {
                let work = tokio::time::sleep(Duration::from_millis(1) + think(&mut seed, 10));
                let _ = tier.instrument(truth.span(i << 32 | n, work)).await;
                tokio::time::sleep(think(&mut seed, 8)).await;
            }
        }
    });
    windows(&model, ResourceKind::Tier, "work", &*truth).await;
    stop_all(&stop, tasks).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_reads_its_time_averaged_depth_over_its_capacity() {
    let (_provider, meter, model, stop) = setup();
    let (tx, mut rx) = scalewatch_state::QueueBuilder::new("jobs")
        .channel::<u64>(8, &meter)
        .unwrap();
    model.register(&tx).unwrap();
    let truth = Timed::new(8);
    // Bursts of 6 items every 0-30 ms; one consumer takes 1-3 ms an item, so the queue
    // fills and drains without staying full (a full queue's senders wait outside it).
    let producer = {
        let (tx, truth) = (tx.clone(), truth.clone());
        spawn_workers(1, &stop, move |_| {
            let (tx, truth) = (tx.clone(), truth.clone());
            async move {
                let mut seed = 0x2545_f491;
                let mut id = 0u64;
                loop {
                    for _ in 0..6 {
                        id += 1;
                        // Stamped as it goes in (before the consumer can see it); a send
                        // that finds no room is not in the queue, and retried.
                        loop {
                            truth.open.start(id);
                            match tx.try_send(id) {
                                Ok(()) => break,
                                Err(_) => truth.open.cancel(id),
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                    tokio::time::sleep(think(&mut seed, 30)).await;
                }
            }
        })
    };
    let consumer = {
        let truth = truth.clone();
        tokio::spawn(async move {
            let mut seed = 0x1234_5678;
            while let Some(id) = rx.recv().await {
                truth.open.stop(id, &truth.stamps);
                std::thread::sleep(Duration::from_millis(1) + think(&mut seed, 2));
            }
        })
    };
    windows(&model, ResourceKind::Queue, "jobs", &*truth).await;
    stop_all(&stop, producer).await;
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_reads_its_operations_over_its_declared_capacity() {
    let (_provider, meter, model, stop) = setup();
    let keyspace = scalewatch_state::Keyspace::builder("sessions")
        .shards(4)
        .shard_capacity(8_000.0)
        .build(&meter)
        .unwrap();
    model.register(&keyspace).unwrap();
    let truth = Arc::new(Counted {
        operations: AtomicU64::new(0),
        last: Mutex::new(0),
        capacity: 8_000.0,
    });
    // Two users, each a burst of 1-20 operations on shard 2 every 0-6 ms (and the timer's millisecond): a few thousand a second.
    let tasks = spawn_workers(2, &stop, |i| {
        let (keyspace, truth) = (keyspace.clone(), truth.clone());
        async move {
            let mut seed = 0xdead_beef + i;
            loop {
                let burst = 1 + think(&mut seed, 20).as_millis() as u64;
                for key in 0..burst {
                    keyspace.record_in_shard(scalewatch_state::Operation::Read, &key, 2);
                    truth.operations.fetch_add(1, Relaxed);
                }
                tokio::time::sleep(think(&mut seed, 6)).await;
            }
        }
    });
    windows(&model, ResourceKind::Shard, "sessions/2", &*truth).await;
    stop_all(&stop, tasks).await
}

#[test]
fn the_runtime_reads_its_worker_busy_ratio() {
    let (_provider, meter, model, stop) = setup();
    // The service's runtime: one worker, blocked 1-4 ms at a time by its tasks.
    let truth = Timed::new(1);
    let server = {
        let (truth, stop) = (truth.clone(), stop.clone());
        RuntimeThread::start(move || async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut seed = 0x0bad_cafe;
            let mut n = 0;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                n += 1;
                truth.open.start(n);
                std::thread::sleep(Duration::from_millis(1) + think(&mut seed, 3));
                truth.open.stop(n, &truth.stamps);
                tokio::time::sleep(think(&mut seed, 6)).await;
            }
        })
    };
    let tier = scalewatch_runtime::RuntimeTier::builder(server.handle().clone())
        .name("server")
        .build(&meter)
        .unwrap();
    model.register(&tier).unwrap();
    // The model's own clock: a runtime of its own, so that sampling is not on the
    // measured worker.
    let sampler = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sampler.block_on(windows(&model, ResourceKind::Runtime, "server", &*truth));
    stop.store(true, Relaxed);
    server.stop();
}
