//! `scalewatch demo` in its short mode, run as a process: the shop's planted global lock
//! comes out as the first bottleneck, the curve has a finite peak inside the ramp, and the
//! files of `--out` hold what the report says (the SVG parses as XML and carries every
//! measured point).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

/// 12 steps of 2 s: the short mode CI runs.
const DURATION: &str = "24s";

#[test]
fn demo_names_the_planted_lock_first_and_finds_a_finite_peak() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .args(["demo", "--duration", DURATION, "--out"])
        .arg(out.path())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");

    // Progress: one line per step on a non-terminal stderr.
    assert_eq!(stderr.matches("step ").count(), 12, "{stderr}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    for step in steps {
        assert_eq!(step["failed"], 0, "{step}");
        assert!(step["ok"].as_u64().unwrap() > 0, "{step}");
    }

    // A finite peak inside the ramp, from the client's curve.
    let peak = &report["fit"]["peak"];
    let n_star = peak["concurrency"].as_f64().unwrap();
    let x_star = peak["throughput"].as_f64().unwrap();
    assert!(
        n_star.is_finite() && n_star > 1.0 && n_star < 64.0,
        "{peak}"
    );
    assert!(x_star.is_finite() && x_star > 0.0, "{peak}");
    let last = steps.last().unwrap()["throughput"].as_f64().unwrap();
    assert!(
        last < x_star,
        "throughput falls past the peak: {last} vs {x_star}"
    );

    // Inside the service: the lock is the first bottleneck, ranked first and saturated.
    let server = &report["server"]["report"];
    assert_eq!(server["first_bottleneck"]["name"], "inventory", "{server}");
    assert_eq!(server["first_bottleneck"]["kind"], "lock");
    let resources = server["resources"].as_array().unwrap();
    assert_eq!(resources[0]["name"], "inventory");
    assert_eq!(resources[0]["saturated"], true);
    // The planted hot shard stands out among the catalog's shards.
    let mut shards: Vec<f64> = resources
        .iter()
        .filter(|r| r["kind"] == "shard")
        .map(|r| r["utilization"].as_f64().unwrap())
        .collect();
    assert_eq!(shards.len(), 16);
    shards.sort_by(f64::total_cmp);
    let (hottest, median) = (shards[15], shards[8]);
    assert!(hottest > 1.5 * median, "hottest {hottest}, median {median}");
    assert!(stdout.contains("Fix first: lock `inventory`"), "{stdout}");

    // The picture: well-formed XML with one point per step, at the measured figures.
    let svg = std::fs::read_to_string(out.path().join("curve.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let points: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("measured-throughput"))
        .collect();
    assert_eq!(points.len(), steps.len());
    for (point, step) in points.iter().zip(steps) {
        assert_eq!(
            point.attribute("data-users").unwrap(),
            step["users"].to_string()
        );
        let drawn: f64 = point.attribute("data-throughput").unwrap().parse().unwrap();
        assert!((drawn - step["throughput"].as_f64().unwrap()).abs() < 1e-3);
    }
    for class in [
        "fit-throughput",
        "fit-latency",
        "peak",
        "measured-latency-p99",
    ] {
        assert!(
            doc.descendants()
                .any(|n| n.attribute("class") == Some(class)),
            "no {class} in the SVG"
        );
    }
    let labels: String = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("|");
    for label in [
        "throughput (requests/s)",
        "latency (ms)",
        "concurrency N",
        "USL fit",
        "N* =",
    ] {
        assert!(labels.contains(label), "no `{label}` in {labels}");
    }

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("](curve.svg)"));
    assert!(md.contains("`inventory`"));
}
