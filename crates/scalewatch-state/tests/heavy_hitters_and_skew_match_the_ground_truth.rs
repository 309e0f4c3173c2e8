//! Accuracy against exact ground truth, with the default configuration (sampling one
//! access in 32, 512 counters): a Zipf(1.1) stream's top 10, a uniform stream with no hot
//! key and even shards, and a planted hot shard.

use scalewatch_state::{Keyspace, Operation};
use scalewatch_test_support::workload::{noop_meter, XorShift, Zipf};
use std::collections::HashMap;
use std::time::Instant;

const OPS: usize = 1_000_000;
const KEYS: usize = 100_000;

/// The digests of the ten keys with the most accesses in `truth`.
fn true_top_ten(ks: &Keyspace, truth: &[u64]) -> Vec<String> {
    let mut order: Vec<usize> = (0..truth.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(truth[k]));
    order[..10]
        .iter()
        .map(|k| ks.digest_of(&(*k as u64)))
        .collect()
}

/// Four threads record a quarter of the stream each: their samples land in the summaries
/// of different stripes, which every read merges.
#[test]
fn zipf_top_ten_is_found_when_four_threads_record() {
    let zipf = std::sync::Arc::new(Zipf::new(KEYS, 1.1));
    let ks = Keyspace::builder("zipf-threads")
        .build(&noop_meter())
        .unwrap();
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (ks, zipf) = (ks.clone(), zipf.clone());
            std::thread::spawn(move || {
                let mut rng = XorShift::new(0x5eed + t);
                let mut truth = vec![0u64; KEYS];
                for _ in 0..OPS / 4 {
                    let key = zipf.sample(&mut rng);
                    truth[key as usize] += 1;
                    ks.read(&key);
                }
                truth
            })
        })
        .collect();
    let mut truth = vec![0u64; KEYS];
    for h in handles {
        for (sum, n) in truth.iter_mut().zip(h.join().unwrap()) {
            *sum += n;
        }
    }
    assert_eq!(ks.operations().read, OPS as u64);
    let true_top = true_top_ten(&ks, &truth);
    let reported = ks.top_keys(10);
    assert_eq!(reported.len(), 10);
    let mut found = 0;
    for h in &reported {
        let key = (0..KEYS)
            .find(|k| ks.digest_of(&(*k as u64)) == h.digest)
            .unwrap();
        let share = truth[key] as f64 / OPS as f64;
        assert!(
            (h.share - share).abs() <= 0.02,
            "rank {}: reported {:.4}, true {share:.4}",
            h.rank,
            h.share
        );
        found += usize::from(true_top.contains(&h.digest));
    }
    assert!(found >= 9, "recall {found}/10");
}

#[test]
fn zipf_top_ten_is_found_with_shares_within_two_points() {
    let started = Instant::now();
    let zipf = Zipf::new(KEYS, 1.1);
    let ks = Keyspace::builder("zipf").build(&noop_meter()).unwrap();
    let mut rng = XorShift::new(0x5eed);
    let mut truth = vec![0u64; KEYS];
    for _ in 0..OPS {
        let key = zipf.sample(&mut rng);
        truth[key as usize] += 1;
        ks.read(&key);
    }
    assert_eq!(ks.operations().read, OPS as u64);

    let true_top = true_top_ten(&ks, &truth);
    let share_of: HashMap<String, f64> = (0..KEYS)
        .map(|k| (ks.digest_of(&(k as u64)), truth[k] as f64 / OPS as f64))
        .collect();
    assert_eq!(
        share_of.len(),
        KEYS,
        "one digest per key: a reported digest is one key"
    );

    let reported = ks.top_keys(10);
    assert_eq!(reported.len(), 10);
    let found = reported
        .iter()
        .filter(|h| true_top.contains(&h.digest))
        .count();
    let recall = found as f64 / 10.0;
    let mut worst = 0.0f64;
    for h in &reported {
        let truth = share_of[&h.digest];
        worst = worst.max((h.share - truth).abs());
        assert!(
            (h.share - truth).abs() <= 0.02,
            "rank {}: reported {:.4}, true {truth:.4}",
            h.rank,
            h.share
        );
    }
    eprintln!(
        "zipf: recall {recall}, worst share error {:.3} pp, top share {:.4} (true {:.4}, p {:.4}), {:?}",
        worst * 100.0,
        reported[0].share,
        share_of[&reported[0].digest],
        zipf.probability(0),
        started.elapsed()
    );
    assert!(recall >= 0.9, "recall {recall}");
    // Hot keys are the top 10 with a guaranteed share of at least 1%. Against the stream's
    // exact counts: every key with 2% of the operations or more is hot (its estimate is
    // within the two points checked above, its lower bound about as close), and no key
    // under 0.5% is.
    let hot = ks.hot_keys();
    assert!(!hot.is_empty() && hot.len() <= 10);
    assert!(hot.iter().all(|h| h.share_lower_bound >= 0.01));
    let hot_digests: Vec<&str> = hot.iter().map(|h| h.digest.as_str()).collect();
    for (digest, share) in &share_of {
        if *share >= 0.02 {
            assert!(
                hot_digests.contains(&digest.as_str()),
                "{digest} with {share:.4} is hot"
            );
        }
    }
    for h in &hot {
        assert!(
            share_of[&h.digest] >= 0.005,
            "hot key {h:?}: true share {:.4}",
            share_of[&h.digest]
        );
    }
}

#[test]
fn a_uniform_stream_has_no_hot_key_and_even_shards() {
    let ks = Keyspace::builder("uniform")
        .shards(16)
        .build(&noop_meter())
        .unwrap();
    let mut rng = XorShift::new(7);
    for _ in 0..OPS {
        ks.record(Operation::Read, &rng.below(KEYS as u64));
    }
    assert!(ks.hot_keys().is_empty(), "{:?}", ks.hot_keys());
    let top = ks.top_keys(10);
    assert!(top.iter().all(|h| h.share < 0.01), "{top:?}");
    let (_, skew) = ks.shard_skew().unwrap();
    eprintln!(
        "uniform: skew {skew:.4}, top estimate {:.4}",
        top.first().map_or(0.0, |h| h.share)
    );
    assert!((skew - 1.0).abs() <= 0.1, "skew {skew}");
}

#[test]
fn a_planted_hot_shard_is_the_busiest_with_its_true_skew() {
    const SHARDS: u64 = 16;
    const HOT: u64 = 3;
    let ks = Keyspace::builder("planted")
        .shards(SHARDS as usize)
        .build(&noop_meter())
        .unwrap();
    let mut rng = XorShift::new(11);
    let mut truth = [0u64; SHARDS as usize];
    // The hot shard receives 5x the share of each other shard: 5 / (5 + 15) = 25%.
    for _ in 0..OPS {
        let key = if rng.next_f64() < 0.25 {
            rng.below(KEYS as u64 / SHARDS) * SHARDS + HOT
        } else {
            loop {
                let k = rng.below(KEYS as u64);
                if k % SHARDS != HOT {
                    break k;
                }
            }
        };
        let shard = (key % SHARDS) as usize;
        truth[shard] += 1;
        ks.record_in_shard(Operation::Write, &key, shard);
    }
    let total: u64 = truth.iter().sum();
    let true_skew = *truth.iter().max().unwrap() as f64 / (total as f64 / SHARDS as f64);
    let (busiest, skew) = ks.shard_skew().unwrap();
    eprintln!("planted: busiest {busiest}, skew {skew:.4}, truth {true_skew:.4}");
    assert_eq!(busiest, HOT as usize);
    assert!((skew - true_skew).abs() / true_skew <= 0.1);
    assert!((true_skew - 4.0).abs() < 0.1);
    // Spread over 6,250 keys, no single key of the hot shard is hot.
    assert!(ks.hot_keys().is_empty());
}
