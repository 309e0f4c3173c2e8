//! R4: 1,000,000 unique keys (10,000,000 with `SCALEWATCH_LONG=1`) keep a keyspace under
//! its stated memory cap. A counting global allocator measures the heap, so this test has
//! its own binary and one test.

mod common;

use scalewatch_state::{Keyspace, Operation};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes live now that were not live when `region` began (stats_alloc already counts
/// reallocations into allocated and deallocated bytes).
fn net(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

#[test]
fn a_million_unique_keys_stay_under_the_cap() {
    let meter = common::noop_meter();
    let keys: u64 = if common::long() {
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
        }
        let _ = ks.hot_keys();
        let used = net(&region);
        let cap = ks.memory_cap(1);
        eprintln!(
            "raw {raw}, shards {shards:?}, sample_every {sample_every}: {after_build} B after build, {used} B after {keys} unique keys, cap {cap} B"
        );
        assert!(used > 0 && (used as usize) <= cap, "{used} > {cap}");
        assert_eq!(ks.operations().write, keys);
        drop(ks);
    }
}
