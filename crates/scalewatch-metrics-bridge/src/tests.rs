//! End-to-end tests: `metrics` macros → `OtelRecorder` → OpenTelemetry SDK → in-memory exporter.

use std::sync::{Arc, Barrier};
use std::thread;

use metrics::{with_local_recorder, Key, Label, Recorder, Unit};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

use crate::{BuildError, OtelRecorder, DEFAULT_MAX_LABEL_SETS, OVERFLOW_ATTRIBUTE};

type Attrs = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Data {
    Sum(Vec<(Attrs, u64)>),
    Gauge(Vec<(Attrs, f64)>),
    /// attributes, count, sum, bucket bounds
    Histogram(Vec<(Attrs, u64, f64, Vec<f64>)>),
}

#[derive(Debug, Clone)]
struct Exported {
    name: String,
    unit: String,
    description: String,
    data: Data,
}

impl Exported {
    fn sums(&self) -> &[(Attrs, u64)] {
        match &self.data {
            Data::Sum(points) => points,
            other => panic!("{} is not a u64 sum: {other:?}", self.name),
        }
    }

    fn gauges(&self) -> &[(Attrs, f64)] {
        match &self.data {
            Data::Gauge(points) => points,
            other => panic!("{} is not an f64 gauge: {other:?}", self.name),
        }
    }

    /// The sum's points ordered by attributes, as the SDK exports them in no set order.
    fn sorted_sums(&self) -> Vec<(Attrs, u64)> {
        let mut points = self.sums().to_vec();
        points.sort_by(|a, b| a.0.cmp(&b.0));
        points
    }

    fn histograms(&self) -> &[(Attrs, u64, f64, Vec<f64>)] {
        match &self.data {
            Data::Histogram(points) => points,
            other => panic!("{} is not an f64 histogram: {other:?}", self.name),
        }
    }

    /// The single data point with no attributes.
    fn sum(&self) -> u64 {
        let points = self.sums();
        assert_eq!(points.len(), 1, "{points:?}");
        assert!(points[0].0.is_empty(), "{points:?}");
        points[0].1
    }

    fn gauge(&self) -> f64 {
        let points = self.gauges();
        assert_eq!(points.len(), 1, "{points:?}");
        points[0].1
    }
}

fn attrs<'a>(kvs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Attrs {
    let mut attrs: Attrs = kvs
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect();
    attrs.sort();
    attrs
}

/// The metric `name` of a collection.
fn find<'a>(all: &'a [Exported], name: &str) -> &'a Exported {
    all.iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name} in {all:?}"))
}

fn pairs(list: &[(&str, &str)]) -> Attrs {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

struct Harness {
    exporter: InMemoryMetricExporter,
    provider: SdkMeterProvider,
    recorder: OtelRecorder,
}

impl Harness {
    fn new() -> Self {
        Self::with(OtelRecorder::new)
    }

    /// A harness whose recorder keeps at most `max_label_sets` label sets per name.
    fn capped(max_label_sets: usize) -> Self {
        Self::with(|meter| {
            OtelRecorder::builder(meter)
                .max_label_sets(max_label_sets)
                .build()
                .unwrap()
        })
    }

    fn with(make: impl FnOnce(opentelemetry::metrics::Meter) -> OtelRecorder) -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let recorder = make(provider.meter("scalewatch-metrics-bridge-test"));
        Self {
            exporter,
            provider,
            recorder,
        }
    }

    fn record(&self, f: impl FnOnce()) {
        with_local_recorder(&self.recorder, f);
    }

    /// Every metric of the latest collection (cumulative temporality).
    fn collect(&self) -> Vec<Exported> {
        self.exporter.reset();
        self.provider.force_flush().unwrap();
        let exported = self.exporter.get_finished_metrics().unwrap();
        let mut out = Vec::new();
        for metric in exported
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|sm| sm.metrics())
        {
            let data = match metric.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => Data::Sum(
                    sum.data_points()
                        .map(|p| (attrs(p.attributes()), p.value()))
                        .collect(),
                ),
                AggregatedMetrics::F64(MetricData::Gauge(gauge)) => Data::Gauge(
                    gauge
                        .data_points()
                        .map(|p| (attrs(p.attributes()), p.value()))
                        .collect(),
                ),
                AggregatedMetrics::F64(MetricData::Histogram(histogram)) => Data::Histogram(
                    histogram
                        .data_points()
                        .map(|p| {
                            (
                                attrs(p.attributes()),
                                p.count(),
                                p.sum(),
                                p.bounds().collect(),
                            )
                        })
                        .collect(),
                ),
                other => panic!("unexpected data for {}: {other:?}", metric.name()),
            };
            out.push(Exported {
                name: metric.name().to_owned(),
                unit: metric.unit().to_owned(),
                description: metric.description().to_owned(),
                data,
            });
        }
        out
    }

    fn metric(&self, name: &str) -> Exported {
        find(&self.collect(), name).clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

#[test]
fn counter_increments_add_up() {
    let h = Harness::new();
    h.record(|| {
        metrics::counter!("requests").increment(1);
        metrics::counter!("requests").increment(41);
        let handle = metrics::counter!("requests");
        handle.increment(8);
    });
    assert_eq!(h.metric("requests").sum(), 50);
}

#[test]
fn counter_absolute_adds_only_the_difference() {
    let h = Harness::new();
    h.record(|| {
        let c = metrics::counter!("bytes.read");
        c.absolute(10);
        c.absolute(25);
        // An older, smaller reading exports nothing.
        c.absolute(20);
        c.absolute(25);
    });
    assert_eq!(h.metric("bytes.read").sum(), 25);

    h.record(|| metrics::counter!("bytes.read").absolute(30));
    assert_eq!(h.metric("bytes.read").sum(), 30);
}

#[test]
fn counter_absolute_counts_from_the_running_total() {
    let h = Harness::new();
    h.record(|| {
        let c = metrics::counter!("mixed");
        c.increment(5);
        // Total is 5, so raising it to 12 adds 7, and 3 adds nothing.
        c.absolute(12);
        c.absolute(3);
        c.increment(1);
    });
    assert_eq!(h.metric("mixed").sum(), 13);
}

#[test]
fn gauge_set_increment_decrement() {
    let h = Harness::new();
    h.record(|| {
        let g = metrics::gauge!("queue.depth");
        g.increment(5.0);
        g.decrement(2.0);
        g.increment(0.5);
    });
    assert_eq!(h.metric("queue.depth").gauge(), 3.5);

    h.record(|| {
        metrics::gauge!("queue.depth").set(10.0);
        // A new registration of the same key continues from the kept value.
        metrics::gauge!("queue.depth").decrement(4.0);
    });
    assert_eq!(h.metric("queue.depth").gauge(), 6.0);

    h.record(|| metrics::gauge!("queue.depth").set(-1.25));
    assert_eq!(h.metric("queue.depth").gauge(), -1.25);
}

#[test]
fn histogram_count_and_sum() {
    let h = Harness::new();
    h.record(|| {
        let hist = metrics::histogram!("payload.size");
        hist.record(1.5);
        hist.record(2.5);
        metrics::histogram!("payload.size").record(6.0);
    });
    let m = h.metric("payload.size");
    let points = m.histograms();
    assert_eq!(points.len(), 1);
    let (attrs, count, sum, bounds) = &points[0];
    assert!(attrs.is_empty());
    assert_eq!(*count, 3);
    assert_eq!(*sum, 10.0);
    // No unit described: the SDK's default boundaries.
    assert_eq!(bounds.first(), Some(&0.0));
    assert_eq!(bounds.last(), Some(&10000.0));
}

#[test]
fn labels_become_attributes() {
    let h = Harness::new();
    h.record(|| {
        metrics::counter!("requests", "route" => "/users", "method" => "GET").increment(2);
        // Same labels in another order: the same series.
        metrics::counter!("requests", "method" => "GET", "route" => "/users").increment(3);
        metrics::counter!("requests", "route" => "/orders", "method" => "POST").increment(7);
        metrics::gauge!("pool.size", "pool" => "db").set(4.0);
        metrics::histogram!("latency", "region" => "eu").record(0.5);
    });
    let all = h.collect();

    assert_eq!(
        find(&all, "requests").sorted_sums(),
        vec![
            (pairs(&[("method", "GET"), ("route", "/users")]), 5),
            (pairs(&[("method", "POST"), ("route", "/orders")]), 7),
        ]
    );
    assert_eq!(
        find(&all, "pool.size").gauges(),
        &[(pairs(&[("pool", "db")]), 4.0)]
    );
    let latency = find(&all, "latency");
    let points = latency.histograms();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].0, pairs(&[("region", "eu")]));
    assert_eq!(points[0].1, 1);
}

#[test]
fn repeated_label_names_keep_the_last_value() {
    let h = Harness::new();
    let key = Key::from_parts("dup", vec![Label::new("a", "1"), Label::new("a", "2")]);
    let metadata = metrics::Metadata::new("test", metrics::Level::INFO, None);
    h.recorder.register_counter(&key, &metadata).increment(1);
    assert_eq!(h.metric("dup").sums(), &[(pairs(&[("a", "2")]), 1)]);
}

#[test]
fn units_and_descriptions_are_applied() {
    let h = Harness::new();
    h.record(|| {
        metrics::describe_counter!("sent", Unit::Bytes, "Bytes written to the socket.");
        metrics::describe_gauge!("cpu", Unit::Percent, "CPU busy, 0 to 100.");
        metrics::describe_histogram!("wait", Unit::Seconds, "Time spent queued.");
        metrics::describe_histogram!("bare", "No unit given.");
        metrics::counter!("sent").increment(1);
        metrics::gauge!("cpu").set(50.0);
        metrics::histogram!("wait").record(0.02);
        metrics::histogram!("bare").record(1.0);
    });
    let all = h.collect();

    let sent = find(&all, "sent");
    assert_eq!(sent.unit, "By");
    assert_eq!(sent.description, "Bytes written to the socket.");
    let cpu = find(&all, "cpu");
    assert_eq!(cpu.unit, "%");
    assert_eq!(cpu.description, "CPU busy, 0 to 100.");
    let wait = find(&all, "wait");
    assert_eq!(wait.unit, "s");
    assert_eq!(wait.description, "Time spent queued.");
    // Seconds get duration buckets, so 20 ms does not land in the first bucket.
    assert_eq!(wait.histograms()[0].3.first(), Some(&0.005));
    assert_eq!(wait.histograms()[0].3.last(), Some(&10.0));
    let bare = find(&all, "bare");
    assert_eq!(bare.unit, "");
    assert_eq!(bare.description, "No unit given.");
}

#[test]
fn describe_after_creation_does_not_change_the_instrument() {
    let h = Harness::new();
    h.record(|| {
        metrics::counter!("late").increment(1);
        metrics::describe_counter!("late", Unit::Bytes, "Too late.");
        metrics::counter!("late").increment(1);
    });
    let late = h.metric("late");
    assert_eq!(late.unit, "");
    assert_eq!(late.description, "");
    assert_eq!(late.sum(), 2);
}

#[test]
fn describe_of_another_kind_does_not_apply() {
    let h = Harness::new();
    h.record(|| {
        metrics::describe_gauge!("shared", Unit::Seconds, "A gauge description.");
        metrics::counter!("shared").increment(1);
    });
    let shared = h.metric("shared");
    assert_eq!(shared.unit, "");
    assert_eq!(shared.description, "");
}

#[test]
fn invalid_names_are_sanitised() {
    let h = Harness::new();
    h.record(|| {
        metrics::describe_counter!("http:requests total", Unit::Count, "Sanitised too.");
        metrics::counter!("http:requests total").increment(2);
        // Spells the same sanitised name: the same instrument and series.
        metrics::counter!("http_requests_total").increment(3);
        metrics::gauge!("2xx").set(1.0);
        metrics::histogram!("").record(1.0);
    });
    let all = h.collect();
    let mut names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["http_requests_total", "m_", "m_2xx"]);

    let requests = find(&all, "http_requests_total");
    assert_eq!(requests.sum(), 5);
    assert_eq!(requests.unit, "{count}");
    assert_eq!(requests.description, "Sanitised too.");
}

#[test]
fn label_sets_over_the_cap_go_to_the_overflow_series() {
    let h = Harness::capped(3);
    assert_eq!(h.recorder.max_label_sets(), 3);
    h.record(|| {
        for user in 0..10 {
            metrics::counter!("logins", "user" => user.to_string()).increment(1);
        }
        // A label set admitted before the cap keeps its own series.
        metrics::counter!("logins", "user" => "0").increment(100);
        // The cap is per name: another name starts afresh.
        metrics::counter!("logouts", "user" => "9").increment(1);
    });
    let all = h.collect();
    assert_eq!(
        find(&all, "logins").sorted_sums(),
        vec![
            (pairs(&[(OVERFLOW_ATTRIBUTE, "true")]), 7),
            (pairs(&[("user", "0")]), 101),
            (pairs(&[("user", "1")]), 1),
            (pairs(&[("user", "2")]), 1),
        ]
    );
    assert_eq!(
        find(&all, "logouts").sums(),
        &[(pairs(&[("user", "9")]), 1)]
    );
}

#[test]
fn past_the_cap_gauges_are_dropped_and_histograms_fold_every_one_counted() {
    let h = Harness::capped(1);
    h.record(|| {
        metrics::gauge!("g", "k" => "a").set(1.0);
        metrics::gauge!("g", "k" => "b").set(2.0);
        metrics::gauge!("g", "k" => "c").increment(5.0);
        metrics::histogram!("h", "k" => "a").record(1.0);
        metrics::histogram!("h", "k" => "b").record(2.0);
        metrics::histogram!("h", "k" => "c").record(3.0);
        metrics::counter!("c", "k" => "a").absolute(10);
        metrics::counter!("c", "k" => "b").absolute(10);
        metrics::counter!("c", "k" => "b").absolute(10);
        metrics::counter!("c", "k" => "c").increment(4);
    });
    let all = h.collect();
    // No one value stands for "b" and "c" together: only "a" is exported.
    assert_eq!(find(&all, "g").gauges(), &[(pairs(&[("k", "a")]), 1.0)]);
    let overflow = find(&all, "h")
        .histograms()
        .iter()
        .find(|p| p.0 == pairs(&[(OVERFLOW_ATTRIBUTE, "true")]))
        .unwrap();
    assert_eq!((overflow.1, overflow.2), (2, 5.0));
    // Increments past the cap add up; absolutes past it are dropped.
    assert_eq!(
        find(&all, "c").sorted_sums(),
        vec![
            (pairs(&[("k", "a")]), 10),
            (pairs(&[(OVERFLOW_ATTRIBUTE, "true")]), 4),
        ]
    );
    assert_eq!(
        find(&all, "scalewatch.sdk.overflow").sorted_sums(),
        vec![
            (pairs(&[("scalewatch.sdk.signal", "c")]), 3),
            (pairs(&[("scalewatch.sdk.signal", "g")]), 2),
            (pairs(&[("scalewatch.sdk.signal", "h")]), 2),
        ]
    );
}

#[test]
fn zero_label_sets_is_rejected() {
    let provider = SdkMeterProvider::builder().build();
    let err = OtelRecorder::builder(provider.meter("t"))
        .max_label_sets(0)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroMaxLabelSets));
    assert!(err
        .to_string()
        .starts_with("max_label_sets must be at least 1"));
    let default = OtelRecorder::new(provider.meter("t"));
    assert_eq!(default.max_label_sets(), DEFAULT_MAX_LABEL_SETS);
}

#[test]
fn concurrent_recording_from_four_threads_sums_exactly() {
    const THREADS: u64 = 4;
    const ITERATIONS: u64 = 10_000;
    let h = Harness::new();
    let recorder = &h.recorder;
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    thread::scope(|s| {
        for t in 0..THREADS {
            let barrier = Arc::clone(&barrier);
            s.spawn(move || {
                with_local_recorder(recorder, || {
                    // Half the threads register per call (the macro path), half keep a handle.
                    let counter = metrics::counter!("ops", "kind" => "shared");
                    let gauge = metrics::gauge!("inflight");
                    let hist = metrics::histogram!("work");
                    barrier.wait();
                    for i in 0..ITERATIONS {
                        if t % 2 == 0 {
                            metrics::counter!("ops", "kind" => "shared").increment(1);
                            metrics::counter!("ops.absolute").absolute(i + 1);
                        } else {
                            counter.increment(1);
                        }
                        gauge.increment(1.0);
                        hist.record(1.0);
                        gauge.decrement(1.0);
                        gauge.increment(1.0);
                    }
                });
            });
        }
    });
    let all = h.collect();
    assert_eq!(
        find(&all, "ops").sums(),
        &[(pairs(&[("kind", "shared")]), THREADS * ITERATIONS)]
    );
    // Concurrent absolute readings of the same source export its maximum, once.
    assert_eq!(find(&all, "ops.absolute").sum(), ITERATIONS);
    // Every thread leaves +1 per iteration; the exported last value is the true final value.
    assert_eq!(
        find(&all, "inflight").gauge(),
        (THREADS * ITERATIONS) as f64
    );
    let work = find(&all, "work");
    let (_, count, sum, _) = &work.histograms()[0];
    assert_eq!(*count, THREADS * ITERATIONS);
    assert_eq!(*sum, (THREADS * ITERATIONS) as f64);
}

#[test]
fn recorder_debug_is_informative() {
    let h = Harness::new();
    h.record(|| metrics::counter!("a").increment(1));
    let debug = format!("{:?}", h.recorder);
    assert!(debug.contains("OtelRecorder"), "{debug}");
    assert!(debug.contains("max_label_sets: 1000"), "{debug}");
    assert!(debug.contains("counters: 1"), "{debug}");
}

#[test]
fn a_poisoned_lock_is_recovered() {
    let h = Harness::new();
    let recorder = &h.recorder;
    // Poison the registration lock by panicking while holding it.
    let result = thread::scope(|s| {
        s.spawn(|| {
            let _guard = recorder.state.lock();
            panic!("poison the lock");
        })
        .join()
    });
    assert!(result.is_err());
    assert!(recorder.state.is_poisoned());
    h.record(|| metrics::counter!("after.poison").increment(3));
    assert_eq!(h.metric("after.poison").sum(), 3);
}
