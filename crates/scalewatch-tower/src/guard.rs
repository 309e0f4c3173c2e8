//! The RAII guard that carries a request from `call` through its future into its body,
//! and records everything when it drops, whatever way the request ends.

use crate::classify::{self, GRPC_UNIMPLEMENTED};
use crate::layer::Shared;
use crate::signals::Failure;
use http::{HeaderMap, StatusCode};
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::Started;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// The gRPC method of a call, resolved once the response says whether the server knows it.
#[derive(Debug)]
pub(crate) enum GrpcMethod {
    /// An index into the layer's method table (possibly `_OTHER`).
    Known(u32),
    /// Well-formed but not seen before; resolved at the response headers, so that methods
    /// the server does not implement never take a place in the table.
    Unseen(Box<str>),
}

#[derive(Debug)]
pub(crate) enum Protocol {
    Http { method: u8, route: u32 },
    Grpc { method: GrpcMethod },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No response yet: dropping now means the request was cancelled.
    Waiting,
    /// Inside the inner future's `poll`: dropping now means it panicked.
    Polling,
    /// The response head is out; the body may still be streaming.
    Responded,
}

pub(crate) struct RequestGuard {
    shared: Arc<Shared>,
    received: u64,
    admitted: Option<Started>,
    queued: bool,
    permit: Option<OwnedSemaphorePermit>,
    protocol: Protocol,
    phase: Phase,
    status: Option<u16>,
    grpc_code: Option<u8>,
    failure: Failure,
}

impl std::fmt::Debug for RequestGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestGuard")
            .field("protocol", &self.protocol)
            .field("phase", &self.phase)
            .field("status", &self.status)
            .field("grpc_code", &self.grpc_code)
            .finish_non_exhaustive()
    }
}

impl RequestGuard {
    pub(crate) fn new(shared: Arc<Shared>, received: u64, protocol: Protocol) -> Self {
        if let Protocol::Http { method, .. } = protocol {
            shared.http.active(method, 1);
        }
        Self {
            shared,
            received,
            admitted: None,
            queued: false,
            permit: None,
            protocol,
            phase: Phase::Waiting,
            status: None,
            grpc_code: None,
            failure: Failure::None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn is_grpc(&self) -> bool {
        matches!(self.protocol, Protocol::Grpc { .. })
    }

    /// The request waits for admission from now on.
    pub(crate) fn enqueue(&mut self) {
        self.shared.tier.stats().enqueue();
        self.queued = true;
    }

    fn leave_queue(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.shared.tier.stats().dequeue();
        }
    }

    /// The request's work starts at `now`, holding `permit` when the tier is limited.
    pub(crate) fn admit(&mut self, now: u64, permit: Option<OwnedSemaphorePermit>) {
        self.leave_queue();
        self.permit = permit;
        self.admitted = Some(self.shared.tier.stats().start(now));
    }

    /// The request was refused; it leaves the queue without being admitted.
    pub(crate) fn reject(&mut self) {
        self.leave_queue();
    }

    pub(crate) fn enter_poll(&mut self) {
        self.phase = Phase::Polling;
    }

    pub(crate) fn leave_poll(&mut self) {
        self.phase = Phase::Waiting;
    }

    pub(crate) fn received_at(&self) -> u64 {
        self.received
    }

    /// The inner service failed with an error of type `type_name`.
    pub(crate) fn service_failed(&mut self, type_name: &'static str) {
        self.phase = Phase::Responded;
        self.failure = Failure::Service(type_name);
    }

    /// The response head arrived.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.phase = Phase::Responded;
        self.status = Some(status.as_u16());
        if let Protocol::Grpc { method } = &mut self.protocol {
            let grpc_answer = classify::is_grpc(headers);
            self.grpc_code = if grpc_answer {
                // A trailers-only response carries its status in the headers.
                classify::grpc_status(headers)
            } else {
                // Not a gRPC response at all (a proxy or router answered): the status a
                // gRPC client derives from the HTTP status, as the gRPC spec maps it.
                Some(classify::grpc_code_from_http(status))
            };
            if let GrpcMethod::Unseen(path) = method {
                // Only a method the server really serves takes a place in the table.
                let served = grpc_answer && self.grpc_code != Some(GRPC_UNIMPLEMENTED);
                let index = if served {
                    self.shared.rpc.resolve(path)
                } else {
                    self.shared.rpc.fold()
                };
                *method = GrpcMethod::Known(index);
            }
        }
    }

    /// The response's trailers arrived (the gRPC status of a streamed response).
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if self.is_grpc() {
            if let Some(code) = classify::grpc_status(trailers) {
                self.grpc_code = Some(code);
            }
        }
    }

    /// The response body failed mid-stream with an error of type `type_name`.
    pub(crate) fn body_failed(&mut self, type_name: &'static str) {
        self.failure = Failure::Body(type_name);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = now_nanos();
        self.leave_queue();
        if let Some(started) = self.admitted.take() {
            self.shared.tier.stats().finish(started, now);
        }
        // The permit goes back when the response ends, not when its head is sent.
        drop(self.permit.take());
        let failure = match self.phase {
            Phase::Waiting => Failure::Cancelled,
            Phase::Polling => Failure::Panicked,
            Phase::Responded => self.failure,
        };
        let seconds = seconds_between(self.received, now);
        match &self.protocol {
            Protocol::Http { method, route } => {
                let shared = &self.shared;
                shared.http.active(*method, -1);
                let failure = match (failure, self.status) {
                    (Failure::None, Some(s)) if s >= 500 => Failure::Status,
                    (f, _) => f,
                };
                shared
                    .http
                    .record(*route, *method, self.status, failure, seconds);
            }
            Protocol::Grpc { method } => {
                let shared = &self.shared;
                let index = match method {
                    GrpcMethod::Known(i) => *i,
                    GrpcMethod::Unseen(_) => shared.rpc.fold(),
                };
                // No status by the end: the stream was cut before its trailers.
                let code = self.grpc_code.unwrap_or(match failure {
                    Failure::Panicked | Failure::Service(_) => classify::GRPC_UNKNOWN,
                    _ => 1, // CANCELLED
                });
                let failure = match failure {
                    Failure::None if self.grpc_code.is_none() => Failure::Cancelled,
                    Failure::None if classify::grpc_is_server_error(code) => Failure::Status,
                    f => f,
                };
                shared.rpc.record(index, code, failure, seconds);
            }
        }
    }
}
