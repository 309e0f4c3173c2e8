//! Instrumented locks, semaphores and pools: which lock your threads and tasks wait for,
//! how long, and how busy it is, exported over OpenTelemetry.
//!
//! Adding servers does not help a service whose requests queue on one global lock. The
//! wrappers here mirror `std::sync`, `parking_lot` and `tokio::sync` (same guards, same
//! `try_*`, same `Send`/`Sync`, std's poisoning) and record, per static lock name, the
//! signals of the scalewatch catalog ([`catalog`]):
//!
//! | signal | what it tells |
//! |---|---|
//! | `scalewatch.lock.acquisitions` {acquisition} | acquisitions by `scalewatch.lock.mode` (`exclusive`, `shared`) and `scalewatch.lock.contended` |
//! | `scalewatch.lock.wait.duration` s | how long contended acquisitions waited (1 µs buckets up) |
//! | `scalewatch.lock.hold.duration` s | how long the lock was held, sampled (every hold of a thread taking the lock less than once per 64 µs; at most one per 64 µs of a busier thread) |
//! | `scalewatch.lock.waiters` {waiter} | threads or tasks waiting now |
//! | `scalewatch.lock.utilization` 1 | fraction of wall time held exclusively (for a semaphore, of its permits in use) over the export interval |
//! | `scalewatch.pool.*` | [`Pool`]: wait and use time, usage, limit, pending requests, utilization |
//!
//! # Concepts
//! - One [`LockMetrics`] per meter resolves the instruments once; each lock takes a
//!   `&'static str` name and that handle at construction. Locks sharing a name share their
//!   statistics (so a per-request lock named `session` is one series, not thousands).
//! - The hot path writes only the calling thread's own cache-padded cell of the lock's
//!   statistics: each thread claims a slot on its first acquisition (given back when it
//!   exits), so a count is a relaxed load and store, not a locked read-modify-write, and
//!   threads never share a statistics cache line. An acquisition first *tries* the lock:
//!   when that succeeds (uncontended) it only counts, with no clock read, except for the
//!   sampled ones whose hold is timed. Only a contended acquisition reads the clock around
//!   its wait.
//! - Hold times are sampled by time, per thread and lock: a thread times every hold while
//!   it takes the lock less often than once per 64 µs, and at most one hold per 64 µs when
//!   it takes it more often (capped by [`LockMetricsBuilder::hold_sample_every`], default
//!   [`DEFAULT_HOLD_SAMPLE_EVERY`]). Each timed hold is weighted by the holds it stands for,
//!   so utilization is exact at the rates where one lock saturates on long holds, and an
//!   estimate from about 15,000 holds a second per busy thread otherwise, with the
//!   untimed path still free of clock reads.
//! - A wait longer than [`LockMetricsBuilder::slow_wait`] (default 10 ms) adds a
//!   `slow lock wait` event (lock name, mode, wait in seconds) to the current `tracing`
//!   span, so a slow trace says which lock it queued on.
//! - Waits are RAII: a dropped async wait (timeout, `select!`, cancelled request) leaves
//!   `scalewatch.lock.waiters` exact.
//! - Measuring can be switched off: [`LockMetricsBuilder::enabled`] and
//!   [`PoolBuilder::enabled`] (default `true`). Built with `false` (pass
//!   `telemetry.is_enabled()`, so that `OTEL_SDK_DISABLED=true` costs next to nothing), the
//!   locks, semaphores and pools only do their job: nothing is recorded or exported, their
//!   in-process readings stay at zero, and the utilization readers return `None`.
//!
//! ```
//! use opentelemetry::metrics::MeterProvider as _;
//! use scalewatch_sync::{LockMetrics, Mutex};
//! use std::sync::Arc;
//!
//! let meter = opentelemetry::global::meter_provider().meter("example");
//! let locks = LockMetrics::new(&meter);
//! let inventory = Arc::new(Mutex::new("inventory", 0u64, &locks));
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let inventory = inventory.clone();
//!         std::thread::spawn(move || {
//!             for _ in 0..100 {
//!                 *inventory.lock().unwrap() += 1;
//!             }
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(*inventory.lock().unwrap(), 400);
//! let counts = locks.counts("inventory").unwrap();
//! assert_eq!(counts.exclusive_uncontended + counts.exclusive_contended, 401);
//! assert_eq!(counts.waiters, 0);
//! ```
//!
//! # Features
//! | feature | adds |
//! |---|---|
//! | *(none, default)* | [`Mutex`], [`RwLock`] over `std::sync` |
//! | `parking_lot` | `parking_lot::Mutex`, `parking_lot::RwLock` |
//! | `tokio` | `tokio::Mutex`, `tokio::RwLock`, `tokio::Semaphore` and `Pool` |
//!
//! # Keep clippy's `await_holding_lock` working
//! Clippy's `await_holding_lock` knows std's and parking_lot's guards, not ours. List
//! the blocking guards in your `clippy.toml` so holding one across an `.await` is still
//! flagged (the tokio guards are meant to be held across awaits and are not listed):
//!
//! ```toml
//! await-holding-invalid-types = [
//!     { path = "scalewatch_sync::MutexGuard", reason = "a std mutex guard held across an await blocks the executor thread; drop it first or use scalewatch_sync::tokio::Mutex" },
//!     { path = "scalewatch_sync::RwLockReadGuard", reason = "drop the guard before awaiting" },
//!     { path = "scalewatch_sync::RwLockWriteGuard", reason = "drop the guard before awaiting" },
//!     { path = "scalewatch_sync::parking_lot::MutexGuard", reason = "drop the guard before awaiting" },
//!     { path = "scalewatch_sync::parking_lot::RwLockReadGuard", reason = "drop the guard before awaiting" },
//!     { path = "scalewatch_sync::parking_lot::RwLockWriteGuard", reason = "drop the guard before awaiting" },
//! ]
//! ```
//! and deny `clippy::await_holding_invalid_type` (warn by default in `clippy::suspicious`).
//!
//! # Cost
//! Measured by `benches/lock_overhead.rs`
//! (`cargo bench -p scalewatch-sync --features parking_lot --bench lock_overhead`): an uncontended
//! lock and unlock stays within 1.5x of the bare primitive with the default sampling (a
//! sampled hold costs two clock reads and a histogram record, so sampling every hold
//! costs far more); a contended acquisition adds two clock reads, a histogram record and
//! a few relaxed adds to a wait of microseconds. A lock from a `LockMetrics` built with
//! `enabled(false)` costs at most about 1 ns more than the bare primitive (the `…/off`
//! subjects of the bench).
//!
//! # Checking the concurrency
//! The std-backed wrappers run on loom's primitives under `--cfg loom`:
//! `RUSTFLAGS="--cfg loom" cargo test -p scalewatch-sync --release --test loom_stats`.

pub mod catalog;
#[macro_use]
mod wrap;
mod metrics;
#[cfg(feature = "parking_lot")]
pub mod parking_lot;
#[cfg(feature = "tokio")]
mod pool;
mod stats;
mod std_sync;
mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;

pub use metrics::{
    ConfigError, LockMetrics, LockMetricsBuilder, DEFAULT_HOLD_SAMPLE_EVERY, DEFAULT_SLOW_WAIT,
};
#[cfg(feature = "tokio")]
pub use pool::{Pool, PoolBuilder, PoolClosed, PoolError, PoolPermit};
pub use stats::{LockCounts, LockMode, Occupancy};
pub use std_sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
