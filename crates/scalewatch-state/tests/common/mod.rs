//! The workload helpers of `scalewatch-test-support`, under the names the keyspace tests
//! use.
#![allow(unused_imports, unreachable_pub)]

pub use scalewatch_test_support::workload::{long, noop_meter, XorShift, Zipf};
