//! The blocking pipeline helpers of `scalewatch-test-support`, under the names the lock
//! tests use.
#![allow(unused_imports, unreachable_pub)]

pub use scalewatch_test_support::pipeline::{flush_and_read as flush, grpc_pipeline as pipeline};
