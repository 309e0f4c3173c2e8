//! State-access signals for scalewatch: hot keys, shard skew, scans, resident state and
//! queues, measured from inside the application with bounded memory.
//!
//! Databases find their hot keys inside themselves; an application's own state (caches,
//! session maps, in-process shards, queues) usually has no one watching it. This crate
//! makes that state observable through the signals of the scalewatch catalog
//! ([`catalog`]): `scalewatch.state.*` and `scalewatch.queue.*`.
//!
//! # Concepts
//! - **[`Keyspace`]**: a named set of keys (`&'static str` name, built once from a
//!   [`Meter`](opentelemetry::metrics::Meter)). Each access is recorded with its
//!   [`Operation`] and its key (anything `Hash`). The key is hashed once; the operation
//!   is counted exactly (`scalewatch.state.operations`) in counters owned by the
//!   recording thread (a relaxed load and store, no shared cache line).
//! - **Hot keys**: one access in `sample_every` (a random gap in `1..2n`, default 32) is
//!   put, with its gap as weight, into a small per-thread buffer; every 32 samples the
//!   buffer is folded into its stripe's summary if that lock is free (never waited for),
//!   and at each export. A keyspace keeps one summary per core (at most 8), so threads on
//!   different cores never share one; each is a weighted **Space-Saving** summary of `m`
//!   counters (default 512) on a min-heap, and reads merge them (mergeable Space-Saving:
//!   the bounds below hold for the merged view).
//! - **Error bound**: over a sampled weight `W`, each tracked key's count `c` and error
//!   `e` bound its sampled weight `t` by `c − e ≤ t ≤ c` with `e ≤ W/m`, and every key
//!   with `t > W/m` is tracked; shares are therefore within `1/m` (0.2% by default) of
//!   the sampled shares, which are within a few `sqrt(p/(W/n))` of the true ones
//!   (sampling error). Measured with the defaults: on a Zipf(1.1) stream of 1,000,000
//!   accesses over 100,000 keys, 9 of the true top 10 are reported in the top 10 (ranks
//!   10 and 11 differ by 0.1% of the stream) and every reported share is within 0.14
//!   percentage points of the truth.
//! - **Hot** means: among the top `k` (default 10, at most 20) and the guaranteed lower
//!   bound `(c − e)/W` of its share is at least the hot share (default 1%). A uniform
//!   stream over many keys has no hot key; `scalewatch.state.hot_keys.share` is the sum
//!   of the hot keys' shares.
//! - **Decay**: weights decay exponentially with a half-life (default 60 s) by forward
//!   decay: new samples are weighted up by `exp(λ·age of the horizon)` and everything is
//!   renormalised when that factor grows large, so yesterday's hot key fades without a
//!   pass over the summary per export.
//! - **Keys are redacted**: exported as a 16-hex-digit SipHash-2-4 digest under a secret
//!   key (random per process, or [`KeyspaceBuilder::digest_key`] for digests stable
//!   across processes; [`Keyspace::digest_of`] maps a known key to its digest). Raw keys
//!   are exported only with [`KeyspaceBuilder::raw_keys`] *and* a `Display` key recorded
//!   through [`Keyspace::record_labeled`] or a map built with
//!   [`KeyspaceBuilder::build_map_with_raw_keys`].
//! - **Shards**: with [`KeyspaceBuilder::shards`], per-shard load is counted exactly and
//!   `scalewatch.state.shard.skew` is the busiest shard's operations over the mean per
//!   shard in each export interval. The shard is scalewatch's own hash of the key, or the
//!   application's ([`Keyspace::record_in_shard`]).
//! - **Memory cap**: a keyspace's heap memory is bounded whatever the keys:
//!   [`Keyspace::memory_cap`] states it: 64,192 bytes for the defaults and one
//!   recording thread, plus about 4.5 KiB per further recording thread and 8 bytes per
//!   shard per thread (raw keys add 80 bytes per counter and per buffered sample). A test
//!   with a counting allocator measures 58,248 bytes after 1,000,000 unique keys.
//! - **[`TrackedMap`]**: a sharded `RwLock<HashMap>` whose accesses are recorded
//!   automatically and whose length is `scalewatch.state.entries`.
//! - **Queues**: [`channel`] and [`unbounded_channel`] wrap tokio's mpsc channels with
//!   `scalewatch.queue.depth`, `.time` (send → receive) and `.utilization` (time-averaged
//!   depth over capacity). Depth is held by each message's envelope, so cancelled sends
//!   and dropped messages never leak it. [`QueueBuilder`] builds the same channels with
//!   options.
//! - **Off switch**: [`KeyspaceBuilder::enabled`] and [`QueueBuilder::enabled`] (default
//!   `true`). Built disabled, a keyspace, its map or a channel measures nothing: each
//!   recording point returns at once (about a nanosecond), no instrument is registered,
//!   and the in-process readings ([`Keyspace::operations`], [`Keyspace::hot_keys`],
//!   `depth()`) stay empty. Maps and channels keep working as maps and channels. Pass
//!   `telemetry.is_enabled()` so that `OTEL_SDK_DISABLED=true` costs next to nothing.
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_state::{Keyspace, TrackedMap};
//!
//! let meter = opentelemetry::global::meter_provider().meter("example");
//! let carts: TrackedMap<u64, Vec<u32>> = Keyspace::builder("carts")
//!     .shards(16)
//!     .top_k(5)
//!     .build_map(&meter)?;
//! for user in 0..1_000u64 {
//!     carts.upsert(user % 10, Vec::new, |cart| cart.push(1));
//! }
//! assert_eq!(carts.len(), 10);
//! assert_eq!(carts.keyspace().operations().write, 1_000);
//! assert!(carts.keyspace().shard_skew().is_some());
//! # Ok::<(), scalewatch_state::KeyspaceError>(())
//! ```
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `map` | yes | [`TrackedMap`] and [`KeyspaceBuilder::build_map`] |
//! | `channel` | yes | [`channel`], [`unbounded_channel`], [`QueueBuilder`] (tokio `sync`) |

pub mod catalog;
#[cfg(feature = "channel")]
mod channel;
mod hash;
mod keyspace;
#[cfg(feature = "map")]
mod map;
mod summary;

#[cfg(feature = "channel")]
pub use channel::{
    channel, unbounded_channel, QueueBuilder, QueueError, Receiver, SendError, Sender,
    TryRecvError, TrySendError, UnboundedReceiver, UnboundedSender,
};
pub use keyspace::{
    HotKey, Keyspace, KeyspaceBuilder, KeyspaceError, Operation, OperationCounts, DEFAULT_COUNTERS,
    DEFAULT_HALF_LIFE, DEFAULT_HOT_SHARE, DEFAULT_SAMPLE_EVERY, DEFAULT_TOP_K, MAX_COUNTERS,
    MAX_LABEL_BYTES, MAX_SHARDS, MAX_TOP_K,
};
#[cfg(feature = "map")]
pub use map::{TrackedMap, DEFAULT_MAP_SHARDS};
