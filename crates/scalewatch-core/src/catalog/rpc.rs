//! RPC signals (semconv `rpc.*`), recorded by `scalewatch-tower` for gRPC servers and
//! clients, and the attribute keys they carry.

use super::DURATION_BUCKETS;

signals! {
    /// Every RPC signal, in catalog order.
    ALL;
    /// `rpc.server.call.duration` (semconv).
    RPC_SERVER_CALL_DURATION = histogram("rpc.server.call.duration", "s", DURATION_BUCKETS, "Duration of RPC server calls, until the last message or trailer.");
    /// `rpc.client.call.duration` (semconv).
    RPC_CLIENT_CALL_DURATION = histogram("rpc.client.call.duration", "s", DURATION_BUCKETS, "Duration of RPC client calls.");
}

/// Attribute keys of the RPC signals (semconv); the general ones are shared with
/// [`http::attr`](super::http::attr).
pub mod attr {
    pub use super::super::http::attr::{ERROR_TYPE, SERVER_ADDRESS, SERVER_PORT};

    /// `rpc.system.name`
    pub const RPC_SYSTEM_NAME: &str = "rpc.system.name";
    /// `rpc.method`
    pub const RPC_METHOD: &str = "rpc.method";
    /// `rpc.status_code`
    pub const RPC_STATUS_CODE: &str = "rpc.status_code";
}
