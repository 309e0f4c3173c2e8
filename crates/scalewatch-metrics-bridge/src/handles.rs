//! The hot path: `metrics` handle implementations over pre-bound OpenTelemetry instruments.
//!
//! Each handle is one series (one metric name with one attribute set). Recording
//! touches only atomics and the bound instrument; no lock, no attribute lookup.
//!
//! Label sets past a name's cap get handles of their own kind ([`OverflowHandle`] for
//! counters and histograms, [`DroppedGaugeHandle`] for gauges), so that the series under
//! the cap pay nothing for the overflow's rules.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn};
use opentelemetry::metrics::{BoundCounter, BoundGauge, BoundHistogram};

/// A `metrics` counter series backed by a bound `u64` OpenTelemetry counter.
#[derive(Debug)]
pub(crate) struct CounterHandle {
    bound: BoundCounter<u64>,
    /// The running total of this series as `metrics` sees it: increments plus
    /// whatever `absolute` raised it to. Wraps at `u64::MAX` like `metrics`'s own
    /// atomic counters.
    total: AtomicU64,
}

impl CounterHandle {
    pub(crate) fn new(bound: BoundCounter<u64>) -> Self {
        Self {
            bound,
            total: AtomicU64::new(0),
        }
    }
}

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
        self.bound.add(value);
    }

    fn absolute(&self, value: u64) {
        // `fetch_max` makes concurrent and out-of-order `absolute` calls safe:
        // every unit between the old and the new total is exported exactly once,
        // and an older (smaller) value exports nothing.
        let previous = self.total.fetch_max(value, Ordering::Relaxed);
        if value > previous {
            self.bound.add(value - previous);
        }
    }
}

/// A `metrics` gauge series backed by a bound `f64` OpenTelemetry gauge.
#[derive(Debug)]
pub(crate) struct GaugeHandle {
    bound: BoundGauge<f64>,
    /// The current value, as `f64` bits.
    bits: AtomicU64,
}

impl GaugeHandle {
    pub(crate) fn new(bound: BoundGauge<f64>) -> Self {
        Self {
            bound,
            bits: AtomicU64::new(0.0_f64.to_bits()),
        }
    }

    /// Applies `f` to the current value with a CAS loop, then publishes the result.
    fn update(&self, f: impl Fn(f64) -> f64) {
        let mut current = self.bits.load(Ordering::Acquire);
        let next = loop {
            let next = f(f64::from_bits(current)).to_bits();
            match self.bits.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break next,
                Err(actual) => current = actual,
            }
        };
        self.publish(next);
    }

    /// Records `bits` into the OpenTelemetry gauge, and keeps recording until the
    /// value recorded is the current one.
    ///
    /// Two threads can update the atomic in one order and record in the other;
    /// re-checking after each record means the last record made by anyone is
    /// the value the atomic holds, so the exported last value converges to the
    /// true value as soon as updates stop.
    fn publish(&self, mut bits: u64) {
        loop {
            self.bound.record(f64::from_bits(bits));
            let latest = self.bits.load(Ordering::Acquire);
            if latest == bits {
                return;
            }
            bits = latest;
        }
    }
}

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.update(|current| current + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|current| current - value);
    }

    fn set(&self, value: f64) {
        let bits = value.to_bits();
        self.bits.store(bits, Ordering::Release);
        self.publish(bits);
    }
}

/// A `metrics` histogram series backed by a bound `f64` OpenTelemetry histogram.
#[derive(Debug)]
pub(crate) struct HistogramHandle {
    bound: BoundHistogram<f64>,
}

impl HistogramHandle {
    pub(crate) fn new(bound: BoundHistogram<f64>) -> Self {
        Self { bound }
    }
}

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.bound.record(value);
    }
}

/// Every counter or histogram label set of one name past the cap: one shared handle,
/// recording into the name's overflow series `B`, and counting each measurement in
/// `scalewatch.sdk.overflow`.
///
/// Counter increments are deltas, so the overflow series is exactly the sum of every
/// overflowed label set's increments. `absolute` sets one label set's total, which can only
/// be turned into a delta against that label set's previous total: keeping it would mean
/// keeping state for every label set past the cap, the memory the cap exists to bound, and
/// without it an `absolute` would be added again each time it is repeated. So `absolute`
/// on an overflowed label set is dropped, and only counted.
///
/// Histogram samples of all of them are recorded into the overflow series, so its count
/// and sum are exact.
#[derive(Debug)]
pub(crate) struct OverflowHandle<B> {
    bound: B,
    overflowed: BoundCounter<u64>,
}

/// The overflow handle of a counter name.
pub(crate) type OverflowCounterHandle = OverflowHandle<BoundCounter<u64>>;

/// The overflow handle of a histogram name.
pub(crate) type OverflowHistogramHandle = OverflowHandle<BoundHistogram<f64>>;

impl<B> OverflowHandle<B> {
    /// `bound` is the overflow series, `overflowed` the name's `scalewatch.sdk.overflow`.
    pub(crate) fn new(bound: B, overflowed: BoundCounter<u64>) -> Self {
        Self { bound, overflowed }
    }
}

impl CounterFn for OverflowCounterHandle {
    fn increment(&self, value: u64) {
        self.bound.add(value);
        self.overflowed.add(1);
    }

    fn absolute(&self, _value: u64) {
        self.overflowed.add(1);
    }
}

impl HistogramFn for OverflowHistogramHandle {
    fn record(&self, value: f64) {
        self.bound.record(value);
        self.overflowed.add(1);
    }
}

/// Every gauge label set of one name past the cap. A gauge's value belongs to its label
/// set: no sum or last value of several label sets means anything, so these measurements
/// are dropped, and counted in `scalewatch.sdk.overflow`.
#[derive(Debug)]
pub(crate) struct DroppedGaugeHandle {
    overflowed: BoundCounter<u64>,
}

impl DroppedGaugeHandle {
    /// `overflowed` is the name's `scalewatch.sdk.overflow`.
    pub(crate) fn new(overflowed: BoundCounter<u64>) -> Self {
        Self { overflowed }
    }
}

impl GaugeFn for DroppedGaugeHandle {
    fn increment(&self, _value: f64) {
        self.overflowed.add(1);
    }

    fn decrement(&self, _value: f64) {
        self.overflowed.add(1);
    }

    fn set(&self, _value: f64) {
        self.overflowed.add(1);
    }
}
