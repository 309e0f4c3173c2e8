//! Queue signals (`scalewatch.queue.*`), recorded by `scalewatch-state`'s instrumented
//! channels, and their attribute keys.

use super::InstrumentKind::{Gauge as G, UpDownCounter as U};
use super::{Signal, WAIT_BUCKETS};

/// `scalewatch.queue.depth`: items in the queue now.
pub const QUEUE_DEPTH: Signal = Signal::new(
    "scalewatch.queue.depth",
    U,
    "{item}",
    "Items waiting in the queue now.",
);
/// `scalewatch.queue.time`: enqueue to dequeue, with the fine low wait buckets (from 1 µs).
pub const QUEUE_TIME: Signal = Signal::histogram(
    "scalewatch.queue.time",
    "s",
    WAIT_BUCKETS,
    "Time an item spent in the queue, from send to receive.",
);
/// `scalewatch.queue.utilization`: time-averaged depth over capacity (bounded queues).
pub const QUEUE_UTILIZATION: Signal = Signal::new(
    "scalewatch.queue.utilization",
    G,
    "1",
    "Time-averaged depth over the interval divided by the queue's capacity.",
);

/// Every queue signal, in catalog order.
pub const ALL: &[Signal] = &[QUEUE_DEPTH, QUEUE_TIME, QUEUE_UTILIZATION];

/// Attribute keys of the queue signals.
pub mod attr {
    /// `scalewatch.queue.name`: the queue's static name.
    pub const QUEUE_NAME: &str = "scalewatch.queue.name";
}
