//! `scalewatch fit` run as a process on temporary files: good input gives
//! the library's fit, bad input a non-zero exit and a message naming the line.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use scalewatch_usl::{fit, SPECSDM91};

fn csv_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

fn scalewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .args(args)
        .output()
        .unwrap()
}

fn fit_file(contents: &str, extra: &[&str]) -> Output {
    let file = csv_file(contents);
    let mut args = vec!["fit"];
    args.extend_from_slice(extra);
    args.push(file.path().to_str().unwrap());
    scalewatch(&args)
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "exactly one JSON object: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

/// SPEC SDM91 as CSV: `header`, then `row(i, N, X)` for each of its points.
fn spec_rows(header: &str, row: impl Fn(usize, f64, f64) -> String) -> String {
    let mut csv = format!("{header}\n");
    for (i, p) in SPECSDM91.iter().enumerate() {
        csv += &row(i, p.concurrency, p.throughput);
        csv.push('\n');
    }
    csv
}

fn spec_csv() -> String {
    spec_rows("concurrency,throughput", |_, n, x| format!("{n},{x}"))
}

/// Whether `got` is within a relative 1e-6 of `want`.
fn within_a_millionth(got: &serde_json::Value, want: f64) -> bool {
    (got.as_f64().unwrap() / want - 1.0).abs() < 1e-6
}

/// Runs `scalewatch fit` on `csv` with `args`, checks that it fails as an input error
/// (exit code 2) and returns its stderr.
fn input_error(csv: &str, args: &[&str]) -> String {
    let output = fit_file(csv, args);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    stderr_of(&output)
}

fn library_fit() -> scalewatch_usl::Fit {
    fit(&SPECSDM91).unwrap()
}

#[test]
fn json_output_matches_the_library_fit() {
    let json = json_of(&fit_file(&spec_csv(), &["--json"]));
    let want = library_fit();
    assert!(close(json["sigma"].as_f64().unwrap(), want.model.sigma));
    assert!(close(json["kappa"].as_f64().unwrap(), want.model.kappa));
    assert!(close(json["lambda"].as_f64().unwrap(), want.model.lambda));
    assert!(close(json["r_squared"].as_f64().unwrap(), want.r_squared));
    assert!(close(
        json["peak_concurrency"].as_f64().unwrap(),
        want.peak_concurrency().unwrap()
    ));
    assert!(close(
        json["peak_throughput"].as_f64().unwrap(),
        want.peak_throughput().unwrap()
    ));
    assert!(json["amdahl_ceiling"].is_null());
    assert_eq!(json["limit"], "coherency");
    let ci = &json["confidence_intervals"];
    for (name, interval) in [
        ("sigma", want.confidence_intervals.sigma),
        ("kappa", want.confidence_intervals.kappa),
        ("lambda", want.confidence_intervals.lambda),
    ] {
        assert!(
            close(ci[name][0].as_f64().unwrap(), interval.lower),
            "{name}"
        );
        assert!(
            close(ci[name][1].as_f64().unwrap(), interval.upper),
            "{name}"
        );
    }
    assert_eq!(json["prediction"]["concurrency"], 2160.0);
}

#[test]
fn human_output_summarises_the_fit() {
    let output = fit_file(&spec_csv(), &[]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "R² = 0.9896",
        "σ (contention)",
        "0.02773",
        "1.044e-4",
        "95% CI",
        "N* = 96.52",
        "X(2160)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn no_peak_gives_null_and_an_amdahl_ceiling() {
    // The `raytracer` data set of R `usl`: κ ends at 0.
    let csv = "concurrency,throughput\n1,20\n4,78\n8,130\n12,170\n16,190\n20,200\n24,210\n28,230\n32,260\n48,280\n64,310\n";
    let json = json_of(&fit_file(csv, &["--json"]));
    assert!(json["peak_concurrency"].is_null());
    assert!(json["peak_throughput"].is_null());
    assert_eq!(json["limit"], "contention");
    assert!((json["amdahl_ceiling"].as_f64().unwrap() - 378.2).abs() < 0.1);
    let text = String::from_utf8(fit_file(csv, &[]).stdout).unwrap();
    assert!(text.contains("Amdahl ceiling"), "{text}");
}

#[test]
fn stdin_is_read_for_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .args(["fit", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec_csv().as_bytes())
        .unwrap();
    let json = json_of(&child.wait_with_output().unwrap());
    assert!(close(
        json["sigma"].as_f64().unwrap(),
        library_fit().model.sigma
    ));
}

#[test]
fn extra_columns_any_order_spaces_and_comments_are_fine() {
    let csv = spec_rows("# SPEC SDM91\nrun, throughput ,concurrency", |i, n, x| {
        format!("r{i}, {x} , {n}")
    });
    let json = json_of(&fit_file(&csv, &["--json"]));
    assert!(close(
        json["lambda"].as_f64().unwrap(),
        library_fit().model.lambda
    ));
}

#[test]
fn concurrency_or_throughput_with_latency_convert_through_littles_law() {
    // Each SPEC row given as N and R = N / X, or as X and R (N = X · R): the fit must
    // equal the direct one.
    let want = library_fit();
    for (columns, csv, checked) in [
        (
            "concurrency,latency",
            spec_rows("concurrency,latency", |_, n, x| format!("{n},{}", n / x)),
            [("sigma", want.model.sigma), ("kappa", want.model.kappa)],
        ),
        (
            "throughput,latency",
            spec_rows("latency,throughput", |_, n, x| format!("{},{x}", n / x)),
            [("sigma", want.model.sigma), ("lambda", want.model.lambda)],
        ),
    ] {
        let json = json_of(&fit_file(&csv, &["--json", "--columns", columns]));
        for (coefficient, value) in checked {
            assert!(
                within_a_millionth(&json[coefficient], value),
                "{columns}: {coefficient}"
            );
        }
    }
}

#[test]
fn missing_column_is_an_input_error_on_line_1() {
    let err = input_error("concurrency,rate\n1,2\n", &[]);
    assert!(
        err.contains("line 1: no column named `throughput`"),
        "{err}"
    );
    assert!(err.contains("found: concurrency, rate"), "{err}");

    let output = fit_file("# measured 2024-05-01\nconcurrency,rate\n1,2\n", &[]);
    assert!(stderr_of(&output).contains("line 2: no column named `throughput`"));

    assert!(
        input_error(&spec_csv(), &["--columns", "concurrency,latency"])
            .contains("no column named `latency`")
    );
}

#[test]
fn non_number_names_its_line_and_column() {
    let err = input_error("concurrency,throughput\n1,10\n2,19\n4,fast\n8,60\n", &[]);
    assert!(
        err.contains("line 4: `fast` in column `throughput` is not a number"),
        "{err}"
    );
}

#[test]
fn empty_field_names_its_line() {
    assert!(input_error("concurrency,throughput\n1,10\n,19\n", &[])
        .contains("line 3: `` in column `concurrency` is not a number"));
}

#[test]
fn negative_zero_and_non_finite_values_name_their_line() {
    for (bad, column) in [
        ("-4,35", "concurrency"),
        ("4,0", "throughput"),
        ("4,inf", "throughput"),
        ("NaN,3", "concurrency"),
    ] {
        let csv = format!("concurrency,throughput\n1,10\n# comment\n\n{bad}\n8,60\n");
        let output = fit_file(&csv, &[]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let err = stderr_of(&output);
        // The comment and blank lines 3 and 4 are skipped but still counted.
        assert!(
            err.contains(&format!(
                "line 5: {column} must be a positive finite number"
            )),
            "{err}"
        );
    }
    assert!(input_error(
        "concurrency,latency\n1,0\n",
        &["--columns", "concurrency,latency"],
    )
    .contains("line 2: latency must be a positive finite number"));
}

#[test]
fn too_few_points_is_an_input_error() {
    let err = input_error("concurrency,throughput\n1,10\n2,19\n2,18\n", &[]);
    assert!(
        err.contains("cannot fit the universal scalability law"),
        "{err}"
    );
    assert!(
        err.contains("found 2 distinct concurrency level(s), need at least 3"),
        "{err}"
    );

    assert!(
        input_error("concurrency,throughput\n1,10\n2,19\n4,35\n", &[])
            .contains("found 3 points, need at least 4")
    );

    assert!(input_error("concurrency,throughput\n", &[]).contains("found 0 distinct"));
}

#[test]
fn malformed_rows_name_their_line() {
    assert!(input_error("concurrency,throughput\n1,10\n2,19,7\n", &[])
        .contains("line 3: malformed csv"));
}

#[test]
fn unfittable_data_exits_with_1() {
    let output = fit_file("concurrency,throughput\n1,50\n2,50\n4,50\n8,50\n", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("throughput does not vary"));
}

#[test]
fn usage_errors_exit_with_2() {
    let file = csv_file(&spec_csv());
    let path = file.path().to_str().unwrap();
    for args in [
        vec!["fit"],
        vec!["fit", "--columns", "latency", path],
        vec!["frobnicate"],
        vec!["fit", "--confidence", "1.5", path],
    ] {
        let output = scalewatch(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr_of(&output)
        );
    }
    let output = scalewatch(&["fit", "/nonexistent/measurements.csv"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("cannot read /nonexistent/measurements.csv"));
}
