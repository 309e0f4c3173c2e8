//! Reading a keyspace in process: exact counts, shard load and skew, hot keys, and its
//! memory bound.

use super::thread_cells::{Local, BUFFER_CAP, SHARD_PAD};
use super::*;
use crate::hash;
use crate::summary::{self, Sample};
use crossbeam_utils::CachePadded;
use scalewatch_core::clock::now_nanos;
use std::sync::atomic::Ordering::Relaxed;

impl Keyspace {
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
pub(super) fn skew(loads: &[u64]) -> Option<(usize, f64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_busiest_over_mean() {
        assert_eq!(skew(&[]), None);
        assert_eq!(skew(&[0, 0]), None);
        assert_eq!(skew(&[1, 1, 1, 1]), Some((0, 1.0)));
        assert_eq!(skew(&[1, 5, 1, 1]), Some((1, 2.5)));
    }
}
