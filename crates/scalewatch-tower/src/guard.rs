//! The RAII guard that carries a request from `call` through its future into its body, and
//! records everything when it drops, whatever way the request ends. One guard serves both
//! sides; what they classify differently comes from its [`Classify`] parameter.

use crate::classify::{self, Classify, Failure};
use crate::grpc::Code;
use crate::shared::Shared;
use crate::signals::RpcSignals;
use http::{HeaderMap, Request, StatusCode};
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::stats::Started;
use scalewatch_core::RejectionReason;
use std::marker::PhantomData;
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
    fn resolve(&mut self, rpc: &RpcSignals, served: bool) {
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
    fn index(&self, rpc: &RpcSignals) -> u32 {
        match self {
            GrpcMethod::Known(i) => *i,
            GrpcMethod::Unseen(_) => rpc.fold(),
        }
    }
}

/// What a request is, as far as its series go.
#[derive(Debug)]
pub(crate) enum Protocol {
    /// An HTTP request: its method's index, and its target's (route or server address;
    /// [`NO_TARGET`](crate::signals::NO_TARGET) when it has none).
    Http { method: u8, target: u32 },
    /// A gRPC call (`content-type: application/grpc`).
    Grpc { method: GrpcMethod },
}

impl Protocol {
    /// Classifies `request` for the layer sharing `shared`; `target` finds an HTTP
    /// request's target index (the side's own lookup, with its per-service cache).
    #[inline]
    pub(crate) fn of<B>(
        request: &Request<B>,
        shared: &Shared,
        target: impl FnOnce(&Request<B>) -> u32,
    ) -> Self {
        if classify::is_grpc(request.headers()) {
            let method = match classify::grpc_method(request.uri().path()) {
                None => GrpcMethod::Known(shared.rpc.fold()),
                Some(m) => match shared.rpc.find(m) {
                    Some(i) => GrpcMethod::Known(i),
                    None => GrpcMethod::Unseen(Box::new(m.to_owned())),
                },
            };
            return Protocol::Grpc { method };
        }
        let method = classify::method_index(request.method());
        if method == classify::METHOD_OTHER {
            shared.http.method_overflow.record();
        }
        Protocol::Http {
            method,
            target: target(request),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No response yet: dropping now means the request was cancelled.
    Waiting,
    /// Inside the inner future's `poll`: dropping now means it panicked.
    Polling,
    /// The response head is out (or the request failed); the body may still be streaming.
    Responded,
}

/// Where a request stands with respect to its tier's admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Not admitted (yet, or ever: refused).
    Outside,
    /// Waiting for admission, counted in `scalewatch.tier.queued`.
    Queued,
    /// Admitted, with no permit to give back (the tier has no limit).
    Admitted,
    /// Admitted, holding one permit of the admission semaphore until the guard drops.
    Holding,
}

/// Kept small (64 bytes): it moves with the response future and then into the body, and
/// every byte is copied on each move.
pub(crate) struct Guard<C: Classify> {
    shared: Arc<Shared>,
    /// When the request was received (server) or sent (client).
    started: u64,
    /// When the work started; meaningful once `gate` says admitted.
    admitted: Started,
    failure: Failure,
    protocol: Protocol,
    status: Option<StatusCode>,
    grpc_code: Option<Code>,
    phase: Phase,
    gate: Gate,
    head_only: bool,
    side: PhantomData<C>,
}

impl<C: Classify> std::fmt::Debug for Guard<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("protocol", &self.protocol)
            .field("phase", &self.phase)
            .field("status", &self.status)
            .field("grpc_code", &self.grpc_code)
            .finish_non_exhaustive()
    }
}

impl<C: Classify> Guard<C> {
    /// A request received (or sent) at `started`; `head_only` for a `HEAD` request, whose
    /// response ends with its head.
    pub(crate) fn new(
        shared: Arc<Shared>,
        started: u64,
        protocol: Protocol,
        head_only: bool,
    ) -> Self {
        if let Protocol::Http { method, .. } = protocol {
            shared.http.active(method, 1);
        }
        Self {
            shared,
            started,
            admitted: Started { at: started },
            failure: Failure::None,
            protocol,
            status: None,
            grpc_code: None,
            phase: Phase::Waiting,
            gate: Gate::Outside,
            head_only,
            side: PhantomData,
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// When the request was received (server) or sent (client).
    pub(crate) fn started_at(&self) -> u64 {
        self.started
    }

    pub(crate) fn is_grpc(&self) -> bool {
        matches!(self.protocol, Protocol::Grpc { .. })
    }

    /// Whether the response ends with its head (a `HEAD` request).
    pub(crate) fn head_only(&self) -> bool {
        self.head_only
    }

    /// The request waits for admission from now on, in the place it took in the queue
    /// ([`Admission::try_enqueue`](crate::admission::Admission::try_enqueue)), which the
    /// guard gives back when the request leaves the queue.
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
        self.gate = if permit {
            Gate::Holding
        } else {
            Gate::Admitted
        };
    }

    /// The request was refused for `reason`: it leaves the queue without being admitted,
    /// and the tier counts the rejection.
    pub(crate) fn reject(&mut self, reason: RejectionReason) {
        self.leave_queue();
        self.gate = Gate::Outside;
        self.shared.tier.record_rejection(reason);
    }

    /// A refused request fails with an error of type `type_name()` instead of being
    /// answered: recorded as that error, a gRPC call with the status a server answers a
    /// refusal with.
    pub(crate) fn refused_with_error(
        &mut self,
        type_name: fn() -> &'static str,
        reason: RejectionReason,
    ) {
        self.service_failed(type_name);
        if self.is_grpc() {
            self.grpc_code = Some(Code::of_refusal(reason));
        }
    }

    pub(crate) fn enter_poll(&mut self) {
        self.phase = Phase::Polling;
    }

    pub(crate) fn leave_poll(&mut self) {
        self.phase = Phase::Waiting;
    }

    /// The inner service failed with an error of type `type_name()` (on a client: connect,
    /// I/O, ...).
    pub(crate) fn service_failed(&mut self, type_name: fn() -> &'static str) {
        self.phase = Phase::Responded;
        self.failure = Failure::Service(type_name);
    }

    /// The response head arrived.
    pub(crate) fn responded(&mut self, status: StatusCode, headers: &HeaderMap) {
        self.phase = Phase::Responded;
        self.status = Some(status);
        if let Protocol::Grpc { method } = &mut self.protocol {
            let (code, served) = C::grpc_head(status, headers);
            self.grpc_code = code;
            // Only a method the server really serves takes a place in the table.
            method.resolve(&self.shared.rpc, served);
        }
    }

    /// The response's trailers arrived (the gRPC status of a streamed response).
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if self.is_grpc() {
            if let Some(code) = Code::from_headers(trailers) {
                self.grpc_code = Some(code);
            }
        }
    }

    /// The response body failed mid-stream with an error of type `type_name()`.
    pub(crate) fn body_failed(&mut self, type_name: fn() -> &'static str) {
        self.failure = Failure::Body(type_name);
    }

    /// Records the request's duration (and, for gRPC, resolves its method) through the
    /// OpenTelemetry SDK.
    fn record(&self, now: u64) {
        let shared = &*self.shared;
        let failure = match self.phase {
            Phase::Waiting => Failure::Cancelled,
            Phase::Polling => Failure::Panicked,
            Phase::Responded => self.failure,
        };
        let seconds = seconds_between(self.started, now);
        match &self.protocol {
            Protocol::Http { method, target } => {
                let status = self.status.map(|s| s.as_u16());
                let failure = match (failure, status) {
                    (Failure::None, Some(s)) if C::http_status_is_error(s) => Failure::Status,
                    (f, _) => f,
                };
                shared
                    .http
                    .record(*target, *method, status, failure, seconds);
            }
            Protocol::Grpc { method } => {
                let index = method.index(&shared.rpc);
                let code = self
                    .grpc_code
                    .unwrap_or_else(|| C::grpc_status_missing(failure));
                let failure = match failure {
                    Failure::None if self.grpc_code.is_none() => Failure::Cancelled,
                    Failure::None if C::grpc_status_is_error(code) => Failure::Status,
                    f => f,
                };
                shared.rpc.record(index, code, failure, seconds);
            }
        }
    }
}

impl<C: Classify> Drop for Guard<C> {
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
                // The permit goes back when the response ends, not when its head is out.
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
fn record_contained(record: impl FnOnce()) {
    if std::thread::panicking() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(record));
    } else {
        record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_stays_within_64_bytes() {
        // It is copied with every move of the response future and into the body.
        assert!(std::mem::size_of::<Guard<classify::Server>>() <= 64);
        assert!(std::mem::size_of::<Option<Guard<classify::Client>>>() <= 64);
    }
}
