//! Building a keyspace: the configuration, its validation, and the state it starts with.

use super::observers::register_observers;
use super::*;
use crate::catalog::{self, attr};
use crate::hash::{self, KeyHash};
use crate::summary::Summary;
use crossbeam_utils::CachePadded;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use scalewatch_core::clock::now_nanos;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thread_local::ThreadLocal;

/// Most summaries per keyspace: threads beyond this many share their stripe's.
const MAX_STRIPES: usize = 8;

/// Summaries per keyspace: one per core (a power of two), at most [`MAX_STRIPES`], so
/// that threads on different cores fold their samples without sharing memory.
fn stripe_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.next_power_of_two().min(MAX_STRIPES)
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
    /// A shard capacity that is not a positive number, or one without shards.
    #[error(
        "keyspace `{name}`: shard_capacity({capacity}) needs shards(n) and a finite number of operations per second above 0"
    )]
    ShardCapacity {
        /// The keyspace.
        name: &'static str,
        /// The value given.
        capacity: f64,
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
    shard_capacity: Option<f64>,
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

    /// Declares what one shard can take, in operations per second: each shard then joins a
    /// capacity model's ranking (`CapacityModel::register(&keyspace)`) as a `shard`
    /// resource named `name/NN`, used at its operations per second over this capacity.
    /// Needs [`shards`](Self::shards).
    pub fn shard_capacity(mut self, operations_per_second: f64) -> Self {
        self.shard_capacity = Some(operations_per_second);
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
        if let Some(capacity) = self.shard_capacity {
            if self.shards.is_none() || !(capacity.is_finite() && capacity > 0.0) {
                return Err(KeyspaceError::ShardCapacity { name, capacity });
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
            shard_capacity: self.shard_capacity,
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
            shard_capacity: None,
            digest_key: None,
            raw_keys: false,
            enabled: true,
        }
    }
}
