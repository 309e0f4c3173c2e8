//! Helpers to turn what resources count into utilization.

pub use scalewatch_core::resource::{Reading, ResourceKind, ResourceSource, Saturable};

use scalewatch_core::clock::now_nanos;
use std::sync::Mutex;

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
