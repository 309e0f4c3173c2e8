//! What the hot path runs on: the std primitives (loom's in the loom models), the atomics
//! of the statistics, and the per-thread stripe and sampling countdown.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use std::cell::Cell;

/// Per-thread state: the statistics stripe this thread writes to, and the countdown to
/// its next sampled hold.
struct Local {
    stripe: Cell<usize>,
    countdown: Cell<u32>,
}

#[cfg(not(loom))]
thread_local! {
    static LOCAL: Local = const {
        Local { stripe: Cell::new(usize::MAX), countdown: Cell::new(0) }
    };
}

#[cfg(loom)]
loom::thread_local! {
    static LOCAL: Local = Local { stripe: Cell::new(usize::MAX), countdown: Cell::new(0) };
}

#[cfg(not(loom))]
fn next_stripe() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Relaxed)
}

#[cfg(loom)]
fn next_stripe() -> usize {
    use loom::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(0);
    }
    NEXT.fetch_add(1, Relaxed)
}

/// This thread's stripe, and whether the acquisition it is making now is sampled: every
/// `every`-th acquisition of the thread is (the first one included), never when `every`
/// is 0. Deterministic, no clock, no shared write.
#[inline]
pub(crate) fn local(every: u32) -> (usize, bool) {
    LOCAL
        .try_with(|l| {
            let mut stripe = l.stripe.get();
            if stripe == usize::MAX {
                stripe = next_stripe();
                l.stripe.set(stripe);
            }
            let sampled = match l.countdown.get() {
                _ if every == 0 => false,
                0 => {
                    l.countdown.set(every - 1);
                    true
                }
                n => {
                    l.countdown.set(n - 1);
                    false
                }
            };
            (stripe, sampled)
        })
        .unwrap_or((0, false))
}

/// Number of stripes: a power of two of at least twice the core count, at most 64.
pub(crate) fn stripe_count() -> usize {
    #[cfg(loom)]
    {
        2
    }
    #[cfg(not(loom))]
    {
        static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *COUNT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
            (cores * 2).next_power_of_two().clamp(2, 64)
        })
    }
}
