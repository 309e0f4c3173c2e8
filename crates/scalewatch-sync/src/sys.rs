//! What the hot path runs on: the std primitives (loom's in the loom models), and the
//! per-thread slot and sampling countdown from [`scalewatch_core::slot`].

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
pub(crate) use scalewatch_core::slot::{add, cell_count, current, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
