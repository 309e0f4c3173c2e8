//! Each thread's own cells of a keyspace: exact counts written by that thread alone, and
//! the buffer and countdown of its sampling.

use crate::hash;
use crate::summary::Sample;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// Samples a thread buffers before folding them into its stripe's summary.
pub(super) const FOLD_AT: usize = 32;
/// Samples a thread buffers at most (when the summary is busy it keeps them a while).
pub(super) const BUFFER_CAP: usize = 2 * FOLD_AT;

/// Words of padding around a thread's shard counters, so that they share no cache line
/// with another thread's allocation (128 bytes: adjacent-line prefetch pairs lines).
pub(super) const SHARD_PAD: usize = 16;

/// One thread's view of a keyspace. Only its thread writes the counters (a load and a
/// store, no read-modify-write); readers sum every thread's. A thread that exits leaves
/// its counts to the next thread that gets its slot, so cumulative totals never drop.
/// Kept in a [`CachePadded`](crossbeam_utils::CachePadded) cell, its shard counters padded on both sides: threads that
/// record into one keyspace must not write to a shared cache line.
pub(super) struct Local {
    pub(super) ops: [AtomicU64; 4],
    /// `SHARD_PAD` unused words, the shard counters, `SHARD_PAD` unused words.
    padded_shards: Box<[AtomicU64]>,
    pub(super) countdown: AtomicU32,
    pub(super) gap: AtomicU32,
    rng: AtomicU64,
    pub(super) samples: Mutex<Vec<Sample>>,
    /// The summary this thread folds into.
    pub(super) stripe: usize,
}

impl Local {
    pub(super) fn new(shards: usize, stripes: usize) -> Self {
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
    pub(super) fn shards(&self) -> &[AtomicU64] {
        &self.padded_shards[SHARD_PAD..self.padded_shards.len() - SHARD_PAD]
    }

    /// The next gap, uniform in `1..2n` (mean `n`), from a per-thread xorshift64.
    pub(super) fn next_gap(&self, n: u32) -> u32 {
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
pub(super) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_average_the_sampling_period() {
        let l = Local::new(0, 1);
        let n = 100_000u64;
        let sum: u64 = (0..n).map(|_| u64::from(l.next_gap(32))).sum();
        let mean = sum as f64 / n as f64;
        assert!((mean - 32.0).abs() < 0.5, "{mean}");
        assert_eq!(l.next_gap(1), 1);
    }
}
