//! `scalewatch fit FILE...`: fit the Universal Scalability Law to load-test results: a CSV
//! file of measurements, Locust's `--csv` stats history (`locust`) or oha's JSON output
//! (`oha`), detected from the content or chosen with `--format`.

mod locust;
mod oha;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use scalewatch_usl::{Fit, FitOptions, Point};
use serde_json::json;

use crate::error::CliError;

/// Arguments of `scalewatch fit`.
#[derive(Debug, clap::Args)]
pub(crate) struct FitArgs {
    /// Load-test results, one or more files whose points are fitted together: a CSV file
    /// with a header row and one measurement per row, Locust's `--csv` stats history
    /// (`PREFIX_stats_history.csv`: one point per user count held for two rows or more),
    /// or oha's JSON output (`--output-format json`: one point per run). `-` reads
    /// standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The format of the files; `auto` tells them apart by their content and asks for
    /// this option when it cannot.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// The two columns of a CSV file to read (default `concurrency,throughput`).
    /// `concurrency,latency` and `throughput,latency` convert through Little's law
    /// (X = N / R, N = X · R); latency must be in the time unit of the throughput
    /// (seconds for requests per second).
    #[arg(long, value_name = "A,B")]
    columns: Option<Columns>,
    /// Print one JSON object instead of the human-readable report.
    #[arg(long)]
    json: bool,
    /// Confidence level of the intervals, in (0, 1).
    #[arg(long, default_value_t = 0.95, value_name = "LEVEL")]
    confidence: f64,
}

/// The format of a results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Tell from the content.
    Auto,
    /// A CSV file of measurements (see --columns).
    Csv,
    /// Locust's `PREFIX_stats_history.csv`, written with `--csv PREFIX`.
    Locust,
    /// oha's JSON output (`--output-format json`, `-j` in older versions).
    Oha,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Csv => "csv",
            Format::Locust => "locust",
            Format::Oha => "oha",
        }
    }
}

/// What `--format auto` expects, for error messages.
const FORMATS: &str = "a CSV file whose header names concurrency, throughput or latency columns, Locust's `--csv` stats history (PREFIX_stats_history.csv), or oha's JSON output (`oha --output-format json`)";

/// One point to fit and where it came from.
#[derive(Debug, Clone)]
struct Measured {
    point: Point,
    /// The file, as given.
    file: String,
    /// The 1-based line of a CSV row, when the point is one row.
    line: Option<u64>,
    /// How the point was derived, for the report.
    how: Option<String>,
}

/// Which pair of quantities the CSV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Columns {
    ConcurrencyThroughput,
    ConcurrencyLatency,
    ThroughputLatency,
}

impl Columns {
    fn names(self) -> [&'static str; 2] {
        match self {
            Columns::ConcurrencyThroughput => ["concurrency", "throughput"],
            Columns::ConcurrencyLatency => ["concurrency", "latency"],
            Columns::ThroughputLatency => ["throughput", "latency"],
        }
    }

    /// The (concurrency, throughput) point for the two values read.
    fn point(self, a: f64, b: f64) -> Point {
        match self {
            Columns::ConcurrencyThroughput => Point::new(a, b),
            // Little's law: N = X · R.
            Columns::ConcurrencyLatency => Point::new(a, a / b),
            Columns::ThroughputLatency => Point::new(a * b, a),
        }
    }
}

impl FromStr for Columns {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut names: Vec<String> = s
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        names.sort();
        match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["concurrency", "throughput"] => Ok(Columns::ConcurrencyThroughput),
            ["concurrency", "latency"] => Ok(Columns::ConcurrencyLatency),
            ["latency", "throughput"] => Ok(Columns::ThroughputLatency),
            _ => Err(format!(
                "`{s}` is not a column pair; use concurrency,throughput, concurrency,latency or throughput,latency"
            )),
        }
    }
}

/// Runs `scalewatch fit`, writing the report to `out`.
pub(crate) fn run(args: &FitArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(CliError::Usage(
            "standard input (`-`) can be read only once".to_owned(),
        ));
    }
    let several = args.files.len() > 1;
    let mut measured = Vec::new();
    let mut derived = false;
    for file in &args.files {
        let input = read_file(file)?;
        let name = shown(file);
        let format = match args.format {
            // Columns are a CSV's: no need to guess.
            Format::Auto if args.columns.is_some() => Format::Csv,
            Format::Auto => detect(&input, &name)?,
            chosen => chosen,
        };
        if args.columns.is_some() && format != Format::Csv {
            return Err(CliError::Usage(format!(
                "{name}: --columns applies to CSV files, and this one is read as {}",
                format.name()
            )));
        }
        match format {
            Format::Csv | Format::Auto => {
                let columns = args.columns.unwrap_or(Columns::ConcurrencyThroughput);
                let (points, lines) = read_points(&input, columns).map_err(|e| {
                    // One file: the messages of old, by line. Several: which file too.
                    if several {
                        CliError::Usage(format!("{name}: {e}"))
                    } else {
                        e
                    }
                })?;
                measured.extend(points.into_iter().zip(lines).map(|(point, line)| Measured {
                    point,
                    file: name.clone(),
                    line: Some(line),
                    how: None,
                }));
            }
            Format::Locust => {
                derived = true;
                let levels =
                    locust::levels(&input).map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
                measured.extend(levels.into_iter().map(|l| Measured {
                    point: Point::new(f64::from(l.users), l.throughput),
                    file: name.clone(),
                    line: None,
                    how: Some(format!(
                        "{} users: {} requests in {} s (lines {}-{})",
                        l.users,
                        l.requests,
                        fmt(l.seconds),
                        l.first_line,
                        l.last_line
                    )),
                }));
            }
            Format::Oha => {
                derived = true;
                let run = oha::run(&input).map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
                measured.push(Measured {
                    point: Point::new(run.concurrency(), run.throughput()),
                    file: name.clone(),
                    line: None,
                    how: Some(format!(
                        "{} requests/s × {} s mean latency (Little's law), {}% succeeded",
                        fmt(run.requests_per_sec),
                        fmt(run.average),
                        fmt(run.success_rate * 100.0)
                    )),
                });
            }
        }
    }
    let points: Vec<Point> = measured.iter().map(|m| m.point).collect();
    let options = FitOptions::new().confidence_level(args.confidence);
    let fit = scalewatch_usl::fit_with(&points, &options).map_err(|source| {
        // Point-level errors name the file and line the point came from.
        let origin = match &source {
            scalewatch_usl::FitError::NonFinite { index, .. }
            | scalewatch_usl::FitError::NonPositive { index, .. } => measured.get(*index),
            _ => None,
        };
        let files = args.files.iter().map(|f| shown(f)).collect::<Vec<_>>();
        CliError::Fit {
            context: match origin {
                Some(Measured {
                    file,
                    line: Some(line),
                    ..
                }) => format!("{file}, line {line}"),
                Some(m) => m.file.clone(),
                None => files.join(", "),
            },
            source,
        }
    })?;
    let largest = points.iter().map(|p| p.concurrency).fold(0.0, f64::max);
    let report = if args.json {
        json_report(&fit, largest, &measured).to_string() + "\n"
    } else if derived {
        measurements_text(&measured) + &text_report(&fit, largest)
    } else {
        text_report(&fit, largest)
    };
    out.write_all(report.as_bytes()).map_err(CliError::Output)
}

/// A file as messages show it: `standard input` for `-`.
fn shown(file: &Path) -> String {
    if file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    }
}

/// Reads a whole file (results files are small), or standard input for `-`.
fn read_file(file: &Path) -> Result<Vec<u8>, CliError> {
    let mut input = Vec::new();
    let read = if file.as_os_str() == "-" {
        io::stdin().lock().read_to_end(&mut input)
    } else {
        File::open(file).and_then(|mut f| f.read_to_end(&mut input))
    };
    read.map_err(|source| CliError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(input)
}

/// Tells the formats apart by content: oha's output is a JSON object with a `summary`;
/// Locust's history is a CSV whose header has `Timestamp`, `User Count` and `Total Request
/// Count`; a measurements CSV names `concurrency`, `throughput` or `latency`.
fn detect(input: &[u8], name: &str) -> Result<Format, CliError> {
    let text = String::from_utf8_lossy(input);
    let start = text.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with('{') {
        return Ok(Format::Oha);
    }
    let header: Vec<String> = start
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |column: &str| header.iter().any(|h| h == column);
    let locust = locust::HISTORY_COLUMNS
        .iter()
        .all(|c| has(&c.to_ascii_lowercase()));
    let measurements = ["concurrency", "throughput", "latency"]
        .iter()
        .any(|c| has(c));
    match (locust, measurements) {
        (true, false) => Ok(Format::Locust),
        (false, true) => Ok(Format::Csv),
        (true, true) => Err(CliError::Usage(format!(
            "{name}: the header fits both a measurements CSV (concurrency, throughput, latency) and Locust's stats history; say which with --format csv or --format locust"
        ))),
        (false, false) if has("requests/s") && has("request count") => {
            Err(CliError::Usage(format!(
                "{name}: this is Locust's summary (PREFIX_stats.csv), one line for the whole run; give the PREFIX_stats_history.csv that `locust --csv PREFIX` writes beside it"
            )))
        }
        (false, false) => Err(CliError::Usage(format!(
            "{name}: not a format `scalewatch fit` reads; expected {FORMATS} (or choose one with --format)"
        ))),
    }
}

/// The points read from load-test tools, one line each, before the fit.
fn measurements_text(measured: &[Measured]) -> String {
    let mut text = String::from("measurements (concurrency, throughput):\n");
    for m in measured {
        text += &format!(
            "  N = {:<8} X = {:<10} {}{}\n",
            fmt(m.point.concurrency),
            fmt(m.point.throughput),
            m.file,
            m.how
                .as_deref()
                .map(|h| format!(": {h}"))
                .unwrap_or_default()
        );
    }
    text
}

/// Reads the points and the 1-based line each came from (the header is line 1).
fn read_points(input: &[u8], columns: Columns) -> Result<(Vec<Point>, Vec<u64>), CliError> {
    let line_of = |position: Option<&csv::Position>| {
        let mut offset = position
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .min(input.len());
        // A record's position can be where the previous one ended: step over
        // the blank and comment lines the reader skipped.
        while let Some(&byte) = input.get(offset) {
            match byte {
                b'\r' | b'\n' => offset += 1,
                b'#' => {
                    offset += input[offset..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(input.len() - offset, |i| i + 1);
                }
                _ => break,
            }
        }
        1 + input[..offset].iter().filter(|&&b| b == b'\n').count() as u64
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(input);
    let csv_error = |source: csv::Error| CliError::Csv {
        line: line_of(source.position()),
        source,
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let [first, second] = columns.names();
    let index_of = |column: &'static str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(column))
            .ok_or_else(|| CliError::MissingColumn {
                line: line_of(headers.position()),
                column,
                found: headers.iter().collect::<Vec<_>>().join(", "),
            })
    };
    let (a_index, b_index) = (index_of(first)?, index_of(second)?);
    let mut points = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = line_of(record.position());
        let value = |index: usize, column: &'static str| -> Result<f64, CliError> {
            let raw = record.get(index).unwrap_or_default();
            let value = raw.parse::<f64>().map_err(|source| CliError::NotANumber {
                line,
                column,
                value: raw.to_owned(),
                source,
            })?;
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(CliError::NotPositive {
                    line,
                    column,
                    value,
                })
            }
        };
        let a = value(a_index, first)?;
        let b = value(b_index, second)?;
        points.push(columns.point(a, b));
        lines.push(line);
    }
    Ok((points, lines))
}

fn json_report(fit: &Fit, largest: f64, measured: &[Measured]) -> serde_json::Value {
    let m = &fit.model;
    let ci = &fit.confidence_intervals;
    let pair = |i: &scalewatch_usl::Interval| json!([i.lower, i.upper]);
    let at = 10.0 * largest;
    json!({
        "sigma": m.sigma,
        "kappa": m.kappa,
        "lambda": m.lambda,
        "peak_concurrency": fit.peak_concurrency(),
        "peak_throughput": fit.peak_throughput(),
        "amdahl_ceiling": fit.amdahl_ceiling(),
        "limit": fit.limit.as_str(),
        "r_squared": fit.r_squared,
        "confidence_level": fit.confidence_level,
        "confidence_intervals": {
            "sigma": pair(&ci.sigma),
            "kappa": pair(&ci.kappa),
            "lambda": pair(&ci.lambda),
        },
        "std_errors": {
            "sigma": fit.std_errors.sigma,
            "kappa": fit.std_errors.kappa,
            "lambda": fit.std_errors.lambda,
        },
        "sigma_significant": fit.sigma_significant,
        "kappa_significant": fit.kappa_significant,
        "residual_std_error": fit.residual_std_error,
        "residual_dof": fit.residual_dof,
        "points": fit.points,
        "distinct_levels": fit.distinct_levels,
        "prediction": { "concurrency": at, "throughput": fit.throughput_at(at) },
        "measurements": measured
            .iter()
            .map(|m| json!({
                "file": m.file,
                "line": m.line,
                "concurrency": m.point.concurrency,
                "throughput": m.point.throughput,
            }))
            .collect::<Vec<_>>(),
    })
}

fn text_report(fit: &Fit, largest: f64) -> String {
    let m = &fit.model;
    let ci = &fit.confidence_intervals;
    let level = format!("{}% CI", (fit.confidence_level * 1e4).round() / 1e2);
    let row = |name: &str, value: f64, interval: &scalewatch_usl::Interval| {
        format!(
            "  {name:<16} {:<12} {level} [{}, {}]\n",
            fmt(value),
            fmt(interval.lower),
            fmt(interval.upper)
        )
    };
    let mut report = format!(
        "USL fit of {} points at {} concurrency levels: R² = {:.4}\n",
        fit.points, fit.distinct_levels, fit.r_squared
    );
    report += &row("σ (contention)", m.sigma, &ci.sigma);
    report += &row("κ (coherency)", m.kappa, &ci.kappa);
    report += &row("λ (throughput/1)", m.lambda, &ci.lambda);
    report += &format!("limit: {}", fit.limit);
    match (
        fit.peak_concurrency(),
        fit.peak_throughput(),
        fit.amdahl_ceiling(),
    ) {
        (Some(n), Some(x), _) => {
            report += &format!(
                ", throughput peaks at N* = {} with X(N*) = {} and falls beyond it\n",
                fmt(n),
                fmt(x)
            );
        }
        (_, _, Some(ceiling)) => {
            report += &format!(
                ", κ is not significant: no peak, throughput approaches the Amdahl ceiling λ/σ = {}\n",
                fmt(ceiling)
            );
        }
        _ if fit.kappa_significant => report += ", σ ≥ 1: throughput never rises above X(1)\n",
        _ => report += ", no significant contention or coherency: no peak, no ceiling\n",
    }
    let at = 10.0 * largest;
    report += &format!(
        "prediction at 10× the largest measured concurrency: X({}) = {}\n",
        fmt(at),
        fmt(fit.throughput_at(at))
    );
    report
}

/// Four significant figures, in scientific notation when very small or large.
fn fmt(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor();
    if (-3.0..6.0).contains(&magnitude) {
        let decimals = (3.0 - magnitude).max(0.0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn column_pairs_parse_in_either_order() {
        assert_eq!(
            "concurrency,throughput".parse(),
            Ok(Columns::ConcurrencyThroughput)
        );
        assert_eq!(
            "Latency, Concurrency".parse(),
            Ok(Columns::ConcurrencyLatency)
        );
        assert_eq!("throughput,latency".parse(), Ok(Columns::ThroughputLatency));
        assert!("throughput".parse::<Columns>().is_err());
        assert!("a,b".parse::<Columns>().is_err());
    }

    #[test]
    fn little_law_conversions() {
        assert_eq!(
            Columns::ConcurrencyLatency.point(10.0, 0.5),
            Point::new(10.0, 20.0)
        );
        assert_eq!(
            Columns::ThroughputLatency.point(20.0, 0.5),
            Point::new(10.0, 20.0)
        );
    }

    #[test]
    fn numbers_are_formatted_to_four_significant_figures() {
        assert_eq!(fmt(0.0277285), "0.02773");
        assert_eq!(fmt(89.995), "90.00");
        assert_eq!(fmt(1883.4), "1883");
        assert_eq!(fmt(0.0001044), "1.044e-4");
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(-0.5), "-0.5000");
    }
}
