//! The signals this crate emits: the async runtime's saturation and background jobs, the
//! [`runtime`] and [`job`] families of the scalewatch catalog, re-exported. Names, units
//! and meanings are those of the README's signal table; no metric name
//! is spelled anywhere else in this crate.
//!
//! Attributes: runtime signals carry `scalewatch.tier.name` (the name given to
//! [`RuntimeTier`](crate::RuntimeTier)) and `scalewatch.tier.kind` = `runtime`; job signals
//! carry [`attr::JOB_NAME`].

use scalewatch_core::catalog::{job, join, runtime, Signal};

pub use scalewatch_core::catalog::job::*;
pub use scalewatch_core::catalog::runtime::*;

/// Every signal this crate emits, in catalog order: the runtime family, then the job
/// family.
pub const ALL: &[Signal] = &join::<{ runtime::ALL.len() + job::ALL.len() }>(runtime::ALL, job::ALL);

/// Attribute keys of the runtime and job signals.
pub mod attr {
    pub use scalewatch_core::catalog::job::attr::*;
    pub use scalewatch_core::catalog::runtime::attr::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_follows_the_rules() {
        scalewatch_core::catalog::check(ALL, &["scalewatch.runtime.", "scalewatch.job."]).unwrap();
    }
}
