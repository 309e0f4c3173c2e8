//! The heavy-hitter summaries: weighted Space-Saving (Metwally et al., 2005) over a
//! min-heap, with forward exponential decay (Cormode et al., 2009).
//!
//! Guarantees, for a summary of `m` counters that has absorbed total (decayed) weight `W`:
//! every tracked key's count `c` and error `e` bound its true weight `t` by
//! `c − e ≤ t ≤ c`, with `e ≤ W / m`; every key whose true weight exceeds `W / m` is
//! tracked. Decay multiplies every weight, past and future, by the same factor, so it never
//! changes an order or a share: it is applied by weighting new samples up
//! (`exp(λ (now − landmark))`) and renormalising when that factor grows large.

//!
//! A keyspace keeps one summary per stripe of threads, so that threads fold their samples
//! without sharing memory; readers [merge](merge) what the stripes say (mergeable
//! Space-Saving, Agarwal et al., 2012): the bounds above hold for the merged view with `W`
//! the total over all stripes.

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

    /// What the summary says at `now`: its weights decayed to `now`, so that views of
    /// summaries with different landmarks add up.
    pub(crate) fn view(&self, now: u64) -> View {
        let factor = if self.lambda == 0.0 {
            1.0
        } else {
            (-self.lambda * now.saturating_sub(self.landmark) as f64).exp()
        };
        let full = self.heap.len() >= self.capacity;
        View {
            total: self.total * factor,
            entries: self
                .heap
                .iter()
                .map(|e| Entry {
                    fingerprint: e.fingerprint,
                    count: e.count * factor,
                    error: e.error * factor,
                    label: e.label.clone(),
                })
                .collect(),
            // The heap's root is its smallest count.
            floor: match self.heap.first() {
                Some(min) if full => min.count * factor,
                _ => 0.0,
            },
        }
    }

    /// Total weight absorbed (decayed to the landmark's scale, like every count).
    #[cfg(test)]
    pub(crate) fn total(&self) -> f64 {
        self.total
    }

    /// The `n` heaviest tracked keys, heaviest first.
    #[cfg(test)]
    pub(crate) fn top(&self, n: usize) -> Vec<Entry> {
        let mut all: Vec<&Entry> = self.heap.iter().collect();
        all.sort_unstable_by(|a, b| b.count.total_cmp(&a.count));
        all.into_iter().take(n).cloned().collect()
    }

    #[cfg(test)]
    pub(crate) fn check(&self) {
        for (i, e) in self.heap.iter().enumerate() {
            assert_eq!(self.index.get(&e.fingerprint), Some(&(i as u32)));
            if i > 0 {
                assert!(self.heap[(i - 1) / 2].count <= e.count);
            }
        }
        assert_eq!(self.index.len(), self.heap.len());
    }
}

/// What one summary, or several merged, say at one instant.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Total weight absorbed.
    pub(crate) total: f64,
    /// The tracked keys, in no order.
    pub(crate) entries: Vec<Entry>,
    /// What a key that is not tracked may weigh at most: the smallest count of a full
    /// summary, 0 while a counter is free (every key seen is then tracked exactly).
    pub(crate) floor: f64,
}

impl View {
    /// The `n` heaviest tracked keys, heaviest first.
    pub(crate) fn top(mut self, n: usize) -> Vec<Entry> {
        self.entries
            .sort_unstable_by(|a, b| b.count.total_cmp(&a.count));
        self.entries.truncate(n);
        self.entries
    }
}

/// Merges the views of summaries that absorbed disjoint streams. Counts and errors add; a
/// key missing from a full summary may have weighed up to that summary's floor there, which
/// is added to its count and its error alike, so `count − error ≤ true ≤ count` holds for
/// the merged view and the error stays within the total over all counters of one summary.
pub(crate) fn merge(mut views: Vec<View>) -> View {
    if views.len() <= 1 {
        return views.pop().unwrap_or_default();
    }
    let total = views.iter().map(|v| v.total).sum();
    let floors: f64 = views.iter().map(|v| v.floor).sum();
    // Per key: the merged entry, and the floors of the views that track it.
    let mut merged: HashMap<u64, (Entry, f64), BuildHasherDefault<IdHasher>> = HashMap::default();
    for view in views {
        for e in view.entries {
            let (m, held) = merged.entry(e.fingerprint).or_insert_with(|| {
                (
                    Entry {
                        fingerprint: e.fingerprint,
                        count: 0.0,
                        error: 0.0,
                        label: None,
                    },
                    0.0,
                )
            });
            m.count += e.count;
            m.error += e.error;
            if m.label.is_none() {
                m.label = e.label;
            }
            *held += view.floor;
        }
    }
    View {
        total,
        entries: merged
            .into_values()
            .map(|(mut e, held)| {
                let unseen = floors - held;
                e.count += unseen;
                e.error += unseen;
                e
            })
            .collect(),
        floor: floors,
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

    #[test]
    fn merged_views_keep_the_bounds_of_each_summary() {
        // Two summaries of 8 counters over disjoint streams with overlapping keys.
        let (mut a, mut b) = (Summary::new(8, None, 0), Summary::new(8, None, 0));
        let mut truth = HashMap::<u64, f64>::new();
        let mut x = 0x9e37_79b9_u64;
        for i in 0..4_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Key 1 and 2 heavy; the rest spread over 200 keys.
            let key = match x % 10 {
                0..=2 => 1,
                3 | 4 => 2,
                _ => 10 + x % 200,
            };
            *truth.entry(key).or_default() += 1.0;
            let target = if i % 3 == 0 { &mut a } else { &mut b };
            feed(target, &[key], 0);
        }
        let merged = merge(vec![a.view(0), b.view(0)]);
        assert_eq!(merged.total, 4_000.0);
        for e in &merged.entries {
            let t = truth[&e.fingerprint];
            assert!(e.count - e.error <= t + 1e-9, "{e:?} true {t}");
            assert!(t <= e.count + 1e-9, "{e:?} true {t}");
            assert!(e.error <= merged.total / 8.0 + 1e-9, "{e:?}");
        }
        let top = merged.top(2);
        assert_eq!(
            top.iter().map(|e| e.fingerprint).collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn views_decay_to_the_same_instant() {
        // The same weight, folded one half-life apart into two summaries with different
        // landmarks, weighs half as much from the older one.
        let half = 1_000_000_000u64;
        let mut a = Summary::new(4, Some(half), 0);
        let mut b = Summary::new(4, Some(half), half);
        feed(&mut a, &[7], 0);
        feed(&mut b, &[7], half);
        let merged = merge(vec![a.view(half), b.view(half)]);
        assert!((merged.total - 1.5).abs() < 1e-9, "{}", merged.total);
        let top = merged.top(1);
        assert!((top[0].count - 1.5).abs() < 1e-9);
    }
}
