//! Recording accesses: the hot path, and the sampling that feeds the hot keys.

use super::thread_cells::{bump, Local, BUFFER_CAP, FOLD_AT};
use super::*;
use crate::hash::KeyHash;
use crate::summary::Sample;
use crossbeam_utils::CachePadded;
use scalewatch_core::clock::now_nanos;
use std::fmt::{Display, Write as _};
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::TryLockError;

impl Keyspace {
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
