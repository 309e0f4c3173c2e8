//! Queue signals (`scalewatch.queue.*`), recorded by `scalewatch-state`'s instrumented
//! channels, and their attribute keys.

use super::WAIT_BUCKETS;

signals! {
    /// Every queue signal, in catalog order.
    ALL;
    /// `scalewatch.queue.depth`: items in the queue now.
    QUEUE_DEPTH = up_down_counter("scalewatch.queue.depth", "{item}", "Items waiting in the queue now.");
    /// `scalewatch.queue.time`: enqueue to dequeue, with the fine low wait buckets (from 1 µs).
    QUEUE_TIME = histogram("scalewatch.queue.time", "s", WAIT_BUCKETS, "Time an item spent in the queue, from send to receive.");
    /// `scalewatch.queue.utilization`: time-averaged depth over capacity (bounded queues).
    QUEUE_UTILIZATION = gauge("scalewatch.queue.utilization", "1", "Time-averaged depth over the interval divided by the queue's capacity.");
}

/// Attribute keys of the queue signals.
pub mod attr {
    /// `scalewatch.queue.name`: the queue's static name.
    pub const QUEUE_NAME: &str = "scalewatch.queue.name";
}
