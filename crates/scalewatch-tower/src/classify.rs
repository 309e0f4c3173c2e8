//! Classifying requests and responses into low-cardinality attribute values.

use http::{HeaderMap, Method};

/// Known HTTP methods (semconv) by index; the last index is `_OTHER`.
pub(crate) const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER",
];
pub(crate) const METHOD_OTHER: u8 = 9;

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

/// gRPC status code names, indexed by code (semconv `rpc.status_code` values).
pub(crate) const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];
pub(crate) const GRPC_UNKNOWN: u8 = 2;
pub(crate) const GRPC_UNIMPLEMENTED: u8 = 12;
pub(crate) const GRPC_RESOURCE_EXHAUSTED: u8 = 8;
pub(crate) const GRPC_UNAVAILABLE: u8 = 14;

/// Reads `grpc-status` from headers or trailers. A value that is not a known code is
/// `UNKNOWN`, as the gRPC spec asks of clients.
pub(crate) fn grpc_status(headers: &HeaderMap) -> Option<u8> {
    let v = headers.get("grpc-status")?;
    let code = std::str::from_utf8(v.as_bytes())
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .filter(|c| (*c as usize) < GRPC_CODES.len())
        .unwrap_or(GRPC_UNKNOWN);
    Some(code)
}

/// The gRPC status a client derives from a non-gRPC HTTP answer (gRPC's
/// "HTTP to gRPC status code mapping").
pub(crate) fn grpc_code_from_http(status: http::StatusCode) -> u8 {
    match status.as_u16() {
        400 => 13,                 // INTERNAL
        401 => 16,                 // UNAUTHENTICATED
        403 => 7,                  // PERMISSION_DENIED
        404 => GRPC_UNIMPLEMENTED, // UNIMPLEMENTED
        429 | 502..=504 => 14,     // UNAVAILABLE
        _ => GRPC_UNKNOWN,
    }
}

/// Codes that mean the server failed (semconv: server-side errors), recorded as `error.type`.
pub(crate) fn grpc_is_server_error(code: u8) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
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

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        let code = |s: u16| {
            GRPC_CODES[grpc_code_from_http(http::StatusCode::from_u16(s).unwrap()) as usize]
        };
        assert_eq!(code(404), "UNIMPLEMENTED");
        assert_eq!(code(503), "UNAVAILABLE");
        assert_eq!(code(401), "UNAUTHENTICATED");
        assert_eq!(code(200), "UNKNOWN");
    }

    #[test]
    fn grpc_status_parses_known_codes_and_folds_the_rest() {
        let mut h = HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", "4".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(4));
        h.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(GRPC_UNKNOWN));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(GRPC_UNKNOWN));
    }
}
