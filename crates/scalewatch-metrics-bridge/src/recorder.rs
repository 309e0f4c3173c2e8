//! [`OtelRecorder`], its builder, and the registration (cold) path.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use opentelemetry::metrics::{BoundCounter, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::catalog::{self, attr};

use crate::handles::{
    CounterHandle, DroppedGaugeHandle, GaugeHandle, HistogramHandle, OverflowCounterHandle,
    OverflowHandle, OverflowHistogramHandle,
};
use crate::names::{sanitize_name, ucum};

/// The default cap on distinct label sets per metric name; see
/// [`OtelRecorderBuilder::max_label_sets`].
pub const DEFAULT_MAX_LABEL_SETS: usize = 1000;

/// The attribute (set to `true`) of the one series that collects every label set
/// over the cap, the same key the OpenTelemetry SDK uses for its own overflow.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// Bucket boundaries for histograms described in [`Unit::Seconds`]: the
/// OpenTelemetry semantic-convention advice for durations. The SDK default
/// boundaries (0 to 10 000) are meant for milliseconds and would put almost every
/// duration in seconds into the first bucket.
const SECONDS_BOUNDARIES: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A [`metrics::Recorder`] that forwards every measurement to an OpenTelemetry
/// [`Meter`].
///
/// Build it with [`OtelRecorder::new`] or [`OtelRecorder::builder`], then hand
/// it to [`metrics::set_global_recorder`] (applications) or
/// [`metrics::with_local_recorder`] (tests). The library installs nothing
/// globally itself.
///
/// See the [crate documentation](crate) for how names, labels, units and
/// descriptions are translated.
pub struct OtelRecorder {
    meter: Meter,
    max_label_sets: usize,
    /// `scalewatch.sdk.overflow`: measurements made past a name's cap.
    overflowed: opentelemetry::metrics::Counter<u64>,
    pub(crate) state: Mutex<State>,
}

impl OtelRecorder {
    /// A recorder forwarding to `meter`, with the default cap of
    /// [`DEFAULT_MAX_LABEL_SETS`] label sets per metric name.
    pub fn new(meter: Meter) -> Self {
        Self::with_limit(meter, DEFAULT_MAX_LABEL_SETS)
    }

    /// A builder for a recorder forwarding to `meter`, to change the defaults.
    pub fn builder(meter: Meter) -> OtelRecorderBuilder {
        OtelRecorderBuilder {
            meter,
            max_label_sets: DEFAULT_MAX_LABEL_SETS,
        }
    }

    fn with_limit(meter: Meter, max_label_sets: usize) -> Self {
        Self {
            overflowed: catalog::SDK_OVERFLOW.u64_counter(&meter),
            meter,
            max_label_sets,
            state: Mutex::new(State::default()),
        }
    }

    /// The `scalewatch.sdk.overflow` series of the metric `name` (sanitised).
    fn overflowed(&self, name: &str) -> BoundCounter<u64> {
        self.overflowed
            .bind(&[KeyValue::new(attr::SDK_SIGNAL, name.to_owned())])
    }

    /// The overflow handle of the metric `name` (sanitised), recording into `bound`, the
    /// name's overflow series.
    fn overflow<B>(&self, bound: B, name: &str) -> OverflowHandle<B> {
        OverflowHandle::new(bound, self.overflowed(name))
    }

    /// The cap on distinct label sets per metric name this recorder enforces.
    pub fn max_label_sets(&self) -> usize {
        self.max_label_sets
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing in the state can be left half-updated by a panic that matters
        // for correctness (each map insert is atomic), so a poisoned lock is
        // simply taken over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for OtelRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("OtelRecorder")
            .field("meter", &self.meter)
            .field("max_label_sets", &self.max_label_sets)
            .field("counters", &state.counters.families.len())
            .field("gauges", &state.gauges.families.len())
            .field("histograms", &state.histograms.families.len())
            .finish()
    }
}

/// `builder` with the unit and description that `describe_*` gave its name, if any;
/// `on_unit` may add to it for that unit (a histogram's buckets for seconds).
macro_rules! described {
    ($builder:expr, $description:expr $(, |$b:ident, $u:ident| $on_unit:expr)?) => {{
        let mut builder = $builder;
        if let Some(d) = $description {
            if let Some(unit) = d.unit {
                builder = builder.with_unit(ucum(unit));
                $(
                    let ($b, $u) = (builder, unit);
                    builder = $on_unit;
                )?
            }
            if !d.text.is_empty() {
                builder = builder.with_description(d.text.clone());
            }
        }
        builder
    }};
}

impl Recorder for OtelRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.state().counters.describe(&key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.state().gauges.describe(&key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.state().histograms.describe(&key, unit, description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        let handle = self.state().counters.handle(
            key,
            self.max_label_sets,
            |name, description| described!(self.meter.u64_counter(name), description).build(),
            |instrument, attributes| CounterHandle::new(instrument.bind(attributes)),
            |instrument, name| self.overflow(instrument.bind(&overflow_attributes()), name),
        );
        handle.either(Counter::from_arc, Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        let handle = self.state().gauges.handle(
            key,
            self.max_label_sets,
            |name, description| described!(self.meter.f64_gauge(name), description).build(),
            |instrument, attributes| GaugeHandle::new(instrument.bind(attributes)),
            |_, name| DroppedGaugeHandle::new(self.overflowed(name)),
        );
        handle.either(Gauge::from_arc, Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let handle = self.state().histograms.handle(
            key,
            self.max_label_sets,
            |name, description| {
                described!(
                    self.meter.f64_histogram(name),
                    description,
                    |builder, unit| {
                        if unit == Unit::Seconds {
                            builder.with_boundaries(SECONDS_BOUNDARIES.to_vec())
                        } else {
                            builder
                        }
                    }
                )
                .build()
            },
            |instrument, attributes| HistogramHandle::new(instrument.bind(attributes)),
            |instrument, name| self.overflow(instrument.bind(&overflow_attributes()), name),
        );
        handle.either(Histogram::from_arc, Histogram::from_arc)
    }
}

/// Configures an [`OtelRecorder`]; made by [`OtelRecorder::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct OtelRecorderBuilder {
    meter: Meter,
    max_label_sets: usize,
}

impl OtelRecorderBuilder {
    /// Caps the distinct label sets kept per metric name (default
    /// [`DEFAULT_MAX_LABEL_SETS`]).
    ///
    /// Once a metric name has `n` label sets, further label sets of that name
    /// are past the cap, and keep their meaning as far as one shared series can:
    ///
    /// - counter increments add up in one extra series whose only attribute is
    ///   [`OVERFLOW_ATTRIBUTE`]` = true` (the exact sum of every overflowed label
    ///   set's increments); `Counter::absolute` on them is dropped, as a total
    ///   cannot become a delta without per-label-set state;
    /// - gauges are dropped: no value of one series means anything for several;
    /// - histogram samples go to the overflow series (exact count and sum).
    ///
    /// Every measurement past the cap, folded or dropped, is counted in
    /// `scalewatch.sdk.overflow` with `scalewatch.sdk.signal` = the metric's
    /// (sanitised) name. A metric name exports at most `n + 1` series. Counters,
    /// gauges and histograms are capped separately. Keep `n` below the SDK's own
    /// cardinality limit (2000 by default) or the SDK will start folding series
    /// first.
    pub fn max_label_sets(mut self, n: usize) -> Self {
        self.max_label_sets = n;
        self
    }

    /// Checks the configuration and builds the recorder.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroMaxLabelSets`] when the label-set cap is 0.
    pub fn build(self) -> Result<OtelRecorder, BuildError> {
        if self.max_label_sets == 0 {
            return Err(BuildError::ZeroMaxLabelSets);
        }
        Ok(OtelRecorder::with_limit(self.meter, self.max_label_sets))
    }
}

/// Why [`OtelRecorderBuilder::build`] refused a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The label-set cap was 0, which would fold every measurement into the
    /// overflow series.
    #[error("max_label_sets must be at least 1; pass a positive limit or keep the default (1000)")]
    ZeroMaxLabelSets,
}

#[derive(Debug)]
struct Description {
    unit: Option<Unit>,
    text: String,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    counters: Registry<opentelemetry::metrics::Counter<u64>, CounterHandle, OverflowCounterHandle>,
    gauges: Registry<opentelemetry::metrics::Gauge<f64>, GaugeHandle, DroppedGaugeHandle>,
    histograms:
        Registry<opentelemetry::metrics::Histogram<f64>, HistogramHandle, OverflowHistogramHandle>,
}

/// The attributes of a name's overflow series.
fn overflow_attributes() -> [KeyValue; 1] {
    [KeyValue::new(OVERFLOW_ATTRIBUTE, true)]
}

/// A registered handle: one series under the cap, or the name's overflow handle.
enum Handle<H, O> {
    Series(Arc<H>),
    Overflow(Arc<O>),
}

impl<H, O> Handle<H, O> {
    /// The handle, turned into `T` by `series` or by `overflow` as it is one or the other.
    fn either<T>(self, series: impl FnOnce(Arc<H>) -> T, overflow: impl FnOnce(Arc<O>) -> T) -> T {
        match self {
            Self::Series(handle) => series(handle),
            Self::Overflow(handle) => overflow(handle),
        }
    }
}

/// The descriptions, instruments and series of one kind: series handles `H`, overflow
/// handles `O`.
#[derive(Debug)]
struct Registry<I, H, O> {
    /// What `describe_*` of this kind said. Keyed by the sanitised name, so a describe
    /// and a register of two spellings that sanitise to the same name meet.
    descriptions: HashMap<String, Description>,
    /// Fast path: the `metrics` key as the application spelled it (its hash is
    /// precomputed, so a hit costs no allocation). Keys that landed in the
    /// overflow series are never stored here, which keeps this map bounded.
    by_key: HashMap<Key, Arc<H>>,
    /// Sanitised metric name → instrument and series.
    families: HashMap<String, Family<I, H, O>>,
}

impl<I, H, O> Default for Registry<I, H, O> {
    fn default() -> Self {
        Self {
            descriptions: HashMap::new(),
            by_key: HashMap::new(),
            families: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct Family<I, H, O> {
    instrument: I,
    /// Sorted, de-duplicated labels → series.
    series: HashMap<Vec<(String, String)>, Arc<H>>,
    /// Every label set past the cap, made on the first one.
    overflow: Option<Arc<O>>,
}

impl<I, H, O> Registry<I, H, O> {
    /// Keeps the unit and description of the metric `key` for when its instrument is
    /// created.
    fn describe(&mut self, key: &KeyName, unit: Option<Unit>, description: SharedString) {
        let description = Description {
            unit,
            text: description.into_owned(),
        };
        self.descriptions
            .insert(sanitize_name(key.as_str()), description);
    }

    /// The series for `key`, creating the instrument (by `create`, from the sanitised
    /// name and its description) and binding the series on first use; past the cap, the
    /// name's overflow handle, made by `overflow` from the instrument and the sanitised
    /// name on first use.
    fn handle(
        &mut self,
        key: &Key,
        max_label_sets: usize,
        create: impl FnOnce(String, Option<&Description>) -> I,
        bind: impl Fn(&I, &[KeyValue]) -> H,
        overflow: impl FnOnce(&I, &str) -> O,
    ) -> Handle<H, O> {
        if let Some(handle) = self.by_key.get(key) {
            return Handle::Series(Arc::clone(handle));
        }

        let family = self
            .families
            .entry(sanitize_name(key.name()))
            .or_insert_with_key(|name| Family {
                instrument: create(name.clone(), self.descriptions.get(name)),
                series: HashMap::new(),
                overflow: None,
            });

        let labels = label_set(key);
        if let Some(handle) = family.series.get(&labels) {
            let handle = Arc::clone(handle);
            self.by_key.insert(key.clone(), Arc::clone(&handle));
            return Handle::Series(handle);
        }

        if family.series.len() < max_label_sets {
            let attributes: Vec<KeyValue> = labels
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect();
            let handle = Arc::new(bind(&family.instrument, &attributes));
            family.series.insert(labels, Arc::clone(&handle));
            self.by_key.insert(key.clone(), Arc::clone(&handle));
            return Handle::Series(handle);
        }

        let instrument = &family.instrument;
        let overflow = family
            .overflow
            .get_or_insert_with(|| Arc::new(overflow(instrument, &sanitize_name(key.name()))));
        Handle::Overflow(Arc::clone(overflow))
    }
}

/// The labels of `key`, sorted by name; for a repeated label name the last value wins.
fn label_set(key: &Key) -> Vec<(String, String)> {
    key.labels()
        .map(|label| (label.key(), label.value()))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
