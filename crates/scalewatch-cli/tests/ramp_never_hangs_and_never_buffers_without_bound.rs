//! `scalewatch ramp` run as a process against targets on loopback that misbehave: one that
//! accepts connections and never answers, one that answers with an endless body, and one
//! whose report route never answers or never ends. The process always ends within its
//! plan plus two timeouts (with generous slack), and its memory stays flat while the
//! endless bodies stream many times more than the bound.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use scalewatch_capacity::REPORT_PATH;
use scalewatch_test_support::{serve_axum, silent_listener};
use tokio_stream::StreamExt as _;

/// The most memory (peak resident set) the CLI may use in these tests.
const MEMORY_BOUND_KIB: u64 = 200 * 1024;
/// Slack on top of plan + 2 timeouts, for slow and noisy machines.
const SLACK: Duration = Duration::from_secs(10);

/// What a run of the binary left.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// The highest VmHWM/VmRSS read from /proc while it ran, in KiB.
    peak_kib: u64,
}

/// Runs the binary off the test's runtime (so the servers keep serving), sampling its
/// memory every 50 ms; kills it and fails if it is still running after `bound`.
async fn scalewatch(args: Vec<String>, bound: Duration) -> Run {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scalewatch"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                pipe.read_to_string(&mut text).unwrap();
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kib = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if let Ok(status) = std::fs::read_to_string(&status_file) {
                peak_kib = peak_kib.max(memory_kib(&status));
            }
            if started.elapsed() > bound {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!(
                    "scalewatch {args:?} still running after {bound:?}; stderr so far: {}",
                    stderr.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            code: status.code(),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
            elapsed: started.elapsed(),
            peak_kib,
        }
    })
    .await
    .unwrap()
}

/// The larger of VmHWM (peak) and VmRSS in a /proc/PID/status, in KiB.
fn memory_kib(status: &str) -> u64 {
    status
        .lines()
        .filter(|line| line.starts_with("VmHWM:") || line.starts_with("VmRSS:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// `scalewatch ramp http://{addr}/ --levels {levels} --duration {seconds}s --timeout
/// {timeout}s` and `extra`, bounded by [`bound`].
async fn ramp(addr: SocketAddr, levels: &str, seconds: u64, timeout: u64, extra: &[&str]) -> Run {
    let mut list = args(&[
        "ramp",
        &format!("http://{addr}/"),
        "--levels",
        levels,
        "--duration",
        &format!("{seconds}s"),
        "--timeout",
        &format!("{timeout}s"),
    ]);
    list.extend(args(extra));
    scalewatch(list, bound(seconds, timeout)).await
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Plan plus two timeouts plus slack.
fn bound(plan_seconds: u64, timeout_seconds: u64) -> Duration {
    Duration::from_secs(plan_seconds + 2 * timeout_seconds) + SLACK
}

/// A 200 answer whose body never ends (it stops after a minute, the test's own bound),
/// counting what it sent into `sent`.
fn endless(sent: Arc<AtomicU64>) -> Body {
    static CHUNK: [u8; 256 * 1024] = [b'x'; 256 * 1024];
    let until = Instant::now() + Duration::from_secs(60);
    let chunks = tokio_stream::iter(std::iter::repeat(Bytes::from_static(&CHUNK)))
        .take_while(move |_| Instant::now() < until)
        .map(move |chunk| {
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(chunk)
        });
    Body::from_stream(chunks)
}

/// Fails unless the CLI stayed under the memory bound while the server sent at least
/// twice as much: a client that kept the body would have gone over.
fn assert_flat_memory(run: &Run, sent: &AtomicU64) {
    let sent_kib = sent.load(Ordering::Relaxed) / 1024;
    assert!(run.peak_kib > 0, "no memory reading of the process");
    assert!(
        run.peak_kib < MEMORY_BOUND_KIB,
        "peak resident memory {} KiB (bound {MEMORY_BOUND_KIB} KiB)",
        run.peak_kib
    );
    assert!(
        sent_kib > 2 * MEMORY_BOUND_KIB,
        "the endless body only reached {sent_kib} KiB: too little to tell flat memory from buffering"
    );
    eprintln!(
        "peak memory {} KiB while the server sent {} MiB",
        run.peak_kib,
        sent_kib / 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_ends_the_ramp_within_its_timeouts() {
    let addr = silent_listener().await;
    // 4 steps of 1 s; with nothing answering, the first step fails and stops the ramp.
    for extra in [&[][..], &["--grpc", "/test.Silent/Call"]] {
        let run = ramp(addr, "1,2,3,4", 4, 1, extra).await;
        assert_eq!(run.code, Some(1), "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("timeout") || run.stderr.contains("no answer"),
            "{extra:?}: {}",
            run.stderr
        );
        assert!(run.elapsed < bound(4, 1), "{:?}", run.elapsed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_counted_not_kept() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = Router::new().route("/", get(move || async move { endless(counter.clone()) }));
    let addr = serve_axum(app).await;
    // Every answer streams until its 5 s timeout, well past the first 2 s step: no answer
    // completes, the ramp stops after the first step.
    let run = ramp(addr, "2,3,4,5", 8, 5, &["--no-server-report"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("timeout") || run.stderr.contains("no answer"),
        "{}",
        run.stderr
    );
    assert_flat_memory(&run, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_route_that_never_answers_is_noted_within_the_timeout() {
    let app = Router::new()
        .route("/", get(|| async { "ok\n" }))
        .route(REPORT_PATH, get(std::future::pending::<&'static str>));
    let addr = serve_axum(app).await;
    let out = tempfile::tempdir().unwrap();
    let run = ramp(
        addr,
        "1,2,3,4",
        4,
        2,
        &["--out", out.path().to_str().unwrap()],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("note: the target's own report could not be read"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no complete answer within 2s"),
        "{}",
        run.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["server"]["report"], serde_json::Value::Null);
    assert!(
        report["server"]["note"]
            .as_str()
            .unwrap()
            .contains(&format!("http://{addr}{REPORT_PATH}")),
        "{report}"
    );
    assert_eq!(report["steps"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_report_is_cut_at_the_timeout_with_flat_memory() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = Router::new().route("/", get(|| async { "ok\n" })).route(
        REPORT_PATH,
        get(move || async move { endless(counter.clone()) }),
    );
    let addr = serve_axum(app).await;
    let run = ramp(addr, "1,2,3,4", 4, 5, &[]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no complete answer within 5s"),
        "{}",
        run.stderr
    );
    assert_flat_memory(&run, &sent);
}
