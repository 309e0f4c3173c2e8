//! A job run that takes 30 ms of its 100 ms window reports a window utilization of
//! 0.3 ± 0.05 and one `scalewatch.job.duration`; cancelled and panicking runs are
//! recorded too.

use scalewatch_otlp::Protocol;
use scalewatch_runtime::catalog::{self, attr};
use scalewatch_runtime::Job;
use scalewatch_test_support::{telemetry_to, FakeReceiver};
use std::time::Duration;

#[test]
fn job_reports_its_window_utilization() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = telemetry_to(&receiver, Protocol::Grpc);
    let provider = telemetry.meter_provider().unwrap().clone();
    let job = Job::builder("hourly-export", Duration::from_millis(100))
        .build(&telemetry.meter())
        .unwrap();
    {
        let run = job.start();
        std::thread::sleep(Duration::from_millis(30));
        assert!(run.elapsed() >= Duration::from_millis(30));
    }
    provider.force_flush().unwrap();
    let m = receiver.metrics();
    let name = [(attr::JOB_NAME, "hourly-export")];
    let u = m.sum(catalog::JOB_WINDOW_UTILIZATION.name, &name);
    assert!((u - 0.3).abs() <= 0.05, "window utilization {u}");
    assert_eq!(m.histogram_count(catalog::JOB_DURATION.name, &name), 1);
    let seconds = m.sum(catalog::JOB_DURATION.name, &name);
    eprintln!("window utilization {u:.4}, duration {seconds:.4} s");
    assert!((0.03..0.08).contains(&seconds), "{seconds}");

    // A panicking run and a cancelled async run: recorded, duration only.
    let j = job.clone();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        j.run(|| panic!("the batch failed"))
    }));
    assert!(panicked.is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let cancelled = tokio::time::timeout(
            Duration::from_millis(5),
            job.instrument(std::future::pending::<()>()),
        )
        .await;
        assert!(cancelled.is_err());
    });
    assert_eq!(job.tier().in_flight(), 0);
    provider.force_flush().unwrap();
    let m = receiver.metrics();
    assert_eq!(m.histogram_count(catalog::JOB_DURATION.name, &name), 3);
    let tier = [
        (scalewatch_core::catalog::attr::TIER_NAME, "hourly-export"),
        (scalewatch_core::catalog::attr::TIER_KIND, "job"),
    ];
    assert_eq!(
        m.sum(scalewatch_core::catalog::TIER_CONCURRENCY.name, &tier),
        0.0
    );
}
