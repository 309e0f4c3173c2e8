//! What a capacity model ranks: resources that can saturate, their readings, and the
//! trait a handle implements so that one call registers it.
//!
//! The crates that make such handles (locks, pools, queues, the runtime, jobs) implement
//! [`Saturable`]; a capacity model (`scalewatch_capacity::CapacityModel::register`) reads
//! them. Neither side depends on the other.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

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

/// One window of a resource's use, read by a capacity model at each sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reading {
    /// The fraction of its capacity in use over the window, 0..1.
    pub utilization: f64,
    /// Mean number of waiters over the window per unit of capacity (0 when nothing waits
    /// or the resource cannot tell): how far past full the demand on it is.
    pub waiting: f64,
}

impl Reading {
    /// A reading of `utilization` with nothing waiting.
    pub const fn utilization(utilization: f64) -> Self {
        Self {
            utilization,
            waiting: 0.0,
        }
    }
}

/// Reads one window of a resource each call (each reader keeps windows of its own);
/// `None` when it has nothing to say (measuring is off, no time has passed).
pub type ReadingSource = Arc<dyn Fn() -> Option<Reading> + Send + Sync>;

/// A resource as a capacity model registers it: kind, name and a reader.
#[derive(Clone)]
pub struct ResourceSource {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its low-cardinality name: static for a handle, built once at registration for the
    /// parts of one (a keyspace's shards, `sessions/03`).
    pub name: Cow<'static, str>,
    /// Its reader.
    pub read: ReadingSource,
}

impl fmt::Debug for ResourceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceSource")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A handle whose utilization a capacity model can rank: a lock, a semaphore, a pool, a
/// queue, the runtime, a job, a keyspace's shards.
/// `scalewatch_capacity::CapacityModel::register(&handle)` is the one call that adds it.
pub trait Saturable {
    /// A reader of this resource with windows of its own: for a handle that stands for
    /// several resources, its most used one.
    fn resource(&self) -> ResourceSource;

    /// Every resource this handle stands for, each with a reader of its own: the one
    /// [`resource`](Self::resource) for most handles, one per shard for a sharded
    /// keyspace. Empty when the handle cannot be measured as configured (a keyspace with
    /// no shards or no declared shard capacity).
    fn resources(&self) -> Vec<ResourceSource> {
        vec![self.resource()]
    }
}
