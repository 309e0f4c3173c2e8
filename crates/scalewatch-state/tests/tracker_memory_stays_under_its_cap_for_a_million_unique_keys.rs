//! R4: 1,000,000 unique keys (10,000,000 with `SCALEWATCH_LONG=1`) keep a keyspace under
//! its stated memory cap, and the heap it holds stops growing once its summary is full:
//! from the first tenth of the keys on, it moves by at most [`FLAT`] whatever the number of
//! keys. A counting global allocator measures the heap, independently of the keyspace's
//! own accounting, so this test has its own binary and one test.

use scalewatch_state::{Keyspace, Operation};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// How much the heap held may move after the first tenth of the keys: what a thread's
/// sample buffer holds between two folds (with raw keys, a label of up to 80 bytes per
/// buffered sample). Nothing is kept per key, so the same bound holds for ten times the keys.
const FLAT: isize = 4 * 1024;

/// Bytes live now that were not live when `region` began (stats_alloc already counts
/// reallocations into allocated and deallocated bytes).
fn net(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

#[test]
fn a_million_unique_keys_stay_under_the_cap() {
    let meter = scalewatch_test_support::workload::noop_meter();
    let keys: u64 = if scalewatch_test_support::workload::long() {
        10_000_000
    } else {
        1_000_000
    };
    for (raw, shards, sample_every) in [(false, None, 32), (true, Some(64), 4)] {
        let region = Region::new(GLOBAL);
        let mut builder = Keyspace::builder("unique")
            .raw_keys(raw)
            .sample_every(sample_every);
        if let Some(n) = shards {
            builder = builder.shards(n);
        }
        let ks = builder.build(&meter).unwrap();
        let after_build = net(&region);
        // Heap held at the end of each tenth of the keys.
        let mut held = Vec::with_capacity(10);
        for i in 0..keys {
            if raw {
                // Long unique labels: the worst case for raw keys.
                let key = format!("user-{i:0>80}");
                ks.record_labeled(Operation::Write, key.as_str());
            } else {
                ks.record(Operation::Write, &i);
            }
            if i % 100_000 == 0 {
                let _ = ks.top_keys(20);
            }
            if (i + 1) % (keys / 10) == 0 {
                held.push(net(&region));
            }
        }
        let _ = ks.hot_keys();
        let used = net(&region);
        let cap = ks.memory_cap(1);
        eprintln!(
            "raw {raw}, shards {shards:?}, sample_every {sample_every}: {after_build} B after build, {used} B after {keys} unique keys, cap {cap} B; by tenths {held:?}"
        );
        let peak = held.iter().copied().max().unwrap().max(used);
        assert!(used > 0 && (peak as usize) <= cap, "{peak} > {cap}");
        let (low, high) = (held.iter().min().unwrap(), held.iter().max().unwrap());
        assert!(
            high - low <= FLAT && used - low <= FLAT,
            "the heap held grows with the keys: {held:?}, then {used} B"
        );
        assert_eq!(ks.operations().write, keys);
        drop(ks);
    }
}
