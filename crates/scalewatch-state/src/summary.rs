//! The shared heavy-hitter summary: weighted Space-Saving (Metwally et al., 2005) over a
//! min-heap, with forward exponential decay (Cormode et al., 2009).
//!
//! Guarantees, for a summary of `m` counters that has absorbed total (decayed) weight `W`:
//! every tracked key's count `c` and error `e` bound its true weight `t` by
//! `c − e ≤ t ≤ c`, with `e ≤ W / m`; every key whose true weight exceeds `W / m` is
//! tracked. Decay multiplies every weight, past and future, by the same factor, so it never
//! changes an order or a share: it is applied by weighting new samples up
//! (`exp(λ (now − landmark))`) and renormalising when that factor grows large.

use crate::hash::IdHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// One tracked key.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) fingerprint: u64,
    pub(crate) count: f64,
    pub(crate) error: f64,
    pub(crate) label: Option<Box<str>>,
}

/// A sample handed to the summary.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) fingerprint: u64,
    pub(crate) weight: u32,
    pub(crate) label: Option<Box<str>>,
}

/// Renormalise once the decay factor exceeds e^30 (about 43 half-lives).
const RENORMALISE_AT: f64 = 30.0;

#[derive(Debug)]
pub(crate) struct Summary {
    capacity: usize,
    heap: Vec<Entry>,
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    total: f64,
    landmark: u64,
    /// Decay rate per nanosecond; 0 keeps everything forever.
    lambda: f64,
}

impl Summary {
    pub(crate) fn new(capacity: usize, half_life_nanos: Option<u64>, now: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            heap: Vec::with_capacity(capacity),
            // Twice the entries: with churn (evictions leave tombstones) the table then
            // rehashes in place and never grows, so its size is fixed from the start.
            index: HashMap::with_capacity_and_hasher(2 * capacity, Default::default()),
            total: 0.0,
            landmark: now,
            lambda: half_life_nanos
                .filter(|h| *h > 0)
                .map_or(0.0, |h| std::f64::consts::LN_2 / h as f64),
        }
    }

    /// The weight multiplier for samples folded at `now`, renormalising when needed.
    fn scale(&mut self, now: u64) -> f64 {
        if self.lambda == 0.0 {
            return 1.0;
        }
        let exponent = self.lambda * now.saturating_sub(self.landmark) as f64;
        if exponent < RENORMALISE_AT {
            return exponent.exp();
        }
        let down = (-exponent).exp();
        for e in &mut self.heap {
            e.count *= down;
            e.error *= down;
        }
        self.total *= down;
        self.landmark = now;
        1.0
    }

    /// Folds samples taken around `now`.
    pub(crate) fn fold(&mut self, samples: impl Iterator<Item = Sample>, now: u64) {
        let scale = self.scale(now);
        for s in samples {
            self.add(s.fingerprint, f64::from(s.weight) * scale, s.label);
        }
    }

    fn add(&mut self, fingerprint: u64, weight: f64, label: Option<Box<str>>) {
        self.total += weight;
        if let Some(&i) = self.index.get(&fingerprint) {
            let i = i as usize;
            if let Some(e) = self.heap.get_mut(i) {
                e.count += weight;
                if e.label.is_none() {
                    e.label = label;
                }
                self.sift_down(i);
            }
            return;
        }
        if self.heap.len() < self.capacity {
            self.heap.push(Entry {
                fingerprint,
                count: weight,
                error: 0.0,
                label,
            });
            let i = self.heap.len() - 1;
            self.index.insert(fingerprint, i as u32);
            self.sift_up(i);
            return;
        }
        // Full: the new key replaces the minimum and inherits its count as its error.
        let Some(min) = self.heap.first_mut() else {
            return;
        };
        let old = std::mem::replace(
            min,
            Entry {
                fingerprint,
                count: min.count + weight,
                error: min.count,
                label,
            },
        );
        self.index.remove(&old.fingerprint);
        self.index.insert(fingerprint, 0);
        self.sift_down(0);
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.index.insert(self.heap[a].fingerprint, a as u32);
        self.index.insert(self.heap[b].fingerprint, b as u32);
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i].count >= self.heap[parent].count {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.heap[l].count < self.heap[smallest].count {
                smallest = l;
            }
            if r < n && self.heap[r].count < self.heap[smallest].count {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }

    /// Total weight absorbed (decayed to the landmark's scale, like every count).
    pub(crate) fn total(&self) -> f64 {
        self.total
    }

    /// The `n` heaviest tracked keys, heaviest first.
    pub(crate) fn top(&self, n: usize) -> Vec<Entry> {
        let mut all: Vec<&Entry> = self.heap.iter().collect();
        all.sort_unstable_by(|a, b| b.count.total_cmp(&a.count));
        all.into_iter().take(n).cloned().collect()
    }

    #[cfg(test)]
    fn check(&self) {
        for (i, e) in self.heap.iter().enumerate() {
            assert_eq!(self.index.get(&e.fingerprint), Some(&(i as u32)));
            if i > 0 {
                assert!(self.heap[(i - 1) / 2].count <= e.count);
            }
        }
        assert_eq!(self.index.len(), self.heap.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(s: &mut Summary, keys: &[u64], now: u64) {
        s.fold(
            keys.iter().map(|&k| Sample {
                fingerprint: k,
                weight: 1,
                label: None,
            }),
            now,
        );
    }

    #[test]
    fn exact_while_under_capacity_and_bounded_after() {
        let mut s = Summary::new(4, None, 0);
        feed(&mut s, &[1, 1, 1, 2, 2, 3], 0);
        s.check();
        let top = s.top(2);
        assert_eq!((top[0].fingerprint, top[0].count), (1, 3.0));
        assert_eq!((top[1].fingerprint, top[1].count), (2, 2.0));
        // Overflow with many distinct keys: the heavy key stays, errors stay under W/m.
        let tail: Vec<u64> = (100..200).collect();
        feed(&mut s, &tail, 0);
        feed(&mut s, &[1; 50], 0);
        s.check();
        let top = s.top(4);
        assert_eq!(top[0].fingerprint, 1);
        assert!(top[0].count - top[0].error <= 53.0 && 53.0 <= top[0].count);
        for e in &top {
            assert!(e.error <= s.total() / 4.0 + 1e-9);
        }
    }

    #[test]
    fn decay_lets_yesterdays_hot_key_fade() {
        let second = 1_000_000_000u64;
        let mut s = Summary::new(8, Some(second), 0);
        feed(&mut s, &[1; 100], 0);
        // 10 half-lives later a smaller but current burst wins.
        feed(&mut s, &[2; 10], 10 * second);
        assert_eq!(s.top(1)[0].fingerprint, 2);
        // And renormalisation after a long quiet period keeps values finite and ordered.
        feed(&mut s, &[3; 5], 1000 * second);
        s.check();
        assert_eq!(s.top(1)[0].fingerprint, 3);
        assert!(s.total().is_finite() && s.total() > 0.0);
    }
}
