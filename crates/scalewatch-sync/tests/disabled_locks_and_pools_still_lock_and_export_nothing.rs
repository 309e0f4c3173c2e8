//! `enabled(false)`: the locks and the pool keep their functional behaviour (mutual
//! exclusion, reader-writer exclusion, the pool's limit) and export nothing, where the same
//! workload with `enabled(true)` does export, so each check can fail.
#![allow(clippy::unwrap_used)] // tests may unwrap

use scalewatch_otlp::Telemetry;
use scalewatch_sync::catalog::{self, attr};
use scalewatch_sync::{LockCounts, LockMetrics, Mutex, RwLock};
use scalewatch_test_support::pipeline::{flush_and_read, grpc_pipeline};
use scalewatch_test_support::{FakeReceiver, MetricsSnapshot};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The exported metric names that start with `prefix`.
fn exported(m: &MetricsSnapshot, prefix: &str) -> Vec<String> {
    m.names()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

const PER_THREAD: u64 = 5_000;

/// Two threads increment by a read and a separate write, so a lock that let both in at
/// once would lose increments.
fn two_threads_increment(counter: &Arc<Mutex<u64>>) {
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut g = counter.lock().unwrap();
                    let seen = std::hint::black_box(*g);
                    *g = seen + 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), 2 * PER_THREAD);
}

/// A writer keeps two fields equal; two threads write and read, and no reader may see a
/// write half done.
fn two_threads_read_and_write(table: &Arc<RwLock<(u64, u64)>>) {
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let table = table.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    if i % 4 == 0 {
                        let mut g = table.write().unwrap();
                        g.0 += 1;
                        std::hint::black_box(&*g);
                        g.1 += 1;
                    } else {
                        let g = table.read().unwrap();
                        assert_eq!(g.0, g.1, "a read saw a write half done");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let g = table.read().unwrap();
    assert_eq!(*g, (PER_THREAD / 2, PER_THREAD / 2));
}

/// Holds `lock` while another thread waits for it, flushes mid-wait, then lets it in.
/// Returns the mid-wait snapshot and the waiter count read at that moment.
fn a_wait_while_flushing(
    lock: &Arc<Mutex<u64>>,
    locks: &LockMetrics,
    receiver: &FakeReceiver,
    telemetry: &Telemetry,
) -> (MetricsSnapshot, i64) {
    let held = lock.lock().unwrap();
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || *lock.lock().unwrap() += 1)
    };
    // The waiter shows up within the deadline when counted; when not, the deadline is
    // what gives it time to block.
    let deadline = Instant::now() + Duration::from_millis(300);
    while locks.counts("counter").unwrap().waiters < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waiters = locks.counts("counter").unwrap().waiters;
    let mid_wait = flush_and_read(receiver, telemetry);
    drop(held);
    waiter.join().unwrap();
    (mid_wait, waiters)
}

struct Run {
    locks: LockMetrics,
    mid_wait: MetricsSnapshot,
    waiters_mid_wait: i64,
    end: MetricsSnapshot,
}

fn run_locks(enabled: bool) -> Run {
    let (receiver, telemetry) = grpc_pipeline();
    let locks = LockMetrics::builder()
        .enabled(enabled)
        .hold_sample_every(1)
        .build(&telemetry.meter())
        .unwrap();
    assert_eq!(locks.is_enabled(), enabled);
    let counter = Arc::new(Mutex::new("counter", 0u64, &locks));
    let table = Arc::new(RwLock::new("table", (0u64, 0u64), &locks));
    two_threads_increment(&counter);
    two_threads_read_and_write(&table);
    let (mid_wait, waiters_mid_wait) =
        a_wait_while_flushing(&counter, &locks, &receiver, &telemetry);
    assert_eq!(*counter.lock().unwrap(), 2 * PER_THREAD + 1);
    let end = flush_and_read(&receiver, &telemetry);
    Run {
        locks,
        mid_wait,
        waiters_mid_wait,
        end,
    }
}

#[test]
fn locks_from_disabled_metrics_still_exclude_and_export_nothing() {
    let run = run_locks(false);
    assert_eq!(exported(&run.end, "scalewatch.lock."), Vec::<String>::new());
    assert_eq!(
        exported(&run.mid_wait, "scalewatch.lock."),
        Vec::<String>::new()
    );
    assert_eq!(run.waiters_mid_wait, 0, "a wait is not counted when off");
    for name in ["counter", "table"] {
        assert_eq!(
            run.locks.counts(name),
            Some(LockCounts::default()),
            "{name}"
        );
    }
    let utilization = run.locks.utilization_source("counter").unwrap();
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(utilization(), None);
    assert!(run.locks.utilization_source("no such lock").is_none());
}

#[test]
fn the_same_workload_with_metrics_enabled_exports_lock_series() {
    let run = run_locks(true);
    let names = exported(&run.end, "scalewatch.lock.");
    for metric in [
        catalog::LOCK_ACQUISITIONS.name,
        catalog::LOCK_WAIT_DURATION.name,
        catalog::LOCK_HOLD_DURATION.name,
        catalog::LOCK_WAITERS.name,
        catalog::LOCK_UTILIZATION.name,
    ] {
        assert!(names.iter().any(|n| n == metric), "{metric} in {names:?}");
    }
    assert_eq!(run.waiters_mid_wait, 1);
    assert_eq!(
        run.mid_wait
            .sum(catalog::LOCK_WAITERS.name, &[(attr::LOCK_NAME, "counter")]),
        1.0
    );
    // 2 threads × PER_THREAD, the check after them, the hold, the waiter, the last check.
    let c = run.locks.counts("counter").unwrap();
    assert_eq!(
        c.exclusive_uncontended + c.exclusive_contended,
        2 * PER_THREAD + 4
    );
    assert!(c.exclusive_contended >= 1);
    assert_eq!(
        run.end.sum(
            catalog::LOCK_ACQUISITIONS.name,
            &[(attr::LOCK_NAME, "counter")]
        ),
        (2 * PER_THREAD + 4) as f64
    );
    let t = run.locks.counts("table").unwrap();
    assert_eq!(
        t.exclusive_uncontended + t.exclusive_contended,
        2 * PER_THREAD / 4
    );
}

#[cfg(feature = "parking_lot")]
#[test]
fn parking_lot_locks_from_disabled_metrics_still_exclude() {
    let meter = opentelemetry::metrics::MeterProvider::meter(
        &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
        "test",
    );
    let locks = LockMetrics::builder().enabled(false).build(&meter).unwrap();
    let counter = Arc::new(scalewatch_sync::parking_lot::Mutex::new("pl", 0u64, &locks));
    let table = Arc::new(scalewatch_sync::parking_lot::RwLock::new(
        "pl-rw",
        (0u64, 0u64),
        &locks,
    ));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (counter, table) = (counter.clone(), table.clone());
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut g = counter.lock();
                    let seen = std::hint::black_box(*g);
                    *g = seen + 1;
                    drop(g);
                    if i % 4 == 0 {
                        let mut w = table.write();
                        w.0 += 1;
                        std::hint::black_box(&*w);
                        w.1 += 1;
                    } else {
                        let r = table.read();
                        assert_eq!(r.0, r.1);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(*counter.lock(), 2 * PER_THREAD);
    assert_eq!(*table.read(), (PER_THREAD / 2, PER_THREAD / 2));
    let held = counter.lock();
    assert!(counter.try_lock_for(Duration::from_millis(20)).is_none());
    drop(held);
    assert!(counter.try_lock().is_some());
    assert_eq!(locks.counts("pl"), Some(LockCounts::default()));
    assert_eq!(locks.counts("pl-rw"), Some(LockCounts::default()));
}

#[cfg(feature = "tokio")]
mod pool_and_async_locks {
    use super::*;
    use scalewatch_sync::{Pool, PoolClosed};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Eight tasks through a pool of 2, each holding its permit for a while: never more
    /// than 2 at once. Then the pool is full: `try_acquire` fails and `acquire` waits.
    async fn eight_tasks_through_two_permits(pool: &Pool) -> usize {
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, now, most) = (pool.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let _permit = pool.acquire().await.unwrap();
                    let inside = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(inside, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    struct PoolRun {
        most_at_once: usize,
        in_use_when_full: i64,
        pending_when_full: i64,
        utilization: Option<f64>,
        mid_wait: MetricsSnapshot,
        end: MetricsSnapshot,
    }

    fn run_pool(enabled: bool) -> PoolRun {
        let (receiver, telemetry) = grpc_pipeline();
        let pool = Pool::builder("connections", 2)
            .enabled(enabled)
            .build(&telemetry.meter())
            .unwrap();
        assert_eq!(pool.is_enabled(), enabled);
        let utilization = pool.utilization_source();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let most_at_once = eight_tasks_through_two_permits(&pool).await;
            let a = pool.acquire().await.unwrap();
            let b = pool.try_acquire().unwrap();
            assert!(pool.try_acquire().is_err(), "the limit holds");
            let waiting = {
                let pool = pool.clone();
                tokio::spawn(async move { pool.acquire().await.map(drop) })
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiting.is_finished(), "a third acquire waits");
            let (in_use_when_full, pending_when_full) = (pool.in_use(), pool.pending());
            let mid_wait = flush_and_read(&receiver, &telemetry);
            drop(a);
            waiting.await.unwrap().unwrap();
            drop(b);
            pool.close();
            assert_eq!(pool.acquire().await.err(), Some(PoolClosed("connections")));
            let utilization = utilization();
            PoolRun {
                most_at_once,
                in_use_when_full,
                pending_when_full,
                utilization,
                mid_wait,
                end: flush_and_read(&receiver, &telemetry),
            }
        })
    }

    #[test]
    fn a_disabled_pool_still_limits_and_exports_nothing() {
        let run = run_pool(false);
        assert_eq!(run.most_at_once, 2);
        assert_eq!((run.in_use_when_full, run.pending_when_full), (0, 0));
        assert_eq!(run.utilization, None);
        assert_eq!(
            exported(&run.mid_wait, "scalewatch.pool."),
            Vec::<String>::new()
        );
        assert_eq!(exported(&run.end, "scalewatch.pool."), Vec::<String>::new());
    }

    #[test]
    fn the_same_pool_workload_enabled_exports_pool_series() {
        let run = run_pool(true);
        assert_eq!(run.most_at_once, 2);
        assert_eq!((run.in_use_when_full, run.pending_when_full), (2, 1));
        assert!(run.utilization.is_some_and(|u| u > 0.0));
        let filter = [(attr::POOL_NAME, "connections")];
        assert_eq!(run.mid_wait.sum(catalog::POOL_USAGE.name, &filter), 2.0);
        assert_eq!(
            run.mid_wait
                .sum(catalog::POOL_PENDING_REQUESTS.name, &filter),
            1.0
        );
        assert_eq!(run.end.sum(catalog::POOL_LIMIT.name, &filter), 2.0);
        // 8 tasks, 2 while full, the waiter.
        assert_eq!(
            run.end
                .histogram_count(catalog::POOL_WAIT_TIME.name, &filter),
            11
        );
        assert_eq!(
            run.end
                .histogram_count(catalog::POOL_USE_TIME.name, &filter),
            11
        );
    }

    /// The tokio mutex and semaphore, off: exclusion and waits as tokio's, nothing counted,
    /// and a cancelled wait leaves nothing behind either.
    #[test]
    fn tokio_locks_from_disabled_metrics_still_exclude_and_export_nothing() {
        let (receiver, telemetry) = grpc_pipeline();
        let locks = LockMetrics::builder()
            .enabled(false)
            .build(&telemetry.meter())
            .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let counter = Arc::new(scalewatch_sync::tokio::Mutex::new("async", 0u64, &locks));
        let slots = Arc::new(scalewatch_sync::tokio::Semaphore::new("slots", 1, &locks));
        rt.block_on(async {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (counter, slots) = (counter.clone(), slots.clone());
                    tokio::spawn(async move {
                        for _ in 0..1_000u32 {
                            let mut g = counter.lock().await;
                            let seen = *g;
                            tokio::task::yield_now().await;
                            *g = seen + 1;
                            drop(g);
                            let _permit = slots.acquire().await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let held = counter.lock().await;
            let d = Duration::from_millis(20);
            assert!(tokio::time::timeout(d, counter.lock()).await.is_err());
            drop(held);
        });
        assert_eq!(*rt.block_on(counter.lock()), 2_000);
        assert_eq!(locks.counts("async"), Some(LockCounts::default()));
        assert_eq!(locks.counts("slots"), Some(LockCounts::default()));
        let m = flush_and_read(&receiver, &telemetry);
        assert_eq!(exported(&m, "scalewatch.lock."), Vec::<String>::new());
    }
}
