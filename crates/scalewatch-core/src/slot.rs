//! Per-thread slots: the index into striped statistics that no other live thread writes.
//!
//! Every thread that records into a [`FlightStats`](crate::stats::FlightStats) (or another
//! crate's per-thread cells) claims a *slot* on first use: an index into the cells of every
//! statistics block that no other live thread writes. The owner updates its cell with a
//! relaxed load and store ([`add`]: a plain `mov` on x86, no locked read-modify-write),
//! readers sum the cells. Threads beyond [`slot_count`] share cell [`SHARED`] and add to it
//! atomically. A slot goes back to the pool when its thread exits; the pool's mutex orders
//! the old owner's last store before the new owner's first load, so no count is lost.
//!
//! The same thread-local also keeps a sampling countdown ([`current_sampled`]), so that
//! instruments that sample (lock hold times) learn their slot and their sampling decision
//! in one read.

#[cfg(loom)]
pub use loom::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub use std::sync::atomic::AtomicU64;

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;

/// The cell of threads without a slot of their own; only ever updated atomically.
pub const SHARED: usize = 0;

/// A thread's slot before its first recording.
const UNCLAIMED: usize = usize::MAX;

/// Adds `n` (wrapping) to a counter of the cell at `slot`, which must be this thread's
/// ([`current`] or [`current_sampled`]). The owner of a slot is its only writer, so a load
/// and a store are exact there and cost far less than `fetch_add`; the shared cell adds
/// atomically.
#[inline(always)]
pub fn add(slot: usize, counter: &AtomicU64, n: u64) {
    if slot == SHARED {
        counter.fetch_add(n, Relaxed);
    } else {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

/// Per-thread state read on every recording: the slot this thread writes to, and the
/// countdown to its next sampled event. No destructor, so reading it needs no liveness
/// check; `Owner` gives the slot back.
struct Local {
    slot: Cell<usize>,
    countdown: Cell<u32>,
}

/// The slot this thread claimed, given back to the pool when the thread exits. Touched only
/// when claiming, so its destructor registration stays off the hot path.
#[cfg(not(loom))]
struct Owner(Cell<usize>);

#[cfg(not(loom))]
impl Drop for Owner {
    fn drop(&mut self) {
        let slot = self.0.replace(SHARED);
        if slot != SHARED {
            // Recordings by later thread-local destructors count in the shared cell.
            let _ = LOCAL.try_with(|l| l.slot.set(SHARED));
            slots().free.push(slot);
        }
    }
}

/// Free slots, and the next never-used one.
#[cfg(not(loom))]
struct Slots {
    free: Vec<usize>,
    next: usize,
}

#[cfg(not(loom))]
thread_local! {
    static LOCAL: Local = const {
        Local { slot: Cell::new(UNCLAIMED), countdown: Cell::new(0) }
    };
    static OWNER: Owner = const { Owner(Cell::new(SHARED)) };
}

#[cfg(loom)]
loom::thread_local! {
    static LOCAL: Local = Local { slot: Cell::new(UNCLAIMED), countdown: Cell::new(0) };
}

#[cfg(not(loom))]
fn slots() -> std::sync::MutexGuard<'static, Slots> {
    static SLOTS: std::sync::Mutex<Slots> = std::sync::Mutex::new(Slots {
        free: Vec::new(),
        next: 1,
    });
    // The critical sections cannot panic midway; a poisoned pool is still consistent.
    SLOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A free slot for this thread, or [`SHARED`] when all are taken or the thread is exiting
/// (nothing would give the slot back).
#[cfg(not(loom))]
fn take_slot() -> usize {
    OWNER
        .try_with(|owner| {
            let mut slots = slots();
            let slot = match slots.free.pop() {
                Some(slot) => slot,
                None if slots.next <= slot_count() => {
                    slots.next += 1;
                    slots.next - 1
                }
                None => SHARED,
            };
            owner.0.set(slot);
            slot
        })
        .unwrap_or(SHARED)
}

/// The loom models hand out slots without recycling them: loom drops the main thread's
/// locals after its statics, so a destructor could not reach the pool.
#[cfg(loom)]
fn take_slot() -> usize {
    use loom::sync::atomic::AtomicUsize;
    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(1);
    }
    let slot = NEXT.fetch_add(1, Relaxed);
    if slot <= slot_count() {
        slot
    } else {
        SHARED
    }
}

#[cold]
#[inline(never)]
fn claim(local: &Local) -> usize {
    let slot = take_slot();
    local.slot.set(slot);
    slot
}

#[cold]
#[inline(never)]
fn restart_countdown(local: &Local, every: u32) -> bool {
    local.countdown.set(every - 1);
    true
}

/// This thread's slot, and whether the event it is recording now is sampled: every
/// `every`-th event of the thread is (the first one included), never when `every` is 0.
/// Deterministic, no clock, no shared write.
#[inline(always)]
pub fn current_sampled(every: u32) -> (usize, bool) {
    LOCAL
        .try_with(|l| {
            let mut slot = l.slot.get();
            if slot == UNCLAIMED {
                slot = claim(l);
            }
            let sampled = match l.countdown.get() {
                _ if every == 0 => false,
                0 => restart_countdown(l, every),
                n => {
                    l.countdown.set(n - 1);
                    false
                }
            };
            (slot, sampled)
        })
        // Only loom's thread-locals can be gone: count in the shared cell, unsampled.
        .unwrap_or((SHARED, false))
}

/// This thread's slot.
#[inline(always)]
pub fn current() -> usize {
    LOCAL
        .try_with(|l| match l.slot.get() {
            UNCLAIMED => claim(l),
            slot => slot,
        })
        .unwrap_or(SHARED)
}

/// This thread's slot and its cell among `cells`, a block of [`cell_count`] cells (one per
/// slot, and the shared one). Slots stay below [`cell_count`]; should `cells` be shorter,
/// the shared cell stands in, so that no count is ever dropped. `None` only for no cells.
#[inline(always)]
pub fn current_cell<T>(cells: &[T]) -> Option<(usize, &T)> {
    let slot = current();
    match cells.get(slot) {
        Some(cell) => Some((slot, cell)),
        None => cells.get(SHARED).map(|cell| (SHARED, cell)),
    }
}

/// Number of owned slots; every statistics block has one more cell, [`SHARED`]. A power of
/// two of at least four per core, between 16 and 256, so the threads of a usual runtime
/// (workers and a few blocking threads) each own one.
pub fn slot_count() -> usize {
    #[cfg(loom)]
    {
        // Fewer slots than the models' threads, so that two of them share the shared cell.
        1
    }
    #[cfg(not(loom))]
    {
        static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        *COUNT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
            (cores * 4).next_power_of_two().clamp(16, 256)
        })
    }
}

/// Cells a statistics block needs: one per slot and the shared one.
pub fn cell_count() -> usize {
    slot_count() + 1
}
