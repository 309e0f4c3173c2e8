//! Tier signals (`scalewatch.tier.*`), recorded by every [`Tier`](crate::Tier): servers,
//! clients, custom tiers, and the attribute keys they carry.

use super::InstrumentKind::{Counter as C, Gauge as G, UpDownCounter as U};
use super::{Signal, WAIT_BUCKETS};

/// `scalewatch.tier.concurrency`.
pub const TIER_CONCURRENCY: Signal = Signal::new(
    "scalewatch.tier.concurrency",
    U,
    "{request}",
    "Work items in flight in the tier now.",
);
/// `scalewatch.tier.limit`.
pub const TIER_LIMIT: Signal = Signal::new(
    "scalewatch.tier.limit",
    G,
    "{request}",
    "Configured capacity of the tier.",
);
/// `scalewatch.tier.utilization`.
pub const TIER_UTILIZATION: Signal = Signal::new(
    "scalewatch.tier.utilization",
    G,
    "1",
    "Time-averaged concurrency over the interval divided by the limit.",
);
/// `scalewatch.tier.queue.time`.
pub const TIER_QUEUE_TIME: Signal = Signal::histogram(
    "scalewatch.tier.queue.time",
    "s",
    WAIT_BUCKETS,
    "Time a work item waited for admission before its work started.",
);
/// `scalewatch.tier.queued`.
pub const TIER_QUEUED: Signal = Signal::new(
    "scalewatch.tier.queued",
    U,
    "{request}",
    "Work items waiting for admission now.",
);
/// `scalewatch.tier.rejections`.
pub const TIER_REJECTIONS: Signal = Signal::new(
    "scalewatch.tier.rejections",
    C,
    "{request}",
    "Work refused by the tier's admission control.",
);

/// Every tier signal, in catalog order.
pub const ALL: &[Signal] = &[
    TIER_CONCURRENCY,
    TIER_LIMIT,
    TIER_UTILIZATION,
    TIER_QUEUE_TIME,
    TIER_QUEUED,
    TIER_REJECTIONS,
];

/// Attribute keys of the tier signals.
pub mod attr {
    /// `scalewatch.tier.name` (also on the capacity gauges and the runtime signals).
    pub const TIER_NAME: &str = "scalewatch.tier.name";
    /// `scalewatch.tier.kind`
    pub const TIER_KIND: &str = "scalewatch.tier.kind";
    /// `scalewatch.rejection.reason` (on [`TIER_REJECTIONS`](super::TIER_REJECTIONS)).
    pub const REJECTION_REASON: &str = "scalewatch.rejection.reason";
}
