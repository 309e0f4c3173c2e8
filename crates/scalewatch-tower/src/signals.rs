//! The server and client tiers' instruments, resolved once: per route (server HTTP), per
//! server address (client HTTP) and per method (gRPC, both sides), each with a small
//! lock-free cache of pre-bound histogram series.

use crate::classify::{Failure, METHODS};
use crate::grpc::Code;
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::{BoundHistogram, Histogram, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::cardinality::{CappedTable, Overflow};
use scalewatch_core::catalog::{self, attr, Signal};
use scalewatch_core::slot::{self, AtomicU64};
use std::sync::atomic::{AtomicU16, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Distinct series one route or method keeps pre-bound; rarer combinations are recorded
/// through the unbound (slower, equally correct) path.
const BOUND_SERIES: usize = 16;

/// Pre-bound series kept inline: most routes and methods only ever see one or two
/// (a success, and one error or not-found).
const INLINE_SERIES: usize = 2;

impl Failure {
    /// The failure's part of a series key.
    fn key(self) -> u32 {
        match self {
            Failure::None => 0,
            Failure::Status => 1,
            Failure::Service(_) => 2,
            Failure::Body(_) => 3,
            Failure::Cancelled => 4,
            Failure::Panicked => 5,
        }
    }

    /// The `error.type` attribute, if any; `status` names a [`Failure::Status`].
    fn error_type(self, status: &str) -> Option<KeyValue> {
        let v: opentelemetry::Value = match self {
            Failure::None => return None,
            Failure::Status => status.to_owned().into(),
            Failure::Service(t) | Failure::Body(t) => t().into(),
            Failure::Cancelled => "cancelled".into(),
            Failure::Panicked => "panic".into(),
        };
        Some(KeyValue::new(attr::ERROR_TYPE, v))
    }
}

/// A pre-bound series and the key it was bound for.
type Slot = OnceLock<(u32, BoundHistogram<f64>)>;

/// Pre-bound series of one histogram for one route or method: the first
/// [`INLINE_SERIES`] inline, the rest in a block allocated when a third series appears, so
/// that the many routes that only ever see one or two series stay small.
pub(crate) struct SeriesCache {
    base: Box<[KeyValue]>,
    inline: [Slot; INLINE_SERIES],
    spill: OnceLock<Box<[Slot; BOUND_SERIES - INLINE_SERIES]>>,
}

impl SeriesCache {
    pub(crate) fn new(base: Vec<KeyValue>) -> Self {
        Self {
            base: base.into_boxed_slice(),
            inline: std::array::from_fn(|_| OnceLock::new()),
            spill: OnceLock::new(),
        }
    }

    /// Records `value` into the series `key`, whose attributes `attrs` builds (on first
    /// use only, or on every use once the cache is full).
    #[inline]
    pub(crate) fn record(
        &self,
        histogram: &Histogram<f64>,
        key: u32,
        value: f64,
        attrs: impl FnOnce(&[KeyValue]) -> Vec<KeyValue>,
    ) {
        let mut build = Some(attrs);
        if self.record_in(&self.inline, histogram, key, value, &mut build) {
            return;
        }
        let spill = self
            .spill
            .get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        if self.record_in(&spill[..], histogram, key, value, &mut build) {
            return;
        }
        // Every slot holds another series (our builder cannot have run, or its slot would
        // have matched): the unbound path records just as exactly, only slower.
        let attrs = build.map_or_else(Vec::new, |f| sorted(f(&self.base)));
        histogram.record(value, &attrs);
    }

    /// Records into the slot of `key` among `slots`, binding the first empty one to it;
    /// `false` when every slot holds another series.
    #[inline]
    fn record_in<F: FnOnce(&[KeyValue]) -> Vec<KeyValue>>(
        &self,
        slots: &[Slot],
        histogram: &Histogram<f64>,
        key: u32,
        value: f64,
        build: &mut Option<F>,
    ) -> bool {
        for slot in slots {
            let (k, bound) = slot.get_or_init(|| {
                let attrs = build
                    .take()
                    .map_or_else(Vec::new, |f| sorted(f(&self.base)));
                (key, histogram.bind(&attrs))
            });
            if *k == key {
                bound.record(value);
                return true;
            }
        }
        false
    }
}

/// Attributes in key order: the SDK keeps an attribute set as given *and* sorted unless it
/// arrives sorted, so sorting once here saves about a third of each series' memory.
fn sorted(mut attrs: Vec<KeyValue>) -> Vec<KeyValue> {
    attrs.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    attrs
}

fn route_series(route: &str) -> SeriesCache {
    SeriesCache::new(vec![KeyValue::new(attr::HTTP_ROUTE, route.to_owned())])
}

fn rpc_series(method: &str) -> SeriesCache {
    SeriesCache::new(vec![
        KeyValue::new(attr::RPC_SYSTEM_NAME, "grpc"),
        KeyValue::new(attr::RPC_METHOD, method.to_owned()),
    ])
}

/// `http.server.active_requests` by method: a cell per thread slot, which its thread
/// updates without a locked instruction (see [`scalewatch_core::slot`]), summed at
/// collection by an observer.
pub(crate) struct ActiveRequests {
    cells: Box<[CachePadded<[AtomicU64; METHODS.len()]>]>,
    /// Methods that have had a request: their series keep reporting, 0 when idle, as a
    /// synchronous up-down counter's would.
    seen: AtomicU16,
}

impl ActiveRequests {
    /// Counters for `meter`, observed with `url.scheme` = `scheme`.
    fn register(meter: &Meter, scheme: &'static str) -> Arc<Self> {
        let active = Arc::new(Self {
            cells: (0..slot::cell_count())
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            seen: AtomicU16::new(0),
        });
        let attrs: Vec<[KeyValue; 2]> = METHODS
            .iter()
            .map(|m| {
                [
                    KeyValue::new(attr::HTTP_REQUEST_METHOD, *m),
                    KeyValue::new(attr::URL_SCHEME, scheme),
                ]
            })
            .collect();
        let weak = Arc::downgrade(&active);
        catalog::HTTP_SERVER_ACTIVE_REQUESTS.i64_observable_up_down_counter(meter, move |o| {
            let Some(active) = weak.upgrade() else { return };
            let seen = active.seen.load(Relaxed);
            for (method, attrs) in attrs.iter().enumerate() {
                if seen & (1 << method) != 0 {
                    o.observe(active.get(method), attrs);
                }
            }
        });
        active
    }

    /// Adds `delta` to the requests in flight with method index `method`.
    #[inline]
    fn add(&self, method: u8, delta: i64) {
        let method = usize::from(method);
        let Some((slot, cell)) = slot::current_cell(&self.cells) else {
            return;
        };
        let Some(counter) = cell.get(method) else {
            return;
        };
        // `method` indexes one of the ten methods, so its bit fits.
        let bit = 1u16 << method;
        if self.seen.load(Relaxed) & bit == 0 {
            self.seen.fetch_or(bit, Relaxed);
        }
        slot::add(slot, counter, delta as u64);
    }

    /// Requests in flight with method index `method` (clamped at 0: a reader can see a
    /// request's end, on one thread's cell, before its start on another's).
    fn get(&self, method: usize) -> i64 {
        let sum = self.cells.iter().fold(0u64, |sum, cell| {
            sum.wrapping_add(cell.get(method).map_or(0, |c| c.load(Relaxed)))
        });
        (sum as i64).max(0)
    }
}

/// HTTP semconv instruments of one layer: the request duration per target (the route on a
/// server, the server address on a client), capped, and on a server the active requests.
pub(crate) struct HttpSignals {
    duration: Histogram<f64>,
    /// Series by target, resolved once per route template or `host:port` key.
    targets: CappedTable<SeriesCache>,
    /// Builds a target's series: [`route_series`] or [`server_series`].
    target_series: fn(&str) -> SeriesCache,
    /// Requests with no target: no route matched, or the URI named no server.
    no_target: SeriesCache,
    /// `url.scheme`: on a server only (on a client's duration semconv has it opt-in, and
    /// the client layer leaves it out).
    scheme: Option<&'static str>,
    /// `http.server.active_requests`, on a server only.
    active: Option<Arc<ActiveRequests>>,
    pub(crate) method_overflow: Overflow,
}

/// Index of "no target" in the target space used by guards: no route matched (server), or
/// the request named no server (a relative URI, client).
pub(crate) const NO_TARGET: u32 = u32::MAX;

impl HttpSignals {
    /// A server's: `http.server.request.duration` per route (`http.route`) and
    /// `http.server.active_requests`, both with `url.scheme` = `scheme`.
    pub(crate) fn server(meter: &Meter, scheme: &'static str, route_cap: usize) -> Self {
        Self {
            duration: catalog::HTTP_SERVER_REQUEST_DURATION.f64_histogram(meter),
            targets: CappedTable::new(
                route_cap,
                Overflow::new(meter, attr::HTTP_ROUTE),
                route_series,
            ),
            target_series: route_series,
            no_target: SeriesCache::new(Vec::new()),
            scheme: Some(scheme),
            active: Some(ActiveRequests::register(meter, scheme)),
            method_overflow: Overflow::new(meter, attr::HTTP_REQUEST_METHOD),
        }
    }

    /// A client's: `http.client.request.duration` per server address (`server.address`,
    /// `server.port`).
    pub(crate) fn client(meter: &Meter, server_cap: usize) -> Self {
        Self {
            duration: catalog::HTTP_CLIENT_REQUEST_DURATION.f64_histogram(meter),
            targets: CappedTable::new(
                server_cap,
                Overflow::new(meter, attr::SERVER_ADDRESS),
                server_series,
            ),
            target_series: server_series,
            no_target: SeriesCache::new(Vec::new()),
            scheme: None,
            active: None,
            method_overflow: Overflow::new(meter, attr::HTTP_REQUEST_METHOD),
        }
    }

    /// The index of a target: a route template, or a `host:port` (or `host:`) server key.
    pub(crate) fn target(&self, key: &str) -> u32 {
        self.targets.resolve(key, self.target_series)
    }

    /// Folds a target that cannot be a key (too long) into `_OTHER`.
    pub(crate) fn fold_target(&self) -> u32 {
        self.targets.fold()
    }

    /// Adds `delta` to the requests in flight with method index `method` (a server's
    /// `http.server.active_requests`; nothing on a client).
    #[inline]
    pub(crate) fn active(&self, method: u8, delta: i64) {
        if let Some(active) = &self.active {
            active.add(method, delta);
        }
    }

    #[inline]
    pub(crate) fn record(
        &self,
        target: u32,
        method: u8,
        status: Option<u16>,
        failure: Failure,
        seconds: f64,
    ) {
        let cache = if target == NO_TARGET {
            &self.no_target
        } else {
            self.targets.get(target)
        };
        let key = http_series_key(method, status, failure);
        let scheme = self.scheme;
        cache.record(&self.duration, key, seconds, |base| {
            let mut a = Vec::with_capacity(base.len() + 4);
            a.extend_from_slice(base);
            a.push(KeyValue::new(
                attr::HTTP_REQUEST_METHOD,
                METHODS[method as usize],
            ));
            if let Some(scheme) = scheme {
                a.push(KeyValue::new(attr::URL_SCHEME, scheme));
            }
            if let Some(s) = status {
                a.push(KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(s)));
            }
            a.extend(failure.error_type(&status.unwrap_or(0).to_string()));
            a
        });
    }
}

/// The series key of an HTTP measurement within one target.
#[inline]
fn http_series_key(method: u8, status: Option<u16>, failure: Failure) -> u32 {
    u32::from(method) | (u32::from(status.unwrap_or(0)) << 8) | (failure.key() << 24)
}

/// The series of one server key, `host:port` or `host:` (no port known), as the client
/// layer writes it. IPv6 hosts lose their brackets, as semconv writes them.
fn server_series(key: &str) -> SeriesCache {
    let (host, port) = key.rsplit_once(':').unwrap_or((key, ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut base = vec![KeyValue::new(attr::SERVER_ADDRESS, host.to_owned())];
    if let Ok(port) = port.parse::<u16>() {
        base.push(KeyValue::new(attr::SERVER_PORT, i64::from(port)));
    }
    SeriesCache::new(base)
}

/// gRPC semconv instruments of one server or client layer.
pub(crate) struct RpcSignals {
    duration: Histogram<f64>,
    methods: CappedTable<SeriesCache>,
}

impl RpcSignals {
    /// `signal` is `rpc.server.call.duration` or `rpc.client.call.duration`.
    pub(crate) fn new(meter: &Meter, signal: &Signal, method_cap: usize) -> Self {
        Self {
            duration: signal.f64_histogram(meter),
            methods: CappedTable::new(
                method_cap,
                Overflow::new(meter, attr::RPC_METHOD),
                rpc_series,
            ),
        }
    }

    pub(crate) fn find(&self, method: &str) -> Option<u32> {
        self.methods.find(method)
    }

    pub(crate) fn resolve(&self, method: &str) -> u32 {
        self.methods.resolve(method, rpc_series)
    }

    /// Folds a method into `_OTHER` (unknown to the server, or malformed).
    pub(crate) fn fold(&self) -> u32 {
        self.methods.fold()
    }

    #[inline]
    pub(crate) fn record(&self, method: u32, code: Code, failure: Failure, seconds: f64) {
        let key = u32::from(code.value()) | (failure.key() << 24);
        let name = code.name();
        self.methods
            .get(method)
            .record(&self.duration, key, seconds, |base| {
                let mut a = Vec::with_capacity(base.len() + 2);
                a.extend_from_slice(base);
                a.push(KeyValue::new(attr::RPC_STATUS_CODE, name));
                a.extend(failure.error_type(name));
                a
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::reader::MetricReader;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
    use std::sync::Arc;

    /// A meter provider whose metrics the test collects by hand from the returned reader.
    fn provider() -> (Arc<ManualReader>, SdkMeterProvider) {
        let reader = Arc::new(ManualReader::builder().build());
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedReader(reader.clone()))
            .build();
        (reader, provider)
    }

    fn collect(reader: &ManualReader) -> ResourceMetrics {
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).expect("collects");
        rm
    }

    /// The count of every series of the one histogram, by its `k` attribute.
    fn counts(reader: &ManualReader) -> std::collections::BTreeMap<i64, u64> {
        let rm = collect(reader);
        let mut out = std::collections::BTreeMap::new();
        for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
            let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() else {
                continue;
            };
            for p in h.data_points() {
                let k = p
                    .attributes()
                    .find(|kv| kv.key.as_str() == "k")
                    .and_then(|kv| match kv.value {
                        opentelemetry::Value::I64(v) => Some(v),
                        _ => None,
                    })
                    .expect("every series has k");
                out.insert(k, p.count());
            }
        }
        out
    }

    #[test]
    fn series_past_the_inline_slots_and_past_the_cache_are_all_counted() {
        let (reader, provider) = provider();
        let histogram = provider.meter("t").f64_histogram("h").build();
        let cache = SeriesCache::new(vec![KeyValue::new("base", "b")]);
        let attrs = |k: u32| {
            move |base: &[KeyValue]| {
                let mut a = base.to_vec();
                a.push(KeyValue::new("k", i64::from(k)));
                a
            }
        };
        // One series inline: no spill block yet.
        cache.record(&histogram, 0, 0.1, attrs(0));
        cache.record(&histogram, 0, 0.1, attrs(0));
        cache.record(&histogram, 1, 0.1, attrs(1));
        assert!(cache.spill.get().is_none(), "two series stay inline");
        // Then past the inline slots, and past the whole cache (the unbound path).
        let keys = (BOUND_SERIES + 4) as u32;
        for round in 0..3 {
            for k in 2..keys {
                if round > 0 || k > 2 {
                    cache.record(&histogram, k, 0.1, attrs(k));
                }
            }
        }
        assert!(cache.spill.get().is_some());
        let counts = counts(&reader);
        assert_eq!(counts.len(), keys as usize);
        assert_eq!(counts[&0], 2);
        assert_eq!(counts[&1], 1);
        assert_eq!(counts[&2], 2);
        for k in 3..i64::from(keys) {
            assert_eq!(counts[&k], 3, "series {k}");
        }
    }

    /// `http.server.active_requests` by method, as the reader last collected it.
    fn active_by_method(reader: &ManualReader) -> std::collections::BTreeMap<String, i64> {
        let rm = collect(reader);
        let mut out = std::collections::BTreeMap::new();
        for metric in rm.scope_metrics().flat_map(|s| s.metrics()) {
            let AggregatedMetrics::I64(MetricData::Sum(sum)) = metric.data() else {
                continue;
            };
            for p in sum.data_points() {
                let method = p
                    .attributes()
                    .find(|kv| kv.key.as_str() == attr::HTTP_REQUEST_METHOD)
                    .map(|kv| kv.value.to_string())
                    .expect("every series has a method");
                out.insert(method, p.value());
            }
        }
        out
    }

    #[test]
    fn active_requests_sum_over_threads_and_stay_reported_at_zero() {
        let (reader, provider) = provider();
        let active = ActiveRequests::register(&provider.meter("t"), "http");
        let (get, post) = (0, 2);
        assert_eq!(crate::classify::METHODS[post as usize], "POST");
        assert!(
            active_by_method(&reader).is_empty(),
            "no request, no series"
        );
        active.add(get, 1);
        active.add(get, 1);
        active.add(post, 1);
        // Requests that end on another thread than they started on.
        std::thread::scope(|s| {
            s.spawn(|| active.add(get, -1));
        });
        let seen = active_by_method(&reader);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!((seen["GET"], seen["POST"]), (1, 1));
        active.add(get, -1);
        active.add(post, -1);
        let seen = active_by_method(&reader);
        assert_eq!((seen["GET"], seen["POST"]), (0, 0), "quiet series stay");
        // A method index outside the table is ignored, never a panic.
        active.add(200, 1);
        assert_eq!(active_by_method(&reader).len(), 2);
    }

    /// Lets the test keep a handle on the reader the provider owns.
    #[derive(Debug, Clone)]
    struct SharedReader(Arc<ManualReader>);

    impl MetricReader for SharedReader {
        fn register_pipeline(
            &self,
            pipeline: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>,
        ) {
            self.0.register_pipeline(pipeline);
        }
        fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.collect(rm)
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.force_flush()
        }
        fn shutdown_with_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> opentelemetry_sdk::error::OTelSdkResult {
            self.0.shutdown_with_timeout(timeout)
        }
        fn temporality(
            &self,
            kind: opentelemetry_sdk::metrics::InstrumentKind,
        ) -> opentelemetry_sdk::metrics::Temporality {
            self.0.temporality(kind)
        }
    }
}
