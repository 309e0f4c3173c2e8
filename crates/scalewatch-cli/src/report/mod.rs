//! The breaking-point report of a ramp: what the client measured, the USL fit of it, what
//! the service saw from inside (when it says), and what to fix first. Printed as text,
//! and with `--out` written as `report.json`, `curve.svg` and `report.md`.

pub(crate) mod format;
mod markdown;
pub(crate) mod svg;

use std::io::Write;
use std::path::Path;

use scalewatch_capacity::{CapacityReport, FitReport, TierReport};
use scalewatch_usl::{Fit, Limit, Point};
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::ramp::engine::{Plan, Step};
use format::{latency, percent, rate};

/// The whole report; `report.json` is this, serialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// `demo` or `ramp`.
    pub command: String,
    /// What was ramped: a URL, or a gRPC server and method.
    pub target: String,
    /// The ramp's steps and timings.
    pub plan: Plan,
    /// What the client measured at each step.
    pub steps: Vec<Step>,
    /// The USL fit of the client's throughput against its concurrency.
    pub fit: Option<ClientFit>,
    /// Why there is no fit, when there is none.
    pub fit_error: Option<String>,
    /// The step with the highest throughput.
    pub best: Option<Best>,
    /// What the service reported about itself.
    pub server: ServerView,
}

/// The client-side fit and what it implies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClientFit {
    /// σ, κ, λ with their uncertainty, and R².
    pub fit: Fit,
    /// N* and X(N*), when κ is significant.
    pub peak: Option<Peak>,
    /// The throughput the target cannot exceed: the peak, else the Amdahl ceiling λ/σ.
    pub capacity: Option<f64>,
}

/// A throughput peak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Peak {
    /// N*, the concurrency of highest throughput.
    pub concurrency: f64,
    /// X(N*), requests per second.
    pub throughput: f64,
}

/// The best measured step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Best {
    /// Its users.
    pub users: u32,
    /// Its throughput.
    pub throughput: f64,
}

/// The service's own report, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServerView {
    /// Where it was read (a URL, or `in process`).
    pub source: Option<String>,
    /// The report.
    pub report: Option<CapacityReport>,
    /// Why there is no report.
    pub note: Option<String>,
}

impl ServerView {
    pub(crate) fn read(source: String, report: CapacityReport) -> Self {
        Self {
            source: Some(source),
            report: Some(report),
            note: None,
        }
    }

    pub(crate) fn unreadable(note: String) -> Self {
        Self {
            source: None,
            report: None,
            note: Some(note),
        }
    }

    pub(crate) fn not_asked() -> Self {
        Self::unreadable("not asked for (--no-server-report)".to_owned())
    }
}

impl Report {
    pub(crate) fn new(
        command: &str,
        target: String,
        plan: Plan,
        steps: Vec<Step>,
        server: ServerView,
    ) -> Self {
        let points: Vec<Point> = steps
            .iter()
            .filter(|s| s.ok > 0)
            .map(|s| Point::new(f64::from(s.users), s.throughput))
            .collect();
        let (fit, fit_error) = match scalewatch_usl::fit(&points) {
            Ok(fit) => {
                let peak = fit.peak_concurrency().zip(fit.peak_throughput()).map(
                    |(concurrency, throughput)| Peak {
                        concurrency,
                        throughput,
                    },
                );
                let capacity = peak.map(|p| p.throughput).or(fit.amdahl_ceiling());
                (
                    Some(ClientFit {
                        fit,
                        peak,
                        capacity,
                    }),
                    None,
                )
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let best = steps
            .iter()
            .max_by(|a, b| a.throughput.total_cmp(&b.throughput))
            .map(|s| Best {
                users: s.users,
                throughput: s.throughput,
            });
        Self {
            command: command.to_owned(),
            target,
            plan,
            steps,
            fit,
            fit_error,
            best,
            server,
        }
    }

    /// 1 − X / capacity at `step`, when the fit gives a capacity.
    pub(crate) fn headroom(&self, step: &Step) -> Option<f64> {
        let capacity = self.fit.as_ref()?.capacity?;
        (capacity > 0.0).then(|| (1.0 - step.throughput / capacity).clamp(0.0, 1.0))
    }

    /// The headroom column: a share before the peak, `past N*` at or after it (where
    /// throughput falls again and 1 − X / X(N*) would rise, misleadingly).
    pub(crate) fn headroom_label(&self, step: &Step) -> String {
        let peak = self.fit.as_ref().and_then(|f| f.peak);
        if peak.is_some_and(|p| f64::from(step.users) >= p.concurrency) {
            return "past N*".to_owned();
        }
        self.headroom(step).map_or("-".to_owned(), percent)
    }

    /// The watched tiers that have a trusted fit, with it.
    fn trusted_server_tiers(&self) -> impl Iterator<Item = (&TierReport, &FitReport)> {
        self.server
            .report
            .iter()
            .flat_map(|r| r.tiers.iter())
            .filter_map(|t| t.trusted_fit().map(|f| (t, f)))
    }

    /// What the client-side curve says, one sentence per line.
    pub(crate) fn curve_findings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(client) = &self.fit else {
            lines.push(format!(
                "No USL fit of the client's curve: {}.",
                self.fit_error.as_deref().unwrap_or("unknown reason")
            ));
            return lines;
        };
        let fit = &client.fit;
        let top = self.plan.levels.last().copied().unwrap_or_default();
        let shape = self.shape();
        match (shape, client.peak, fit.limit) {
            (Shape::Falls { drop, at }, Some(peak), _) => lines.push(format!(
                "Throughput peaks at {} with {:.1} users in flight (N*); past the peak measured throughput falls {} by {at} users, more than its noise: more users make it worse (coherency, κ > 0).",
                rate(peak.throughput),
                peak.concurrency,
                percent(drop)
            )),
            (Shape::Falls { drop, at }, None, _) => lines.push(format!(
                "Measured throughput falls {} from its best by {at} users, more than its noise: more users make it worse.",
                percent(drop)
            )),
            (Shape::Flat { throughput, from }, peak, _) => {
                let mut line = format!(
                    "Throughput flat at {} from {from} users: a hard limit (a resource at its capacity); more users only add latency.",
                    rate(throughput)
                );
                if let Some(peak) = peak {
                    line.push_str(&format!(
                        " The fit bends down past N* = {:.1}, but the steps past it do not fall by more than their noise.",
                        peak.concurrency
                    ));
                }
                lines.push(line);
            }
            (Shape::Rising, Some(peak), _) => lines.push(format!(
                "The fit puts a peak at {} with {:.1} users in flight (N*), beyond the steps measured so far.",
                rate(peak.throughput),
                peak.concurrency
            )),
            (Shape::Rising, None, Limit::Contention) => lines.push(format!(
                "Throughput approaches a ceiling of {} (λ/σ): a serial part of the work (contention, σ > 0) caps it; no peak within reach.",
                rate(client.capacity.unwrap_or(f64::NAN))
            )),
            _ => lines.push(format!(
                "Throughput still rises about linearly at {top} users: the wall is further out; ramp higher (--max-users)."
            )),
        }
        if let Some(best) = self.best {
            lines.push(format!(
                "The best step measured {} at {} users.",
                rate(best.throughput),
                best.users
            ));
        }
        lines.push(format!(
            "USL fit over {} steps: σ = {:.4} (contention), κ = {:.6} (coherency), λ = {} per user, R² = {:.3}.",
            fit.points,
            fit.model.sigma,
            fit.model.kappa,
            rate(fit.model.lambda),
            fit.r_squared
        ));
        lines
    }

    /// The measured curve's top, judged against its own noise: throughput that falls past
    /// its best by more than the step-to-step noise, a flat top (a hard limit), or still
    /// rising.
    pub(crate) fn shape(&self) -> Shape {
        let Some((best_i, best)) = self
            .steps
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.throughput.total_cmp(&b.1.throughput))
        else {
            return Shape::Rising;
        };
        let tolerance = (3.0 * self.noise()).max(MIN_FALL);
        let floor = best.throughput * (1.0 - tolerance);
        let after = &self.steps[best_i + 1..];
        if let Some(last) = after.last() {
            if last.throughput < floor && after.iter().rev().take(2).all(|s| s.throughput < floor) {
                return Shape::Falls {
                    drop: 1.0 - last.throughput / best.throughput,
                    at: last.users,
                };
            }
        }
        // Flat: the top steps (within the noise of the best) span at least a doubling of
        // users, and the last step is among them.
        let top: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| s.throughput >= floor)
            .collect();
        match (top.first(), self.steps.last()) {
            (Some(first), Some(last))
                if last.throughput >= floor && last.users >= 2 * first.users && top.len() >= 3 =>
            {
                let mean = top.iter().map(|s| s.throughput).sum::<f64>() / top.len() as f64;
                Shape::Flat {
                    throughput: mean,
                    from: first.users,
                }
            }
            _ => Shape::Rising,
        }
    }

    /// Relative step-to-step noise of throughput near the top: the median relative
    /// difference between consecutive steps whose throughput is within 20% of the best.
    fn noise(&self) -> f64 {
        let best = self.steps.iter().map(|s| s.throughput).fold(0.0, f64::max);
        let top: Vec<f64> = self
            .steps
            .iter()
            .map(|s| s.throughput)
            .filter(|x| *x >= 0.8 * best)
            .collect();
        let mut diffs: Vec<f64> = top
            .windows(2)
            .map(|w| (w[1] - w[0]).abs() / w[0].max(f64::MIN_POSITIVE))
            .collect();
        if diffs.is_empty() {
            return 0.0;
        }
        diffs.sort_by(f64::total_cmp);
        diffs[diffs.len() / 2]
    }

    /// One line on the curve's top, for the SVG: the shape, with its figures.
    pub(crate) fn shape_line(&self) -> Option<String> {
        match self.shape() {
            Shape::Falls { drop, at } => Some(format!(
                "throughput falls {} past its best by {at} users: more users make it worse",
                percent(drop)
            )),
            Shape::Flat { throughput, from } => Some(format!(
                "throughput flat at {} from {from} users: a hard limit",
                rate(throughput)
            )),
            Shape::Rising => None,
        }
    }

    /// What the service said about itself, one sentence per line.
    pub(crate) fn server_findings(&self) -> Vec<String> {
        let Some(report) = &self.server.report else {
            return vec![format!(
                "No report from inside the service: {}.",
                self.server.note.as_deref().unwrap_or("none")
            )];
        };
        let mut lines = Vec::new();
        for (tier, fit) in self.trusted_server_tiers() {
            let mut line = format!(
                "Tier `{}` (fit inside the service): σ = {:.4}, κ = {:.6}",
                tier.name, fit.fit.model.sigma, fit.fit.model.kappa
            );
            if let Some(peak) = fit.peak {
                line.push_str(&format!(
                    ", peak {} at N* = {:.1}",
                    rate(peak.throughput),
                    peak.concurrency
                ));
            }
            if tier.past_peak() {
                line.push_str(", and the load is past that peak now");
            } else if let Some(headroom) = tier.headroom {
                line.push_str(&format!(", headroom now {}", percent(headroom)));
            }
            line.push('.');
            lines.push(line);
        }
        for tier in report.tiers.iter().filter(|t| t.trusted_fit().is_none()) {
            if let Some(reason) = &tier.untrusted {
                lines.push(format!("Tier `{}`: no trusted fit ({reason}).", tier.name));
            }
        }
        match &report.first_bottleneck {
            Some(b) => lines.push(format!(
                "Fix first: {} `{}` at {} utilization while `{}`, whose load its use tracks, stopped scaling: {}.",
                b.kind,
                b.name,
                percent(b.utilization),
                b.tier,
                b.advice()
            )),
            None => lines.push(
                "No bottleneck named: no saturated resource tracks a tier whose throughput has stopped rising."
                    .to_owned(),
            ),
        }
        match &report.first_to_saturate {
            Some(wall) => lines.push(format!("{}.", capitalized(&wall.to_string()))),
            None => lines.push(
                "The wall: not in sight (no resource's use tracks a tier's load over the windows seen)."
                    .to_owned(),
            ),
        }
        // What saturates once the first is fixed: the next least room, by the same law.
        let first = report
            .first_bottleneck
            .as_ref()
            .map(|b| (b.kind, b.name.as_str()))
            .or(report
                .first_to_saturate
                .as_ref()
                .map(|w| (w.kind, w.name.as_str())));
        let next = report
            .resources
            .iter()
            .filter(|r| Some((r.kind, r.name.as_str())) != first)
            .filter_map(|r| Some((r, r.demand()?)))
            .filter(|(r, _)| r.load_factor().is_finite())
            .min_by(|a, b| a.0.load_factor().total_cmp(&b.0.load_factor()));
        if let Some((r, d)) = next {
            lines.push(format!(
                "Next to saturate: {} `{}` at about {} (± {:.0}) of `{}`, {:.1}× today's load ({} used now).",
                r.kind,
                r.name,
                rate(d.saturation_throughput),
                d.saturation_throughput_error,
                d.tier,
                r.load_factor(),
                percent(r.utilization)
            ));
        }
        lines
    }

    /// The report as text, for the terminal.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let first = self.plan.levels.first().copied().unwrap_or_default();
        let last = self.plan.levels.last().copied().unwrap_or_default();
        out.push_str(&format!(
            "scalewatch {}: {}\n{} steps of {} from {first} to {last} users\n\n",
            self.command,
            self.target,
            self.plan.levels.len(),
            humantime::format_duration(self.plan.step),
        ));
        out.push_str(&format!(
            "{:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9}\n",
            "users", "throughput", "mean", "p50", "p99", "failed", "headroom"
        ));
        for step in &self.steps {
            out.push_str(&format!(
                "{:>6} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9}\n",
                step.users,
                rate(step.throughput),
                latency(step.mean_latency),
                latency(step.p50),
                latency(step.p99),
                step.failed,
                self.headroom_label(step),
            ));
        }
        out.push('\n');
        for line in self.curve_findings() {
            out.push_str(&line);
            out.push('\n');
        }
        if let Some(report) = &self.server.report {
            out.push_str(&format!(
                "\nInside the service ({}):\n",
                self.server.source.as_deref().unwrap_or("its report")
            ));
            if !report.resources.is_empty() {
                out.push_str("  resources, most utilized first:\n");
                for (i, r) in report.resources.iter().take(8).enumerate() {
                    out.push_str(&format!(
                        "  {:>2}. {:<8} {:<28} {:>5} {}{}\n",
                        i + 1,
                        r.kind.as_str(),
                        r.name,
                        percent(r.utilization),
                        bar(r.utilization),
                        if r.saturated { " saturated" } else { "" }
                    ));
                }
            }
        }
        out.push('\n');
        for line in self.server_findings() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// A 20-character bar of a 0..1 share.
fn bar(share: f64) -> String {
    let filled = (share.clamp(0.0, 1.0) * 20.0).round() as usize;
    format!("{}{}", "█".repeat(filled), "·".repeat(20 - filled))
}

/// Prints the report, and writes its files when `dir` is given.
pub(crate) fn emit(
    report: &Report,
    dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    out.write_all(report.text().as_bytes())
        .map_err(CliError::Output)?;
    if let Some(dir) = dir {
        let written = write_files(report, dir)?;
        writeln!(out, "\nWrote {}.", written.join(", ")).map_err(CliError::Output)?;
    }
    Ok(())
}

/// Writes `report.json`, `curve.svg` and `report.md` into `dir`.
pub(crate) fn write_files(report: &Report, dir: &Path) -> Result<Vec<String>, CliError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| CliError::Write {
        path: dir.join("report.json"),
        source: std::io::Error::other(e),
    })?;
    let files = [
        ("report.json", json + "\n"),
        ("curve.svg", svg::render(report)),
        ("report.md", markdown::render(report)),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::write(&path, contents).map_err(write_error(&path))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// The least fall from the best step, as a share, that counts as falling whatever the
/// measured noise.
const MIN_FALL: f64 = 0.05;

/// The top of the measured curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Shape {
    /// Past the best step, throughput falls by more than its noise.
    Falls {
        /// The fall from the best step to the last, as a share.
        drop: f64,
        /// The users of the last step.
        at: u32,
    },
    /// A flat top: a hard limit.
    Flat {
        /// The mean throughput of the top steps.
        throughput: f64,
        /// The users of the first top step.
        from: u32,
    },
    /// Still rising, or too few steps to tell.
    Rising,
}

/// `s` with its first letter in upper case.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
