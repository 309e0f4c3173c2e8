//! The signals this crate emits: the async runtime's saturation and background jobs, the
//! [`runtime`](scalewatch_core::catalog::runtime) and
//! [`job`](scalewatch_core::catalog::job) families of the scalewatch catalog, re-exported.
//! Names, units and meanings are those of the README's signal table; no metric name is
//! spelled anywhere else in this crate.
//!
//! Attributes: runtime signals carry `scalewatch.tier.name` (the name given to
//! [`RuntimeTier`](crate::RuntimeTier)) and `scalewatch.tier.kind` = `runtime`; job signals
//! carry [`attr::JOB_NAME`].

scalewatch_core::family_catalog!(runtime, job);
