//! Through a real OTLP pipeline into the fake receiver: the exported operation counts
//! equal the operations made (R4), entries, hot keys, skew and scans arrive with the
//! catalog's names and units, and queue depth returns to exactly 0 after cancelled sends
//! and dropped messages.

use scalewatch_state::catalog::{self, attr};
use scalewatch_state::{channel, unbounded_channel, Keyspace, Operation, TrackedMap};
use scalewatch_test_support::pipeline::grpc_pipeline;

#[test]
fn state_and_queue_signals_reach_otlp_exactly() {
    let (receiver, telemetry) = grpc_pipeline();
    let meter = telemetry.meter();

    // A sharded keyspace, four threads, every operation kind, one hot key.
    let ks = Keyspace::builder("sessions")
        .shards(8)
        .top_k(3)
        .build(&meter)
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let ks = ks.clone();
            s.spawn(move || {
                for i in 0..25_000u64 {
                    match i % 10 {
                        0..=5 => ks.read(&"hot"),
                        6 | 7 => ks.read(&(t, i)),
                        8 => ks.write(&(t, i)),
                        _ => ks.delete(&(t, i)),
                    }
                }
            });
        }
    });
    ks.scan(&"prefix:", 40);
    ks.full_scan(5_000);
    let made = 100_002u64;

    let map: TrackedMap<u64, u64> = Keyspace::builder("kv").shards(4).build_map(&meter).unwrap();
    for i in 0..1_000 {
        map.insert(i, i);
    }
    for i in 0..500 {
        let _ = map.get(&i);
    }
    for i in 0..100 {
        map.remove(&i);
    }

    let routes = Keyspace::builder("routes")
        .raw_keys(true)
        .sample_every(1)
        .build(&meter)
        .unwrap();
    for i in 0..100u32 {
        routes.record_labeled(
            Operation::Read,
            if i % 2 == 0 { "/checkout" } else { "/cart" },
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The channels stay alive until the export: a dropped queue stops reporting.
    let (_tx, _utx) = rt.block_on(async {
        let (tx, mut rx) = channel::<u64>("jobs", 4, &meter).unwrap();
        for i in 0..4 {
            tx.send(i).await.unwrap();
        }
        // 1,000 sends that find no room, cancelled after their first poll.
        for i in 0..1_000 {
            tokio::select! {
                biased;
                _ = tx.send(i) => panic!("the channel is full"),
                _ = std::future::ready(()) => {}
            }
        }
        assert_eq!(tx.depth(), 4);
        assert_eq!(rx.recv().await, Some(0));
        assert_eq!(rx.try_recv().unwrap(), 1);
        assert_eq!(tx.depth(), 2);
        assert!(tx.try_send(9).is_ok());
        // Dropping the receiver drops the 3 messages left: their places are given back.
        drop(rx);
        assert_eq!(tx.depth(), 0);
        assert!(tx.send(10).await.is_err());
        assert_eq!(tx.depth(), 0);

        let (utx, mut urx) = unbounded_channel::<String>("events", &meter).unwrap();
        for i in 0..100 {
            utx.send(i.to_string()).unwrap();
        }
        for _ in 0..50 {
            urx.recv().await.unwrap();
        }
        assert_eq!(utx.depth(), 50);
        drop(urx);
        assert_eq!(utx.depth(), 0);
        assert!(utx.send("late".into()).is_err());
        assert_eq!(utx.depth(), 0);
        (tx, utx)
    });

    telemetry.force_flush().unwrap();
    let m = receiver.metrics();

    // Exact operation counts, per operation and in total.
    let ops = catalog::STATE_OPERATIONS.name;
    let sessions = [(attr::STATE_NAME, "sessions")];
    assert_eq!(m.sum(ops, &sessions), made as f64);
    for (op, n) in [
        ("read", 80_000.0),
        ("write", 10_000.0),
        ("delete", 10_000.0),
        ("scan", 2.0),
    ] {
        assert_eq!(
            m.sum(
                ops,
                &[(attr::STATE_NAME, "sessions"), (attr::STATE_OPERATION, op)]
            ),
            n,
            "{op}"
        );
    }
    assert_eq!(m.sum(ops, &[(attr::STATE_NAME, "kv")]), 1_600.0);
    assert_eq!(
        m.histogram_count(catalog::STATE_SCAN_ITEMS.name, &sessions),
        2
    );
    assert_eq!(m.sum(catalog::STATE_SCAN_ITEMS.name, &sessions), 5_040.0);

    // Resident entries of the map.
    let entries = m.matching(catalog::STATE_ENTRIES.name, &[(attr::STATE_NAME, "kv")]);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].as_f64(), 900.0);

    // The hot key, redacted by default, at rank 1 with about 60% of the operations.
    let hot = m.matching(catalog::STATE_HOT_KEY_SHARE.name, &sessions);
    assert_eq!(hot.len(), 1, "{hot:?}");
    assert_eq!(hot[0].attr(attr::STATE_KEY_RANK), Some("1"));
    assert_eq!(
        hot[0].attr(attr::STATE_KEY),
        Some(ks.digest_of(&"hot").as_str())
    );
    assert!((hot[0].as_f64() - 0.6).abs() < 0.05, "{}", hot[0].as_f64());
    let all_hot = m.matching(catalog::STATE_HOT_KEYS_SHARE.name, &sessions);
    assert!((all_hot[0].as_f64() - hot[0].as_f64()).abs() < 1e-9);
    // Raw keys only where opted in.
    let keys = m.attribute_values(catalog::STATE_HOT_KEY_SHARE.name, attr::STATE_KEY);
    assert!(
        keys.contains("/checkout") && keys.contains("/cart"),
        "{keys:?}"
    );

    // Skew of the sharded keyspace, from the stream itself: the hot key's shard carries its
    // 60,000 operations plus about an eighth of the 40,000 on distinct keys (± 300: over
    // 4 standard deviations of a uniform hash), over the mean of 100,001 keyed operations
    // (the full scan has no key) across 8 shards.
    let skew = m.matching(catalog::STATE_SHARD_SKEW.name, &sessions);
    let mean = 100_001.0 / 8.0;
    let busiest = 60_000.0 + 40_000.0 / 8.0;
    let (low, high) = ((busiest - 300.0) / mean, (busiest + 300.0) / mean);
    assert!(
        (low..=high).contains(&skew[0].as_f64()),
        "{low} <= {} <= {high}",
        skew[0].as_f64()
    );

    // Queues: depth back to exactly 0, times recorded for received messages only.
    let depth = catalog::QUEUE_DEPTH.name;
    assert_eq!(m.series(depth), 2);
    assert_eq!(m.sum(depth, &[(attr::QUEUE_NAME, "jobs")]), 0.0);
    assert_eq!(m.sum(depth, &[(attr::QUEUE_NAME, "events")]), 0.0);
    let time = catalog::QUEUE_TIME.name;
    assert_eq!(m.histogram_count(time, &[(attr::QUEUE_NAME, "jobs")]), 2);
    assert_eq!(m.histogram_count(time, &[(attr::QUEUE_NAME, "events")]), 50);
    let util = catalog::QUEUE_UTILIZATION.name;
    assert_eq!(m.matching(util, &[(attr::QUEUE_NAME, "jobs")]).len(), 1);
    assert!(m.matching(util, &[(attr::QUEUE_NAME, "events")]).is_empty());

    // Every signal arrived with its catalog unit.
    for s in catalog::ALL {
        assert_eq!(m.unit(s.name).as_deref(), Some(s.unit), "{}", s.name);
    }

    // Counts stay exact across exports (cumulative).
    for _ in 0..1_000 {
        ks.write(&"more");
    }
    telemetry.force_flush().unwrap();
    assert_eq!(
        receiver.metrics().sum(ops, &sessions),
        (made + 1_000) as f64
    );
    telemetry.shutdown().unwrap();
}
