//! The client's RAII guard: carries an outbound request from `call` through its future into
//! the response body, and records when it drops, whatever way the call ends.

use super::ClientShared;
use crate::classify::{self, GRPC_UNIMPLEMENTED};
use crate::guard::GrpcMethod;
use crate::signals::Failure;
use http::{HeaderMap, StatusCode};
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::Started;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

#[derive(Debug)]
pub(crate) enum Call {
    Http { method: u8, server: u32 },
    Grpc { method: GrpcMethod },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No response yet: dropping now means the call was cancelled.
    Waiting,
    /// Inside the inner future's `poll`: dropping now means it panicked.
    Polling,
    /// The response head arrived (or the call failed); the body may still stream.
    Responded,
}

pub(crate) struct ClientGuard {
    shared: Arc<ClientShared>,
    sent: u64,
    admitted: Option<Started>,
    queued: bool,
    permit: Option<OwnedSemaphorePermit>,
    call: Call,
    phase: Phase,
    status: Option<u16>,
    grpc_code: Option<u8>,
    failure: Failure,
}

impl std::fmt::Debug for ClientGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientGuard")
            .field("call", &self.call)
            .field("phase", &self.phase)
            .field("status", &self.status)
            .field("grpc_code", &self.grpc_code)
            .finish_non_exhaustive()
    }
}

impl ClientGuard {
    pub(crate) fn new(shared: Arc<ClientShared>, sent: u64, call: Call) -> Self {
        Self {
            shared,
            sent,
            admitted: None,
            queued: false,
            permit: None,
            call,
            phase: Phase::Waiting,
            status: None,
            grpc_code: None,
            failure: Failure::None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<ClientShared> {
        &self.shared
    }

    pub(crate) fn sent_at(&self) -> u64 {
        self.sent
    }

    /// The call waits for admission from now on.
    pub(crate) fn enqueue(&mut self) {
        self.shared.tier.stats().enqueue();
        self.queued = true;
    }

    /// The call's work starts at `now`, holding `permit` when the tier is limited.
    pub(crate) fn admit(&mut self, now: u64, permit: Option<OwnedSemaphorePermit>) {
        if std::mem::take(&mut self.queued) {
            self.shared.tier.stats().dequeue();
        }
        self.permit = permit;
        self.admitted = Some(self.shared.tier.stats().start(now));
    }

    pub(crate) fn enter_poll(&mut self) {
        self.phase = Phase::Polling;
    }

    pub(crate) fn leave_poll(&mut self) {
        self.phase = Phase::Waiting;
    }

    /// The inner service failed with an error of type `type_name` (connect, I/O, ...).
    pub(crate) fn service_failed(&mut self, type_name: &'static str) {
        self.phase = Phase::Responded;
        self.failure = Failure::Service(type_name);
    }

    /// The response head arrived.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.phase = Phase::Responded;
        self.status = Some(status.as_u16());
        if let Call::Grpc { method } = &mut self.call {
            // A trailers-only response carries its status in the headers.
            self.grpc_code = classify::grpc_status(headers);
            if let GrpcMethod::Unseen(path) = method {
                let index = if self.grpc_code == Some(GRPC_UNIMPLEMENTED) {
                    self.shared.rpc.fold()
                } else {
                    self.shared.rpc.resolve(path)
                };
                *method = GrpcMethod::Known(index);
            }
        }
    }

    /// The response's trailers arrived (the gRPC status of a streamed response).
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if matches!(self.call, Call::Grpc { .. }) {
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

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let now = now_nanos();
        if std::mem::take(&mut self.queued) {
            self.shared.tier.stats().dequeue();
        }
        if let Some(started) = self.admitted.take() {
            self.shared.tier.stats().finish(started, now);
        }
        // The permit goes back when the response ends, not when its head arrives.
        drop(self.permit.take());
        let failure = match self.phase {
            Phase::Waiting => Failure::Cancelled,
            Phase::Polling => Failure::Panicked,
            Phase::Responded => self.failure,
        };
        let seconds = seconds_between(self.sent, now);
        let shared = &self.shared;
        match &self.call {
            Call::Http { method, server } => {
                // For a client, 4xx is an error too (semconv).
                let failure = match (failure, self.status) {
                    (Failure::None, Some(s)) if s >= 400 => Failure::Status,
                    (f, _) => f,
                };
                shared
                    .http
                    .record(*server, *method, self.status, failure, seconds);
            }
            Call::Grpc { method } => {
                let index = match method {
                    GrpcMethod::Known(i) => *i,
                    GrpcMethod::Unseen(_) => shared.rpc.fold(),
                };
                // No status by the end: the call never reached the server (tonic reports
                // UNAVAILABLE), panicked, or the stream was cut before its trailers.
                let code = self.grpc_code.unwrap_or(match failure {
                    Failure::Service(_) => classify::GRPC_UNAVAILABLE,
                    Failure::Panicked => classify::GRPC_UNKNOWN,
                    _ => 1, // CANCELLED
                });
                // For a client every status but OK is an error (semconv).
                let failure = match failure {
                    Failure::None if self.grpc_code.is_none() => Failure::Cancelled,
                    Failure::None if code != 0 => Failure::Status,
                    f => f,
                };
                shared.rpc.record(index, code, failure, seconds);
            }
        }
    }
}
