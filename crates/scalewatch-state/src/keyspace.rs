//! Keyspaces: exact operation counts, sampled heavy hitters and per-shard load.

use crate::catalog::{self, attr};
use crate::hash::{self, KeyHash};
use crate::summary::{self, Sample, Summary};
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::clock::now_nanos;
use std::fmt::{self, Display, Write as _};
use std::hash::Hash;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::Duration;
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

/// Most summaries per keyspace: threads beyond this many share their stripe's.
const MAX_STRIPES: usize = 8;

/// Summaries per keyspace: one per core (a power of two), at most [`MAX_STRIPES`], so
/// that threads on different cores fold their samples without sharing memory.
fn stripe_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.next_power_of_two().min(MAX_STRIPES)
}

/// Samples a thread buffers before folding them into its stripe's summary.
const FOLD_AT: usize = 32;
/// Samples a thread buffers at most (when the summary is busy it keeps them a while).
const BUFFER_CAP: usize = 2 * FOLD_AT;

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

/// A keyspace's configuration was invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum KeyspaceError {
    /// The name was empty.
    #[error("keyspace name is empty: give it a short static name such as \"sessions\"")]
    EmptyName,
    /// `top_k` out of range.
    #[error("keyspace `{name}`: top_k is {top_k}: use 1..={MAX_TOP_K}")]
    TopK {
        /// The keyspace.
        name: &'static str,
        /// The value given.
        top_k: usize,
    },
    /// Counter count out of range.
    #[error(
        "keyspace `{name}`: {counters} counters: use at least 4 × top_k and at most {MAX_COUNTERS}"
    )]
    Counters {
        /// The keyspace.
        name: &'static str,
        /// The value given.
        counters: usize,
    },
    /// Sampling period of zero.
    #[error("keyspace `{0}`: sample_every is 0: use 1 to sample every access, or more")]
    SampleEvery(&'static str),
    /// Hot threshold outside (0, 1].
    #[error("keyspace `{name}`: hot share {share} is not in (0, 1]: use e.g. 0.01 for 1%")]
    HotShare {
        /// The keyspace.
        name: &'static str,
        /// The value given.
        share: f64,
    },
    /// Shard count out of range.
    #[error("keyspace `{name}`: {shards} shards: use 1..={MAX_SHARDS}")]
    Shards {
        /// The keyspace.
        name: &'static str,
        /// The value given.
        shards: usize,
    },
}

/// Builds a [`Keyspace`].
#[derive(Debug, Clone)]
#[must_use]
pub struct KeyspaceBuilder {
    pub(crate) name: &'static str,
    top_k: usize,
    counters: usize,
    sample_every: u32,
    hot_share: f64,
    half_life: Option<Duration>,
    pub(crate) shards: Option<usize>,
    digest_key: Option<u128>,
    raw_keys: bool,
    enabled: bool,
}

impl KeyspaceBuilder {
    /// Hot keys exported at most (1..=[`MAX_TOP_K`], default [`DEFAULT_TOP_K`]).
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// Counters in each summary (default [`DEFAULT_COUNTERS`]); the share error bound is
    /// `1 / counters` and memory grows by about 110 bytes per counter and core (see
    /// [`Keyspace::memory_cap`]).
    pub fn counters(mut self, counters: usize) -> Self {
        self.counters = counters;
        self
    }

    /// One access in `n` on average (a random gap in `1..2n`) is sampled into the summary,
    /// weighted by its gap (default [`DEFAULT_SAMPLE_EVERY`]; 1 samples every access).
    pub fn sample_every(mut self, n: u32) -> Self {
        self.sample_every = n;
        self
    }

    /// The share of the horizon's operations from which a key counts as hot
    /// (default [`DEFAULT_HOT_SHARE`] = 1%), judged on the summary's guaranteed lower bound.
    pub fn hot_share(mut self, share: f64) -> Self {
        self.hot_share = share;
        self
    }

    /// The half-life of the hot-key horizon (default [`DEFAULT_HALF_LIFE`]): an access
    /// that old weighs half as much as one now.
    pub fn half_life(mut self, half_life: Duration) -> Self {
        self.half_life = Some(half_life);
        self
    }

    /// Never decay: the horizon is the keyspace's whole life.
    pub fn no_decay(mut self) -> Self {
        self.half_life = None;
        self
    }

    /// Measures per-shard load and skew over `shards` shards. A key's shard is taken from
    /// its scalewatch hash unless the access names it ([`Keyspace::record_in_shard`]).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The secret key of the exported digests. Without it a random per-process key is
    /// used; with the same key every process exports the same digest for the same key, and
    /// [`Keyspace::digest_of`] tells which digest a known key has.
    pub fn digest_key(mut self, key: u128) -> Self {
        self.digest_key = Some(key);
        self
    }

    /// Exports hot keys in clear (their `Display`, cut to [`MAX_LABEL_BYTES`]) when they
    /// were recorded through the `*_labeled` methods. Off by default: only opt in for keys
    /// that are not personal or secret.
    pub fn raw_keys(mut self, raw: bool) -> Self {
        self.raw_keys = raw;
        self
    }

    /// Whether to measure at all (default `true`). Built with `false`, the keyspace is a
    /// pass-through: it records nothing, exports nothing, and its in-process readings stay
    /// empty. Pass `telemetry.is_enabled()` so that `OTEL_SDK_DISABLED=true` costs next
    /// to nothing.
    ///
    /// Disabled, every recording method returns before hashing the key or touching any
    /// counter, no instrument or callback is registered on the meter, and a
    /// `TrackedMap` built from it is a plain sharded map.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    fn validate(&self) -> Result<(), KeyspaceError> {
        let name = self.name;
        if name.is_empty() {
            return Err(KeyspaceError::EmptyName);
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(KeyspaceError::TopK {
                name,
                top_k: self.top_k,
            });
        }
        if self.counters < 4 * self.top_k || self.counters > MAX_COUNTERS {
            return Err(KeyspaceError::Counters {
                name,
                counters: self.counters,
            });
        }
        if self.sample_every == 0 {
            return Err(KeyspaceError::SampleEvery(name));
        }
        if !(self.hot_share > 0.0 && self.hot_share <= 1.0) {
            return Err(KeyspaceError::HotShare {
                name,
                share: self.hot_share,
            });
        }
        if let Some(shards) = self.shards {
            if !(1..=MAX_SHARDS).contains(&shards) {
                return Err(KeyspaceError::Shards { name, shards });
            }
        }
        Ok(())
    }

    /// Validates the configuration and registers the keyspace's instruments on `meter`
    /// (none when [disabled](KeyspaceBuilder::enabled)).
    pub fn build(self, meter: &Meter) -> Result<Keyspace, KeyspaceError> {
        self.validate()?;
        let digest_key = self.digest_key.unwrap_or_else(hash::random_key);
        let name_attr = KeyValue::new(attr::STATE_NAME, self.name);
        let shards = self.shards.unwrap_or(0);
        let enabled = self.enabled;
        // A disabled keyspace never samples, so its summary is kept minimal.
        let (counters, stripes) = if enabled {
            (self.counters, stripe_count())
        } else {
            (1, 1)
        };
        let half_life = self
            .half_life
            .map(|h| h.as_nanos().min(u128::from(u64::MAX)) as u64);
        let now = now_nanos();
        let inner = Arc::new(Inner {
            name: self.name,
            hasher: KeyHash::new(hash::seed_from(digest_key)),
            digest_key,
            raw_keys: self.raw_keys,
            top_k: self.top_k,
            counters: self.counters,
            hot_share: self.hot_share,
            sample_every: self.sample_every,
            shards,
            locals: ThreadLocal::new(),
            summaries: (0..stripes)
                .map(|_| CachePadded::new(Mutex::new(Summary::new(counters, half_life, now))))
                .collect(),
            dropped: AtomicU64::new(0),
            entries: AtomicI64::new(0),
            has_entries: AtomicBool::new(false),
            scan_items: enabled.then(|| {
                catalog::STATE_SCAN_ITEMS
                    .u64_histogram(meter)
                    .bind(std::slice::from_ref(&name_attr))
            }),
            skew_cursor: Mutex::new(vec![0; shards]),
        });
        if enabled {
            register_observers(meter, &inner, name_attr);
        }
        Ok(Keyspace { inner, enabled })
    }
}

/// Words of padding around a thread's shard counters, so that they share no cache line
/// with another thread's allocation (128 bytes: adjacent-line prefetch pairs lines).
const SHARD_PAD: usize = 16;

/// One thread's view of a keyspace. Only its thread writes the counters (a load and a
/// store, no read-modify-write); readers sum every thread's. A thread that exits leaves
/// its counts to the next thread that gets its slot, so cumulative totals never drop.
/// Kept in a [`CachePadded`] cell, its shard counters padded on both sides: threads that
/// record into one keyspace must not write to a shared cache line.
struct Local {
    ops: [AtomicU64; 4],
    /// `SHARD_PAD` unused words, the shard counters, `SHARD_PAD` unused words.
    padded_shards: Box<[AtomicU64]>,
    countdown: AtomicU32,
    gap: AtomicU32,
    rng: AtomicU64,
    samples: Mutex<Vec<Sample>>,
    /// The summary this thread folds into.
    stripe: usize,
}

impl Local {
    fn new(shards: usize, stripes: usize) -> Self {
        static SEEDS: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);
        static THREADS: AtomicUsize = AtomicUsize::new(0);
        let seed = hash::fmix64(SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed)) | 1;
        Self {
            stripe: THREADS.fetch_add(1, Relaxed) % stripes.max(1),
            ops: Default::default(),
            padded_shards: (0..shards + 2 * SHARD_PAD)
                .map(|_| AtomicU64::new(0))
                .collect(),
            countdown: AtomicU32::new(1),
            gap: AtomicU32::new(1),
            rng: AtomicU64::new(seed),
            samples: Mutex::new(Vec::with_capacity(BUFFER_CAP)),
        }
    }

    /// This thread's counter of each shard.
    fn shards(&self) -> &[AtomicU64] {
        &self.padded_shards[SHARD_PAD..self.padded_shards.len() - SHARD_PAD]
    }

    /// The next gap, uniform in `1..2n` (mean `n`), from a per-thread xorshift64.
    fn next_gap(&self, n: u32) -> u32 {
        if n <= 1 {
            return 1;
        }
        let mut x = self.rng.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Relaxed);
        let span = u64::from(n) * 2 - 1;
        1 + ((u128::from(x) * u128::from(span)) >> 64) as u32
    }
}

#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
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
    /// Starts building a keyspace named `name` (static, low-cardinality).
    pub fn builder(name: &'static str) -> KeyspaceBuilder {
        KeyspaceBuilder {
            name,
            top_k: DEFAULT_TOP_K,
            counters: DEFAULT_COUNTERS,
            sample_every: DEFAULT_SAMPLE_EVERY,
            hot_share: DEFAULT_HOT_SHARE,
            half_life: Some(DEFAULT_HALF_LIFE),
            shards: None,
            digest_key: None,
            raw_keys: false,
            enabled: true,
        }
    }

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

    // The recording methods are forced inline down to the `enabled` test, so that a
    // disabled keyspace costs a load and a branch at the call site, not a call.

    /// Records a point read of `key`.
    #[inline(always)]
    pub fn read<K: Hash + ?Sized>(&self, key: &K) {
        self.record(Operation::Read, key);
    }

    /// Records a write of `key`.
    #[inline(always)]
    pub fn write<K: Hash + ?Sized>(&self, key: &K) {
        self.record(Operation::Write, key);
    }

    /// Records a removal of `key`.
    #[inline(always)]
    pub fn delete<K: Hash + ?Sized>(&self, key: &K) {
        self.record(Operation::Delete, key);
    }

    /// Records a scan starting at `key` (a prefix, a range start) that touched `items`.
    #[inline(always)]
    pub fn scan<K: Hash + ?Sized>(&self, key: &K, items: u64) {
        if self.enabled {
            self.record_scan(key, items);
        }
    }

    fn record_scan<K: Hash + ?Sized>(&self, key: &K, items: u64) {
        self.record_key(Operation::Scan, key);
        if let Some(h) = &self.inner.scan_items {
            h.record(items);
        }
    }

    /// Records a full scan (no key) that touched `items`. Counts as a scan operation;
    /// does not feed the hot keys or shard load.
    #[inline(always)]
    pub fn full_scan(&self, items: u64) {
        if self.enabled {
            self.record_full_scan(items);
        }
    }

    fn record_full_scan(&self, items: u64) {
        bump(&self.local().ops[Operation::Scan.index()]);
        if let Some(h) = &self.inner.scan_items {
            h.record(items);
        }
    }

    /// Records `op` on `key`.
    #[inline(always)]
    pub fn record<K: Hash + ?Sized>(&self, op: Operation, key: &K) {
        if self.enabled {
            self.record_key(op, key);
        }
    }

    #[inline]
    fn record_key<K: Hash + ?Sized>(&self, op: Operation, key: &K) {
        self.record_hashed(op, key, || None);
    }

    /// Records `op` on `key` in scalewatch's own shard of it. Sharded, the key is hashed
    /// now for its shard; unsharded, only when its access is sampled.
    #[inline]
    fn record_hashed<K: Hash + ?Sized>(
        &self,
        op: Operation,
        key: &K,
        label: impl FnOnce() -> Option<Box<str>>,
    ) {
        if self.inner.shards > 0 {
            let fp = self.fingerprint(key);
            self.record_enabled(op, self.shard_of_fingerprint(fp), || (fp, label()));
        } else {
            self.record_enabled(op, None, || (self.fingerprint(key), label()));
        }
    }

    /// Records `op` on `key` in the application's own shard `shard` (taken modulo the
    /// shard count): for shard maps scalewatch cannot compute, such as a closure over
    /// the key or a consistent-hash ring.
    #[inline(always)]
    pub fn record_in_shard<K: Hash + ?Sized>(&self, op: Operation, key: &K, shard: usize) {
        if self.enabled {
            self.record_key_in_shard(op, key, shard);
        }
    }

    #[inline]
    fn record_key_in_shard<K: Hash + ?Sized>(&self, op: Operation, key: &K, shard: usize) {
        let shard = (self.inner.shards > 0).then(|| shard % self.inner.shards);
        self.record_enabled(op, shard, || (self.fingerprint(key), None));
    }

    /// Like [`Keyspace::record`], and when the keyspace was built with
    /// [`raw_keys(true)`](KeyspaceBuilder::raw_keys), keeps the key's `Display` (for
    /// sampled accesses only) so that a hot key is exported in clear.
    #[inline(always)]
    pub fn record_labeled<K: Hash + Display + ?Sized>(&self, op: Operation, key: &K) {
        if self.enabled {
            self.record_key_labeled(op, key);
        }
    }

    #[inline]
    fn record_key_labeled<K: Hash + Display + ?Sized>(&self, op: Operation, key: &K) {
        let raw = self.inner.raw_keys;
        self.record_hashed(op, key, || raw.then(|| label(key)));
    }

    #[cfg(feature = "map")]
    pub(crate) fn hasher(&self) -> KeyHash {
        self.inner.hasher
    }

    #[inline]
    fn local(&self) -> &Local {
        let (shards, stripes) = (self.inner.shards, self.inner.summaries.len());
        self.inner
            .locals
            .get_or(|| CachePadded::new(Local::new(shards, stripes)))
    }

    /// Records `op` on a key already hashed to `fp`, unless disabled.
    #[cfg(feature = "map")]
    #[inline(always)]
    pub(crate) fn record_fingerprint(
        &self,
        op: Operation,
        fp: u64,
        shard: Option<usize>,
        label: impl FnOnce() -> Option<Box<str>>,
    ) {
        if self.enabled {
            self.record_enabled(op, shard, || (fp, label()));
        }
    }

    /// The hot path: two counter bumps on this thread's cells, a countdown, and rarely a
    /// sample, the only access that needs the key's fingerprint (and label): `sampled`
    /// gives both, so an unsharded keyspace hashes one key in `sample_every`.
    #[inline]
    fn record_enabled(
        &self,
        op: Operation,
        shard: Option<usize>,
        sampled: impl FnOnce() -> (u64, Option<Box<str>>),
    ) {
        let local = self.local();
        bump(&local.ops[op.index()]);
        if let Some(c) = shard.and_then(|s| local.shards().get(s)) {
            bump(c);
        }
        let left = local.countdown.load(Relaxed);
        if left > 1 {
            local.countdown.store(left - 1, Relaxed);
            return;
        }
        let (fp, label) = sampled();
        self.sample(local, fp, label);
    }

    #[cold]
    #[inline(never)]
    fn sample(&self, local: &Local, fingerprint: u64, label: Option<Box<str>>) {
        let inner = &*self.inner;
        let weight = local.gap.load(Relaxed);
        let next = local.next_gap(inner.sample_every);
        local.gap.store(next, Relaxed);
        local.countdown.store(next, Relaxed);
        let mut buf = lock(&local.samples);
        if buf.len() >= BUFFER_CAP {
            inner.dropped.fetch_add(u64::from(weight), Relaxed);
            return;
        }
        buf.push(Sample {
            fingerprint,
            weight,
            label,
        });
        if buf.len() >= FOLD_AT {
            // Never wait for the summary on the hot path: if it is busy, fold later.
            let Some(stripe) = inner.summaries.get(local.stripe) else {
                return;
            };
            let summary = match stripe.try_lock() {
                Ok(s) => s,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            let mut summary = summary;
            summary.fold(buf.drain(..), now_nanos());
        }
    }

    /// Folds every thread's pending samples into its stripe's summary, and merges what
    /// the stripes say (done at each export).
    fn fold_pending(&self) -> summary::View {
        let inner = &*self.inner;
        let now = now_nanos();
        for local in inner.locals.iter() {
            let mut buf = lock(&local.samples);
            if let (false, Some(stripe)) = (buf.is_empty(), inner.summaries.get(local.stripe)) {
                lock(stripe).fold(buf.drain(..), now);
            }
        }
        summary::merge(inner.summaries.iter().map(|s| lock(s).view(now)).collect())
    }

    /// Exact operation counts since the keyspace was built (all zero when disabled).
    pub fn operations(&self) -> OperationCounts {
        let mut c = [0u64; 4];
        for local in self.inner.locals.iter() {
            for (sum, op) in c.iter_mut().zip(&local.ops) {
                *sum = sum.wrapping_add(op.load(Relaxed));
            }
        }
        OperationCounts {
            read: c[0],
            write: c[1],
            scan: c[2],
            delete: c[3],
        }
    }

    /// Operations per shard since the keyspace was built (empty when unsharded, zeros
    /// when disabled).
    pub fn shard_loads(&self) -> Vec<u64> {
        let mut loads = vec![0u64; self.inner.shards];
        for local in self.inner.locals.iter() {
            for (sum, c) in loads.iter_mut().zip(local.shards()) {
                *sum = sum.wrapping_add(c.load(Relaxed));
            }
        }
        loads
    }

    /// The busiest shard's operations over the mean per shard, since the keyspace was
    /// built, with the busiest shard's index; `None` when unsharded or idle.
    pub fn shard_skew(&self) -> Option<(usize, f64)> {
        skew(&self.shard_loads())
    }

    /// The `n` heaviest keys the summary tracks (hot or not, up to the counter count),
    /// heaviest first (none when disabled).
    pub fn top_keys(&self, n: usize) -> Vec<HotKey> {
        let view = self.fold_pending();
        let total = view.total;
        if total <= 0.0 {
            return Vec::new();
        }
        view.top(n)
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let digest = hash::digest(self.inner.digest_key, e.fingerprint);
                let key = match (&e.label, self.inner.raw_keys) {
                    (Some(l), true) => l.to_string(),
                    _ => digest.clone(),
                };
                HotKey {
                    rank: i + 1,
                    key,
                    digest,
                    share: e.count / total,
                    share_lower_bound: (e.count - e.error) / total,
                }
            })
            .collect()
    }

    /// The hot keys: among the top k, those whose guaranteed share lower bound reaches the
    /// hot threshold. This is what `scalewatch.state.hot_key.share` exports.
    pub fn hot_keys(&self) -> Vec<HotKey> {
        let mut hot = self.top_keys(self.inner.top_k);
        hot.retain(|h| h.share_lower_bound >= self.inner.hot_share);
        hot
    }

    /// Sets the resident entries exported as `scalewatch.state.entries`.
    #[inline]
    pub fn set_entries(&self, entries: u64) {
        if !self.enabled {
            return;
        }
        self.inner
            .entries
            .store(entries.min(i64::MAX as u64) as i64, Relaxed);
        self.inner.has_entries.store(true, Relaxed);
    }

    /// Adds `delta` (may be negative) to the resident entries.
    #[inline]
    pub fn add_entries(&self, delta: i64) {
        if !self.enabled {
            return;
        }
        self.inner.entries.fetch_add(delta, Relaxed);
        self.inner.has_entries.store(true, Relaxed);
    }

    /// The resident entries last set (0 when disabled).
    pub fn entries(&self) -> i64 {
        self.inner.entries.load(Relaxed)
    }

    /// Samples dropped because a thread's buffer was full while the summary was busy
    /// (their weight, in operations). Only shares are affected, never counts.
    pub fn dropped_sample_weight(&self) -> u64 {
        self.inner.dropped.load(Relaxed)
    }

    /// An upper bound of this keyspace's heap memory with `threads` threads recording,
    /// in bytes; the tracker stays under it whatever the keys.
    ///
    /// Fixed part: one summary per stripe (one stripe per core, at most 8), about 110
    /// bytes per counter (plus 80 bytes per counter with raw keys: a label of at most
    /// [`MAX_LABEL_BYTES`]), and with more than one stripe the merge a read makes, about
    /// 230 bytes per counter and stripe while it runs. Per recording thread: about
    /// 2.5 KiB of sample buffer and cache-padded counters, plus 8 bytes per shard (and 80
    /// bytes per buffered sample with raw keys). The thread table doubles as it grows, so each
    /// thread counts twice. Threads that exit hand their slot to the next thread.
    pub fn memory_cap(&self, threads: usize) -> usize {
        memory_cap(
            self.inner.counters,
            self.inner.summaries.len(),
            self.inner.shards,
            self.inner.raw_keys,
            threads,
        )
    }
}

fn memory_cap(counters: usize, stripes: usize, shards: usize, raw: bool, threads: usize) -> usize {
    use std::mem::size_of;
    let label = if raw { MAX_LABEL_BYTES + 16 } else { 0 };
    // Heap entries plus a hash index sized for twice the entries: at most 4 slots
    // (fingerprint and position, plus a control byte) per entry.
    let slot = size_of::<(u64, u32)>() + 1;
    let entry = size_of::<crate::summary::Entry>() + label;
    let summary = counters * (entry + 4 * slot) + 256;
    // A read merges the stripes' views: every entry once more, in a map of twice as many
    // slots of an entry and its floor.
    let merge = if stripes > 1 {
        stripes * counters * (entry + 2 * (entry + 8 + 1))
    } else {
        0
    };
    let per_thread = size_of::<CachePadded<Local>>()
        + 64
        + BUFFER_CAP * (size_of::<Sample>() + label)
        + (shards + 2 * SHARD_PAD) * 8
        + 64;
    4096 + stripes * summary + merge + 2 * threads.max(1) * per_thread + shards * 8
}

/// The busiest index and its load over the mean.
fn skew(loads: &[u64]) -> Option<(usize, f64)> {
    let total: u64 = loads.iter().sum();
    if loads.is_empty() || total == 0 {
        return None;
    }
    // The first of equally busy shards.
    let (busiest, max) =
        loads.iter().enumerate().fold(
            (0, 0),
            |best, (i, &l)| if l > best.1 { (i, l) } else { best },
        );
    let mean = total as f64 / loads.len() as f64;
    Some((busiest, max as f64 / mean))
}

pub(crate) fn label<K: Display + ?Sized>(key: &K) -> Box<str> {
    let mut s = String::new();
    let _ = write!(s, "{key}");
    if s.len() > MAX_LABEL_BYTES {
        let mut cut = MAX_LABEL_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s.into_boxed_str()
}

/// Observable instruments read the keyspace at collection time through a weak reference,
/// so a dropped keyspace simply stops reporting.
fn register_observers(meter: &Meter, inner: &Arc<Inner>, name: KeyValue) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Meter {
        opentelemetry::global::meter_provider().meter("test")
    }

    #[test]
    fn rejects_bad_configuration() {
        let m = meter();
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
        let ks = Keyspace::builder("t").shards(4).build(&meter()).unwrap();
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
    fn gaps_average_the_sampling_period() {
        let l = Local::new(0, 1);
        let n = 100_000u64;
        let sum: u64 = (0..n).map(|_| u64::from(l.next_gap(32))).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 32.0).abs() < 0.5, "{mean}");
        assert_eq!(l.next_gap(1), 1);
    }

    #[test]
    fn raw_labels_only_when_opted_in_and_cut_to_size() {
        let raw = Keyspace::builder("raw")
            .sample_every(1)
            .raw_keys(true)
            .build(&meter())
            .unwrap();
        let plain = Keyspace::builder("plain")
            .sample_every(1)
            .build(&meter())
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
                .build(&meter())
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

    #[test]
    fn skew_is_busiest_over_mean() {
        assert_eq!(skew(&[]), None);
        assert_eq!(skew(&[0, 0]), None);
        assert_eq!(skew(&[1, 1, 1, 1]), Some((0, 1.0)));
        assert_eq!(skew(&[1, 5, 1, 1]), Some((1, 2.5)));
    }
}
