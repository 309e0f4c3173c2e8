//! The signal catalog: every metric scalewatch emits, with its instrument, unit,
//! description and buckets, and every attribute key, grouped by family. Call sites refer
//! to these constants; no metric name is spelled anywhere else, and the crates that record
//! a family re-export it as their own `catalog` module (`scalewatch_sync::catalog` is
//! [`lock`] and [`pool`]).
//!
//! | family | prefix | recorded by |
//! |---|---|---|
//! | [`http`] | `http.` | `scalewatch-tower` |
//! | [`rpc`] | `rpc.` | `scalewatch-tower` |
//! | [`tier`] | `scalewatch.tier.` | every [`Tier`](crate::Tier) |
//! | [`sdk`] | `scalewatch.sdk.` | cardinality caps |
//! | [`lock`], [`pool`] | `scalewatch.lock.`, `scalewatch.pool.` | `scalewatch-sync` |
//! | [`state`], [`queue`] | `scalewatch.state.`, `scalewatch.queue.` | `scalewatch-state` |
//! | [`runtime`], [`job`] | `scalewatch.runtime.`, `scalewatch.job.` | `scalewatch-runtime` |
//! | [`capacity`] | `scalewatch.capacity.`, `scalewatch.resource.` | `scalewatch-capacity` |
//!
//! [`FAMILIES`] lists them all. The signals and attribute keys of this crate's own
//! instruments (http, rpc, tier, sdk) are also re-exported here at the top, with [`ALL`]
//! and [`attr`] covering those four families.
//!
//! Everything here is a constant or a pure function; the instrument builders register
//! on the [`Meter`] they are given and touch no global.

use opentelemetry::metrics::{
    Counter, Gauge, Histogram, Meter, ObservableCounter, ObservableGauge, ObservableUpDownCounter,
    UpDownCounter,
};
use opentelemetry::KeyValue;
use std::sync::Arc;

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
///
/// Its builders (`f64_histogram`, `u64_counter`, ...) create the instrument on the meter
/// they are given, with the signal's unit, description and buckets; each one is for one
/// [`InstrumentKind`], which debug builds assert (release builds build the instrument
/// asked for anyway).
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
    /// A catalog entry for a counter, up-down counter or gauge. scalewatch's own signals
    /// are declared in this catalog; an application that adds signals of its own declares
    /// them with this, and checks them with [`check`].
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

    /// A catalog entry for a counter (a monotonic sum).
    pub const fn counter(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Signal {
        Signal::new(name, InstrumentKind::Counter, unit, description)
    }

    /// A catalog entry for an up-down counter (a sum that goes up and down).
    pub const fn up_down_counter(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Signal {
        Signal::new(name, InstrumentKind::UpDownCounter, unit, description)
    }

    /// A catalog entry for a gauge (a last value).
    pub const fn gauge(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Signal {
        Signal::new(name, InstrumentKind::Gauge, unit, description)
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

/// Declares one family's signals, each a `pub const` built by one of [`Signal`]'s
/// constructors (`counter`, `up_down_counter`, `gauge`, `histogram`), and the family's
/// `ALL`: every one of them, in the order declared. `ALL`'s documentation comes first.
///
/// ```text
/// signals! {
///     /// Every lock signal, in catalog order.
///     ALL;
///     /// `scalewatch.lock.waiters`.
///     LOCK_WAITERS = up_down_counter("scalewatch.lock.waiters", "{waiter}", "...");
/// }
/// ```
macro_rules! signals {
    ($(#[$all:meta])* ALL; $($(#[$doc:meta])* $name:ident = $ctor:ident($($arg:expr),+ $(,)?);)+) => {
        $($(#[$doc])* pub const $name: $crate::catalog::Signal =
            $crate::catalog::Signal::$ctor($($arg),+);)+
        $(#[$all])*
        pub const ALL: &[$crate::catalog::Signal] = &[$($name),+];
    };
}

pub mod capacity;
pub mod http;
pub mod job;
pub mod lock;
pub mod pool;
pub mod queue;
pub mod rpc;
pub mod runtime;
pub mod sdk;
pub mod state;
pub mod tier;

pub use http::{
    HTTP_CLIENT_REQUEST_DURATION, HTTP_SERVER_ACTIVE_REQUESTS, HTTP_SERVER_REQUEST_DURATION,
};
pub use rpc::{RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION};
pub use sdk::{OTHER, SDK_OVERFLOW};
pub use tier::{
    TIER_CONCURRENCY, TIER_LIMIT, TIER_QUEUED, TIER_QUEUE_TIME, TIER_REJECTIONS, TIER_UTILIZATION,
};

/// The signals of this crate's own instruments (the [`http`], [`rpc`], [`tier`] and
/// [`sdk`] families), in catalog order. [`FAMILIES`] lists every family.
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

/// The attribute keys of this crate's own signals: those of the [`http`], [`rpc`],
/// [`tier`] and [`sdk`] families, semconv first.
pub mod attr {
    pub use super::http::attr::*;
    pub use super::rpc::attr::*;
    pub use super::sdk::attr::*;
    pub use super::tier::attr::*;
}

/// One family of signals: the constants of one module of this catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Family {
    /// The module's name, e.g. `lock`.
    pub name: &'static str,
    /// The name prefixes its signals are under, e.g. `scalewatch.lock.`.
    pub prefixes: &'static [&'static str],
    /// Its signals, in catalog order (the module's `ALL`).
    pub signals: &'static [Signal],
}

const fn family(
    name: &'static str,
    prefixes: &'static [&'static str],
    signals: &'static [Signal],
) -> Family {
    Family {
        name,
        prefixes,
        signals,
    }
}

/// Every family of the catalog, in catalog order; together they are every signal
/// scalewatch emits ([`every`]).
pub const FAMILIES: &[Family] = &[
    family("http", &["http."], http::ALL),
    family("rpc", &["rpc."], rpc::ALL),
    family("tier", &["scalewatch.tier."], tier::ALL),
    family("sdk", &["scalewatch.sdk."], sdk::ALL),
    family("lock", &["scalewatch.lock."], lock::ALL),
    family("pool", &["scalewatch.pool."], pool::ALL),
    family("state", &["scalewatch.state."], state::ALL),
    family("queue", &["scalewatch.queue."], queue::ALL),
    family("runtime", &["scalewatch.runtime."], runtime::ALL),
    family("job", &["scalewatch.job."], job::ALL),
    family(
        "capacity",
        &["scalewatch.capacity.", "scalewatch.resource."],
        capacity::ALL,
    ),
];

/// Every signal of every family, in catalog order.
pub fn every() -> impl Iterator<Item = &'static Signal> {
    FAMILIES.iter().flat_map(|f| f.signals)
}

/// The signals of `a` followed by those of `b`, as an array for a `const` list that
/// spans two families:
///
/// ```
/// use scalewatch_core::catalog::{self, lock, pool, Signal};
///
/// const SYNC: &[Signal] = &catalog::join::<{ lock::ALL.len() + pool::ALL.len() }>(
///     lock::ALL,
///     pool::ALL,
/// );
/// assert_eq!(SYNC[0], lock::LOCK_ACQUISITIONS);
/// ```
///
/// # Panics
/// Unless `N` is `a.len() + b.len()`; in a `const`, that is a compile error.
pub const fn join<const N: usize>(a: &[Signal], b: &[Signal]) -> [Signal; N] {
    assert!(a.len() + b.len() == N, "N must be a.len() + b.len()");
    let mut out = [Signal::new("", InstrumentKind::Gauge, "", ""); N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

impl Signal {
    fn check(&self, expected: InstrumentKind) {
        debug_assert_eq!(
            self.instrument, expected,
            "{} is a {:?} in the catalog",
            self.name, self.instrument
        );
    }
}

/// The builders of [`Signal`]: each checks the kind (in debug builds) and builds its
/// instrument on the meter with the signal's name, unit and description; histograms also
/// get the catalog's buckets, observable instruments their callback.
macro_rules! builders {
    (
        synchronous { $($(#[$doc:meta])* $name:ident -> $instrument:ty, $kind:ident $(, $boundaries:ident)?;)+ }
        observable {
            $($(#[$odoc:meta])* $oname:ident, $(#[$ofdoc:meta])* $of:ident -> $oinstrument:ty, $okind:ident, $value:ty;)+
        }
    ) => {
        impl Signal {
            $(
                $(#[$doc])*
                pub fn $name(&self, meter: &Meter) -> $instrument {
                    self.check(InstrumentKind::$kind);
                    meter
                        .$name(self.name)
                        .with_unit(self.unit)
                        .with_description(self.description)
                        $(.$boundaries(self.buckets.to_vec()))?
                        .build()
                }
            )+
            $(
                $(#[$odoc])*
                pub fn $oname<F>(&self, meter: &Meter, callback: F) -> $oinstrument
                where
                    F: Fn(&dyn opentelemetry::metrics::AsyncInstrument<$value>)
                        + Send
                        + Sync
                        + 'static,
                {
                    self.check(InstrumentKind::$okind);
                    meter
                        .$oname(self.name)
                        .with_unit(self.unit)
                        .with_description(self.description)
                        .with_callback(callback)
                        .build()
                }

                $(#[$ofdoc])*
                ///
                /// `source` is held through a weak reference, so that a dropped source
                /// simply stops reporting; `read` returning `None` skips one collection.
                pub fn $of<T, R>(
                    &self,
                    meter: &Meter,
                    source: &Arc<T>,
                    attributes: &[KeyValue],
                    read: impl Fn(&T) -> R + Send + Sync + 'static,
                ) -> $oinstrument
                where
                    T: Send + Sync + 'static,
                    R: Into<Option<$value>>,
                {
                    let (source, attributes) = (Arc::downgrade(source), attributes.to_vec());
                    self.$oname(meter, move |o| {
                        if let Some(value) = source.upgrade().and_then(|s| read(&s).into()) {
                            o.observe(value, &attributes);
                        }
                    })
                }
            )+
        }
    };
}

builders! {
    synchronous {
        /// Builds the `f64` histogram for this signal, with its catalog buckets.
        f64_histogram -> Histogram<f64>, Histogram, with_boundaries;
        /// Builds the `u64` histogram for this signal (counts, such as items per scan).
        u64_histogram -> Histogram<u64>, Histogram, with_boundaries;
        /// Builds the synchronous counter for this signal.
        u64_counter -> Counter<u64>, Counter;
        /// Builds the synchronous up-down counter for this signal.
        i64_up_down_counter -> UpDownCounter<i64>, UpDownCounter;
        /// Builds the synchronous gauge for this signal.
        f64_gauge -> Gauge<f64>, Gauge;
    }
    observable {
        /// Builds an observable gauge for this signal, read by `callback` at each collection.
        f64_observable_gauge,
        /// Builds an observable gauge for this signal that reports `read(source)` with
        /// `attributes` at each collection.
        f64_observable_gauge_of -> ObservableGauge<f64>, Gauge, f64;
        /// Builds an observable up-down counter for this signal, read by `callback`.
        i64_observable_up_down_counter,
        /// Builds an observable up-down counter for this signal that reports
        /// `read(source)` with `attributes` at each collection.
        i64_observable_up_down_counter_of -> ObservableUpDownCounter<i64>, UpDownCounter, i64;
        /// Builds an observable counter for this signal, read by `callback`.
        u64_observable_counter,
        /// Builds an observable counter for this signal that reports `read(source)` with
        /// `attributes` at each collection.
        u64_observable_counter_of -> ObservableCounter<u64>, Counter, u64;
    }
}

/// The `catalog` module of a crate that records two families of this catalog: their
/// signals, values and attribute keys re-exported, `ALL` (the first family's signals, then
/// the second's), `attr` (both families' keys) and a test that `ALL` follows the rules
/// ([`check`], under the two families' prefixes).
///
/// ```
/// mod catalog {
///     scalewatch_core::family_catalog!(lock, pool);
/// }
/// assert_eq!(catalog::ALL[0], catalog::LOCK_ACQUISITIONS);
/// assert_eq!(catalog::attr::LOCK_NAME, "scalewatch.lock.name");
/// ```
#[macro_export]
macro_rules! family_catalog {
    ($first:ident, $second:ident) => {
        pub use $crate::catalog::$first::*;
        pub use $crate::catalog::$second::*;

        #[doc = concat!(
                                    "Every signal this crate emits, in catalog order: the [`",
                                    stringify!($first),
                                    "`] family, then the [`",
                                    stringify!($second),
                                    "`] family."
                                )]
        pub const ALL: &[$crate::catalog::Signal] =
            &$crate::catalog::join::<
                { $crate::catalog::$first::ALL.len() + $crate::catalog::$second::ALL.len() },
            >($crate::catalog::$first::ALL, $crate::catalog::$second::ALL);

        #[doc = concat!(
                                    "Attribute keys of the `",
                                    stringify!($first),
                                    "` and `",
                                    stringify!($second),
                                    "` signals."
                                )]
        pub mod attr {
            pub use $crate::catalog::$first::attr::*;
            pub use $crate::catalog::$second::attr::*;
        }

        #[cfg(test)]
        #[test]
        fn the_catalog_follows_the_rules() {
            let prefixes: Vec<&str> = $crate::catalog::FAMILIES
                .iter()
                .filter(|f| [stringify!($first), stringify!($second)].contains(&f.name))
                .flat_map(|f| f.prefixes.iter().copied())
                .collect();
            assert_eq!(prefixes.len(), 2, "{prefixes:?}");
            if let Err(e) = $crate::catalog::check(ALL, &prefixes) {
                panic!("{e}");
            }
        }
    };
}

/// Checks a list of signals against the rules every catalog follows: names unique in the
/// list and under one of `prefixes`, no name taken by a different signal of this catalog
/// ([`every`]; a family's own constants pass), durations in seconds, histograms with
/// ascending buckets and no buckets elsewhere. Meant for tests: a crate or application that
/// declares signals of its own with [`Signal::new`] checks them with it.
pub fn check(signals: &[Signal], prefixes: &[&str]) -> Result<(), String> {
    let mut names: Vec<_> = signals.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != signals.len() {
        return Err("a signal name appears twice".into());
    }
    for s in signals {
        if !prefixes.iter().any(|p| s.name.starts_with(p)) {
            return Err(format!("{} is outside {prefixes:?}", s.name));
        }
        if every().any(|c| c.name == s.name && c != s) {
            return Err(format!(
                "{} is already in the catalog as another signal",
                s.name
            ));
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
    fn every_family_follows_the_rules() {
        check(ALL, &["http.", "rpc.", "scalewatch."]).unwrap();
        for family in FAMILIES {
            check(family.signals, family.prefixes)
                .unwrap_or_else(|e| panic!("family {}: {e}", family.name));
        }
        let every: Vec<Signal> = every().copied().collect();
        check(&every, &["http.", "rpc.", "scalewatch."]).unwrap();
        assert_eq!(
            every.len(),
            FAMILIES.iter().map(|f| f.signals.len()).sum::<usize>()
        );
    }

    #[test]
    fn check_rejects_what_breaks_the_rules() {
        let own = Signal::new("scalewatch.own", InstrumentKind::Gauge, "1", "");
        assert!(check(&[own], &["scalewatch."]).is_ok());
        assert!(check(&[own, own], &["scalewatch."]).is_err(), "duplicates");
        let taken = Signal::new("scalewatch.tier.limit", InstrumentKind::Gauge, "1", "other");
        assert!(check(&[taken], &["scalewatch."]).is_err(), "taken");
        let taken = Signal::new("scalewatch.lock.waiters", InstrumentKind::Gauge, "1", "");
        assert!(
            check(&[taken], &["scalewatch."]).is_err(),
            "taken by a family"
        );
        assert!(check(&[own], &["other."]).is_err(), "outside the prefix");
        let ms = Signal::new("x.y", InstrumentKind::Gauge, "ms", "");
        assert!(check(&[ms], &["x."]).is_err());
    }

    #[test]
    fn the_top_level_lists_the_core_families() {
        let core: Vec<Signal> = [http::ALL, rpc::ALL, tier::ALL, sdk::ALL]
            .concat()
            .into_iter()
            .collect();
        assert_eq!(ALL.len(), core.len());
        assert!(ALL.iter().all(|s| core.contains(s)));
        assert_eq!(attr::ERROR_TYPE, rpc::attr::ERROR_TYPE);
        assert_eq!(capacity::attr::TIER_NAME, attr::TIER_NAME);
    }

    #[test]
    fn join_keeps_both_lists_in_order() {
        const JOINED: [Signal; 3] = join::<3>(rpc::ALL, sdk::ALL);
        assert_eq!(JOINED, [rpc::ALL[0], rpc::ALL[1], sdk::SDK_OVERFLOW]);
    }

    #[test]
    fn wait_buckets_reach_down_to_a_microsecond() {
        assert_eq!(WAIT_BUCKETS[0], 0.000_001);
        assert_eq!(DURATION_BUCKETS.len(), 14);
    }
}
