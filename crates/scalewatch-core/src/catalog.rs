//! The signal catalog: every metric scalewatch emits, with its instrument, unit and
//! description, and every attribute key. Call sites refer to these constants; no
//! metric name is spelled anywhere else.

use opentelemetry::metrics::{
    Counter, Gauge, Histogram, Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter,
    UpDownCounter,
};

/// Which OpenTelemetry instrument a signal is recorded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrumentKind {
    /// A monotonic sum.
    Counter,
    /// A sum that goes up and down (in-flight work).
    UpDownCounter,
    /// A last-value measurement.
    Gauge,
    /// A distribution with explicit bucket boundaries.
    Histogram,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The metric name, e.g. `http.server.request.duration`.
    pub name: &'static str,
    /// The instrument it is recorded with.
    pub instrument: InstrumentKind,
    /// The UCUM unit, e.g. `s` or `{request}`.
    pub unit: &'static str,
    /// What it means, exported as the metric description.
    pub description: &'static str,
    /// Explicit histogram bucket boundaries (empty for other instruments).
    pub buckets: &'static [f64],
}

/// Duration buckets advised by the OpenTelemetry semantic conventions, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Buckets for waits that are usually short (queue admission, lock waits), in seconds:
/// from 1 µs, then the semconv duration buckets.
pub const WAIT_BUCKETS: &[f64] = &[
    0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Signal {
    /// A catalog entry for a counter, up-down counter or gauge. Crates that add signals
    /// declare them with this in their own catalog module.
    pub const fn new(
        name: &'static str,
        instrument: InstrumentKind,
        unit: &'static str,
        description: &'static str,
    ) -> Signal {
        Signal {
            name,
            instrument,
            unit,
            description,
            buckets: &[],
        }
    }

    /// A catalog entry for a histogram with explicit bucket boundaries.
    pub const fn histogram(
        name: &'static str,
        unit: &'static str,
        buckets: &'static [f64],
        description: &'static str,
    ) -> Signal {
        Signal {
            name,
            instrument: InstrumentKind::Histogram,
            unit,
            description,
            buckets,
        }
    }
}

const fn signal(
    name: &'static str,
    instrument: InstrumentKind,
    unit: &'static str,
    description: &'static str,
) -> Signal {
    Signal::new(name, instrument, unit, description)
}

const fn histogram(
    name: &'static str,
    unit: &'static str,
    buckets: &'static [f64],
    description: &'static str,
) -> Signal {
    Signal::histogram(name, unit, buckets, description)
}

use InstrumentKind::{Counter as C, Gauge as G, UpDownCounter as U};

/// `http.server.request.duration` (semconv).
pub const HTTP_SERVER_REQUEST_DURATION: Signal = histogram(
    "http.server.request.duration",
    "s",
    DURATION_BUCKETS,
    "Duration of HTTP server requests, until the response body ends.",
);
/// `http.server.active_requests` (semconv).
pub const HTTP_SERVER_ACTIVE_REQUESTS: Signal = signal(
    "http.server.active_requests",
    U,
    "{request}",
    "Number of active HTTP server requests.",
);
/// `rpc.server.call.duration` (semconv).
pub const RPC_SERVER_CALL_DURATION: Signal = histogram(
    "rpc.server.call.duration",
    "s",
    DURATION_BUCKETS,
    "Duration of RPC server calls, until the last message or trailer.",
);
/// `http.client.request.duration` (semconv).
pub const HTTP_CLIENT_REQUEST_DURATION: Signal = histogram(
    "http.client.request.duration",
    "s",
    DURATION_BUCKETS,
    "Duration of HTTP client requests.",
);
/// `rpc.client.call.duration` (semconv).
pub const RPC_CLIENT_CALL_DURATION: Signal = histogram(
    "rpc.client.call.duration",
    "s",
    DURATION_BUCKETS,
    "Duration of RPC client calls.",
);

/// `scalewatch.tier.concurrency`.
pub const TIER_CONCURRENCY: Signal = signal(
    "scalewatch.tier.concurrency",
    U,
    "{request}",
    "Work items in flight in the tier now.",
);
/// `scalewatch.tier.limit`.
pub const TIER_LIMIT: Signal = signal(
    "scalewatch.tier.limit",
    G,
    "{request}",
    "Configured capacity of the tier.",
);
/// `scalewatch.tier.utilization`.
pub const TIER_UTILIZATION: Signal = signal(
    "scalewatch.tier.utilization",
    G,
    "1",
    "Time-averaged concurrency over the interval divided by the limit.",
);
/// `scalewatch.tier.queue.time`.
pub const TIER_QUEUE_TIME: Signal = histogram(
    "scalewatch.tier.queue.time",
    "s",
    WAIT_BUCKETS,
    "Time a work item waited for admission before its work started.",
);
/// `scalewatch.tier.queued`.
pub const TIER_QUEUED: Signal = signal(
    "scalewatch.tier.queued",
    U,
    "{request}",
    "Work items waiting for admission now.",
);
/// `scalewatch.tier.rejections`.
pub const TIER_REJECTIONS: Signal = signal(
    "scalewatch.tier.rejections",
    C,
    "{request}",
    "Work refused by the tier's admission control.",
);

/// `scalewatch.sdk.overflow`.
pub const SDK_OVERFLOW: Signal = signal(
    "scalewatch.sdk.overflow",
    C,
    "{measurement}",
    "Measurements folded into _OTHER by a cardinality cap.",
);

/// Every signal this crate version defines, in catalog order.
pub const ALL: &[Signal] = &[
    HTTP_SERVER_REQUEST_DURATION,
    HTTP_SERVER_ACTIVE_REQUESTS,
    RPC_SERVER_CALL_DURATION,
    HTTP_CLIENT_REQUEST_DURATION,
    RPC_CLIENT_CALL_DURATION,
    TIER_CONCURRENCY,
    TIER_LIMIT,
    TIER_UTILIZATION,
    TIER_QUEUE_TIME,
    TIER_QUEUED,
    TIER_REJECTIONS,
    SDK_OVERFLOW,
];

/// Attribute keys, semconv first, then scalewatch's own.
pub mod attr {
    /// `http.request.method`
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// `http.response.status_code`
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// `http.route`
    pub const HTTP_ROUTE: &str = "http.route";
    /// `url.scheme`
    pub const URL_SCHEME: &str = "url.scheme";
    /// `server.address`
    pub const SERVER_ADDRESS: &str = "server.address";
    /// `server.port`
    pub const SERVER_PORT: &str = "server.port";
    /// `error.type`
    pub const ERROR_TYPE: &str = "error.type";
    /// `rpc.system.name`
    pub const RPC_SYSTEM_NAME: &str = "rpc.system.name";
    /// `rpc.method`
    pub const RPC_METHOD: &str = "rpc.method";
    /// `rpc.status_code`
    pub const RPC_STATUS_CODE: &str = "rpc.status_code";
    /// `scalewatch.tier.name`
    pub const TIER_NAME: &str = "scalewatch.tier.name";
    /// `scalewatch.tier.kind`
    pub const TIER_KIND: &str = "scalewatch.tier.kind";
    /// `scalewatch.rejection.reason`
    pub const REJECTION_REASON: &str = "scalewatch.rejection.reason";
    /// `scalewatch.sdk.signal`
    pub const SDK_SIGNAL: &str = "scalewatch.sdk.signal";
}

/// The value every capped attribute collapses into once its cap is reached.
pub const OTHER: &str = "_OTHER";

impl Signal {
    fn check(&self, expected: InstrumentKind) {
        debug_assert_eq!(
            self.instrument, expected,
            "{} is a {:?} in the catalog",
            self.name, self.instrument
        );
    }

    /// Builds the `f64` histogram for this signal, with its catalog buckets.
    pub fn f64_histogram(&self, meter: &Meter) -> Histogram<f64> {
        self.check(InstrumentKind::Histogram);
        meter
            .f64_histogram(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .with_boundaries(self.buckets.to_vec())
            .build()
    }

    /// Builds the `u64` histogram for this signal (counts, such as items per scan).
    pub fn u64_histogram(&self, meter: &Meter) -> Histogram<u64> {
        self.check(InstrumentKind::Histogram);
        meter
            .u64_histogram(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .with_boundaries(self.buckets.to_vec())
            .build()
    }

    /// Builds the synchronous counter for this signal.
    pub fn u64_counter(&self, meter: &Meter) -> Counter<u64> {
        self.check(InstrumentKind::Counter);
        meter
            .u64_counter(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .build()
    }

    /// Builds the synchronous up-down counter for this signal.
    pub fn i64_up_down_counter(&self, meter: &Meter) -> UpDownCounter<i64> {
        self.check(InstrumentKind::UpDownCounter);
        meter
            .i64_up_down_counter(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .build()
    }

    /// Builds the synchronous gauge for this signal.
    pub fn f64_gauge(&self, meter: &Meter) -> Gauge<f64> {
        self.check(InstrumentKind::Gauge);
        meter
            .f64_gauge(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .build()
    }

    /// Builds an observable gauge for this signal, read by `callback` at each collection.
    pub fn f64_observable_gauge<F>(&self, meter: &Meter, callback: F) -> ObservableGauge<f64>
    where
        F: Fn(&dyn opentelemetry::metrics::AsyncInstrument<f64>) + Send + Sync + 'static,
    {
        self.check(InstrumentKind::Gauge);
        meter
            .f64_observable_gauge(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .with_callback(callback)
            .build()
    }

    /// Builds an observable up-down counter for this signal, read by `callback`.
    pub fn i64_observable_up_down_counter<F>(
        &self,
        meter: &Meter,
        callback: F,
    ) -> ObservableUpDownCounter<i64>
    where
        F: Fn(&dyn opentelemetry::metrics::AsyncInstrument<i64>) + Send + Sync + 'static,
    {
        self.check(InstrumentKind::UpDownCounter);
        meter
            .i64_observable_up_down_counter(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .with_callback(callback)
            .build()
    }

    /// Builds an observable counter for this signal, read by `callback`.
    pub fn u64_observable_counter<F>(&self, meter: &Meter, callback: F) -> ObservableCounter<u64>
    where
        F: Fn(&dyn opentelemetry::metrics::AsyncInstrument<u64>) + Send + Sync + 'static,
    {
        self.check(InstrumentKind::Counter);
        meter
            .u64_observable_counter(self.name)
            .with_unit(self.unit)
            .with_description(self.description)
            .with_callback(callback)
            .build()
    }
}

/// Checks a crate's catalog against the rules every catalog follows: names unique (also
/// against this core catalog) and under `prefix` (or semconv's), durations in seconds,
/// histograms with ascending buckets and no buckets elsewhere. Crates call it from a test.
pub fn check(signals: &[Signal], prefixes: &[&str]) -> Result<(), String> {
    let mut names: Vec<_> = signals.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != signals.len() {
        return Err("a signal name appears twice".into());
    }
    let is_core =
        signals.len() == ALL.len() && signals.iter().zip(ALL).all(|(a, b)| a.name == b.name);
    for s in signals {
        if !prefixes.iter().any(|p| s.name.starts_with(p)) {
            return Err(format!("{} is outside {prefixes:?}", s.name));
        }
        if !is_core && ALL.iter().any(|c| c.name == s.name) {
            return Err(format!("{} is already in the core catalog", s.name));
        }
        if s.unit == "ms" || s.unit.is_empty() {
            return Err(format!("{} needs a UCUM unit (seconds, not ms)", s.name));
        }
        let ascending = s.buckets.windows(2).all(|w| w[0] < w[1]);
        match s.instrument {
            InstrumentKind::Histogram if s.buckets.is_empty() || !ascending => {
                return Err(format!("{} needs ascending buckets", s.name))
            }
            InstrumentKind::Histogram => {}
            _ if !s.buckets.is_empty() => {
                return Err(format!("{} is not a histogram but has buckets", s.name))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_catalog_follows_the_rules() {
        check(ALL, &["http.", "rpc.", "scalewatch."]).unwrap();
        let own = Signal::new("scalewatch.own", InstrumentKind::Gauge, "1", "");
        assert!(check(&[own], &["scalewatch."]).is_ok());
        assert!(check(&[own, own], &["scalewatch."]).is_err(), "duplicates");
        assert!(
            check(&[TIER_LIMIT], &["scalewatch."]).is_err(),
            "taken by core"
        );
        assert!(check(&[own], &["other."]).is_err(), "outside the prefix");
        let ms = Signal::new("x.y", InstrumentKind::Gauge, "ms", "");
        assert!(check(&[ms], &["x."]).is_err());
    }

    #[test]
    fn wait_buckets_reach_down_to_a_microsecond() {
        assert_eq!(WAIT_BUCKETS[0], 0.000_001);
        assert_eq!(DURATION_BUCKETS.len(), 14);
    }
}
