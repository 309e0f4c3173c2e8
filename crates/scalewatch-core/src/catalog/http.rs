//! HTTP signals (semconv `http.*`), recorded by `scalewatch-tower`'s server and client
//! layers, and the attribute keys they carry.

use super::DURATION_BUCKETS;

signals! {
    /// Every HTTP signal, in catalog order.
    ALL;
    /// `http.server.request.duration` (semconv).
    HTTP_SERVER_REQUEST_DURATION = histogram("http.server.request.duration", "s", DURATION_BUCKETS, "Duration of HTTP server requests, until the response body ends.");
    /// `http.server.active_requests` (semconv).
    HTTP_SERVER_ACTIVE_REQUESTS = up_down_counter("http.server.active_requests", "{request}", "Number of active HTTP server requests.");
    /// `http.client.request.duration` (semconv).
    HTTP_CLIENT_REQUEST_DURATION = histogram("http.client.request.duration", "s", DURATION_BUCKETS, "Duration of HTTP client requests.");
}

/// Attribute keys of the HTTP signals (semconv).
pub mod attr {
    /// `http.request.method`
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// `http.response.status_code`
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// `http.route`
    pub const HTTP_ROUTE: &str = "http.route";
    /// `url.scheme`
    pub const URL_SCHEME: &str = "url.scheme";
    /// `server.address` (client signals; RPC client signals too).
    pub const SERVER_ADDRESS: &str = "server.address";
    /// `server.port` (client signals; RPC client signals too).
    pub const SERVER_PORT: &str = "server.port";
    /// `error.type` (RPC signals too).
    pub const ERROR_TYPE: &str = "error.type";
}
