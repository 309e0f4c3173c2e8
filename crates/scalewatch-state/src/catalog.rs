//! The signals this crate emits and their attribute keys (listed in the README's signal
//! table): the [`state`](scalewatch_core::catalog::state) (keyspace) and
//! [`queue`](scalewatch_core::catalog::queue) families of the scalewatch catalog,
//! re-exported. Call sites refer to these constants; no metric name is spelled elsewhere.

scalewatch_core::family_catalog!(state, queue);
