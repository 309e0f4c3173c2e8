//! Keyspaces: exact operation counts, sampled heavy hitters and per-shard load.
//!
//! One concern a file: `builder` validates the configuration and builds the state,
//! `thread_cells` holds what each thread writes alone, `recording` is the hot path and
//! its sampling, `readings` reads it all back in process, `observers` export it, and
//! `resources` offers the shards to a capacity model.

mod builder;
mod observers;
mod readings;
mod recording;
mod resources;
mod thread_cells;

pub use builder::{KeyspaceBuilder, KeyspaceError};
pub(crate) use recording::label;

use crate::hash::{self, KeyHash};
use crate::summary::Summary;
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::BoundHistogram;
use std::fmt::{self, Display};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use thread_cells::Local;
use thread_local::ThreadLocal;

/// Largest `top_k`: hot keys exported per keyspace.
pub const MAX_TOP_K: usize = 20;
/// Default `top_k`.
pub const DEFAULT_TOP_K: usize = 10;
/// Default counters in each summary.
pub const DEFAULT_COUNTERS: usize = 512;
/// Largest number of counters.
pub const MAX_COUNTERS: usize = 16_384;
/// Default sampling period: one access in 32 on average reaches the summary.
pub const DEFAULT_SAMPLE_EVERY: u32 = 32;
/// Default hot threshold: a key is hot when at least 1% of the horizon's operations hit it.
pub const DEFAULT_HOT_SHARE: f64 = 0.01;
/// Default decay half-life of the hot-key horizon.
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(60);
/// Largest shard count.
pub const MAX_SHARDS: usize = 4_096;
/// Longest raw key label kept, in bytes (longer keys are cut at a character boundary).
pub const MAX_LABEL_BYTES: usize = 64;

/// What an access did; exported as `scalewatch.state.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A point read.
    Read,
    /// An insert or update.
    Write,
    /// A range or full scan (records the items it touched too).
    Scan,
    /// A removal.
    Delete,
}

impl Operation {
    /// Every operation, in attribute order.
    pub const ALL: [Operation; 4] = [
        Operation::Read,
        Operation::Write,
        Operation::Scan,
        Operation::Delete,
    ];

    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Scan => "scan",
            Operation::Delete => "delete",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    name: &'static str,
    hasher: KeyHash,
    digest_key: u128,
    raw_keys: bool,
    top_k: usize,
    counters: usize,
    hot_share: f64,
    sample_every: u32,
    shards: usize,
    /// Operations per second one shard can take, when the application declared it.
    shard_capacity: Option<f64>,
    locals: ThreadLocal<CachePadded<Local>>,
    /// One summary per stripe of threads; readers merge them.
    summaries: Box<[CachePadded<Mutex<Summary>>]>,
    dropped: AtomicU64,
    entries: AtomicI64,
    has_entries: AtomicBool,
    /// `None` when disabled: no instrument is created.
    scan_items: Option<BoundHistogram<u64>>,
    skew_cursor: Mutex<Vec<u64>>,
}

/// A named keyspace: every access is counted exactly by operation, sampled into a
/// bounded heavy-hitter summary, and (when sharded) counted per shard.
/// Cheap to clone; clones share everything. Built
/// [disabled](KeyspaceBuilder::enabled), every recording method returns at once.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_state::Keyspace;
///
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let sessions = Keyspace::builder("sessions").shards(8).sample_every(1).build(&meter)?;
/// for i in 0..1000u64 {
///     sessions.read(&(i % 4)); // four keys take all the traffic
/// }
/// let hot = sessions.hot_keys();
/// assert_eq!(hot.len(), 4);
/// assert!((hot[0].share - 0.25).abs() < 0.01);
/// // Keys are exported as keyed digests unless raw keys are opted in.
/// let digests: Vec<String> = (0..4u64).map(|k| sessions.digest_of(&k)).collect();
/// assert!(hot.iter().all(|h| digests.contains(&h.key)));
/// assert_eq!(sessions.operations().read, 1000);
/// # Ok::<(), scalewatch_state::KeyspaceError>(())
/// ```
#[derive(Clone)]
pub struct Keyspace {
    inner: Arc<Inner>,
    /// Kept beside the pointer, not behind it: the disabled path is one test of `self`.
    enabled: bool,
}

impl fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.inner.name)
            .field("top_k", &self.inner.top_k)
            .field("counters", &self.inner.counters)
            .field("sample_every", &self.inner.sample_every)
            .field("shards", &self.inner.shards)
            .field("enabled", &self.enabled)
            .field("operations", &self.operations())
            .finish()
    }
}

/// Exact operation counts since the keyspace was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Reads.
    pub read: u64,
    /// Writes.
    pub write: u64,
    /// Scans.
    pub scan: u64,
    /// Deletes.
    pub delete: u64,
}

impl OperationCounts {
    /// All operations.
    pub fn total(&self) -> u64 {
        self.read + self.write + self.scan + self.delete
    }

    /// The count of `op`.
    pub fn get(&self, op: Operation) -> u64 {
        match op {
            Operation::Read => self.read,
            Operation::Write => self.write,
            Operation::Scan => self.scan,
            Operation::Delete => self.delete,
        }
    }
}

/// One heavy key, as estimated over the decayed horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// 1 for the heaviest.
    pub rank: usize,
    /// What is exported as `scalewatch.state.key`: the digest, or the raw label when
    /// opted in and known.
    pub key: String,
    /// The keyed digest (16 hex digits).
    pub digest: String,
    /// The estimated share of the horizon's operations (Space-Saving's upper estimate).
    pub share: f64,
    /// The guaranteed lower bound of the share in the sample (`share − error`).
    pub share_lower_bound: f64,
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// Whether the keyspace measures (see [`KeyspaceBuilder::enabled`]).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The shard count (0 when unsharded).
    pub fn shard_count(&self) -> usize {
        self.inner.shards
    }

    /// The scalewatch hash of `key` (its fingerprint), as used for sampling and sharding.
    #[inline]
    pub fn fingerprint<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.inner.hasher.hash(key)
    }

    /// The shard scalewatch assigns to a fingerprint: `⌊fingerprint · shards / 2^64⌋`.
    #[inline]
    pub fn shard_of_fingerprint(&self, fingerprint: u64) -> Option<usize> {
        (self.inner.shards > 0)
            .then(|| ((u128::from(fingerprint) * self.inner.shards as u128) >> 64) as usize)
    }

    /// The digest `key` is exported as.
    pub fn digest_of<K: Hash + ?Sized>(&self, key: &K) -> String {
        hash::digest(self.inner.digest_key, self.fingerprint(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::global;

    #[test]
    fn rejects_bad_configuration() {
        let m = global::meter("test");
        assert_eq!(
            Keyspace::builder("").build(&m).err(),
            Some(KeyspaceError::EmptyName)
        );
        assert!(Keyspace::builder("a").top_k(0).build(&m).is_err());
        assert!(Keyspace::builder("a").top_k(21).build(&m).is_err());
        assert!(Keyspace::builder("a").counters(8).build(&m).is_err());
        assert!(Keyspace::builder("a").sample_every(0).build(&m).is_err());
        assert!(Keyspace::builder("a").hot_share(0.0).build(&m).is_err());
        assert!(Keyspace::builder("a")
            .hot_share(f64::NAN)
            .build(&m)
            .is_err());
        assert!(Keyspace::builder("a").shards(0).build(&m).is_err());
        let e = Keyspace::builder("a").shards(5000).build(&m).unwrap_err();
        assert!(e.to_string().contains("use 1..=4096"), "{e}");
    }

    #[test]
    fn counts_every_operation_exactly_across_threads() {
        let ks = Keyspace::builder("t")
            .shards(4)
            .build(&global::meter("test"))
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let ks = ks.clone();
                s.spawn(move || {
                    for i in 0..10_000u64 {
                        ks.read(&(t, i));
                        if i % 10 == 0 {
                            ks.write(&i);
                        }
                    }
                });
            }
        });
        ks.delete(&1u8);
        ks.scan("prefix", 7);
        ks.full_scan(100);
        let c = ks.operations();
        assert_eq!((c.read, c.write, c.delete, c.scan), (40_000, 4_000, 1, 2));
        assert_eq!(ks.shard_loads().iter().sum::<u64>(), 44_002);
    }

    #[test]
    fn raw_labels_only_when_opted_in_and_cut_to_size() {
        let raw = Keyspace::builder("raw")
            .sample_every(1)
            .raw_keys(true)
            .build(&global::meter("test"))
            .unwrap();
        let plain = Keyspace::builder("plain")
            .sample_every(1)
            .build(&global::meter("test"))
            .unwrap();
        let long = "é".repeat(100);
        for _ in 0..10 {
            raw.record_labeled(Operation::Read, "user:42");
            plain.record_labeled(Operation::Read, "user:42");
            raw.record_labeled(Operation::Read, long.as_str());
        }
        let hot = raw.hot_keys();
        assert!(hot.iter().any(|h| h.key == "user:42"));
        assert!(hot.iter().all(|h| h.key.len() <= MAX_LABEL_BYTES));
        let hot = plain.hot_keys();
        assert_eq!(hot[0].key, plain.digest_of("user:42"));
        assert_eq!(hot[0].key.len(), 16);
    }

    /// Every recording method, with every access sampled.
    fn record_everything(ks: &Keyspace) {
        for i in 0..1_000u64 {
            ks.read(&(i % 3));
            ks.write(&i);
            ks.delete(&i);
            ks.scan(&i, 5);
            ks.record(Operation::Read, &i);
            ks.record_in_shard(Operation::Write, &i, 2);
            ks.record_labeled(Operation::Read, "user:42");
        }
        ks.full_scan(10);
        ks.set_entries(7);
        ks.add_entries(3);
    }

    #[test]
    fn a_disabled_keyspace_records_nothing() {
        let build = |enabled| {
            Keyspace::builder("off")
                .shards(4)
                .sample_every(1)
                .raw_keys(true)
                .enabled(enabled)
                .build(&global::meter("test"))
                .unwrap()
        };
        let on = build(true);
        record_everything(&on);
        assert_eq!(on.operations().total(), 7_001);
        assert!(!on.hot_keys().is_empty());
        assert_eq!(on.entries(), 10);

        let off = build(false);
        assert!(!off.is_enabled());
        record_everything(&off);
        assert_eq!(off.operations(), OperationCounts::default());
        assert!(off.hot_keys().is_empty());
        assert!(off.top_keys(MAX_COUNTERS).is_empty());
        assert_eq!(off.shard_loads(), vec![0; 4]);
        assert_eq!(off.shard_skew(), None);
        assert_eq!(off.entries(), 0);
        assert_eq!(off.dropped_sample_weight(), 0);
        // No thread ever got counters: the recording methods returned before the lookup.
        assert_eq!(off.inner.locals.iter().count(), 0);
        assert!(off.inner.scan_items.is_none());
        // Digests do not depend on the switch.
        assert_eq!(off.digest_of("k").len(), 16);
    }
}
