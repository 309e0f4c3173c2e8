//! The keyspace's OpenTelemetry instruments, observed at each collection.

use super::readings::skew;
use super::*;
use crate::catalog::{self, attr};
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

/// Observable instruments read the keyspace at collection time through a weak reference,
/// so a dropped keyspace simply stops reporting.
pub(super) fn register_observers(meter: &Meter, inner: &Arc<Inner>, name: KeyValue) {
    let upgrade = |w: &Weak<Inner>| {
        w.upgrade().map(|inner| Keyspace {
            inner,
            enabled: true,
        })
    };

    let weak = Arc::downgrade(inner);
    let per_op: Vec<[KeyValue; 2]> = Operation::ALL
        .iter()
        .map(|op| {
            [
                name.clone(),
                KeyValue::new(attr::STATE_OPERATION, op.as_str()),
            ]
        })
        .collect();
    catalog::STATE_OPERATIONS.u64_observable_counter(meter, move |o| {
        let Some(ks) = upgrade(&weak) else { return };
        let counts = ks.operations();
        for (op, attrs) in Operation::ALL.iter().zip(&per_op) {
            let n = counts.get(*op);
            if n > 0 {
                o.observe(n, attrs);
            }
        }
    });

    let (weak, a) = (Arc::downgrade(inner), [name.clone()]);
    catalog::STATE_ENTRIES.f64_observable_gauge(meter, move |o| {
        let Some(ks) = upgrade(&weak) else { return };
        if ks.inner.has_entries.load(Relaxed) {
            o.observe(ks.entries().max(0) as f64, &a);
        }
    });

    let (weak, a) = (Arc::downgrade(inner), [name.clone()]);
    catalog::STATE_HOT_KEYS_SHARE.f64_observable_gauge(meter, move |o| {
        let Some(ks) = upgrade(&weak) else { return };
        if ks.operations().total() > 0 {
            o.observe(ks.hot_keys().iter().map(|h| h.share).sum(), &a);
        }
    });

    let (weak, n) = (Arc::downgrade(inner), name.clone());
    catalog::STATE_HOT_KEY_SHARE.f64_observable_gauge(meter, move |o| {
        let Some(ks) = upgrade(&weak) else { return };
        for h in ks.hot_keys() {
            o.observe(
                h.share,
                &[
                    n.clone(),
                    KeyValue::new(attr::STATE_KEY_RANK, h.rank as i64),
                    KeyValue::new(attr::STATE_KEY, h.key),
                ],
            );
        }
    });

    if inner.shards > 0 {
        let (weak, a) = (Arc::downgrade(inner), [name]);
        catalog::STATE_SHARD_SKEW.f64_observable_gauge(meter, move |o| {
            let Some(ks) = upgrade(&weak) else { return };
            let now = ks.shard_loads();
            let mut cursor = lock(&ks.inner.skew_cursor);
            let window: Vec<u64> = now
                .iter()
                .zip(cursor.iter())
                .map(|(n, p)| n.wrapping_sub(*p))
                .collect();
            *cursor = now;
            drop(cursor);
            if let Some((_, s)) = skew(&window) {
                o.observe(s, &a);
            }
        });
    }
}
