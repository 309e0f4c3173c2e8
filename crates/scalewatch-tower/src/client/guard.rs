//! The client's RAII guard: carries an outbound request from `call` through its future into
//! the response body, and records when it drops, whatever way the call ends.

use super::ClientShared;
use crate::classify::{self, GRPC_UNIMPLEMENTED};
use crate::guard::{Gate, GrpcMethod};
use crate::signals::Failure;
use http::{HeaderMap, StatusCode};
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::Started;
use scalewatch_core::RejectionReason;
use std::sync::Arc;

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

/// Kept small (64 bytes): it moves with the response future and then into the body, and
/// every byte is copied on each move.
pub(crate) struct ClientGuard {
    shared: Arc<ClientShared>,
    sent: u64,
    /// When the work started; meaningful once `gate` says admitted.
    admitted: Started,
    failure: Failure,
    call: Call,
    status: Option<StatusCode>,
    grpc_code: Option<u8>,
    phase: Phase,
    gate: Gate,
    head_only: bool,
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
    /// A call sent at `sent`; `head_only` for a `HEAD` request, whose response ends with
    /// its head.
    pub(crate) fn new(shared: Arc<ClientShared>, sent: u64, call: Call, head_only: bool) -> Self {
        Self {
            shared,
            sent,
            admitted: Started { at: sent },
            failure: Failure::None,
            call,
            status: None,
            grpc_code: None,
            phase: Phase::Waiting,
            gate: Gate::Outside,
            head_only,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<ClientShared> {
        &self.shared
    }

    pub(crate) fn sent_at(&self) -> u64 {
        self.sent
    }

    /// Whether the response ends with its head (a `HEAD` request).
    pub(crate) fn head_only(&self) -> bool {
        self.head_only
    }

    /// The call waits for admission from now on, in the place it took in the queue
    /// ([`Admission::try_enqueue`](crate::layer::Admission::try_enqueue)), which the guard
    /// gives back when the call leaves the queue.
    pub(crate) fn enqueue(&mut self) {
        self.shared.tier.stats().enqueue();
        self.gate = Gate::Queued;
    }

    /// Leaves the queue, if waiting there: both counts.
    fn leave_queue(&mut self) {
        if self.gate == Gate::Queued {
            self.shared.tier.stats().dequeue();
            if let Some(admission) = &self.shared.admission {
                admission.leave_queue();
            }
            self.gate = Gate::Outside;
        }
    }

    /// The call's work starts at `now`; `permit` when it took one of the admission
    /// semaphore's permits, which the guard gives back when it drops.
    pub(crate) fn admit(&mut self, now: u64, permit: bool) {
        self.leave_queue();
        self.admitted = self.shared.tier.stats().start(now);
        self.gate = Gate::admitted(permit);
    }

    /// The call was refused for `reason`; it leaves the queue without being admitted and
    /// is recorded as failed with `error.type` the refusal's type (gRPC: the status the
    /// server side answers a refusal with).
    pub(crate) fn reject(&mut self, reason: RejectionReason) {
        self.leave_queue();
        self.gate = Gate::Outside;
        self.phase = Phase::Responded;
        self.failure = Failure::Service(std::any::type_name::<crate::client::Refused>);
        if matches!(self.call, Call::Grpc { .. }) {
            self.grpc_code = Some(match reason {
                RejectionReason::Overloaded => classify::GRPC_RESOURCE_EXHAUSTED,
                RejectionReason::Timeout => classify::GRPC_UNAVAILABLE,
            });
        }
    }

    pub(crate) fn enter_poll(&mut self) {
        self.phase = Phase::Polling;
    }

    pub(crate) fn leave_poll(&mut self) {
        self.phase = Phase::Waiting;
    }

    /// The inner service failed with an error of type `type_name()` (connect, I/O, ...).
    pub(crate) fn service_failed(&mut self, type_name: fn() -> &'static str) {
        self.phase = Phase::Responded;
        self.failure = Failure::Service(type_name);
    }

    /// The response head arrived.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.phase = Phase::Responded;
        self.status = Some(status);
        if let Call::Grpc { method } = &mut self.call {
            // A trailers-only response carries its status in the headers.
            self.grpc_code = classify::grpc_status(headers);
            let served = self.grpc_code != Some(GRPC_UNIMPLEMENTED);
            method.resolve(&self.shared.rpc, served);
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

    /// The response body failed mid-stream with an error of type `type_name()`.
    pub(crate) fn body_failed(&mut self, type_name: fn() -> &'static str) {
        self.failure = Failure::Body(type_name);
    }
}

impl ClientGuard {
    /// Records the call's duration (and, for gRPC, resolves its method) through the
    /// OpenTelemetry SDK.
    fn record(&self, now: u64) {
        let shared = &*self.shared;
        let failure = match self.phase {
            Phase::Waiting => Failure::Cancelled,
            Phase::Polling => Failure::Panicked,
            Phase::Responded => self.failure,
        };
        let seconds = seconds_between(self.sent, now);
        match &self.call {
            Call::Http { method, server } => {
                let status = self.status.map(|s| s.as_u16());
                // For a client, 4xx is an error too (semconv).
                let failure = match (failure, status) {
                    (Failure::None, Some(s)) if s >= 400 => Failure::Status,
                    (f, _) => f,
                };
                shared
                    .http
                    .record(*server, *method, status, failure, seconds);
            }
            Call::Grpc { method } => {
                let index = method.index(&shared.rpc);
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

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let now = now_nanos();
        // The counts first: atomics only, so the gauges stay exact whatever happens next.
        self.leave_queue();
        let shared = &*self.shared;
        let stats = shared.tier.stats();
        match self.gate {
            Gate::Outside | Gate::Queued => {}
            Gate::Admitted => stats.finish(self.admitted, now),
            Gate::Holding => {
                stats.finish(self.admitted, now);
                // The permit goes back when the response ends, not when its head arrives.
                if let Some(admission) = &shared.admission {
                    admission.release();
                }
            }
        }
        crate::guard::record_contained(|| self.record(now));
    }
}
