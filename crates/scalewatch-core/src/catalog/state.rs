//! Keyspace signals (`scalewatch.state.*`), recorded by `scalewatch-state`'s keyspaces
//! and tracked maps, and their attribute keys.

/// Bucket boundaries for items touched per scan: from a point lookup to a million items,
/// so full scans of large state stand out in the top buckets.
pub const SCAN_ITEM_BUCKETS: &[f64] = &[
    0.0,
    1.0,
    2.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1_000.0,
    2_500.0,
    5_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
];

signals! {
    /// Every keyspace signal, in catalog order.
    ALL;
    /// `scalewatch.state.operations`: every access, exactly counted.
    STATE_OPERATIONS = counter("scalewatch.state.operations", "{operation}", "Operations on a keyspace, by operation (read, write, scan, delete).");
    /// `scalewatch.state.scan.items`: items touched per scan.
    STATE_SCAN_ITEMS = histogram("scalewatch.state.scan.items", "{item}", SCAN_ITEM_BUCKETS, "Items touched per scan; full scans show up in the top buckets.");
    /// `scalewatch.state.entries`: resident entries.
    STATE_ENTRIES = gauge("scalewatch.state.entries", "{entry}", "Resident entries: in-memory state that makes the service stateful.");
    /// `scalewatch.state.hot_keys.share`: share of the horizon's operations on the hot keys.
    STATE_HOT_KEYS_SHARE = gauge("scalewatch.state.hot_keys.share", "1", "Share of recent operations that hit the current hot keys (top-k above the hot threshold).");
    /// `scalewatch.state.hot_key.share`: one series per hot key, by rank.
    STATE_HOT_KEY_SHARE = gauge("scalewatch.state.hot_key.share", "1", "Share of recent operations that hit one hot key, by rank; the key is a redacted digest unless opted in.");
    /// `scalewatch.state.shard.skew`: busiest shard's operations / mean per shard.
    STATE_SHARD_SKEW = gauge("scalewatch.state.shard.skew", "1", "Busiest shard's operations over the interval divided by the mean per shard (1 = even).");
}

/// Attribute keys of the keyspace signals.
pub mod attr {
    /// `scalewatch.state.name`: the keyspace's static name.
    pub const STATE_NAME: &str = "scalewatch.state.name";
    /// `scalewatch.state.operation`: `read`, `write`, `scan` or `delete`.
    pub const STATE_OPERATION: &str = "scalewatch.state.operation";
    /// `scalewatch.state.key.rank`: 1 for the hottest key, up to k.
    pub const STATE_KEY_RANK: &str = "scalewatch.state.key.rank";
    /// `scalewatch.state.key`: the hot key, as a 16-hex-digit keyed digest by default.
    pub const STATE_KEY: &str = "scalewatch.state.key";
}
