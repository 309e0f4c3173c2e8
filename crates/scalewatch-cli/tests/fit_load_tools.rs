//! `scalewatch fit` on what load-test tools that scale out write: oha's JSON output and
//! Locust's `--csv` stats history, each produced here by the real tool against a loopback
//! server with a planted serial section, one run per concurrency level; plus the format
//! errors. The tools are installed by `scripts/test` (oha from crates.io into
//! `target/tools`, Locust from PyPI into `target/locust-venv`); `SCALEWATCH_OHA` and
//! `SCALEWATCH_LOCUST` point elsewhere. A missing tool fails the test and says how to
//! install it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every request waits this long in parallel...
const PARALLEL: Duration = Duration::from_millis(8);
/// ...then this long holding one lock: throughput cannot pass 1 / SERIAL.
const SERIAL: Duration = Duration::from_millis(2);
const LEVELS: [u32; 4] = [1, 2, 4, 8];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(var: &str, default: &str, install: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(default));
    assert!(
        path.is_file(),
        "{} not found: {install} (scripts/test does), or set {var}",
        path.display()
    );
    path
}

/// A server whose requests share one lock: the Universal Scalability Law's contention. It
/// runs on the runtime returned, until that is dropped.
fn start_server() -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lock = Arc::new(tokio::sync::Mutex::new(0u64));
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let lock = lock.clone();
            async move {
                tokio::time::sleep(PARALLEL).await;
                let mut served = lock.lock().await;
                tokio::time::sleep(SERIAL).await;
                *served += 1;
                "ok\n"
            }
        }),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    (runtime, addr)
}

/// Runs a command to its end, within `limit`.
fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} did not finish within {limit:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn fit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .arg("fit")
        .args(args)
        .output()
        .unwrap()
}

fn fit_json(args: &[&str]) -> serde_json::Value {
    let output = fit(args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The arguments of `scalewatch fit`: `flags`, then the path of each of `files`.
fn with_files<'a>(flags: &[&'a str], files: &'a [PathBuf]) -> Vec<&'a str> {
    let paths = files.iter().map(|f| f.to_str().unwrap());
    flags.iter().copied().chain(paths).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

/// What every fit of the planted server must show: four points that rise while the lock
/// has room (4 users give well over one user's throughput), a curve through them, and no
/// capacity below what was measured.
fn assert_fit_follows_the_points(json: &serde_json::Value) {
    assert_eq!(json["points"], 4, "{json}");
    let measured: Vec<f64> = json["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["throughput"].as_f64().unwrap())
        .collect();
    assert!(measured[2] > 1.5 * measured[0], "{measured:?}");
    assert!(json["r_squared"].as_f64().unwrap() > 0.8, "{json}");
    let best = measured.iter().copied().fold(0.0, f64::max);
    if let Some(capacity) = json["peak_throughput"]
        .as_f64()
        .or(json["amdahl_ceiling"].as_f64())
    {
        assert!(
            capacity >= 0.9 * best,
            "capacity {capacity} against the best measured {best}: {json}"
        );
    }
}

#[test]
fn oha_json_runs_are_fitted_one_point_each() {
    let oha = tool(
        "SCALEWATCH_OHA",
        "target/tools/bin/oha",
        "install it with `cargo install oha --root target/tools`",
    );
    let (runtime, addr) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for c in LEVELS {
        let file = dir.path().join(format!("oha-c{c}.json"));
        let output = run_bounded(
            Command::new(&oha).args([
                "-c",
                &c.to_string(),
                "-z",
                "2s",
                "-w",
                "--no-tui",
                "--output-format",
                "json",
                &format!("http://{addr}/"),
            ]),
            Duration::from_secs(60),
        );
        std::fs::write(&file, &output.stdout).unwrap();
        files.push(file);
    }
    let json = fit_json(&with_files(&["--json"], &files));
    // Each point is what oha reported: its successful requests per second, and by
    // Little's law its requests per second times their mean latency.
    for ((file, c), m) in files
        .iter()
        .zip(LEVELS)
        .zip(json["measurements"].as_array().unwrap())
    {
        let reported: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let summary = &reported["summary"];
        let rps = summary["requestsPerSec"].as_f64().unwrap();
        let success = summary["successRate"].as_f64().unwrap();
        let average = summary["average"].as_f64().unwrap();
        assert!(
            close(m["throughput"].as_f64().unwrap(), rps * success),
            "{m}"
        );
        let n = m["concurrency"].as_f64().unwrap();
        assert!(close(n, rps * average), "{m}");
        // A closed loop of c connections keeps close to c requests in flight.
        assert!(
            n <= f64::from(c) * 1.01 && n >= f64::from(c) * 0.5,
            "-c {c}: N = {n}"
        );
        assert_eq!(m["file"], file.to_str().unwrap());
    }
    assert_fit_follows_the_points(&json);
    // Told the format, the same; and the human report lists the points and their origin.
    let output = fit(&with_files(&["--format", "oha"], &files));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("measurements (concurrency, throughput):"),
        "{text}"
    );
    assert!(text.contains("Little's law"), "{text}");
    assert!(text.contains("USL fit of 4 points"), "{text}");
    drop(runtime);
}

#[test]
fn locust_stats_histories_are_fitted_one_level_each() {
    let locust = tool(
        "SCALEWATCH_LOCUST",
        "target/locust-venv/bin/locust",
        "install it with `python3 -m venv target/locust-venv && target/locust-venv/bin/pip install locust`",
    );
    let (runtime, addr) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let locustfile = dir.path().join("locustfile.py");
    std::fs::File::create(&locustfile)
        .unwrap()
        .write_all(
            b"from locust import HttpUser, constant, task\n\n\
              class Shopper(HttpUser):\n    wait_time = constant(0)\n\n    @task\n    def get(self):\n        self.client.get(\"/\")\n",
        )
        .unwrap();
    let mut histories = Vec::new();
    let mut summaries = Vec::new();
    for users in LEVELS {
        let prefix = dir.path().join(format!("u{users}"));
        run_bounded(
            Command::new(&locust)
                .args(["-f", locustfile.to_str().unwrap(), "--headless"])
                .args(["-u", &users.to_string(), "-r", &users.to_string()])
                .args(["-t", "7s", "--only-summary", "--loglevel", "WARNING"])
                .args(["--host", &format!("http://{addr}")])
                .args(["--csv", prefix.to_str().unwrap()])
                .current_dir(dir.path()),
            Duration::from_secs(90),
        );
        histories.push(dir.path().join(format!("u{users}_stats_history.csv")));
        summaries.push(dir.path().join(format!("u{users}_stats.csv")));
    }
    let json = fit_json(&with_files(&["--json"], &histories));
    let measurements = json["measurements"].as_array().unwrap();
    assert_eq!(measurements.len(), 4, "{json}");
    for (((history, summary), users), m) in histories
        .iter()
        .zip(&summaries)
        .zip(LEVELS)
        .zip(measurements)
    {
        assert_eq!(m["concurrency"].as_f64().unwrap(), f64::from(users), "{m}");
        // The throughput is what the history reports over the rows at that user count:
        // successful requests between the first and the last, over the seconds between.
        let text = std::fs::read_to_string(history).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let rows: Vec<Vec<&str>> = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|r| r[col("Name")] == "Aggregated" && r[col("User Count")] == users.to_string())
            .collect();
        let ok = |r: &Vec<&str>| {
            r[col("Total Request Count")].parse::<f64>().unwrap()
                - r[col("Total Failure Count")].parse::<f64>().unwrap()
        };
        let seconds = |r: &Vec<&str>| r[col("Timestamp")].parse::<f64>().unwrap();
        let (first, last) = (rows.first().unwrap(), rows.last().unwrap());
        let want = (ok(last) - ok(first)) / (seconds(last) - seconds(first));
        let got = m["throughput"].as_f64().unwrap();
        assert!(close(got, want), "{users} users: {got} against {want}");
        // And it agrees with Locust's own summary of the run (requests over the whole run,
        // which the history's whole-second timestamps can only approach).
        let summary = std::fs::read_to_string(summary).unwrap();
        let aggregated = summary
            .lines()
            .find(|l| l.starts_with(",Aggregated,"))
            .unwrap();
        let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
        let rps_col = header.iter().position(|h| *h == "Requests/s").unwrap();
        let reported: f64 = aggregated.split(',').nth(rps_col).unwrap().parse().unwrap();
        assert!(
            (got / reported - 1.0).abs() < 0.35,
            "{users} users: {got}/s from the history, {reported}/s in Locust's summary"
        );
    }
    assert_fit_follows_the_points(&json);
    let args = with_files(&["--json", "--format", "locust"], &histories);
    assert_eq!(fit_json(&args)["measurements"], json["measurements"]);
    drop(runtime);
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn formats_that_cannot_be_told_apart_or_read_say_so_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let both = write(
        dir.path(),
        "both.csv",
        "Timestamp,User Count,Name,Total Request Count,concurrency,throughput\n1,1,Aggregated,1,1,1\n",
    );
    let output = fit(&[&both]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(&both), "{err}");
    assert!(err.contains("--format csv or --format locust"), "{err}");

    let unknown = write(dir.path(), "numbers.csv", "n,x\n1,2\n");
    let err = stderr(&fit(&[&unknown]));
    assert!(err.contains(&format!("{unknown}: not a format")), "{err}");
    assert!(err.contains("oha --output-format json"), "{err}");
    assert!(err.contains("stats_history"), "{err}");

    let summary = write(
        dir.path(),
        "run_stats.csv",
        "Type,Name,Request Count,Failure Count,Requests/s\n,Aggregated,10,0,5.0\n",
    );
    let err = stderr(&fit(&[&summary]));
    assert!(err.contains("PREFIX_stats_history.csv"), "{err}");

    let not_oha = write(dir.path(), "other.json", "{\"requests\": 3}");
    let output = fit(&[&not_oha]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains(&not_oha) && err.contains("`summary`"), "{err}");

    let truncated = write(
        dir.path(),
        "cut.json",
        "{\"summary\": {\"requestsPerSec\": 1",
    );
    let err = stderr(&fit(&[&truncated]));
    assert!(
        err.contains(&truncated) && err.contains("not JSON"),
        "{err}"
    );

    let csv = write(dir.path(), "m.csv", "concurrency,throughput\n1,10\n2,19\n");
    let err = stderr(&fit(&["--format", "oha", &csv]));
    assert!(err.contains(&csv) && err.contains("not JSON"), "{err}");
    let err = stderr(&fit(&["--format", "locust", &csv]));
    assert!(err.contains("no `Timestamp` column"), "{err}");
    let err = stderr(&fit(&[
        "--format",
        "locust",
        "--columns",
        "concurrency,latency",
        &csv,
    ]));
    assert!(err.contains("--columns applies to CSV files"), "{err}");

    // Several CSV files: their points together, errors naming the file.
    let more = write(
        dir.path(),
        "more.csv",
        "concurrency,throughput\n4,35\n8,60\n",
    );
    let json = fit_json(&["--json", &csv, &more]);
    assert_eq!(json["points"], 4);
    assert_eq!(json["measurements"][3]["file"], more.as_str());
    assert_eq!(json["measurements"][3]["line"], 3);
    let bad = write(dir.path(), "bad.csv", "concurrency,throughput\n4,fast\n");
    let err = stderr(&fit(&[&csv, &bad]));
    assert!(err.contains(&format!("{bad}: line 2: `fast`")), "{err}");
}
