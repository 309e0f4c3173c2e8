//! The response future: admission (when the tier is limited), then the inner call.

use crate::body::ResponseBody;
use crate::classify::{GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE};
use crate::guard::RequestGuard;
use crate::layer::Admission;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project::pin_project;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::RejectionReason;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::sync::{AcquireError, OwnedSemaphorePermit};
use tokio::time::Sleep;
use tower_service::Service;

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request waiting for admission, with the (ready) service that will serve it. Boxed in
/// the future's state, so only requests that actually queue pay for it.
pub(crate) struct Queued<S, B> {
    acquire: Acquire,
    deadline: Option<Pin<Box<Sleep>>>,
    service: S,
    request: Option<Request<B>>,
}

impl<S, B> Queued<S, B> {
    pub(crate) fn new(admission: &Admission, service: S, request: Request<B>) -> Self {
        Self {
            acquire: Box::pin(admission.semaphore.clone().acquire_owned()),
            deadline: admission
                .queue_timeout
                .map(|d| Box::pin(tokio::time::sleep(d))),
            service,
            request: Some(request),
        }
    }

    /// Waits for a permit: `Timeout` once the queue timeout passes, `Overloaded` if the
    /// gate was closed. The permit taken is the caller's to give back, with
    /// [`Admission::release`] (the guard does when it drops).
    pub(crate) fn poll_admit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RejectionReason>> {
        if let Some(deadline) = self.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(RejectionReason::Timeout));
            }
        }
        self.acquire.as_mut().poll(cx).map(|r| {
            r.map(OwnedSemaphorePermit::forget)
                .map_err(|_| RejectionReason::Overloaded)
        })
    }

    /// Calls the ready service with the waiting request, once admitted.
    pub(crate) fn call(&mut self) -> Option<S::Future>
    where
        S: Service<Request<B>>,
    {
        let request = self.request.take()?;
        Some(self.service.call(request))
    }
}

#[pin_project(project = StateProj)]
pub(crate) enum State<S, B>
where
    S: Service<Request<B>>,
{
    Running {
        #[pin]
        future: S::Future,
    },
    /// A layer that is not enabled: the inner future, polled as is, with no guard.
    Unmeasured {
        #[pin]
        future: S::Future,
    },
    Queued {
        queued: Box<Queued<S, B>>,
    },
    Rejected {
        reason: RejectionReason,
    },
    Done,
}

/// The response future of [`ServerTier`](crate::ServerTier).
#[pin_project]
pub struct ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[pin]
    state: State<S, B>,
    guard: Option<RequestGuard>,
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Running { .. } => "running",
            State::Unmeasured { .. } => "unmeasured",
            State::Queued { .. } => "queued",
            State::Rejected { .. } => "rejected",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("guard", &self.guard)
            .finish()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[inline]
    pub(crate) fn new(state: State<S, B>, guard: RequestGuard) -> Self {
        Self {
            state,
            guard: Some(guard),
        }
    }

    /// The future of a request the layer does not measure.
    #[inline]
    pub(crate) fn unmeasured(future: S::Future) -> Self {
        Self {
            state: State::Unmeasured { future },
            guard: None,
        }
    }
}

/// The answer to a refused request: `503` for HTTP; for gRPC a trailers-only response with
/// `RESOURCE_EXHAUSTED` (overloaded) or `UNAVAILABLE` (timed out in the queue).
fn rejection<T: Default>(grpc: bool, reason: RejectionReason) -> Response<T> {
    let mut response = Response::new(T::default());
    if grpc {
        let code = match reason {
            RejectionReason::Overloaded => GRPC_RESOURCE_EXHAUSTED,
            RejectionReason::Timeout => GRPC_UNAVAILABLE,
        };
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(match reason {
                RejectionReason::Overloaded => "server tier overloaded",
                RejectionReason::Timeout => "timed out waiting for admission",
            }),
        );
    } else {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body + Default,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StateProj::Unmeasured { future } = this.state.as_mut().project() {
            return future
                .poll(cx)
                .map_ok(|response| response.map(|body| ResponseBody::new(body, None)));
        }
        loop {
            let Some(guard) = this.guard.as_mut() else {
                // Polled after completion: the contract of Future allows anything but
                // undefined behaviour; stay pending rather than panic in the application.
                return Poll::Pending;
            };
            match this.state.as_mut().project() {
                StateProj::Running { future } => {
                    guard.enter_poll();
                    let result = future.poll(cx);
                    guard.leave_poll();
                    let Poll::Ready(result) = result else {
                        return Poll::Pending;
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(match result {
                        Ok(response) => Ok(finish(this.guard, response)),
                        Err(error) => {
                            if let Some(mut g) = this.guard.take() {
                                g.service_failed(std::any::type_name::<S::Error>);
                            }
                            Err(error)
                        }
                    });
                }
                StateProj::Queued { queued } => match admit(queued, guard, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(future)) => this.state.set(State::Running { future }),
                    Poll::Ready(Err(reason)) => this.state.set(State::Rejected { reason }),
                },
                StateProj::Rejected { reason } => {
                    let reason = *reason;
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(reject(this.guard, reason)));
                }
                StateProj::Done | StateProj::Unmeasured { .. } => return Poll::Pending,
            }
        }
    }
}

/// Waits for the queued request's admission, then calls the service with it. Out of line:
/// only requests that queue come here, and keeping it out of `poll` keeps that small.
#[inline(never)]
fn admit<S, B>(
    queued: &mut Queued<S, B>,
    guard: &mut RequestGuard,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Future, RejectionReason>>
where
    S: Service<Request<B>>,
{
    if let Err(reason) = ready!(queued.poll_admit(cx)) {
        return Poll::Ready(Err(reason));
    }
    let now = now_nanos();
    guard
        .shared()
        .tier
        .record_queue_time(seconds_between(guard.received_at(), now));
    guard.admit(now, true);
    match queued.call() {
        Some(future) => Poll::Ready(Ok(future)),
        // Called already: cannot happen, as admission completes only once.
        None => Poll::Pending,
    }
}

/// Answers a refused request (see [`rejection`]) and records it.
#[cold]
#[inline(never)]
fn reject<T: http_body::Body + Default>(
    guard: &mut Option<RequestGuard>,
    reason: RejectionReason,
) -> Response<ResponseBody<T>> {
    let grpc = guard.as_ref().is_some_and(RequestGuard::is_grpc);
    if let Some(g) = guard.as_mut() {
        g.reject();
        g.shared().tier.record_rejection(reason);
    }
    finish(guard, rejection(grpc, reason))
}

/// Hands the guard to the response body, which records when it ends. A response with no
/// body to stream (HEAD, or an empty body) ends here.
#[inline]
fn finish<T: http_body::Body>(
    guard: &mut Option<RequestGuard>,
    response: Response<T>,
) -> Response<ResponseBody<T>> {
    let mut guard = guard.take();
    if let Some(g) = guard.as_mut() {
        g.responded(response.status(), response.headers());
        if g.head_only() || http_body::Body::is_end_stream(response.body()) {
            guard = None;
        }
    }
    response.map(|body| ResponseBody::new(body, guard))
}
