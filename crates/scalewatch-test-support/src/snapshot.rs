//! What the fake receiver has seen: metric data points and spans, flattened and merged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, ExponentialHistogramDataPoint,
    HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status};

/// The value of one data point.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer sum or gauge.
    Int(i64),
    /// A floating-point sum or gauge.
    Double(f64),
    /// A histogram. Exponential histograms and summaries are reported here too, with their
    /// count, sum, min and max and with empty `bounds` and `bucket_counts`.
    Histogram(Histogram),
}

/// A histogram data point, merged over the exports that carried its series.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Number of measurements.
    pub count: u64,
    /// Sum of the measurements (0 when the exporter did not send one).
    pub sum: f64,
    /// Explicit bucket upper bounds.
    pub bounds: Vec<f64>,
    /// Count per bucket; one more than `bounds`.
    pub bucket_counts: Vec<u64>,
    /// Smallest measurement, when sent.
    pub min: Option<f64>,
    /// Largest measurement, when sent.
    pub max: Option<f64>,
}

impl Histogram {
    /// Adds the measurements of `other` into `self` (delta merging).
    fn merge(&mut self, other: &Histogram) {
        self.count += other.count;
        self.sum += other.sum;
        if self.bounds == other.bounds && self.bucket_counts.len() == other.bucket_counts.len() {
            for (a, b) in self.bucket_counts.iter_mut().zip(&other.bucket_counts) {
                *a += *b;
            }
        } else {
            // Bounds changed between exports: the buckets cannot be merged.
            self.bounds.clear();
            self.bucket_counts.clear();
        }
        self.min = merge_opt(self.min, other.min, f64::min);
        self.max = merge_opt(self.max, other.max, f64::max);
    }
}

impl Value {
    /// The value as `f64`: the number itself, or the sum of a histogram.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Int(v) => *v as f64,
            Value::Double(v) => *v,
            Value::Histogram(h) => h.sum,
        }
    }

    /// Adds `other` into `self` (delta merging). Mismatched kinds keep `other`.
    fn accumulate(&mut self, other: &Value) {
        match (&mut *self, other) {
            (Value::Int(a), Value::Int(b)) => *a += *b,
            (Value::Double(a), Value::Double(b)) => *a += *b,
            (Value::Int(a), Value::Double(b)) => *self = Value::Double(*a as f64 + *b),
            (Value::Double(a), Value::Int(b)) => *a += *b as f64,
            (Value::Histogram(a), Value::Histogram(b)) => a.merge(b),
            (this, other) => *this = other.clone(),
        }
    }
}

fn merge_opt(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Double(v) => write!(f, "{v}"),
            Value::Histogram(h) => {
                write!(f, "histogram(count={}, sum={}", h.count, h.sum)?;
                if let Some(min) = h.min {
                    write!(f, ", min={min}")?;
                }
                if let Some(max) = h.max {
                    write!(f, ", max={max}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// One series' value: its attributes and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Data point attributes, values rendered as text (see [`render_any_value`]).
    pub attributes: BTreeMap<String, String>,
    /// The value.
    pub value: Value,
}

impl Point {
    /// The value as `f64` (a histogram gives its sum).
    pub fn as_f64(&self) -> f64 {
        self.value.as_f64()
    }

    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// The histogram, or `None` for a number.
    pub fn histogram(&self) -> Option<&Histogram> {
        match &self.value {
            Value::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The histogram count, or `None` for a number.
    pub fn histogram_count(&self) -> Option<u64> {
        self.histogram().map(|h| h.count)
    }

    fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter.iter().all(|(k, v)| self.attr(k) == Some(*v))
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.attributes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v}")?;
        }
        write!(f, "}} = {}", self.value)
    }
}

/// The kind of a metric as it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge.
    Gauge,
    /// A sum (counter or up-down counter).
    Sum {
        /// Whether the sum is monotonic (a counter).
        monotonic: bool,
    },
    /// An explicit-bucket histogram.
    Histogram,
    /// An exponential histogram.
    ExponentialHistogram,
    /// A summary.
    Summary,
}

/// The aggregation temporality of a data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Cumulative since `start_time_unix_nano`.
    Cumulative,
    /// Since the previous export.
    Delta,
    /// Not applicable (gauges, summaries) or unspecified.
    Unspecified,
}

impl Temporality {
    fn from_proto(value: i32) -> Self {
        match AggregationTemporality::try_from(value) {
            Ok(AggregationTemporality::Cumulative) => Temporality::Cumulative,
            Ok(AggregationTemporality::Delta) => Temporality::Delta,
            _ => Temporality::Unspecified,
        }
    }
}

/// One data point exactly as received, with everything around it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// Resource attributes of the export it came in.
    pub resource: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
    /// Metric name.
    pub metric: String,
    /// Metric unit (may be empty).
    pub unit: String,
    /// Metric description (may be empty).
    pub description: String,
    /// Metric kind.
    pub kind: MetricKind,
    /// Aggregation temporality.
    pub temporality: Temporality,
    /// Start of the aggregation window.
    pub start_time_unix_nano: u64,
    /// Time of the measurement.
    pub time_unix_nano: u64,
    /// Order of arrival at the receiver (increasing across all exports).
    pub arrival: u64,
    /// Attributes and value.
    pub point: Point,
}

/// Every metric data point the receiver accepted, with query helpers.
///
/// Series are identified by their data point attributes only (resource and scope are kept
/// on each [`DataPoint`] but do not split series in [`latest`](Self::latest)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    points: Vec<DataPoint>,
}

impl MetricsSnapshot {
    pub(crate) fn push_request(
        &mut self,
        request: &ExportMetricsServiceRequest,
        arrival: &mut u64,
    ) {
        for rm in &request.resource_metrics {
            let resource = resource_attributes(&rm.resource);
            for sm in &rm.scope_metrics {
                let scope = scope_name(&sm.scope);
                for m in &sm.metrics {
                    let Some(data) = &m.data else { continue };
                    let (kind, temporality, points) = match data {
                        metric::Data::Gauge(g) => (
                            MetricKind::Gauge,
                            Temporality::Unspecified,
                            received(&g.data_points),
                        ),
                        metric::Data::Sum(s) => (
                            MetricKind::Sum {
                                monotonic: s.is_monotonic,
                            },
                            Temporality::from_proto(s.aggregation_temporality),
                            received(&s.data_points),
                        ),
                        metric::Data::Histogram(h) => (
                            MetricKind::Histogram,
                            Temporality::from_proto(h.aggregation_temporality),
                            received(&h.data_points),
                        ),
                        metric::Data::ExponentialHistogram(h) => (
                            MetricKind::ExponentialHistogram,
                            Temporality::from_proto(h.aggregation_temporality),
                            received(&h.data_points),
                        ),
                        metric::Data::Summary(s) => (
                            MetricKind::Summary,
                            Temporality::Unspecified,
                            received(&s.data_points),
                        ),
                    };
                    for (start, time, point) in points {
                        *arrival += 1;
                        self.points.push(DataPoint {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            metric: m.name.clone(),
                            unit: m.unit.clone(),
                            description: m.description.clone(),
                            kind,
                            temporality,
                            start_time_unix_nano: start,
                            time_unix_nano: time,
                            arrival: *arrival,
                            point,
                        });
                    }
                }
            }
        }
    }

    /// Builds a snapshot from export requests, in arrival order (useful for unit tests).
    pub fn from_requests<'a>(
        requests: impl IntoIterator<Item = &'a ExportMetricsServiceRequest>,
    ) -> Self {
        let mut snapshot = Self::default();
        let mut arrival = 0;
        for request in requests {
            snapshot.push_request(request, &mut arrival);
        }
        snapshot
    }

    /// Every data point received, in arrival order.
    pub fn data_points(&self) -> &[DataPoint] {
        &self.points
    }

    /// Every data point received for the metric `name`, in arrival order.
    pub fn points(&self, name: &str) -> impl Iterator<Item = &DataPoint> + '_ {
        let name = name.to_owned();
        self.points.iter().filter(move |p| p.metric == name)
    }

    /// Whether nothing has been received.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The names of every metric received.
    pub fn names(&self) -> BTreeSet<String> {
        self.points.iter().map(|p| p.metric.clone()).collect()
    }

    /// The current value of each series of the metric `name`, ordered by attributes.
    ///
    /// - cumulative sums and histograms: the most recent point per attribute set (by
    ///   `time_unix_nano`, then arrival order);
    /// - delta sums and histograms: the points of each attribute set added up;
    /// - gauges: the last value.
    ///
    /// Empty when the metric was never received.
    pub fn latest(&self, name: &str) -> Vec<Point> {
        let mut series: BTreeMap<&BTreeMap<String, String>, (u64, u64, Point)> = BTreeMap::new();
        for dp in self.points(name) {
            let key = (dp.time_unix_nano, dp.arrival);
            match series.get_mut(&dp.point.attributes) {
                None => {
                    series.insert(&dp.point.attributes, (key.0, key.1, dp.point.clone()));
                }
                Some(entry) if dp.temporality == Temporality::Delta => {
                    entry.2.value.accumulate(&dp.point.value);
                    if key > (entry.0, entry.1) {
                        (entry.0, entry.1) = key;
                    }
                }
                Some(entry) => {
                    if key >= (entry.0, entry.1) {
                        *entry = (key.0, key.1, dp.point.clone());
                    }
                }
            }
        }
        series.into_values().map(|(_, _, p)| p).collect()
    }

    /// The latest series of `name` whose attributes contain every `(key, value)` of `filter`.
    pub fn matching(&self, name: &str, filter: &[(&str, &str)]) -> Vec<Point> {
        self.latest(name)
            .into_iter()
            .filter(|p| p.matches(filter))
            .collect()
    }

    /// The sum of the histogram counts over the latest series of `name` that match `filter`
    /// (0 when none match or the metric is not a histogram).
    pub fn histogram_count(&self, name: &str, filter: &[(&str, &str)]) -> u64 {
        self.matching(name, filter)
            .iter()
            .filter_map(Point::histogram_count)
            .sum()
    }

    /// The sum of the latest values over the series of `name` that match `filter` (for
    /// histograms, the sum of their sums).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.matching(name, filter).iter().map(Point::as_f64).sum()
    }

    /// The number of distinct series (attribute sets) of `name`.
    pub fn series(&self, name: &str) -> usize {
        self.latest(name).len()
    }

    /// Every value the attribute `key` took on the metric `name`.
    pub fn attribute_values(&self, name: &str, key: &str) -> BTreeSet<String> {
        self.points(name)
            .filter_map(|p| p.point.attr(key).map(str::to_owned))
            .collect()
    }

    /// The unit of `name` as last received (`None` when the metric was never received;
    /// `Some("")` when it was sent without a unit).
    pub fn unit(&self, name: &str) -> Option<String> {
        self.points(name).last().map(|p| p.unit.clone())
    }

    /// The description of `name` as last received.
    pub fn description(&self, name: &str) -> Option<String> {
        self.points(name).last().map(|p| p.description.clone())
    }

    /// The kind of `name` as last received.
    pub fn kind(&self, name: &str) -> Option<MetricKind> {
        self.points(name).last().map(|p| p.kind)
    }

    /// The temporality of `name` as last received.
    pub fn temporality(&self, name: &str) -> Option<Temporality> {
        self.points(name).last().map(|p| p.temporality)
    }

    /// The resource attributes of every export merged (later exports win on conflicts).
    pub fn resource_attributes(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for p in &self.points {
            out.extend(p.resource.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// The instrumentation scope names seen.
    pub fn scope_names(&self) -> BTreeSet<String> {
        self.points.iter().map(|p| p.scope.clone()).collect()
    }

    /// A multi-line human description: every metric and the latest value of its series.
    pub fn describe(&self) -> String {
        if self.points.is_empty() {
            return "  (no metrics received)\n".to_owned();
        }
        let mut out = String::new();
        for name in self.names() {
            let last = self.points(&name).last();
            let (unit, kind, temporality) = last
                .map(|p| (p.unit.as_str(), p.kind, p.temporality))
                .unwrap_or(("", MetricKind::Gauge, Temporality::Unspecified));
            let _ = writeln!(out, "  {name} [unit={unit:?}, {kind:?}, {temporality:?}]");
            for point in self.latest(&name) {
                let _ = writeln!(out, "    {point}");
            }
        }
        out
    }
}

/// A data point of one of OTLP's metric kinds, as the snapshot keeps it.
trait ReceivedPoint {
    /// Its start and measurement times, its attributes, and its value.
    fn parts(&self) -> (u64, u64, &[KeyValue], Value);
}

/// Every point of one metric: its start and measurement times, and its attributes and value.
fn received<P: ReceivedPoint>(points: &[P]) -> Vec<(u64, u64, Point)> {
    points
        .iter()
        .map(|dp| {
            let (start, time, attributes, value) = dp.parts();
            let attributes = render_attributes(attributes);
            (start, time, Point { attributes, value })
        })
        .collect()
}

/// Implements [`ReceivedPoint`] for OTLP's data point types: their times and attributes are
/// fields of the same names in each (with no trait in common), `$value` is the value of
/// the point `$dp`.
macro_rules! received_point {
    ($($ty:ty => |$dp:ident| $value:expr;)+) => {$(
        impl ReceivedPoint for $ty {
            fn parts(&self) -> (u64, u64, &[KeyValue], Value) {
                let $dp = self;
                let value = $value;
                ($dp.start_time_unix_nano, $dp.time_unix_nano, &$dp.attributes, value)
            }
        }
    )+};
}

// Exponential histograms and summaries keep their count, sum, min and max, not their
// buckets or quantiles.
received_point! {
    NumberDataPoint => |dp| match dp.value {
        Some(number_data_point::Value::AsInt(v)) => Value::Int(v),
        Some(number_data_point::Value::AsDouble(v)) => Value::Double(v),
        None => Value::Double(f64::NAN),
    };
    HistogramDataPoint => |dp| Value::Histogram(Histogram {
        count: dp.count,
        sum: dp.sum.unwrap_or(0.0),
        bounds: dp.explicit_bounds.clone(),
        bucket_counts: dp.bucket_counts.clone(),
        min: dp.min,
        max: dp.max,
    });
    ExponentialHistogramDataPoint => |dp| {
        bucketless(dp.count, dp.sum.unwrap_or(0.0), dp.min, dp.max)
    };
    SummaryDataPoint => |dp| bucketless(dp.count, dp.sum, None, None);
}

/// A histogram value without buckets.
fn bucketless(count: u64, sum: f64, min: Option<f64>, max: Option<f64>) -> Value {
    Value::Histogram(Histogram {
        count,
        sum,
        bounds: Vec::new(),
        bucket_counts: Vec::new(),
        min,
        max,
    })
}

/// The attributes of an export's resource, rendered (none when it has no resource).
fn resource_attributes(resource: &Option<Resource>) -> BTreeMap<String, String> {
    resource
        .as_ref()
        .map(|r| render_attributes(&r.attributes))
        .unwrap_or_default()
}

/// The name of an export's instrumentation scope (empty when it has none).
fn scope_name(scope: &Option<InstrumentationScope>) -> String {
    scope.as_ref().map(|s| s.name.clone()).unwrap_or_default()
}

/// Renders attributes as text (see [`render_any_value`]).
pub fn render_attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(render_any_value).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Renders an OTLP value as text: strings as they are, integers, doubles and booleans with
/// `to_string`, bytes as lowercase hex, arrays as `[a, b]`, maps as `{k=v, ...}`.
pub fn render_any_value(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(v)) => v.to_string(),
        Some(any_value::Value::DoubleValue(v)) => v.to_string(),
        Some(any_value::Value::BoolValue(v)) => v.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(render_any_value).collect();
            format!("[{}]", items.join(", "))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> = render_attributes(&kv.values)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(any_value::Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// One span as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// Span name.
    pub name: String,
    /// Span kind.
    pub kind: span::SpanKind,
    /// Span attributes rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes of the export it came in.
    pub resource_attributes: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
    /// Trace id, lowercase hex.
    pub trace_id: String,
    /// Span id, lowercase hex.
    pub span_id: String,
    /// Parent span id, lowercase hex (empty for a root span).
    pub parent_span_id: String,
    /// Status code.
    pub status_code: status::StatusCode,
    /// Status message.
    pub status_message: String,
    /// Names of the span's events.
    pub events: Vec<String>,
    /// Start time.
    pub start_time_unix_nano: u64,
    /// End time.
    pub end_time_unix_nano: u64,
}

impl ReceivedSpan {
    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    pub(crate) fn from_request(request: &ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
        let mut out = Vec::new();
        for rs in &request.resource_spans {
            let resource = resource_attributes(&rs.resource);
            for ss in &rs.scope_spans {
                let scope = scope_name(&ss.scope);
                for s in &ss.spans {
                    let (status_code, status_message) = s
                        .status
                        .as_ref()
                        .map(|st| {
                            (
                                status::StatusCode::try_from(st.code)
                                    .unwrap_or(status::StatusCode::Unset),
                                st.message.clone(),
                            )
                        })
                        .unwrap_or((status::StatusCode::Unset, String::new()));
                    out.push(ReceivedSpan {
                        name: s.name.clone(),
                        kind: span::SpanKind::try_from(s.kind)
                            .unwrap_or(span::SpanKind::Unspecified),
                        attributes: render_attributes(&s.attributes),
                        resource_attributes: resource.clone(),
                        scope: scope.clone(),
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        status_code,
                        status_message,
                        events: s.events.iter().map(|e| e.name.clone()).collect(),
                        start_time_unix_nano: s.start_time_unix_nano,
                        end_time_unix_nano: s.end_time_unix_nano,
                    });
                }
            }
        }
        out
    }
}

/// A human description of spans, for panic messages.
pub(crate) fn describe_spans(spans: &[ReceivedSpan]) -> String {
    if spans.is_empty() {
        return "  (no spans received)\n".to_owned();
    }
    let mut out = String::new();
    for s in spans {
        let _ = writeln!(out, "  {} {:?} {:?}", s.name, s.kind, s.attributes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, ResourceMetrics, ScopeMetrics, Sum,
    };

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn point(time: u64, value: i64, route: &str) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![
                kv("route", any_value::Value::StringValue(route.into())),
                kv("ok", any_value::Value::BoolValue(true)),
                kv("ratio", any_value::Value::DoubleValue(0.5)),
            ],
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsInt(value)),
            ..Default::default()
        }
    }

    fn request(name: &str, data: metric::Data) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        unit: "1".into(),
                        data: Some(data),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn sum(temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> metric::Data {
        metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })
    }

    #[test]
    fn cumulative_takes_the_newest_point_by_time_not_arrival() {
        let c = AggregationTemporality::Cumulative;
        let snapshot = MetricsSnapshot::from_requests(&[
            request("c", sum(c, vec![point(20, 7, "/a"), point(10, 1, "/b")])),
            // Arrives later but is older: ignored.
            request("c", sum(c, vec![point(15, 5, "/a")])),
            // Same time, later arrival: wins.
            request("c", sum(c, vec![point(10, 2, "/b")])),
        ]);
        assert_eq!(snapshot.sum("c", &[("route", "/a")]), 7.0);
        assert_eq!(snapshot.sum("c", &[("route", "/b")]), 2.0);
        assert_eq!(snapshot.sum("c", &[("ok", "true"), ("ratio", "0.5")]), 9.0);
        assert_eq!(snapshot.series("c"), 2);
        assert_eq!(snapshot.unit("c").as_deref(), Some("1"));
        assert_eq!(snapshot.unit("missing"), None);
        assert!(snapshot.latest("missing").is_empty());
    }

    #[test]
    fn delta_points_are_added_and_gauges_keep_the_last() {
        let d = AggregationTemporality::Delta;
        let gauge = |points| {
            metric::Data::Gauge(Gauge {
                data_points: points,
            })
        };
        let snapshot = MetricsSnapshot::from_requests(&[
            request("d", sum(d, vec![point(1, 3, "/a")])),
            request("d", sum(d, vec![point(2, 4, "/a"), point(2, 1, "/b")])),
            request("g", gauge(vec![point(1, 9, "/a")])),
            request("g", gauge(vec![point(2, 4, "/a")])),
        ]);
        assert_eq!(snapshot.sum("d", &[("route", "/a")]), 7.0);
        assert_eq!(snapshot.sum("d", &[]), 8.0);
        assert_eq!(snapshot.temporality("d"), Some(Temporality::Delta));
        assert_eq!(snapshot.latest("g")[0].value, Value::Int(4));
        assert_eq!(snapshot.kind("g"), Some(MetricKind::Gauge));
        assert!(snapshot.describe().contains("route=/a"));
    }
}
