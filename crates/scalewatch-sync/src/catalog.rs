//! The lock and pool signals (the README's signal table), their attribute keys and values:
//! the [`lock`](scalewatch_core::catalog::lock) and
//! [`pool`](scalewatch_core::catalog::pool) families of the scalewatch catalog,
//! re-exported. Call sites refer to these constants; no metric name is spelled anywhere
//! else.

scalewatch_core::family_catalog!(lock, pool);
