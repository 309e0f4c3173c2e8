//! `report.md`: the report for a pull request, a wiki page or an incident review, with the
//! curve beside it.

use super::format::{latency, percent, rate};
use super::Report;

/// Renders the report as Markdown that shows `curve.svg` from the same directory.
pub(crate) fn render(report: &Report) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "# Breaking point of {}\n\n",
        escape(&report.target)
    ));
    md.push_str(&format!(
        "`scalewatch {}`: {} steps of {}, from {} to {} concurrent users.\n\n",
        report.command,
        report.plan.levels.len(),
        humantime::format_duration(report.plan.step),
        report.plan.levels.first().copied().unwrap_or_default(),
        report.plan.levels.last().copied().unwrap_or_default(),
    ));
    md.push_str("![Throughput and latency against concurrency, with the USL fit](curve.svg)\n\n");

    md.push_str("## What the curve says\n\n");
    for line in report.curve_findings() {
        md.push_str(&format!("- {}\n", escape(&line)));
    }

    md.push_str("\n## Inside the service\n\n");
    if let Some(server) = &report.server.report {
        if !server.resources.is_empty() {
            md.push_str(
                "| rank | kind | resource | utilization | saturated |\n|---:|---|---|---:|---|\n",
            );
            for (i, r) in server.resources.iter().take(12).enumerate() {
                md.push_str(&format!(
                    "| {} | {} | `{}` | {} | {} |\n",
                    i + 1,
                    r.kind,
                    escape(&r.name),
                    percent(r.utilization),
                    if r.saturated { "yes" } else { "" }
                ));
            }
            md.push('\n');
        }
    }
    for line in report.server_findings() {
        md.push_str(&format!("- {}\n", escape(&line)));
    }

    md.push_str("\n## Steps\n\n");
    md.push_str(
        "| users | throughput | mean | p50 | p90 | p99 | max | failed | headroom |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in &report.steps {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.users,
            rate(s.throughput),
            latency(s.mean_latency),
            latency(s.p50),
            latency(s.p90),
            latency(s.p99),
            latency(s.max),
            s.failed,
            report.headroom_label(s),
        ));
    }
    md.push_str(
        "\nThroughput counts successful answers per second while measuring; headroom is \
         1 − throughput / capacity, where capacity is the fitted peak (or the Amdahl \
         ceiling λ/σ when throughput has no peak); at and past the peak N* there is none \
         left. `report.json` holds every figure.\n",
    );
    md
}

/// Keeps table pipes and stray markup in names from breaking the page.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('<', "&lt;")
}
