//! `curve.svg`: throughput and latency against concurrency, the measured steps and the
//! fitted USL curve, with the peak N* marked. Hand-written SVG: a self-contained file that
//! renders the same in a browser, on GitHub and in an editor, with no fonts to ship.
//!
//! Every measured point carries its figures as `data-` attributes (and a tooltip), so the
//! picture can be checked, or re-plotted, without the JSON.

use std::fmt::Write as _;

use super::format::{rate, thousands};
use super::Report;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 740.0;
const LEFT: f64 = 88.0;
const RIGHT: f64 = WIDTH - 40.0;
/// The throughput panel.
const TOP_THROUGHPUT: f64 = 108.0;
const BOTTOM_THROUGHPUT: f64 = 428.0;
/// The latency panel.
const TOP_LATENCY: f64 = 472.0;
const BOTTOM_LATENCY: f64 = 668.0;

const THROUGHPUT: &str = "#1d4ed8";
const FIT: &str = "#ea580c";
const MEAN: &str = "#15803d";
const P99: &str = "#b91c1c";
const PEAK: &str = "#6b7280";
const GRID: &str = "#e5e7eb";
const WHITE: &str = "#ffffff";
const RETROGRADE: &str = "#fef2f2";
const INK: &str = "#111827";
const MUTED: &str = "#4b5563";

/// A linear map from data to pixels.
#[derive(Clone, Copy)]
struct Scale {
    domain: (f64, f64),
    range: (f64, f64),
}

impl Scale {
    fn at(self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// About `count` round ticks from 0 to at least `max`: steps of 1, 2, 2.5 or 5 × 10ᵏ.
fn ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = magnitude
        * match raw / magnitude {
            n if n <= 1.0 => 1.0,
            n if n <= 2.0 => 2.0,
            n if n <= 2.5 => 2.5,
            n if n <= 5.0 => 5.0,
            _ => 10.0,
        };
    let n = (max / step).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    if v == v.round() {
        thousands(v)
    } else {
        format!("{v:.1}")
    }
}

/// Escapes text for SVG content and attributes.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report's curve.
pub(crate) fn render(report: &Report) -> String {
    let steps = &report.steps;
    let model = report.fit.as_ref().map(|f| f.fit.model);
    let peak = report.fit.as_ref().and_then(|f| f.peak);

    // The concurrency axis ends just past the last step, not at the next round tick.
    let max_users = steps.iter().map(|s| f64::from(s.users)).fold(1.0, f64::max) * 1.04;
    let mut x_ticks = ticks(max_users, 8);
    x_ticks.retain(|&t| t <= max_users);
    let x = Scale {
        domain: (0.0, max_users),
        range: (LEFT, RIGHT),
    };
    let samples: Vec<f64> = (0..=240)
        .map(|i| x.domain.1 * f64::from(i) / 240.0)
        .collect();

    let fitted_max = model.map_or(0.0, |m| {
        samples
            .iter()
            .map(|&n| m.throughput_at(n))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    });
    let measured_max = steps.iter().map(|s| s.throughput).fold(0.0, f64::max);
    let y_ticks = ticks(measured_max.max(fitted_max) * 1.08, 5);
    let y = Scale {
        domain: (0.0, *y_ticks.last().unwrap_or(&1.0)),
        range: (BOTTOM_THROUGHPUT, TOP_THROUGHPUT),
    };

    // Latency in milliseconds unless the slowest p99 reaches seconds.
    let slowest = steps
        .iter()
        .map(|s| s.p99.max(s.mean_latency))
        .fold(0.0, f64::max);
    let (unit, per_second) = if slowest >= 10.0 {
        ("s", 1.0)
    } else {
        ("ms", 1e3)
    };
    let l_ticks = ticks(slowest * per_second * 1.08, 4);
    let l = Scale {
        domain: (0.0, *l_ticks.last().unwrap_or(&1.0)),
        range: (BOTTOM_LATENCY, TOP_LATENCY),
    };

    let mut svg = String::with_capacity(32 * 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" role="img" aria-labelledby="title">
<title id="title">Throughput and latency against concurrency: {target}</title>
<rect width="{WIDTH}" height="{HEIGHT}" fill="{WHITE}"/>
<text x="{LEFT}" y="36" font-size="20" font-weight="600" fill="{INK}">Where {subject} stops scaling</text>
<text x="{LEFT}" y="58" font-size="13" fill="{MUTED}">{subtitle}</text>
"#,
        target = xml(&report.target),
        subject = xml(if report.command == "demo" {
            "the demo shop"
        } else {
            &report.target
        }),
        subtitle = xml(&subtitle(report)),
    );
    legend(&mut svg, model.is_some(), peak.is_some());

    // The retrograde region: past N*, more users buy less throughput.
    if let Some(p) = peak {
        let from = x.at(p.concurrency).clamp(LEFT, RIGHT);
        if RIGHT - from > 1.0 {
            let _ = writeln!(
                svg,
                r#"<rect class="retrograde" x="{from:.1}" y="{TOP_THROUGHPUT}" width="{w:.1}" height="{h:.1}" fill="{RETROGRADE}"/>"#,
                w = RIGHT - from,
                h = BOTTOM_THROUGHPUT - TOP_THROUGHPUT,
            );
            if RIGHT - from > 190.0 {
                let _ = writeln!(
                    svg,
                    r#"<text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="{P99}" text-anchor="end">past the peak: more users, less throughput</text>"#,
                    tx = RIGHT - 8.0,
                    ty = TOP_THROUGHPUT + 18.0,
                );
            }
        }
    }

    axes(
        &mut svg,
        x,
        &x_ticks,
        y,
        &y_ticks,
        "throughput (requests/s)",
    );
    axes(
        &mut svg,
        x,
        &x_ticks,
        l,
        &l_ticks,
        &format!("latency ({unit})"),
    );
    let _ = writeln!(
        svg,
        r#"<text x="{cx:.1}" y="{ly}" font-size="13" fill="{INK}" text-anchor="middle">concurrency N (users in flight)</text>"#,
        cx = (LEFT + RIGHT) / 2.0,
        ly = BOTTOM_LATENCY + 44.0,
    );

    // Fitted curves.
    if let Some(m) = model {
        let throughput: Vec<(f64, f64)> = samples
            .iter()
            .map(|&n| (x.at(n), y.at(m.throughput_at(n))))
            .collect();
        path(&mut svg, "fit-throughput", &throughput, FIT, "", y);
        let latency: Vec<(f64, f64)> = samples
            .iter()
            .filter(|&&n| n >= 1.0)
            .map(|&n| (x.at(n), l.at(m.latency_at(n) * per_second)))
            .collect();
        path(
            &mut svg,
            "fit-latency",
            &latency,
            FIT,
            r#" stroke-dasharray="6 4""#,
            l,
        );
    }
    if let Some(ceiling) = report
        .fit
        .as_ref()
        .filter(|f| f.peak.is_none())
        .and_then(|f| f.capacity)
        .filter(|c| *c <= y.domain.1)
    {
        let cy = y.at(ceiling);
        let _ = writeln!(
            svg,
            r#"<line class="ceiling" x1="{LEFT}" x2="{RIGHT}" y1="{cy:.1}" y2="{cy:.1}" stroke="{PEAK}" stroke-dasharray="4 4"/>
<text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="{PEAK}" text-anchor="end">ceiling λ/σ = {label}</text>"#,
            tx = RIGHT - 6.0,
            ty = cy - 6.0,
            label = rate(ceiling),
        );
    }

    // N*: across both panels.
    if let Some(p) = peak.filter(|p| p.concurrency <= x.domain.1) {
        let px = x.at(p.concurrency);
        let py = y.at(p.throughput);
        let _ = writeln!(
            svg,
            r#"<line class="peak" x1="{px:.1}" x2="{px:.1}" y1="{TOP_THROUGHPUT}" y2="{BOTTOM_LATENCY}" stroke="{PEAK}" stroke-width="1.5" stroke-dasharray="5 4"/>
<path class="peak-marker" d="M{px:.1},{a:.1} L{b:.1},{py:.1} L{px:.1},{c:.1} L{d:.1},{py:.1} Z" fill="{FIT}" stroke="{WHITE}" stroke-width="1.5"/>
<text x="{tx:.1}" y="{ty:.1}" font-size="13" font-weight="600" fill="{INK}">N* = {n:.1}: peak {x_star}</text>"#,
            a = py - 7.0,
            b = px + 7.0,
            c = py + 7.0,
            d = px - 7.0,
            tx = px + 10.0,
            ty = (py - 12.0).max(TOP_THROUGHPUT + 14.0),
            n = p.concurrency,
            x_star = rate(p.throughput),
        );
    }

    // Measured points last, on top.
    for s in steps {
        let (cx, users) = (x.at(f64::from(s.users)), s.users);
        let _ = writeln!(
            svg,
            r#"<circle class="measured-throughput" data-users="{users}" data-throughput="{t:.3}" cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{THROUGHPUT}" stroke="{WHITE}" stroke-width="1.5"><title>{users} users: {label}</title></circle>"#,
            t = s.throughput,
            cy = y.at(s.throughput),
            label = rate(s.throughput),
        );
        let _ = writeln!(
            svg,
            r#"<circle class="measured-latency-mean" data-users="{users}" data-latency="{m:.6}" cx="{cx:.1}" cy="{cy:.1}" r="4.5" fill="{MEAN}" stroke="{WHITE}" stroke-width="1.5"><title>{users} users: mean {label}</title></circle>"#,
            m = s.mean_latency,
            cy = l.at(s.mean_latency * per_second),
            label = super::format::latency(s.mean_latency),
        );
        let _ = writeln!(
            svg,
            r#"<rect class="measured-latency-p99" data-users="{users}" data-latency="{p:.6}" x="{rx:.1}" y="{ry:.1}" width="8" height="8" fill="{P99}" stroke="{WHITE}" stroke-width="1.5"><title>{users} users: p99 {label}</title></rect>"#,
            p = s.p99,
            rx = cx - 4.0,
            ry = l.at(s.p99 * per_second) - 4.0,
            label = super::format::latency(s.p99),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One line under the title: the fit, or why there is none.
fn subtitle(report: &Report) -> String {
    match &report.fit {
        Some(f) => {
            let fit = format!(
                "USL fit of {} measured steps: σ = {:.4} (contention), κ = {:.6} (coherency), λ = {} per user, R² = {:.3}",
                f.fit.points,
                f.fit.model.sigma,
                f.fit.model.kappa,
                rate(f.fit.model.lambda),
                f.fit.r_squared
            );
            match report.shape_line() {
                Some(shape) => format!("{fit}; {shape}"),
                None => fit,
            }
        }
        None => format!(
            "No USL fit: {}",
            report.fit_error.as_deref().unwrap_or("unknown reason")
        ),
    }
}

/// The legend, in one row under the subtitle so that it never covers a point.
fn legend(svg: &mut String, fitted: bool, peak: bool) {
    #[derive(Clone, Copy)]
    enum Mark {
        Dot(&'static str, f64),
        Square(&'static str),
        Line(&'static str, &'static str),
    }
    let items = [
        (true, Mark::Dot(THROUGHPUT, 5.0), "measured throughput"),
        (fitted, Mark::Line(FIT, ""), "USL fit"),
        (true, Mark::Dot(MEAN, 4.5), "mean latency"),
        (true, Mark::Square(P99), "p99 latency"),
        (fitted, Mark::Line(FIT, "6 4"), "fitted latency"),
        (peak, Mark::Line(PEAK, "5 4"), "N*, the peak"),
    ];
    let y = 84.0;
    let mut x = LEFT;
    for (_, mark, label) in items.into_iter().filter(|(shown, _, _)| *shown) {
        let mark = match mark {
            Mark::Dot(color, r) => {
                format!(
                    r#"<circle cx="{:.1}" cy="{y}" r="{r}" fill="{color}"/>"#,
                    x + 10.0
                )
            }
            Mark::Square(color) => format!(
                r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{color}"/>"#,
                x + 6.0,
                y - 4.0
            ),
            Mark::Line(color, dashes) => format!(
                r#"<line x1="{x:.1}" x2="{:.1}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2.5" stroke-dasharray="{dashes}"/>"#,
                x + 20.0
            ),
        };
        let _ = writeln!(
            svg,
            r#"<g class="legend-item">{mark}<text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="{INK}">{label}</text></g>"#,
            tx = x + 26.0,
            ty = y + 4.0,
        );
        x += 40.0 + label.chars().count() as f64 * 6.6;
    }
}

/// A panel's grid, ticks and axis titles.
fn axes(svg: &mut String, x: Scale, x_ticks: &[f64], y: Scale, y_ticks: &[f64], title: &str) {
    let (bottom, top) = y.range;
    for &t in y_ticks {
        let ty = y.at(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" x2="{RIGHT}" y1="{ty:.1}" y2="{ty:.1}" stroke="{GRID}"/><text x="{lx:.1}" y="{ly:.1}" font-size="12" fill="{MUTED}" text-anchor="end">{label}</text>"#,
            lx = LEFT - 8.0,
            ly = ty + 4.0,
            label = tick_label(t),
        );
    }
    for &t in x_ticks {
        let tx = x.at(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{tx:.1}" y="{ly:.1}" font-size="12" fill="{MUTED}" text-anchor="middle">{label}</text>"#,
            ly = bottom + 18.0,
            label = tick_label(t),
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{top}" width="{w:.1}" height="{h:.1}" fill="none" stroke="{MUTED}" stroke-width="1"/>
<text transform="translate({tx:.1},{ty:.1}) rotate(-90)" font-size="13" fill="{INK}" text-anchor="middle">{title}</text>"#,
        w = RIGHT - LEFT,
        h = bottom - top,
        tx = LEFT - 58.0,
        ty = (top + bottom) / 2.0,
        title = xml(title),
    );
}

/// A polyline clipped to its panel: points above the panel's top or below its bottom are
/// dropped rather than drawn over the title.
fn path(
    svg: &mut String,
    class: &str,
    points: &[(f64, f64)],
    color: &str,
    extra: &str,
    panel: Scale,
) {
    let (bottom, top) = panel.range;
    let mut d = String::new();
    let mut pen_down = false;
    for &(px, py) in points {
        if !py.is_finite() || py < top || py > bottom {
            pen_down = false;
            continue;
        }
        let _ = write!(d, "{}{px:.1},{py:.1} ", if pen_down { "L" } else { "M" });
        pen_down = true;
    }
    if !d.is_empty() {
        let _ = writeln!(
            svg,
            r#"<path class="{class}" d="{d}" fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round"{extra}/>"#,
            d = d.trim_end(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(
            ticks(64.0, 8),
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
        );
        assert_eq!(ticks(712.0, 5), [0.0, 200.0, 400.0, 600.0, 800.0]);
        assert_eq!(ticks(9.0, 4), [0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(ticks(0.0, 4), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(1000.0), "1,000");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(xml(r#"a<b & "c">"#), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
