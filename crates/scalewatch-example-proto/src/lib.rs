//! The gRPC service the examples and tests serve: `scalewatch.demo.v1.Greeter`, with a
//! unary `SayHello` and a server-streaming `CountTo`, compiled from `proto/demo.proto`
//! without a system `protoc`.

#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
#![allow(clippy::all)]

/// Generated messages, client and server of `scalewatch.demo.v1`.
pub mod demo {
    tonic::include_proto!("scalewatch.demo.v1");
}
