//! Instrumented tokio mpsc channels: `scalewatch.queue.depth`, `.time` and `.utilization`.
//!
//! Every message travels in an envelope that holds its place in the depth count. The
//! envelope is made only once the channel has room (a permit), so a cancelled `send`
//! counts nothing, and whoever drops a message (the receiver, a failed send, the channel
//! itself when the receiver goes away) drops the envelope and gives its place back.
//! Depth and utilization come from the core's lock-free busy integral, so the
//! time-averaged depth is exact over each export interval.

use crate::catalog::{self, attr};
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::{Cursor, FlightStats, Started};
use std::fmt;
use std::sync::{Arc, Mutex};
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
    stats: FlightStats,
    time: BoundHistogram<f64>,
    cursor: Mutex<Cursor>,
}

impl Queue {
    fn new(name: &'static str, capacity: Option<usize>, meter: &Meter) -> Arc<Self> {
        let attrs = [KeyValue::new(attr::QUEUE_NAME, name)];
        let stats = FlightStats::new();
        let cursor = Mutex::new(Cursor::starting_at(stats.totals(now_nanos())));
        let q = Arc::new(Queue {
            name,
            capacity,
            stats,
            time: catalog::QUEUE_TIME.f64_histogram(meter).bind(&attrs),
            cursor,
        });
        let (weak, a) = (Arc::downgrade(&q), attrs.clone());
        catalog::QUEUE_DEPTH.i64_observable_up_down_counter(meter, move |o| {
            if let Some(q) = weak.upgrade() {
                o.observe(q.stats.in_flight(), &a);
            }
        });
        if let Some(cap) = capacity {
            let (weak, a) = (Arc::downgrade(&q), attrs);
            catalog::QUEUE_UTILIZATION.f64_observable_gauge(meter, move |o| {
                let Some(q) = weak.upgrade() else { return };
                let totals = q.stats.totals(now_nanos());
                let window = q
                    .cursor
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .advance(totals);
                if let Some(w) = window {
                    o.observe(w.mean_concurrency / cap as f64, &a);
                }
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

/// One item counted in the queue's depth until dropped.
struct Place {
    queue: Arc<Queue>,
    started: Option<Started>,
}

impl Place {
    fn new(queue: &Arc<Queue>) -> Self {
        Place {
            queue: queue.clone(),
            started: Some(queue.stats.start(now_nanos())),
        }
    }

    /// The item was received: record its time in the queue and leave.
    fn received(mut self) {
        if let Some(started) = self.started.take() {
            let now = now_nanos();
            self.queue.time.record(seconds_between(started.at, now));
            self.queue.stats.finish(started, now);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            self.queue.stats.finish(started, now_nanos());
        }
    }
}

impl<T> Envelope<T> {
    fn open(self) -> T {
        self.place.received();
        self.value
    }
}

fn check(name: &'static str) -> Result<(), QueueError> {
    if name.is_empty() {
        Err(QueueError::EmptyName)
    } else {
        Ok(())
    }
}

/// A bounded channel named `name` holding at most `capacity` messages, measured as
/// `scalewatch.queue.*` (depth, time in queue, utilization against `capacity`).
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
    check(name)?;
    if capacity == 0 {
        return Err(QueueError::ZeroCapacity(name));
    }
    let queue = Queue::new(name, Some(capacity), meter);
    let (tx, rx) = mpsc::channel(capacity);
    Ok((
        Sender {
            tx,
            queue: queue.clone(),
        },
        Receiver { rx, queue },
    ))
}

/// An unbounded channel named `name`, measured as `scalewatch.queue.depth` and
/// `scalewatch.queue.time` (no utilization: it has no capacity).
pub fn unbounded_channel<T>(
    name: &'static str,
    meter: &Meter,
) -> Result<(UnboundedSender<T>, UnboundedReceiver<T>), QueueError> {
    check(name)?;
    let queue = Queue::new(name, None, meter);
    let (tx, rx) = mpsc::unbounded_channel();
    Ok((
        UnboundedSender {
            tx,
            queue: queue.clone(),
        },
        UnboundedReceiver { rx, queue },
    ))
}

macro_rules! common {
    ($t:ident) => {
        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.queue.name)
                    .field("capacity", &self.queue.capacity)
                    .field("depth", &self.queue.stats.in_flight())
                    .finish()
            }
        }

        impl<T> $t<T> {
            /// The queue's name.
            pub fn name(&self) -> &'static str {
                self.queue.name
            }

            /// Messages in the queue now, as exported in `scalewatch.queue.depth`.
            pub fn depth(&self) -> i64 {
                self.queue.stats.in_flight()
            }
        }
    };
}

/// Sends into a bounded instrumented channel. Cheap to clone.
pub struct Sender<T> {
    tx: mpsc::Sender<Envelope<T>>,
    queue: Arc<Queue>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queue: self.queue.clone(),
        }
    }
}

common!(Sender);

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

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Receives from a bounded instrumented channel.
pub struct Receiver<T> {
    rx: mpsc::Receiver<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(Receiver);

impl<T> Receiver<T> {
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

/// Sends into an unbounded instrumented channel. Cheap to clone.
pub struct UnboundedSender<T> {
    tx: mpsc::UnboundedSender<Envelope<T>>,
    queue: Arc<Queue>,
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queue: self.queue.clone(),
        }
    }
}

common!(UnboundedSender);

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

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Receives from an unbounded instrumented channel.
pub struct UnboundedReceiver<T> {
    rx: mpsc::UnboundedReceiver<Envelope<T>>,
    queue: Arc<Queue>,
}

common!(UnboundedReceiver);

impl<T> UnboundedReceiver<T> {
    /// Receives the next message, recording its time in the queue. Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        self.rx.recv().await.map(Envelope::open)
    }

    /// Receives a message if one is there now.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv().map(Envelope::open)
    }

    /// Closes the channel to senders.
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
