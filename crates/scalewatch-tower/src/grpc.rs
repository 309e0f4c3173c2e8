//! gRPC status codes: read from `grpc-status`, derived from an HTTP answer, named as
//! semconv's `rpc.status_code` writes them.

use http::{HeaderMap, StatusCode};
use scalewatch_core::RejectionReason;

/// A gRPC status code (the 17 of the gRPC spec, by their wire values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Every code, indexed by its wire value.
    const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code of wire value `value`, if it is one.
    pub(crate) fn from_value(value: u8) -> Option<Code> {
        Code::ALL.get(usize::from(value)).copied()
    }

    /// The wire value, as `grpc-status` carries it.
    #[inline]
    pub(crate) fn value(self) -> u8 {
        self as u8
    }

    /// The semconv `rpc.status_code` value.
    #[inline]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Reads `grpc-status` from headers or trailers; `None` when absent. A value that is
    /// not a known code is `UNKNOWN`, as the gRPC spec asks of clients.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Code> {
        let value = headers.get("grpc-status")?;
        let code = std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok())
            .and_then(Code::from_value)
            .unwrap_or(Code::Unknown);
        Some(code)
    }

    /// The status a gRPC client derives from an answer that is not gRPC at all (gRPC's
    /// "HTTP to gRPC status code mapping").
    pub(crate) fn from_http(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502..=504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// The status a refused call is answered with: `RESOURCE_EXHAUSTED` when the tier is
    /// overloaded, `UNAVAILABLE` when the call timed out waiting for admission.
    pub(crate) fn of_refusal(reason: RejectionReason) -> Code {
        match reason {
            RejectionReason::Overloaded => Code::ResourceExhausted,
            RejectionReason::Timeout => Code::Unavailable,
        }
    }

    /// Whether the code says the server failed (semconv's server-side errors).
    pub(crate) fn is_server_error(self) -> bool {
        matches!(
            self,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_their_wire_values() {
        for (value, code) in Code::ALL.iter().enumerate() {
            assert_eq!(usize::from(code.value()), value);
            assert_eq!(Code::from_value(code.value()), Some(*code));
        }
        assert_eq!(Code::from_value(17), None);
        assert_eq!(Code::Unauthenticated.name(), "UNAUTHENTICATED");
    }

    #[test]
    fn http_statuses_map_to_grpc_codes() {
        let code = |s: u16| Code::from_http(StatusCode::from_u16(s).unwrap()).name();
        assert_eq!(code(404), "UNIMPLEMENTED");
        assert_eq!(code(503), "UNAVAILABLE");
        assert_eq!(code(401), "UNAUTHENTICATED");
        assert_eq!(code(200), "UNKNOWN");
    }

    #[test]
    fn grpc_status_parses_known_codes_and_folds_the_rest() {
        let mut h = HeaderMap::new();
        assert_eq!(Code::from_headers(&h), None);
        h.insert("grpc-status", "4".parse().unwrap());
        assert_eq!(Code::from_headers(&h), Some(Code::DeadlineExceeded));
        h.insert("grpc-status", "99".parse().unwrap());
        assert_eq!(Code::from_headers(&h), Some(Code::Unknown));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(Code::from_headers(&h), Some(Code::Unknown));
    }
}
