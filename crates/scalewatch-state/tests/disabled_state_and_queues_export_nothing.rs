//! B5: built with `enabled(false)`, keyspaces, tracked maps and channels record nothing
//! and export nothing through a real SDK meter provider, while the same scenario enabled
//! exports every state and queue signal; the disabled map and channels still work.

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use scalewatch_state::catalog;
use scalewatch_state::{
    Keyspace, Operation, OperationCounts, QueueBuilder, Receiver, Sender, TrackedMap, TrySendError,
    UnboundedSender,
};
use std::collections::BTreeMap;

/// A meter provider whose collections land in memory.
struct Sdk {
    exporter: InMemoryMetricExporter,
    provider: SdkMeterProvider,
}

impl Sdk {
    fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        Self { exporter, provider }
    }

    fn meter(&self) -> Meter {
        self.provider.meter("scalewatch-state-tests")
    }

    /// Data points per `scalewatch.*` metric in one collection.
    fn points(&self) -> BTreeMap<String, usize> {
        self.exporter.reset();
        self.provider.force_flush().expect("flush");
        let mut out = BTreeMap::new();
        for metric in self
            .exporter
            .get_finished_metrics()
            .expect("exported metrics")
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|sm| sm.metrics())
        {
            let n = match metric.data() {
                AggregatedMetrics::F64(d) => count(d),
                AggregatedMetrics::U64(d) => count(d),
                AggregatedMetrics::I64(d) => count(d),
            };
            if metric.name().starts_with("scalewatch.") {
                *out.entry(metric.name().to_owned()).or_default() += n;
            }
        }
        out
    }
}

fn count<T>(d: &MetricData<T>) -> usize {
    match d {
        MetricData::Gauge(g) => g.data_points().count(),
        MetricData::Sum(s) => s.data_points().count(),
        MetricData::Histogram(h) => h.data_points().count(),
        MetricData::ExponentialHistogram(h) => h.data_points().count(),
    }
}

/// What the scenario leaves alive until the export (a dropped source stops reporting).
struct Alive {
    ks: Keyspace,
    map: TrackedMap<u64, String>,
    _tx: Sender<u64>,
    _rx: Receiver<u64>,
    _utx: UnboundedSender<u64>,
}

/// Every recording method of a keyspace, a tracked map and both kinds of channel, with
/// the map and the channels checked as a map and as channels.
fn scenario(meter: &Meter, enabled: bool) -> Alive {
    let ks = Keyspace::builder("sessions")
        .shards(4)
        .sample_every(1)
        .raw_keys(true)
        .enabled(enabled)
        .build(meter)
        .expect("valid keyspace");
    for i in 0..1_000u64 {
        ks.read(&"hot");
        ks.write(&i);
        ks.delete(&(i + 1));
        ks.record(Operation::Read, &"hot");
        ks.record_in_shard(Operation::Write, &i, 3);
        ks.record_labeled(Operation::Read, "/checkout");
    }
    ks.scan(&"prefix:", 40);
    ks.full_scan(5_000);
    ks.set_entries(10);
    ks.add_entries(5);

    let map: TrackedMap<u64, String> = Keyspace::builder("kv")
        .shards(4)
        .enabled(enabled)
        .build_map(meter)
        .expect("valid map");
    for i in 0..100u64 {
        assert_eq!(map.insert(i, i.to_string()), None);
    }
    assert_eq!(map.insert(7, "seven".into()), Some("7".into()));
    for i in 0..100u64 {
        let want = if i == 7 {
            "seven".to_owned()
        } else {
            i.to_string()
        };
        assert_eq!(map.get(&i), Some(want));
    }
    map.upsert(500, String::new, |v| v.push('x'));
    assert_eq!(map.with(&500, |v| v.cloned()), Some("x".into()));
    assert_eq!(map.remove(&0), Some("0".into()));
    assert_eq!(map.remove(&0), None);
    assert!(!map.contains_key(&0));
    let mut seen = 0;
    map.for_each(|_, _| seen += 1);
    assert_eq!(seen, 100);
    map.retain(|k, _| *k < 50);
    assert_eq!(map.len(), 49);
    assert_eq!(map.shard_lens().iter().sum::<usize>(), 49);
    assert!(!map.is_empty());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (tx, rx, utx) = rt.block_on(async {
        let (tx, mut rx) = QueueBuilder::new("jobs")
            .enabled(enabled)
            .channel::<u64>(4, meter)
            .expect("valid queue");
        for round in 0..10u64 {
            for i in 0..4 {
                tx.send(round * 4 + i).await.expect("open channel");
            }
            // Exactly the capacity: the fifth message finds no room.
            assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
            assert_eq!(tx.capacity(), 0);
            for i in 0..4 {
                assert_eq!(rx.recv().await, Some(round * 4 + i));
            }
        }
        tx.send(1).await.expect("open channel");
        let (utx, mut urx) = QueueBuilder::new("events")
            .enabled(enabled)
            .unbounded_channel::<u64>(meter)
            .expect("valid queue");
        for i in 0..1_000 {
            utx.send(i).expect("open channel");
        }
        for i in 0..1_000 {
            assert_eq!(urx.recv().await, Some(i));
        }
        assert!(urx.is_empty());
        (tx, rx, utx)
    });
    assert_eq!(rx.len(), 1);
    let depth = if enabled { 1 } else { 0 };
    assert_eq!((tx.depth(), utx.depth()), (depth, 0));
    Alive {
        ks,
        map,
        _tx: tx,
        _rx: rx,
        _utx: utx,
    }
}

#[test]
fn disabled_state_and_queues_record_and_export_nothing() {
    let on = Sdk::new();
    let alive = scenario(&on.meter(), true);
    assert_eq!(alive.ks.operations().total(), 6_002);
    assert!(!alive.ks.hot_keys().is_empty());
    assert_eq!(alive.map.keyspace().operations().total(), 208);
    let points = on.points();
    for s in catalog::ALL {
        assert!(
            points.get(s.name).copied().unwrap_or(0) > 0,
            "{}: {points:?}",
            s.name
        );
    }

    let off = Sdk::new();
    let alive = scenario(&off.meter(), false);
    assert_eq!(alive.ks.operations(), OperationCounts::default());
    assert!(alive.ks.hot_keys().is_empty());
    assert!(alive.ks.top_keys(10).is_empty());
    assert_eq!(alive.ks.shard_loads(), vec![0; 4]);
    assert_eq!(alive.ks.shard_skew(), None);
    assert_eq!(alive.ks.entries(), 0);
    assert_eq!(
        alive.map.keyspace().operations(),
        OperationCounts::default()
    );
    assert!(alive.map.keyspace().hot_keys().is_empty());
    assert_eq!(alive.map.len(), 49);
    assert_eq!(off.points(), BTreeMap::new());
}
