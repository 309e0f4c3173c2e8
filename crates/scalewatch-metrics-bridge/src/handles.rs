//! The hot path: `metrics` handle implementations over pre-bound OpenTelemetry instruments.
//!
//! Each handle is one series (one metric name with one attribute set). Recording
//! touches only atomics and the bound instrument; no lock, no attribute lookup.

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
