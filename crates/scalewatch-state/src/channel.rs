//! Instrumented tokio mpsc channels: `scalewatch.queue.depth`, `.time` and `.utilization`.
//!
//! Every message travels in an envelope that holds its place in the depth count. The
//! envelope is made only once the channel has room (a permit), so a cancelled `send`
//! counts nothing, and whoever drops a message (the receiver, a failed send, the channel
//! itself when the receiver goes away) drops the envelope and gives its place back.
//! Depth and utilization come from the core's lock-free busy integral, so the
//! time-averaged depth is exact over each export interval.
//!
//! A disabled queue's envelopes hold no place: no clock read, no count, no reference to
//! the queue. The switch is fixed when the channel is built, so every message of a
//! channel is counted the same way and depth stays exact.

use crate::catalog::{self, attr};
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::{FlightStats, SharedCursor, Started};
use std::fmt;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};

/// A queue's configuration was invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// The name was empty.
    #[error("queue name is empty: give it a short static name such as \"jobs\"")]
    EmptyName,
    /// A bounded queue of capacity 0.
    #[error("queue `{0}` has capacity 0: use a positive capacity, or an unbounded channel")]
    ZeroCapacity(&'static str),
}

struct Queue {
    name: &'static str,
    capacity: Option<usize>,
    enabled: bool,
    stats: FlightStats,
    /// `None` when disabled: no instrument is created.
    time: Option<BoundHistogram<f64>>,
    cursor: SharedCursor,
}

impl Queue {
    fn new(name: &'static str, capacity: Option<usize>, enabled: bool, meter: &Meter) -> Arc<Self> {
        let attrs = [KeyValue::new(attr::QUEUE_NAME, name)];
        let stats = FlightStats::new();
        let cursor = SharedCursor::starting_now(&stats);
        let q = Arc::new(Queue {
            name,
            capacity,
            enabled,
            stats,
            time: enabled.then(|| catalog::QUEUE_TIME.f64_histogram(meter).bind(&attrs)),
            cursor,
        });
        if !enabled {
            return q;
        }
        catalog::QUEUE_DEPTH
            .i64_observable_up_down_counter_of(meter, &q, &attrs, |q| q.stats.in_flight());
        if let Some(cap) = capacity {
            catalog::QUEUE_UTILIZATION.f64_observable_gauge_of(meter, &q, &attrs, move |q| {
                q.cursor.utilization(&q.stats, cap as f64)
            });
        }
        q
    }
}

/// A message and its place in the depth count.
struct Envelope<T> {
    value: T,
    place: Place,
}

/// One item counted in the queue's depth until dropped; empty when the queue is
/// disabled.
struct Place(Option<(Arc<Queue>, Started)>);

impl Place {
    #[inline]
    fn new(queue: &Arc<Queue>) -> Self {
        Place(
            queue
                .enabled
                .then(|| (queue.clone(), queue.stats.start(now_nanos()))),
        )
    }

    /// The item was received: record its time in the queue and leave.
    #[inline]
    fn received(mut self) {
        if let Some((queue, started)) = self.0.take() {
            let now = now_nanos();
            if let Some(time) = &queue.time {
                time.record(seconds_between(started.at, now));
            }
            queue.stats.finish(started, now);
        }
    }
}

impl Drop for Place {
    #[inline]
    fn drop(&mut self) {
        if let Some((queue, started)) = self.0.take() {
            queue.stats.finish(started, now_nanos());
        }
    }
}

impl<T> Envelope<T> {
    fn open(self) -> T {
        self.place.received();
        self.value
    }
}

/// Builds an instrumented channel, for options the [`channel`] and [`unbounded_channel`]
/// shorthands do not take.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_state::QueueBuilder;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let (tx, mut rx) = QueueBuilder::new("jobs").enabled(false).channel::<u32>(8, &meter)?;
/// tx.send(1).await?;
/// assert_eq!(tx.depth(), 0); // not measured
/// assert_eq!(rx.recv().await, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct QueueBuilder {
    name: &'static str,
    enabled: bool,
}

impl QueueBuilder {
    /// Starts building a queue named `name` (static, low-cardinality).
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            enabled: true,
        }
    }

    /// Whether to measure at all (default `true`). Built with `false`, the queue is a
    /// pass-through: it records nothing, exports nothing, and its in-process readings stay
    /// empty. Pass `telemetry.is_enabled()` so that `OTEL_SDK_DISABLED=true` costs next
    /// to nothing.
    ///
    /// Disabled, a message pays no clock read and no shared count; the channel still
    /// delivers every message, in order, with the same capacity.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// A bounded channel holding at most `capacity` messages, measured as
    /// `scalewatch.queue.*` (depth, time in queue, utilization against `capacity`).
    pub fn channel<T>(
        self,
        capacity: usize,
        meter: &Meter,
    ) -> Result<(Sender<T>, Receiver<T>), QueueError> {
        self.check()?;
        if capacity == 0 {
            return Err(QueueError::ZeroCapacity(self.name));
        }
        let queue = Queue::new(self.name, Some(capacity), self.enabled, meter);
        let (tx, rx) = mpsc::channel(capacity);
        Ok((
            Sender {
                tx,
                queue: queue.clone(),
            },
            Receiver { rx, queue },
        ))
    }

    /// An unbounded channel, measured as `scalewatch.queue.depth` and
    /// `scalewatch.queue.time` (no utilization: it has no capacity).
    pub fn unbounded_channel<T>(
        self,
        meter: &Meter,
    ) -> Result<(UnboundedSender<T>, UnboundedReceiver<T>), QueueError> {
        self.check()?;
        let queue = Queue::new(self.name, None, self.enabled, meter);
        let (tx, rx) = mpsc::unbounded_channel();
        Ok((
            UnboundedSender {
                tx,
                queue: queue.clone(),
            },
            UnboundedReceiver { rx, queue },
        ))
    }

    fn check(&self) -> Result<(), QueueError> {
        if self.name.is_empty() {
            Err(QueueError::EmptyName)
        } else {
            Ok(())
        }
    }
}

/// A bounded channel named `name` holding at most `capacity` messages, measured as
/// `scalewatch.queue.*` (depth, time in queue, utilization against `capacity`).
/// [`QueueBuilder`] builds one that can be switched off.
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let (tx, mut rx) = scalewatch_state::channel::<u32>("jobs", 8, &meter)?;
/// tx.send(1).await?;
/// assert_eq!(tx.depth(), 1);
/// assert_eq!(rx.recv().await, Some(1));
/// assert_eq!(tx.depth(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn channel<T>(
    name: &'static str,
    capacity: usize,
    meter: &Meter,
) -> Result<(Sender<T>, Receiver<T>), QueueError> {
    QueueBuilder::new(name).channel(capacity, meter)
}

/// An unbounded channel named `name`, measured as `scalewatch.queue.depth` and
/// `scalewatch.queue.time` (no utilization: it has no capacity).
pub fn unbounded_channel<T>(
    name: &'static str,
    meter: &Meter,
) -> Result<(UnboundedSender<T>, UnboundedReceiver<T>), QueueError> {
    QueueBuilder::new(name).unbounded_channel(meter)
}

macro_rules! common {
    ($t:ident) => {
        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.queue.name)
                    .field("capacity", &self.queue.capacity)
                    .field("enabled", &self.queue.enabled)
                    .field("depth", &self.queue.stats.in_flight())
                    .finish()
            }
        }

        impl<T> $t<T> {
            /// The queue's name.
            pub fn name(&self) -> &'static str {
                self.queue.name
            }

            /// Messages in the queue now, as exported in `scalewatch.queue.depth`
            /// (0 when disabled).
            pub fn depth(&self) -> i64 {
                self.queue.stats.in_flight()
            }

            /// Whether the queue measures (see [`QueueBuilder::enabled`]).
            pub fn is_enabled(&self) -> bool {
                self.queue.enabled
            }
        }
    };
}

/// The receiving half's methods, the same for the bounded and the unbounded channel.
macro_rules! receiver {
    ($t:ident) => {
        impl<T> $t<T> {
            /// Receives the next message, recording its time in the queue. Cancel-safe.
            pub async fn recv(&mut self) -> Option<T> {
                self.rx.recv().await.map(Envelope::open)
            }

            /// Receives a message if one is there now.
            pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
                self.rx.try_recv().map(Envelope::open)
            }

            /// Closes the channel to senders; messages already in it can still be received.
            pub fn close(&mut self) {
                self.rx.close();
            }

            /// Messages waiting now.
            pub fn len(&self) -> usize {
                self.rx.len()
            }

            /// Whether no message waits.
            pub fn is_empty(&self) -> bool {
                self.rx.is_empty()
            }
        }
    };
}

/// The sending half's clone and methods, the same for the bounded and the unbounded
/// channel. Cloning needs no `T: Clone`, so it is written out rather than derived.
macro_rules! sender {
    ($t:ident) => {
        impl<T> Clone for $t<T> {
            fn clone(&self) -> Self {
                Self {
                    tx: self.tx.clone(),
                    queue: self.queue.clone(),
                }
            }
        }

        impl<T> $t<T> {
            /// Whether the receiver is gone.
            pub fn is_closed(&self) -> bool {
                self.tx.is_closed()
            }
        }
    };
}

/// Sends into a bounded instrumented channel. Cheap to clone.
pub struct Sender<T> {
    tx: mpsc::Sender<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(Sender);
sender!(Sender);

impl<T> Sender<T> {
    /// Waits for room, then sends. Cancel-safe: dropping the future before it completes
    /// leaves nothing in the queue and nothing in the depth count.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.tx.reserve().await {
            Ok(permit) => {
                permit.send(Envelope {
                    value,
                    place: Place::new(&self.queue),
                });
                Ok(())
            }
            Err(_) => Err(SendError(value)),
        }
    }

    /// Sends if there is room now.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.tx.try_reserve() {
            Ok(permit) => {
                permit.send(Envelope {
                    value,
                    place: Place::new(&self.queue),
                });
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(TrySendError::Full(value)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(value)),
        }
    }

    /// Free slots now.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// The channel's capacity.
    pub fn max_capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}

/// Receives from a bounded instrumented channel.
pub struct Receiver<T> {
    rx: mpsc::Receiver<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(Receiver);
receiver!(Receiver);

/// Sends into an unbounded instrumented channel. Cheap to clone.
pub struct UnboundedSender<T> {
    tx: mpsc::UnboundedSender<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(UnboundedSender);
sender!(UnboundedSender);

impl<T> UnboundedSender<T> {
    /// Sends without waiting; fails only when the receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let envelope = Envelope {
            value,
            place: Place::new(&self.queue),
        };
        // On failure the envelope's place is given back as it drops here.
        self.tx
            .send(envelope)
            .map_err(|SendError(e)| SendError(e.value))
    }
}

/// Receives from an unbounded instrumented channel.
pub struct UnboundedReceiver<T> {
    rx: mpsc::UnboundedReceiver<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(UnboundedReceiver);
receiver!(UnboundedReceiver);

impl<T> scalewatch_core::resource::Saturable for Sender<T> {
    /// This queue, for `CapacityModel::register`: its time-averaged depth against its
    /// capacity, with windows of its own. Reads nothing when the queue is disabled.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        let queue = self.queue.clone();
        let cursor = SharedCursor::starting_now(&queue.stats);
        scalewatch_core::resource::ResourceSource {
            kind: scalewatch_core::resource::ResourceKind::Queue,
            name: queue.name.into(),
            read: Arc::new(move || {
                let capacity = queue.capacity.filter(|_| queue.enabled)? as f64;
                cursor
                    .utilization(&queue.stats, capacity)
                    .map(scalewatch_core::resource::Reading::utilization)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::global;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_disabled_bounded_channel_delivers_everything_with_exact_capacity() {
        block_on(async {
            let (tx, mut rx) = QueueBuilder::new("off")
                .enabled(false)
                .channel::<u32>(3, &global::meter("test"))
                .unwrap();
            assert!(!tx.is_enabled() && !rx.is_enabled());
            assert_eq!(tx.max_capacity(), 3);
            for round in 0..100u32 {
                for i in 0..3 {
                    tx.send(round * 3 + i).await.unwrap();
                }
                assert!(matches!(tx.try_send(7), Err(TrySendError::Full(7))));
                // A send that finds no room, cancelled after its first poll.
                tokio::select! {
                    biased;
                    _ = tx.send(8) => panic!("the channel is full"),
                    _ = std::future::ready(()) => {}
                }
                assert_eq!((tx.capacity(), rx.len(), tx.depth()), (0, 3, 0));
                for i in 0..3 {
                    assert_eq!(rx.recv().await, Some(round * 3 + i));
                }
                assert_eq!(tx.capacity(), 3);
            }
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
            tx.try_send(1).unwrap();
            drop(rx);
            assert!(tx.is_closed());
            assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
            assert_eq!(tx.send(3).await, Err(SendError(3)));
            assert_eq!(tx.depth(), 0);
        });
    }

    #[test]
    fn a_disabled_unbounded_channel_delivers_everything_in_order() {
        block_on(async {
            let (tx, mut rx) = QueueBuilder::new("off")
                .enabled(false)
                .unbounded_channel::<u32>(&global::meter("test"))
                .unwrap();
            let tx2 = tx.clone();
            for i in 0..1_000 {
                if i % 2 == 0 { &tx } else { &tx2 }.send(i).unwrap();
            }
            assert_eq!((rx.len(), tx.depth()), (1_000, 0));
            for i in 0..1_000 {
                assert_eq!(rx.recv().await, Some(i));
            }
            drop((tx, tx2));
            assert_eq!(rx.recv().await, None);
        });
    }

    #[test]
    fn the_switch_decides_whether_messages_hold_a_place() {
        let (on, _on_rx) = QueueBuilder::new("on")
            .channel::<u8>(2, &global::meter("test"))
            .unwrap();
        let (off, _off_rx) = QueueBuilder::new("off")
            .enabled(false)
            .channel::<u8>(2, &global::meter("test"))
            .unwrap();
        for tx in [&on, &off] {
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
        }
        assert_eq!((on.depth(), off.depth()), (2, 0));
        assert!(Place::new(&on.queue).0.is_some());
        assert!(Place::new(&off.queue).0.is_none());
        assert!(on.queue.time.is_some() && off.queue.time.is_none());
        assert_eq!(
            QueueBuilder::new("")
                .enabled(false)
                .channel::<u8>(1, &global::meter("test"))
                .err(),
            Some(QueueError::EmptyName)
        );
        assert_eq!(
            QueueBuilder::new("z")
                .enabled(false)
                .channel::<u8>(0, &global::meter("test"))
                .err(),
            Some(QueueError::ZeroCapacity("z"))
        );
    }
}
