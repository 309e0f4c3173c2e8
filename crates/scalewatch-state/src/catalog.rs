//! The signals this crate emits and their attribute keys (listed in the
//! README's signal table): the [`state`] (keyspace) and [`queue`] families of the scalewatch
//! catalog, re-exported. Call sites refer to these constants; no metric name is spelled
//! elsewhere.

use scalewatch_core::catalog::{join, queue, state, Signal};

pub use scalewatch_core::catalog::queue::*;
pub use scalewatch_core::catalog::state::*;

/// Every signal this crate emits, in catalog order: the keyspace family, then the queue
/// family.
pub const ALL: &[Signal] = &join::<{ state::ALL.len() + queue::ALL.len() }>(state::ALL, queue::ALL);

/// Attribute keys of the keyspace and queue signals.
pub mod attr {
    pub use scalewatch_core::catalog::queue::attr::*;
    pub use scalewatch_core::catalog::state::attr::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.state.", "scalewatch.queue."]).unwrap();
    }
}
