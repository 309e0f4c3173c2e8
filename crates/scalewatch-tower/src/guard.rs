//! The RAII guard that carries a request from `call` through its future into its body,
//! and records everything when it drops, whatever way the request ends.

use crate::classify::{self, GRPC_UNIMPLEMENTED};
use crate::layer::Shared;
use crate::signals::{Failure, RpcSignals};
use http::{HeaderMap, StatusCode};
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::Started;
use std::sync::Arc;

/// The gRPC method of a call, resolved once the response says whether the server knows it.
#[derive(Debug)]
pub(crate) enum GrpcMethod {
    /// An index into the layer's method table (possibly `_OTHER`).
    Known(u32),
    /// Well-formed but not seen before; resolved at the response headers, so that methods
    /// the server does not implement never take a place in the table.
    #[allow(
        clippy::box_collection,
        reason = "a thin pointer keeps the guard, copied with every future and body, 8 bytes \
                  smaller; only a method's first calls pay the extra allocation"
    )]
    Unseen(Box<String>),
}

impl GrpcMethod {
    /// The method's index once the response says whether the server serves it: `served`
    /// gives an unseen method a place in `rpc`'s table, otherwise it folds into `_OTHER`.
    pub(crate) fn resolve(&mut self, rpc: &RpcSignals, served: bool) {
        if let GrpcMethod::Unseen(path) = self {
            let index = if served {
                rpc.resolve(path)
            } else {
                rpc.fold()
            };
            *self = GrpcMethod::Known(index);
        }
    }

    /// The method's index at the end of the call (`_OTHER` if it was never resolved).
    pub(crate) fn index(&self, rpc: &RpcSignals) -> u32 {
        match self {
            GrpcMethod::Known(i) => *i,
            GrpcMethod::Unseen(_) => rpc.fold(),
        }
    }
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

/// Where a request or call stands with respect to its tier's admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Not admitted (yet, or ever: refused).
    Outside,
    /// Waiting for admission, counted in `scalewatch.tier.queued`.
    Queued,
    /// Admitted, with no permit to give back (the tier has no limit).
    Admitted,
    /// Admitted, holding one permit of the admission semaphore until the guard drops.
    Holding,
}

impl Gate {
    /// The gate of work admitted now, holding a permit or not.
    pub(crate) fn admitted(permit: bool) -> Self {
        if permit {
            Gate::Holding
        } else {
            Gate::Admitted
        }
    }
}

/// Kept small (64 bytes): it moves with the response future and then into the body, and
/// every byte is copied on each move.
pub(crate) struct RequestGuard {
    shared: Arc<Shared>,
    received: u64,
    /// When the work started; meaningful once `gate` says admitted.
    admitted: Started,
    failure: Failure,
    protocol: Protocol,
    status: Option<StatusCode>,
    grpc_code: Option<u8>,
    phase: Phase,
    gate: Gate,
    head_only: bool,
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
    /// A request received at `received`; `head_only` for a `HEAD` request, whose response
    /// ends with its head.
    pub(crate) fn new(
        shared: Arc<Shared>,
        received: u64,
        protocol: Protocol,
        head_only: bool,
    ) -> Self {
        if let Protocol::Http { method, .. } = protocol {
            shared.http.active(method, 1);
        }
        Self {
            shared,
            received,
            admitted: Started { at: received },
            failure: Failure::None,
            protocol,
            status: None,
            grpc_code: None,
            phase: Phase::Waiting,
            gate: Gate::Outside,
            head_only,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn is_grpc(&self) -> bool {
        matches!(self.protocol, Protocol::Grpc { .. })
    }

    /// Whether the response ends with its head (a `HEAD` request).
    pub(crate) fn head_only(&self) -> bool {
        self.head_only
    }

    /// The request waits for admission from now on, in the place it took in the queue
    /// ([`Admission::try_enqueue`](crate::layer::Admission::try_enqueue)), which the guard
    /// gives back when the request leaves the queue.
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

    /// The request's work starts at `now`; `permit` when it took one of the admission
    /// semaphore's permits, which the guard gives back when it drops.
    pub(crate) fn admit(&mut self, now: u64, permit: bool) {
        self.leave_queue();
        self.admitted = self.shared.tier.stats().start(now);
        self.gate = Gate::admitted(permit);
    }

    /// The request was refused; it leaves the queue without being admitted.
    pub(crate) fn reject(&mut self) {
        self.leave_queue();
        self.gate = Gate::Outside;
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

    /// The inner service failed with an error of type `type_name()`.
    pub(crate) fn service_failed(&mut self, type_name: fn() -> &'static str) {
        self.phase = Phase::Responded;
        self.failure = Failure::Service(type_name);
    }

    /// The response head arrived.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.phase = Phase::Responded;
        self.status = Some(status);
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
            // Only a method the server really serves takes a place in the table.
            let served = grpc_answer && self.grpc_code != Some(GRPC_UNIMPLEMENTED);
            method.resolve(&self.shared.rpc, served);
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

    /// The response body failed mid-stream with an error of type `type_name()`.
    pub(crate) fn body_failed(&mut self, type_name: fn() -> &'static str) {
        self.failure = Failure::Body(type_name);
    }
}

impl RequestGuard {
    /// Records the request's duration (and, for gRPC, resolves its method) through the
    /// OpenTelemetry SDK.
    fn record(&self, now: u64) {
        let shared = &*self.shared;
        let failure = match self.phase {
            Phase::Waiting => Failure::Cancelled,
            Phase::Polling => Failure::Panicked,
            Phase::Responded => self.failure,
        };
        let seconds = seconds_between(self.received, now);
        match &self.protocol {
            Protocol::Http { method, route } => {
                let status = self.status.map(|s| s.as_u16());
                let failure = match (failure, status) {
                    (Failure::None, Some(s)) if s >= 500 => Failure::Status,
                    (f, _) => f,
                };
                shared
                    .http
                    .record(*route, *method, status, failure, seconds);
            }
            Protocol::Grpc { method } => {
                let index = method.index(&shared.rpc);
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

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = now_nanos();
        // The counts first: atomics only, nothing that can fail, so the gauges stay exact
        // whatever happens next.
        self.leave_queue();
        let shared = &*self.shared;
        let stats = shared.tier.stats();
        match self.gate {
            Gate::Outside | Gate::Queued => {}
            Gate::Admitted => stats.finish(self.admitted, now),
            Gate::Holding => {
                stats.finish(self.admitted, now);
                // The permit goes back when the response ends, not when its head is sent.
                if let Some(admission) = &shared.admission {
                    admission.release();
                }
            }
        }
        if let Protocol::Http { method, .. } = self.protocol {
            shared.http.active(method, -1);
        }
        record_contained(|| self.record(now));
    }
}

/// Runs `record` (a guard's SDK recording) from a guard's `drop`. While the thread unwinds
/// from a panic, a second panic escaping a destructor aborts the process, so one raised
/// by the recording is caught there and the measurement given up; otherwise it runs as is
/// (the check is one relaxed load of the global panic count).
#[inline]
pub(crate) fn record_contained(record: impl FnOnce()) {
    if std::thread::panicking() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(record));
    } else {
        record();
    }
}
