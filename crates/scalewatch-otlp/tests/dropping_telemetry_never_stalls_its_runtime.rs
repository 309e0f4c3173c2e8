//! `Telemetry` dropped on a tokio runtime, with the collector black-holed (it accepts the
//! export and never answers), returns at once: another task on the same runtime thread
//! keeps ticking while the drop's flush is still pending on its own thread. Explicit
//! `shutdown()` still waits for its flush (and reports the timeout); a drop outside any
//! runtime still flushes before it returns; a pipeline that fails to build on a runtime
//! reports its error instead of panicking as it drops its exporter runtime.
#![allow(clippy::unwrap_used)]

use opentelemetry::metrics::MeterProvider as _;
use scalewatch_otlp::{InitError, Protocol, ShutdownError, Telemetry, TelemetryBuilder};
use scalewatch_test_support::{FakeReceiver, Fault, OtlpListener as _, Signal};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough that a drop which waited for it could not hide in the margins below.
const DEADLINE: Duration = Duration::from_secs(5);

fn telemetry_to(receiver: &FakeReceiver, deadline: Duration) -> Telemetry {
    let telemetry = TelemetryBuilder::from_vars([])
        .endpoint(receiver.grpc_endpoint())
        .protocol(Protocol::Grpc)
        .export_interval(Duration::from_secs(3600))
        .export_timeout(Duration::from_secs(30))
        .shutdown_timeout(deadline)
        .build()
        .unwrap();
    // Something to flush.
    telemetry
        .meter_provider()
        .unwrap()
        .meter("drop-test")
        .u64_counter("drop.test.work")
        .build()
        .add(3, &[]);
    telemetry
}

/// Drops a pipeline whose collector never answers inside `runtime`, on the thread that
/// also runs a ticking task, and checks the ticker keeps going while the flush is pending.
fn drop_on(runtime: &tokio::runtime::Runtime, flavor: &str) {
    let receiver = FakeReceiver::start_blocking();
    receiver.set_fault(Fault::BlackHole);
    let telemetry = telemetry_to(&receiver, DEADLINE);
    runtime.block_on(async {
        // Both on the runtime's worker (for a multi-thread runtime of one worker, the
        // spawned tasks share its one thread).
        let ticks = Arc::new(AtomicU64::new(0));
        let counted = ticks.clone();
        let ticker = tokio::spawn(async move {
            for _ in 0..4_000 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counted.fetch_add(1, Relaxed);
            }
        });
        let dropper = tokio::spawn(async move {
            let started = Instant::now();
            drop(telemetry);
            (started, started.elapsed())
        });
        let (dropped_at, drop_took) = dropper.await.unwrap();
        assert!(
            drop_took < DEADLINE / 2,
            "{flavor}: the drop blocked its thread for {drop_took:?}"
        );
        let at_drop = ticks.load(Relaxed);
        // The flush reaches the black hole and hangs there...
        for _ in 0..300 {
            if receiver.export_count(Signal::Metrics) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            receiver.export_count(Signal::Metrics) > 0,
            "{flavor}: the drop's flush was sent"
        );
        // ...while the ticker, on the same thread, keeps counting.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let progressed = ticks.load(Relaxed) - at_drop;
        assert!(
            dropped_at.elapsed() < DEADLINE,
            "{flavor}: checked while the flush is still pending"
        );
        assert!(
            progressed >= 20,
            "{flavor}: the ticker made {progressed} ticks in the second after the drop"
        );
        assert_eq!(
            receiver.metrics().sum("drop.test.work", &[]),
            0.0,
            "{flavor}: the black hole accepted nothing"
        );
        ticker.abort();
    });
    // Answers the pending export; the detached flush then ends on its own.
    drop(receiver);
}

#[test]
fn dropping_telemetry_on_a_current_thread_runtime_never_stalls_it() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    drop_on(&runtime, "current_thread");
}

#[test]
fn dropping_telemetry_on_a_multi_thread_worker_never_stalls_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    drop_on(&runtime, "multi_thread");
}

#[test]
fn explicit_shutdown_still_waits_for_its_flush() {
    let receiver = FakeReceiver::start_blocking();
    receiver.set_fault(Fault::BlackHole);
    let deadline = Duration::from_millis(500);
    let telemetry = telemetry_to(&receiver, deadline);
    let started = Instant::now();
    let result = telemetry.shutdown();
    let took = started.elapsed();
    assert!(
        matches!(result, Err(ShutdownError::Timeout(d)) if d == deadline),
        "{result:?}"
    );
    assert!(took >= deadline, "it waited for the flush: {took:?}");
    assert!(took < deadline + Duration::from_secs(5), "{took:?}");
}

#[test]
fn dropping_telemetry_outside_a_runtime_flushes_before_returning() {
    let receiver = FakeReceiver::start_blocking();
    let telemetry = telemetry_to(&receiver, DEADLINE);
    drop(telemetry);
    // Nothing to wait for: the drop waited for the flush.
    assert_eq!(receiver.metrics().sum("drop.test.work", &[]), 3.0);
}

#[test]
fn a_pipeline_that_fails_to_build_on_a_runtime_reports_its_error() {
    let receiver = FakeReceiver::start_blocking();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The exporter runtime is started before the headers are checked; building fails
    // after it, and drops it, on this async context.
    let result = runtime.block_on(async {
        TelemetryBuilder::from_vars([])
            .endpoint(receiver.grpc_endpoint())
            .protocol(Protocol::Grpc)
            .header("bad header", "value")
            .build()
    });
    match result {
        Err(InitError::Header(name)) => assert_eq!(name, "bad header"),
        other => panic!("expected the header error, got {other:?}"),
    }
}
