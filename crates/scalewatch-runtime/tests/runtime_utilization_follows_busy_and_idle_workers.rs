//! The runtime tier reports a busy ratio near 1 while both workers of a 2-worker runtime
//! spin, and near 0 when they idle; workers, tasks and the global queue are reported too.

use scalewatch_core::catalog::attr;
use scalewatch_otlp::Protocol;
use scalewatch_runtime::{catalog, RuntimeTier};
use scalewatch_test_support::{telemetry_to, FakeReceiver};
use std::time::{Duration, Instant};

/// Busy loops in 1 ms slices for `total`, yielding between slices (bounded).
async fn spin(total: Duration) {
    let start = Instant::now();
    while start.elapsed() < total {
        let slice = Instant::now();
        while slice.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        tokio::task::yield_now().await;
    }
}

#[test]
fn runtime_utilization_follows_busy_and_idle_workers() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let provider = telemetry.meter_provider().unwrap().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tier = RuntimeTier::builder(rt.handle().clone())
        .name("main")
        .build(&telemetry.meter())
        .unwrap();
    let filter = [(attr::TIER_NAME, "main"), (attr::TIER_KIND, "runtime")];
    let utilization = |m: &scalewatch_test_support::MetricsSnapshot| {
        let points = m.matching(catalog::RUNTIME_UTILIZATION.name, &filter);
        assert_eq!(points.len(), 1, "{}", m.describe());
        points[0].as_f64()
    };

    // Busy: two spinning tasks for ~300 ms, one per worker.
    let busy: Vec<_> = (0..2)
        .map(|_| rt.spawn(spin(Duration::from_millis(300))))
        .collect();
    rt.block_on(async {
        for task in busy {
            task.await.unwrap();
        }
    });
    provider.force_flush().unwrap();
    let m = receiver.metrics();
    let busy = utilization(&m);
    assert!(busy >= 0.8, "busy ratio while spinning: {busy}");
    assert_eq!(m.sum(catalog::RUNTIME_WORKERS.name, &filter), 2.0);
    assert!(m.sum(catalog::RUNTIME_TASKS.name, &filter) <= 2.0);
    assert!(
        m.matching(catalog::RUNTIME_GLOBAL_QUEUE_DEPTH.name, &filter)
            .len()
            == 1
    );

    // Idle: nothing runs for ~300 ms.
    receiver.clear();
    std::thread::sleep(Duration::from_millis(300));
    provider.force_flush().unwrap();
    let idle = utilization(&receiver.metrics());
    eprintln!("busy ratio: spinning {busy:.3}, idle {idle:.3}");
    assert!(idle <= 0.2, "busy ratio while idle: {idle}");
    assert_eq!(tier.workers(), 2);
}
