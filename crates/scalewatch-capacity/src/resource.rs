//! Resources that can saturate, and helpers to turn what they count into utilization.

use scalewatch_core::clock::now_nanos;
use std::fmt;
use std::sync::Mutex;

/// What kind of resource a utilization belongs to; exported as `scalewatch.resource.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ResourceKind {
    /// A tier with a concurrency limit: time-averaged concurrency / limit. Watched tiers
    /// are registered automatically.
    Tier,
    /// A lock or semaphore: the fraction of time it was held (per permit).
    Lock,
    /// A pool (connections, workers): the fraction of its members in use.
    Pool,
    /// A bounded queue: how full it is.
    Queue,
    /// A shard: its share of the load relative to what one shard can take.
    Shard,
    /// The async runtime: the workers' busy ratio.
    Runtime,
    /// A background job: its run time relative to its window.
    Job,
}

impl ResourceKind {
    /// Every kind, in the order ties are broken in the ranking.
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::Tier,
        ResourceKind::Lock,
        ResourceKind::Pool,
        ResourceKind::Queue,
        ResourceKind::Shard,
        ResourceKind::Runtime,
        ResourceKind::Job,
    ];

    /// The attribute value (`tier`, `lock`, `pool`, `queue`, `shard`, `runtime`, `job`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Tier => "tier",
            ResourceKind::Lock => "lock",
            ResourceKind::Pool => "pool",
            ResourceKind::Queue => "queue",
            ResourceKind::Shard => "shard",
            ResourceKind::Runtime => "runtime",
            ResourceKind::Job => "job",
        }
    }

    /// One line on what to fix first when a resource of this kind is the bottleneck.
    pub const fn hint(self) -> &'static str {
        match self {
            ResourceKind::Tier => {
                "the tier runs at its concurrency limit: add instances, or raise the limit if its dependencies have room"
            }
            ResourceKind::Lock => {
                "shorten the critical section (no I/O or awaits inside), split the lock by key, or move to read-mostly or lock-free state"
            }
            ResourceKind::Pool => {
                "hold pool members for less time (no slow work while holding one), then grow the pool if the backend has room"
            }
            ResourceKind::Queue => {
                "add consumers or make each item cheaper; shed load at admission, since a queue that stays full only adds latency"
            }
            ResourceKind::Shard => {
                "rebalance the hot shard: split or cache its hot keys, or choose a shard key that spreads the load"
            }
            ResourceKind::Runtime => {
                "move blocking and CPU-heavy work off the async runtime (spawn_blocking, a compute pool), then add cores"
            }
            ResourceKind::Job => {
                "the job is outgrowing its window: make it incremental, partition it, or run it more often on less data"
            }
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A utilization source that turns a cumulative busy-time counter into the fraction of
/// wall time a resource was busy since the previous reading, for
/// [`register_resource`](crate::CapacityModel::register_resource).
///
/// `busy_nanos` returns the total busy time so far in nanoseconds (a lock's summed hold
/// time, a pool's summed checkout time; wrapping is fine), and `capacity` is how many
/// units can be busy at once (1 for a mutex, the size of a pool). The first reading
/// yields `None` (no window yet), as does a reading with no time elapsed or a capacity
/// that is not positive.
///
/// ```
/// use scalewatch_capacity::busy_fraction;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let held = Arc::new(AtomicU64::new(0));
/// let source = busy_fraction(1.0, {
///     let held = held.clone();
///     move || held.load(Ordering::Relaxed)
/// });
/// assert_eq!(source(), None); // the first reading opens the window
/// std::thread::sleep(std::time::Duration::from_millis(10));
/// held.fetch_add(5_000_000, Ordering::Relaxed); // held 5 ms of the last 10+ ms
/// let utilization = source().unwrap();
/// assert!(utilization > 0.0 && utilization <= 0.5);
/// ```
pub fn busy_fraction<F>(capacity: f64, busy_nanos: F) -> impl Fn() -> Option<f64> + Send + Sync
where
    F: Fn() -> u64 + Send + Sync + 'static,
{
    let last: Mutex<Option<(u64, u64)>> = Mutex::new(None);
    move || {
        let (now, busy) = (now_nanos(), busy_nanos());
        let previous = match last.lock() {
            Ok(mut l) => l.replace((now, busy)),
            Err(poisoned) => poisoned.into_inner().replace((now, busy)),
        };
        let (then, busy_then) = previous?;
        let wall = now.checked_sub(then).filter(|d| *d > 0)? as f64;
        if !(capacity > 0.0) {
            return None;
        }
        Some(busy.wrapping_sub(busy_then) as f64 / wall / capacity)
    }
}
