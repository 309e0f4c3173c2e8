//! Cardinality caps: attribute values derived from request data are interned up to a cap;
//! past it they collapse into `_OTHER` and each folded measurement is counted in
//! `scalewatch.sdk.overflow`.

use crate::catalog::{self, attr, OTHER};
use opentelemetry::metrics::{BoundCounter, Meter};
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::fmt;
use std::sync::{OnceLock, RwLock};

/// Counts measurements folded into `_OTHER` for one signal.
#[derive(Clone)]
pub struct Overflow {
    counter: BoundCounter<u64>,
    signal: &'static str,
}

impl fmt::Debug for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overflow")
            .field("signal", &self.signal)
            .finish()
    }
}

impl Overflow {
    /// The overflow counter for measurements of `signal`.
    pub fn new(meter: &Meter, signal: &'static str) -> Self {
        let counter = catalog::SDK_OVERFLOW
            .u64_counter(meter)
            .bind(&[KeyValue::new(attr::SDK_SIGNAL, signal)]);
        Self { counter, signal }
    }

    /// Counts one folded measurement.
    #[inline]
    pub fn record(&self) {
        self.counter.add(1);
    }
}

/// A table of per-value handles for request-derived strings, holding at most `cap`
/// distinct values. Values are addressed by a small index, so a request can carry the
/// index instead of a reference-counted handle; index [`CappedTable::OTHER`] is `_OTHER`.
/// Looking up a known value takes a shared lock only; handles are created once.
pub struct CappedTable<T> {
    /// Slot 0 stays empty: index 0 means `other`.
    slots: Box<[OnceLock<Box<T>>]>,
    other: T,
    index: RwLock<HashMap<Box<str>, u32>>,
    overflow: Overflow,
}

impl<T> fmt::Debug for CappedTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CappedTable")
            .field("cap", &(self.slots.len() - 1))
            .field("len", &self.len())
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl<T> CappedTable<T> {
    /// The index of the `_OTHER` handle.
    pub const OTHER: u32 = 0;

    /// A table of at most `cap` values; `make(OTHER)` builds the overflow handle now.
    pub fn new(cap: usize, overflow: Overflow, make: impl FnOnce(&str) -> T) -> Self {
        Self {
            slots: (0..=cap).map(|_| OnceLock::new()).collect(),
            other: make(OTHER),
            index: RwLock::new(HashMap::new()),
            overflow,
        }
    }

    /// Distinct values held (not counting `_OTHER`).
    pub fn len(&self) -> usize {
        self.index.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no value is held yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of `key` if it is already known.
    pub fn find(&self, key: &str) -> Option<u32> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// The index for `key`, creating its handle with `make` while under the cap; past
    /// the cap, [`CappedTable::OTHER`], counted as an overflow.
    pub fn resolve(&self, key: &str, make: impl FnOnce(&str) -> T) -> u32 {
        if let Some(i) = self.find(key) {
            return i;
        }
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = index.get(key) {
            return *i;
        }
        let next = index.len() + 1;
        if next >= self.slots.len() {
            drop(index);
            self.overflow.record();
            return Self::OTHER;
        }
        let _ = self.slots[next].set(Box::new(make(key)));
        index.insert(key.into(), next as u32);
        next as u32
    }

    /// Counts one measurement folded into `_OTHER` without a lookup (for values that are
    /// invalid on their face) and returns [`CappedTable::OTHER`].
    pub fn fold(&self) -> u32 {
        self.overflow.record();
        Self::OTHER
    }

    /// The handle at `index`; `_OTHER` for an index that was never handed out.
    #[inline]
    pub fn get(&self, index: u32) -> &T {
        match self.slots.get(index as usize).and_then(OnceLock::get) {
            Some(v) => v,
            None => &self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_distinct_values_and_counts_the_overflow() {
        let meter = opentelemetry::global::meter_provider().meter("test");
        let table = CappedTable::new(3, Overflow::new(&meter, "x"), |k| k.to_owned());
        for i in 0..10 {
            table.resolve(&format!("k{i}"), |k| k.to_owned());
        }
        assert_eq!(table.len(), 3);
        let k1 = table.resolve("k1", |k| k.to_owned());
        assert_eq!(table.get(k1), "k1");
        assert_eq!(table.find("k2"), Some(3));
        let k9 = table.resolve("k9", |k| k.to_owned());
        assert_eq!(k9, CappedTable::<String>::OTHER);
        assert_eq!(table.get(k9), OTHER);
        assert_eq!(table.get(999), OTHER);
    }
}
