//! The console reporter: with no collector configured, a compact per-tier summary on
//! stderr every interval, so a service run locally shows its scaling signals at once.

use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use scalewatch_core::catalog::{self, attr, capacity};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// Prints a summary of each collection; histogram figures are per interval.
pub(crate) struct ConsoleExporter {
    previous: Mutex<HashMap<String, Cumulative>>,
    sink: Sink,
}

#[derive(Clone, Default)]
struct Cumulative {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

impl std::fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    pub(crate) fn stderr() -> Self {
        Self::with_sink(Box::new(|text| eprint!("{text}")))
    }

    pub(crate) fn with_sink(sink: Sink) -> Self {
        Self {
            previous: Mutex::new(HashMap::new()),
            sink,
        }
    }

    pub(crate) fn render(&self, metrics: &ResourceMetrics) -> String {
        let mut tiers: BTreeMap<String, TierLine> = BTreeMap::new();
        let mut calls: Vec<String> = Vec::new();
        let mut fits: BTreeMap<String, FitLine> = BTreeMap::new();
        let mut resources: Vec<(f64, String)> = Vec::new();
        // Per tier, the resource that saturates first: (throughput, "kind `name`").
        let mut walls: BTreeMap<String, (f64, String)> = BTreeMap::new();
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                let name = metric.name();
                match metric.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h))
                        if name == catalog::HTTP_SERVER_REQUEST_DURATION.name
                            || name == catalog::RPC_SERVER_CALL_DURATION.name =>
                    {
                        for p in h.data_points() {
                            let attrs: Vec<&KeyValue> = p.attributes().collect();
                            let id = series_id(name, &attrs);
                            let now = Cumulative {
                                count: p.count(),
                                sum: p.sum(),
                                buckets: p.bucket_counts().collect(),
                            };
                            let before = previous.insert(id, now.clone()).unwrap_or_default();
                            let count = now.count.saturating_sub(before.count);
                            if count == 0 {
                                continue;
                            }
                            let bounds: Vec<f64> = p.bounds().collect();
                            let delta: Vec<u64> = now
                                .buckets
                                .iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    c.saturating_sub(*before.buckets.get(i).unwrap_or(&0))
                                })
                                .collect();
                            let mean = (now.sum - before.sum) / count as f64;
                            calls.push(format!(
                                "  {:<48} {:>8} calls  mean {:>9}  p99 {}",
                                call_label(&attrs),
                                count,
                                format_seconds(mean),
                                p99(&bounds, &delta, count)
                            ));
                        }
                    }
                    data if name == capacity::RESOURCE_UTILIZATION.name => {
                        for (attrs, value) in numbers(data) {
                            let kind =
                                get(&attrs, capacity::attr::RESOURCE_KIND).unwrap_or_default();
                            let name =
                                get(&attrs, capacity::attr::RESOURCE_NAME).unwrap_or_default();
                            resources.push((value, format!("{kind} {name}")));
                        }
                    }
                    data if name == capacity::RESOURCE_SATURATION_THROUGHPUT.name => {
                        for (attrs, value) in numbers(data) {
                            let kind =
                                get(&attrs, capacity::attr::RESOURCE_KIND).unwrap_or_default();
                            let name =
                                get(&attrs, capacity::attr::RESOURCE_NAME).unwrap_or_default();
                            let tier = get(&attrs, attr::TIER_NAME).unwrap_or_default();
                            let wall = (value, format!("{kind} `{name}`"));
                            match walls.get(&tier) {
                                Some(w) if w.0 <= value => {}
                                _ => {
                                    walls.insert(tier, wall);
                                }
                            }
                        }
                    }
                    data if fit_field(name).is_some() => {
                        for (attrs, value) in numbers(data) {
                            let tier = get(&attrs, attr::TIER_NAME).unwrap_or_default();
                            let line = fits.entry(tier).or_default();
                            match fit_field(name) {
                                Some(FitField::Contention) => line.sigma = Some(value),
                                Some(FitField::Coherency) => line.kappa = Some(value),
                                Some(FitField::PeakConcurrency) => line.peak_n = Some(value),
                                Some(FitField::PeakThroughput) => line.peak_x = Some(value),
                                Some(FitField::Headroom) => line.headroom = Some(value),
                                Some(FitField::RSquared) => line.r_squared = Some(value),
                                None => {}
                            }
                        }
                    }
                    data => {
                        if let Some(field) = tier_field(name) {
                            for (attrs, value) in numbers(data) {
                                let tier = get(&attrs, attr::TIER_NAME).unwrap_or_default();
                                let kind = get(&attrs, attr::TIER_KIND).unwrap_or_default();
                                let line = tiers.entry(format!("{tier} ({kind})")).or_default();
                                match field {
                                    Field::Concurrency => line.concurrency = value,
                                    Field::Limit => line.limit = Some(value),
                                    Field::Utilization => line.utilization = Some(value),
                                    Field::Queued => line.queued = value,
                                    Field::Rejections => line.rejections += value,
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut out = String::new();
        if tiers.is_empty()
            && calls.is_empty()
            && fits.is_empty()
            && resources.is_empty()
            && walls.is_empty()
        {
            return out;
        }
        let _ = writeln!(out, "scalewatch ─ per-tier summary");
        for (name, t) in &tiers {
            let _ = write!(out, "  tier {name:<30} in flight {:>5}", t.concurrency);
            if let (Some(limit), Some(u)) = (t.limit, t.utilization) {
                let _ = write!(out, "  utilization {:>5.1}% of {limit}", u * 100.0);
            }
            let _ = writeln!(out, "  queued {:>4}  rejected {}", t.queued, t.rejections);
        }
        calls.sort();
        for line in calls {
            let _ = writeln!(out, "{line}");
        }
        for (tier, f) in &fits {
            let _ = write!(out, "  capacity {tier:<26}");
            let num = |v: Option<f64>, digits: usize| {
                v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
            };
            let _ = write!(out, " σ {}  κ {}", num(f.sigma, 4), num(f.kappa, 6));
            if let (Some(n), Some(x)) = (f.peak_n, f.peak_x) {
                let _ = write!(out, "  peak {n:.0} in flight, {x:.1}/s");
            }
            if let Some(h) = f.headroom {
                let _ = write!(out, "  headroom {:.0}%", h * 100.0);
            }
            let _ = writeln!(out, "  (R² {})", num(f.r_squared, 2));
        }
        if !resources.is_empty() {
            resources.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let ranked: Vec<String> = resources
                .iter()
                .take(5)
                .map(|(u, r)| format!("{r} {:.0}%", u * 100.0))
                .collect();
            let _ = writeln!(out, "  busiest resources: {}", ranked.join(" > "));
        }
        for (tier, (x, resource)) in &walls {
            let _ = writeln!(
                out,
                "  the wall of `{tier}`: {resource} full at about {x:.0}/s (utilization law)"
            );
        }
        out
    }
}

#[derive(Default)]
struct TierLine {
    concurrency: f64,
    limit: Option<f64>,
    utilization: Option<f64>,
    queued: f64,
    rejections: f64,
}

#[derive(Default)]
struct FitLine {
    sigma: Option<f64>,
    kappa: Option<f64>,
    peak_n: Option<f64>,
    peak_x: Option<f64>,
    headroom: Option<f64>,
    r_squared: Option<f64>,
}

enum FitField {
    Contention,
    Coherency,
    PeakConcurrency,
    PeakThroughput,
    Headroom,
    RSquared,
}

fn fit_field(name: &str) -> Option<FitField> {
    Some(match name {
        n if n == capacity::CAPACITY_CONTENTION.name => FitField::Contention,
        n if n == capacity::CAPACITY_COHERENCY.name => FitField::Coherency,
        n if n == capacity::CAPACITY_PEAK_CONCURRENCY.name => FitField::PeakConcurrency,
        n if n == capacity::CAPACITY_PEAK_THROUGHPUT.name => FitField::PeakThroughput,
        n if n == capacity::CAPACITY_HEADROOM.name => FitField::Headroom,
        n if n == capacity::CAPACITY_FIT_R_SQUARED.name => FitField::RSquared,
        _ => return None,
    })
}

enum Field {
    Concurrency,
    Limit,
    Utilization,
    Queued,
    Rejections,
}

fn tier_field(name: &str) -> Option<Field> {
    Some(match name {
        n if n == catalog::TIER_CONCURRENCY.name => Field::Concurrency,
        n if n == catalog::TIER_LIMIT.name => Field::Limit,
        n if n == catalog::TIER_UTILIZATION.name => Field::Utilization,
        n if n == catalog::TIER_QUEUED.name => Field::Queued,
        n if n == catalog::TIER_REJECTIONS.name => Field::Rejections,
        _ => return None,
    })
}

/// Every (attributes, value) of a sum or gauge, as `f64`; of an integer metric, only its
/// sums.
fn numbers(data: &AggregatedMetrics) -> Vec<(Vec<KeyValue>, f64)> {
    match data {
        AggregatedMetrics::F64(MetricData::Gauge(g)) => g
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), p.value()))
            .collect(),
        AggregatedMetrics::F64(d) => sums(d, |v| v),
        AggregatedMetrics::U64(d) => sums(d, |v| v as f64),
        AggregatedMetrics::I64(d) => sums(d, |v| v as f64),
    }
}

/// Every (attributes, value) of a sum, as `f64` by `to_f64`; nothing for other data.
fn sums<T: Copy>(data: &MetricData<T>, to_f64: fn(T) -> f64) -> Vec<(Vec<KeyValue>, f64)> {
    match data {
        MetricData::Sum(s) => s
            .data_points()
            .map(|p| (p.attributes().cloned().collect(), to_f64(p.value())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The value of the attribute `key`, as text. Takes owned and borrowed attributes alike:
/// numbers come with their own, histogram points lend theirs.
fn get<A: Borrow<KeyValue>>(attrs: &[A], key: &str) -> Option<String> {
    attrs
        .iter()
        .map(Borrow::borrow)
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn series_id(name: &str, attrs: &[&KeyValue]) -> String {
    let mut id = name.to_owned();
    for kv in attrs {
        let _ = write!(id, "|{}={}", kv.key, kv.value);
    }
    id
}

fn call_label(attrs: &[&KeyValue]) -> String {
    if let Some(method) = get(attrs, attr::RPC_METHOD) {
        let status = get(attrs, attr::RPC_STATUS_CODE).unwrap_or_default();
        return format!("grpc {method} {status}");
    }
    let method = get(attrs, attr::HTTP_REQUEST_METHOD).unwrap_or_default();
    let route = get(attrs, attr::HTTP_ROUTE).unwrap_or_else(|| "(no route)".into());
    let status = get(attrs, attr::HTTP_RESPONSE_STATUS_CODE).unwrap_or_else(|| "-".into());
    format!("{method} {route} {status}")
}

/// A duration in seconds as a person reads it, `850 µs`, `12.3 ms`, `1.20 s` (`-` when
/// not finite): how the console reporter and the `scalewatch` CLI print latencies.
///
/// ```
/// assert_eq!(scalewatch_otlp::format_seconds(0.012_34), "12.3 ms");
/// ```
pub fn format_seconds(s: f64) -> String {
    if !s.is_finite() {
        "-".to_owned()
    } else if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// The upper bound of the bucket holding the 99th percentile.
fn p99(bounds: &[f64], counts: &[u64], total: u64) -> String {
    let rank = (total as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return match bounds.get(i) {
                Some(b) => format!("≤ {}", format_seconds(*b)),
                None => format!(
                    "> {}",
                    bounds.last().map_or("0".into(), |b| format_seconds(*b))
                ),
            };
        }
    }
    "-".into()
}

impl PushMetricExporter for ConsoleExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let text = self.render(metrics);
        if !text.is_empty() {
            (self.sink)(&text);
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

    #[test]
    fn prints_tiers_calls_capacity_and_the_resource_ranking() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let meter = provider.meter("test");
        let tier = [KeyValue::new(attr::TIER_NAME, "api")];
        let gauge = |signal: scalewatch_core::catalog::Signal, v: f64, a: &[KeyValue]| {
            signal.f64_gauge(&meter).record(v, a);
        };
        gauge(capacity::CAPACITY_CONTENTION, 0.05, &tier);
        gauge(capacity::CAPACITY_COHERENCY, 0.0001, &tier);
        gauge(capacity::CAPACITY_PEAK_CONCURRENCY, 97.0, &tier);
        gauge(capacity::CAPACITY_PEAK_THROUGHPUT, 1234.5, &tier);
        gauge(capacity::CAPACITY_HEADROOM, 0.42, &tier);
        gauge(capacity::CAPACITY_FIT_R_SQUARED, 0.97, &tier);
        for (kind, name, u) in [("lock", "inventory", 0.97), ("tier", "api", 0.4)] {
            gauge(
                capacity::RESOURCE_UTILIZATION,
                u,
                &[
                    KeyValue::new(capacity::attr::RESOURCE_KIND, kind),
                    KeyValue::new(capacity::attr::RESOURCE_NAME, name),
                ],
            );
        }
        for (kind, name, x) in [("lock", "inventory", 310.0), ("pool", "db", 820.0)] {
            gauge(
                capacity::RESOURCE_SATURATION_THROUGHPUT,
                x,
                &[
                    KeyValue::new(capacity::attr::RESOURCE_KIND, kind),
                    KeyValue::new(capacity::attr::RESOURCE_NAME, name),
                    KeyValue::new(attr::TIER_NAME, "api"),
                ],
            );
        }
        catalog::HTTP_SERVER_REQUEST_DURATION
            .f64_histogram(&meter)
            .record(
                0.002,
                &[
                    KeyValue::new(attr::HTTP_REQUEST_METHOD, "GET"),
                    KeyValue::new(attr::HTTP_ROUTE, "/users/{id}"),
                    KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, 200),
                ],
            );
        provider.force_flush().unwrap();
        let metrics = exporter.get_finished_metrics().unwrap();
        let console = ConsoleExporter::with_sink(Box::new(|_| {}));
        let text = console.render(metrics.last().unwrap());
        assert!(text.contains("GET /users/{id} 200"), "{text}");
        assert!(text.contains("capacity api"), "{text}");
        assert!(text.contains("σ 0.0500  κ 0.000100"), "{text}");
        assert!(text.contains("peak 97 in flight, 1234.5/s"), "{text}");
        assert!(text.contains("headroom 42%"), "{text}");
        assert!(
            text.contains("busiest resources: lock inventory 97% > tier api 40%"),
            "{text}"
        );
        // The wall: the resource of least saturation throughput per tier.
        assert!(
            text.contains("the wall of `api`: lock `inventory` full at about 310/s"),
            "{text}"
        );
        // Per-interval figures: a second render with nothing new prints no calls.
        let again = console.render(metrics.last().unwrap());
        assert!(!again.contains("GET /users/{id}"), "{again}");
    }
}
