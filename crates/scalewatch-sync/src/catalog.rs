//! The lock and pool signals (the README's signal table), their attribute keys and
//! values: the [`lock`] and [`pool`] families of the scalewatch catalog, re-exported. Call
//! sites refer to these constants; no metric name is spelled anywhere else.

use scalewatch_core::catalog::{join, lock, pool, Signal};

pub use scalewatch_core::catalog::lock::*;
pub use scalewatch_core::catalog::pool::*;

/// Every signal this crate emits, in catalog order: the lock family, then the pool family.
pub const ALL: &[Signal] = &join::<{ lock::ALL.len() + pool::ALL.len() }>(lock::ALL, pool::ALL);

/// Attribute keys of the lock and pool signals.
pub mod attr {
    pub use scalewatch_core::catalog::lock::attr::*;
    pub use scalewatch_core::catalog::pool::attr::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.lock.", "scalewatch.pool."]).unwrap();
    }
}
