//! [`TrackedMap`]: a sharded concurrent map whose accesses are recorded in a keyspace.

use crate::hash::KeyHash;
use crate::keyspace::{label, Keyspace, KeyspaceBuilder, KeyspaceError, Operation};
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::Meter;
use std::collections::HashMap;
use std::fmt::{self, Display};
use std::hash::Hash;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Shards a [`TrackedMap`] has unless its builder says otherwise.
pub const DEFAULT_MAP_SHARDS: usize = 16;

type Shard<K, V> = CachePadded<RwLock<HashMap<K, V, KeyHash>>>;

/// A concurrent map of `shards` `RwLock<HashMap>`s whose reads, writes, deletes and scans
/// are recorded in its [`Keyspace`] automatically: exact operation counts, hot keys, the
/// load and skew of its own shards, and its length as `scalewatch.state.entries`.
///
/// The key's scalewatch hash picks the shard, so the skew it reports is the skew the map
/// really has. Values are returned by clone ([`TrackedMap::get`]) or visited under the
/// shard's lock ([`TrackedMap::with`]); no guard escapes, so no lock is held across an
/// `.await`.
///
/// Built from a [disabled](KeyspaceBuilder::enabled) keyspace, it records nothing and
/// keeps no length counter: it is a plain sharded map, and [`TrackedMap::len`] locks
/// each shard in turn.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_state::{Keyspace, TrackedMap};
///
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let users: TrackedMap<u64, String> = Keyspace::builder("users").shards(8).build_map(&meter)?;
/// users.insert(1, "ada".to_owned());
/// assert_eq!(users.get(&1).as_deref(), Some("ada"));
/// assert_eq!(users.len(), 1);
/// let ops = users.keyspace().operations();
/// assert_eq!((ops.read, ops.write), (1, 1));
/// # Ok::<(), scalewatch_state::KeyspaceError>(())
/// ```
pub struct TrackedMap<K, V> {
    shards: Box<[Shard<K, V>]>,
    keyspace: Keyspace,
    hasher: KeyHash,
    label: Option<fn(&K) -> Box<str>>,
}

impl<K, V> fmt::Debug for TrackedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedMap")
            .field("keyspace", &self.keyspace)
            .field("shards", &self.shards.len())
            // Only the counter: locking the shards here could deadlock inside `with`.
            .field("len", &self.keyspace.entries())
            .finish()
    }
}

impl KeyspaceBuilder {
    /// Builds the keyspace and a [`TrackedMap`] over it ([`DEFAULT_MAP_SHARDS`] shards
    /// unless [`shards`](KeyspaceBuilder::shards) was set).
    pub fn build_map<K: Hash + Eq, V>(
        self,
        meter: &Meter,
    ) -> Result<TrackedMap<K, V>, KeyspaceError> {
        TrackedMap::new(self, meter, None)
    }

    /// Like [`build_map`](KeyspaceBuilder::build_map), exporting hot keys in clear
    /// (their `Display`) when [`raw_keys(true)`](KeyspaceBuilder::raw_keys) is set too.
    pub fn build_map_with_raw_keys<K: Hash + Eq + Display, V>(
        self,
        meter: &Meter,
    ) -> Result<TrackedMap<K, V>, KeyspaceError> {
        TrackedMap::new(self, meter, Some(label::<K>))
    }
}

impl<K: Hash + Eq, V> TrackedMap<K, V> {
    fn new(
        builder: KeyspaceBuilder,
        meter: &Meter,
        label: Option<fn(&K) -> Box<str>>,
    ) -> Result<Self, KeyspaceError> {
        let shards = builder.shards.unwrap_or(DEFAULT_MAP_SHARDS);
        let keyspace = builder.shards(shards).build(meter)?;
        keyspace.set_entries(0);
        let hasher = keyspace.hasher();
        Ok(Self {
            shards: (0..shards)
                .map(|_| CachePadded::new(RwLock::new(HashMap::with_hasher(hasher))))
                .collect(),
            keyspace,
            hasher,
            label,
        })
    }

    /// The keyspace the map records into.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Hashes `key` once, records `op` and returns its shard.
    #[inline]
    fn track(&self, op: Operation, key: &K) -> &Shard<K, V> {
        let fp = self.hasher.hash(key);
        let shard = self.keyspace.shard_of_fingerprint(fp).unwrap_or(0);
        let label = self.label;
        self.keyspace
            .record_fingerprint(op, fp, Some(shard), || label.map(|l| l(key)));
        // The shard index is below the shard count by construction.
        &self.shards[shard.min(self.shards.len() - 1)]
    }

    fn read_shard(shard: &Shard<K, V>) -> RwLockReadGuard<'_, HashMap<K, V, KeyHash>> {
        shard.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_shard(shard: &Shard<K, V>) -> RwLockWriteGuard<'_, HashMap<K, V, KeyHash>> {
        shard.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A clone of the value of `key` (a read).
    pub fn get(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        Self::read_shard(self.track(Operation::Read, key))
            .get(key)
            .cloned()
    }

    /// Calls `f` with the value of `key` under the shard's read lock (a read).
    pub fn with<R>(&self, key: &K, f: impl FnOnce(Option<&V>) -> R) -> R {
        f(Self::read_shard(self.track(Operation::Read, key)).get(key))
    }

    /// Whether `key` is present (a read).
    pub fn contains_key(&self, key: &K) -> bool {
        Self::read_shard(self.track(Operation::Read, key)).contains_key(key)
    }

    /// Inserts `value` at `key`, returning the previous value (a write).
    pub fn insert(&self, key: K, value: V) -> Option<V> {
        let shard = self.track(Operation::Write, &key);
        let old = Self::write_shard(shard).insert(key, value);
        if old.is_none() {
            self.keyspace.add_entries(1);
        }
        old
    }

    /// Updates the value of `key` in place with `f`, inserting `default()` first when
    /// absent (a write). Returns what `f` returns.
    pub fn upsert<R>(&self, key: K, default: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        let shard = self.track(Operation::Write, &key);
        let mut map = Self::write_shard(shard);
        let before = map.len();
        let r = f(map.entry(key).or_insert_with(default));
        if map.len() > before {
            self.keyspace.add_entries(1);
        }
        r
    }

    /// Removes `key`, returning its value (a delete).
    pub fn remove(&self, key: &K) -> Option<V> {
        let old = Self::write_shard(self.track(Operation::Delete, key)).remove(key);
        if old.is_some() {
            self.keyspace.add_entries(-1);
        }
        old
    }

    /// Visits every entry, shard by shard under each shard's read lock (a full scan:
    /// `scalewatch.state.scan.items` records how many entries it touched).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let mut items = 0u64;
        for shard in self.shards.iter() {
            let map = Self::read_shard(shard);
            for (k, v) in map.iter() {
                f(k, v);
                items += 1;
            }
        }
        self.keyspace.full_scan(items);
    }

    /// Keeps the entries for which `keep` returns true (a full scan touching every entry).
    pub fn retain(&self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let (mut items, mut removed) = (0u64, 0i64);
        for shard in self.shards.iter() {
            let mut map = Self::write_shard(shard);
            let before = map.len();
            items += before as u64;
            map.retain(|k, v| keep(k, v));
            removed += (before - map.len()) as i64;
        }
        self.keyspace.full_scan(items);
        if removed > 0 {
            self.keyspace.add_entries(-removed);
        }
    }

    /// Resident entries: kept as a counter, not by locking every shard, unless the
    /// keyspace is disabled.
    pub fn len(&self) -> usize {
        if self.keyspace.is_enabled() {
            self.keyspace.entries().max(0) as usize
        } else {
            self.shard_lens().iter().sum()
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        if self.keyspace.is_enabled() {
            self.len() == 0
        } else {
            self.shards.iter().all(|s| Self::read_shard(s).is_empty())
        }
    }

    /// Entries per shard, locking each shard in turn.
    pub fn shard_lens(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| Self::read_shard(s).len())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::global;

    #[test]
    fn records_reads_writes_deletes_scans_and_length() {
        let map: TrackedMap<String, u32> = Keyspace::builder("m")
            .build_map(&global::meter("test"))
            .unwrap();
        for i in 0..100u32 {
            map.insert(format!("k{i}"), i);
        }
        map.insert("k1".into(), 7);
        assert_eq!(map.len(), 100);
        assert_eq!(map.get(&"k1".to_owned()), Some(7));
        assert!(map.contains_key(&"k2".to_owned()));
        assert_eq!(map.with(&"k3".to_owned(), |v| v.copied()), Some(3));
        assert_eq!(
            map.upsert(
                "new".into(),
                || 0,
                |v| {
                    *v += 1;
                    *v
                }
            ),
            1
        );
        assert_eq!(map.remove(&"k4".to_owned()), Some(4));
        assert_eq!(map.remove(&"k4".to_owned()), None);
        let mut seen = 0;
        map.for_each(|_, _| seen += 1);
        assert_eq!(seen, 100);
        map.retain(|_, v| *v % 2 == 0);
        assert_eq!(map.len(), map.shard_lens().iter().sum::<usize>());
        let c = map.keyspace().operations();
        assert_eq!((c.read, c.write, c.delete, c.scan), (3, 102, 2, 2));
        assert_eq!(map.keyspace().shard_count(), DEFAULT_MAP_SHARDS);
    }

    #[test]
    fn the_skew_reported_is_the_maps_own() {
        let map: TrackedMap<u64, ()> = Keyspace::builder("s")
            .shards(4)
            .build_map(&global::meter("test"))
            .unwrap();
        for i in 0..1000u64 {
            map.insert(i, ());
        }
        let lens: Vec<u64> = map.shard_lens().iter().map(|l| *l as u64).collect();
        assert_eq!(map.keyspace().shard_loads(), lens);
    }

    #[test]
    fn a_disabled_map_is_a_plain_map() {
        let map: TrackedMap<String, u32> = Keyspace::builder("off")
            .shards(4)
            .enabled(false)
            .build_map(&global::meter("test"))
            .unwrap();
        assert!(map.is_empty());
        for i in 0..100u32 {
            assert_eq!(map.insert(format!("k{i}"), i), None);
        }
        assert_eq!(map.insert("k1".into(), 7), Some(1));
        assert_eq!(map.len(), 100);
        assert_eq!(map.get(&"k1".to_owned()), Some(7));
        assert!(map.contains_key(&"k2".to_owned()));
        assert_eq!(map.with(&"k3".to_owned(), |v| v.copied()), Some(3));
        assert_eq!(
            map.upsert("k3".into(), || 0, |v| std::mem::replace(v, 30)),
            3
        );
        assert_eq!(map.get(&"k3".to_owned()), Some(30));
        assert_eq!(map.remove(&"k4".to_owned()), Some(4));
        assert_eq!(map.remove(&"k4".to_owned()), None);
        let mut sum = 0;
        map.for_each(|_, v| sum += *v);
        assert_eq!(sum, (0..100).sum::<u32>() - 1 + 7 - 3 + 30 - 4);
        map.retain(|_, v| *v % 2 == 0);
        assert_eq!(map.len(), map.shard_lens().iter().sum::<usize>());
        assert_eq!(map.len(), 50);
        map.retain(|_, _| false);
        assert!(map.is_empty());
        // Nothing was measured.
        let ks = map.keyspace();
        assert!(!ks.is_enabled());
        assert_eq!(ks.operations().total(), 0);
        assert_eq!(ks.shard_loads(), vec![0; 4]);
        assert_eq!(ks.entries(), 0);
        assert!(ks.hot_keys().is_empty());
    }
}
