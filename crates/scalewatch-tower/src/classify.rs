//! Classifying requests, and how they end, into low-cardinality attribute values; and
//! [`Classify`], what a server and a client classify differently.

use crate::grpc::Code;
use http::{HeaderMap, Method, StatusCode};
use scalewatch_core::catalog::{self, Signal};
use scalewatch_core::TierKind;

/// Known HTTP methods (semconv) by index; the last index is `_OTHER`.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];
/// The index of `_OTHER` in [`METHODS`].
pub(crate) const METHOD_OTHER: u8 = (METHODS.len() - 1) as u8;

/// The index of `method` in [`METHODS`]; anything else is `_OTHER`.
#[inline]
pub(crate) fn method_index(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => METHOD_OTHER,
    }
}

/// Whether a request is a gRPC call (`content-type: application/grpc[+proto|...]`).
#[inline]
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Validates a gRPC request path `/package.Service/Method` and returns the semconv
/// `rpc.method` value `package.Service/Method`, or `None` when it is malformed.
pub(crate) fn grpc_method(path: &str) -> Option<&str> {
    let method = path.strip_prefix('/')?;
    let (service, name) = method.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    (ok(service) && ok(name)).then_some(method)
}

/// Why a request failed, as far as `error.type` is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    /// Succeeded (or failed in a way the status code alone expresses).
    None,
    /// An error status (HTTP or gRPC, as [`Classify`] says): `error.type` is the status.
    Status,
    /// The inner service returned an error: `error.type` is the error's type name (a
    /// function pointer such as `std::any::type_name::<E>`, half the size of a `&str`).
    Service(fn() -> &'static str),
    /// The response body failed mid-stream: `error.type` is the body error's type name.
    Body(fn() -> &'static str),
    /// The request was dropped before it completed.
    Cancelled,
    /// The handler panicked.
    Panicked,
}

/// What the server and the client side classify differently, as semconv asks of each: a
/// zero-sized type per side ([`Server`], [`Client`]) that the shared guard, body and future
/// are generic over, so each side's rules are compiled in with no branch at run time.
pub(crate) trait Classify: Sized + Send + Sync + 'static {
    /// The layer's tier kind (`scalewatch.tier.kind`).
    const TIER_KIND: TierKind;
    /// The gRPC duration histogram: `rpc.server.call.duration` or `rpc.client.call.duration`.
    const RPC_DURATION: &'static Signal;

    /// Whether an HTTP response with `status` failed (`error.type` is then the status).
    fn http_status_is_error(status: u16) -> bool;

    /// A gRPC call's response head: the status it carries (a trailers-only response), if
    /// any, and whether it shows the server serves the method, so that the method may take a
    /// place in the method table.
    fn grpc_head(status: StatusCode, headers: &HeaderMap) -> (Option<Code>, bool);

    /// The status of a gRPC call that ended without one, by how it ended.
    fn grpc_status_missing(failure: Failure) -> Code;

    /// Whether a gRPC call that ended with `code` failed (`error.type` is then the code).
    fn grpc_status_is_error(code: Code) -> bool;
}

/// The server side: requests received by [`ServerTier`](crate::ServerTier).
#[derive(Debug)]
pub(crate) struct Server;

impl Classify for Server {
    const TIER_KIND: TierKind = TierKind::Server;
    const RPC_DURATION: &'static Signal = &catalog::RPC_SERVER_CALL_DURATION;

    /// Only 5xx: a 4xx is the client's error, not the server's (semconv).
    #[inline]
    fn http_status_is_error(status: u16) -> bool {
        status >= 500
    }

    #[inline]
    fn grpc_head(status: StatusCode, headers: &HeaderMap) -> (Option<Code>, bool) {
        if !is_grpc(headers) {
            // Not a gRPC response at all (a proxy or router answered): the status a gRPC
            // client derives from the HTTP status, and no sign the method is served.
            return (Some(Code::from_http(status)), false);
        }
        let code = Code::from_headers(headers);
        (code, code != Some(Code::Unimplemented))
    }

    /// No status by the end: the handler failed or panicked (`UNKNOWN`), or the stream was
    /// cut before its trailers (`CANCELLED`).
    #[inline]
    fn grpc_status_missing(failure: Failure) -> Code {
        match failure {
            Failure::Panicked | Failure::Service(_) => Code::Unknown,
            _ => Code::Cancelled,
        }
    }

    /// The codes that say the server failed (semconv's server-side errors).
    #[inline]
    fn grpc_status_is_error(code: Code) -> bool {
        code.is_server_error()
    }
}

/// The client side: calls made through [`ClientTier`](crate::ClientTier).
#[derive(Debug)]
pub(crate) struct Client;

impl Classify for Client {
    const TIER_KIND: TierKind = TierKind::Client;
    const RPC_DURATION: &'static Signal = &catalog::RPC_CLIENT_CALL_DURATION;

    /// 4xx and 5xx: for a client, a 4xx is an error too (semconv).
    #[inline]
    fn http_status_is_error(status: u16) -> bool {
        status >= 400
    }

    #[inline]
    fn grpc_head(_status: StatusCode, headers: &HeaderMap) -> (Option<Code>, bool) {
        let code = Code::from_headers(headers);
        (code, code != Some(Code::Unimplemented))
    }

    /// No status by the end: the call never reached the server (`UNAVAILABLE`, as tonic
    /// reports it), panicked (`UNKNOWN`), or the stream was cut before its trailers
    /// (`CANCELLED`).
    #[inline]
    fn grpc_status_missing(failure: Failure) -> Code {
        match failure {
            Failure::Service(_) => Code::Unavailable,
            Failure::Panicked => Code::Unknown,
            _ => Code::Cancelled,
        }
    }

    /// Every status but `OK`: for a client, any of them is an error (semconv).
    #[inline]
    fn grpc_status_is_error(code: Code) -> bool {
        code != Code::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_collapse_to_other() {
        assert_eq!(METHODS[method_index(&Method::GET) as usize], "GET");
        assert_eq!(METHODS[method_index(&Method::PATCH) as usize], "PATCH");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(METHODS[method_index(&odd) as usize], "_OTHER");
    }

    #[test]
    fn grpc_paths_are_validated() {
        assert_eq!(
            grpc_method("/pkg.Greeter/SayHello"),
            Some("pkg.Greeter/SayHello")
        );
        assert_eq!(grpc_method("/pkg.Greeter/"), None);
        assert_eq!(grpc_method("pkg.Greeter/SayHello"), None);
        assert_eq!(grpc_method("/a/b/c"), None);
        assert_eq!(grpc_method("/a b/c"), None);
    }
}
