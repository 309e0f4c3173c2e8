//! Tier signals (`scalewatch.tier.*`), recorded by every [`Tier`](crate::Tier): servers,
//! clients, custom tiers, and the attribute keys they carry.

use super::WAIT_BUCKETS;

signals! {
    /// Every tier signal, in catalog order.
    ALL;
    /// `scalewatch.tier.concurrency`.
    TIER_CONCURRENCY = up_down_counter("scalewatch.tier.concurrency", "{request}", "Work items in flight in the tier now.");
    /// `scalewatch.tier.limit`.
    TIER_LIMIT = gauge("scalewatch.tier.limit", "{request}", "Configured capacity of the tier.");
    /// `scalewatch.tier.utilization`.
    TIER_UTILIZATION = gauge("scalewatch.tier.utilization", "1", "Time-averaged concurrency over the interval divided by the limit.");
    /// `scalewatch.tier.queue.time`.
    TIER_QUEUE_TIME = histogram("scalewatch.tier.queue.time", "s", WAIT_BUCKETS, "Time a work item waited for admission before its work started.");
    /// `scalewatch.tier.queued`.
    TIER_QUEUED = up_down_counter("scalewatch.tier.queued", "{request}", "Work items waiting for admission now.");
    /// `scalewatch.tier.rejections`.
    TIER_REJECTIONS = counter("scalewatch.tier.rejections", "{request}", "Work refused by the tier's admission control.");
}

/// Attribute keys of the tier signals.
pub mod attr {
    /// `scalewatch.tier.name` (also on the capacity gauges and the runtime signals).
    pub const TIER_NAME: &str = "scalewatch.tier.name";
    /// `scalewatch.tier.kind`
    pub const TIER_KIND: &str = "scalewatch.tier.kind";
    /// `scalewatch.rejection.reason` (on [`TIER_REJECTIONS`](super::TIER_REJECTIONS)).
    pub const REJECTION_REASON: &str = "scalewatch.rejection.reason";
}
