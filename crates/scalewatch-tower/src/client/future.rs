//! The client's response future: admission (when the tier is limited), then the call.

use super::body::ResponseBody;
use super::guard::ClientGuard;
use super::ClientError;
use crate::future::Queued;
use http::{Request, Response};
use pin_project::pin_project;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::RejectionReason;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_service::Service;

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
    /// Refused by the tier's admission: fails with [`Refused`](super::Refused) when polled.
    Rejected {
        reason: RejectionReason,
    },
    Done,
}

/// The response future of [`ClientTier`](super::ClientTier).
#[pin_project]
pub struct ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    #[pin]
    state: State<S, B>,
    guard: Option<ClientGuard>,
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
    pub(crate) fn new(state: State<S, B>, guard: ClientGuard) -> Self {
        Self {
            state,
            guard: Some(guard),
        }
    }

    /// The future of a call the layer does not measure.
    #[inline]
    pub(crate) fn unmeasured(future: S::Future) -> Self {
        Self {
            state: State::Unmeasured { future },
            guard: None,
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, ClientError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StateProj::Unmeasured { future } = this.state.as_mut().project() {
            return future.poll(cx).map(|result| match result {
                Ok(response) => Ok(response.map(|body| ResponseBody::new(body, None))),
                Err(error) => Err(ClientError::Service(error)),
            });
        }
        loop {
            let Some(guard) = this.guard.as_mut() else {
                // Polled after completion: stay pending rather than panic.
                return Poll::Pending;
            };
            match this.state.as_mut().project() {
                StateProj::Queued { queued } => match admit(queued, guard, cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(future)) => this.state.set(State::Running { future }),
                    Poll::Ready(Err(reason)) => this.state.set(State::Rejected { reason }),
                },
                StateProj::Running { future } => {
                    guard.enter_poll();
                    let result = future.poll(cx);
                    guard.leave_poll();
                    let result = match result {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    };
                    this.state.set(State::Done);
                    return Poll::Ready(match result {
                        Ok(response) => Ok(finish(this.guard, response)),
                        Err(error) => {
                            if let Some(mut g) = this.guard.take() {
                                g.service_failed(std::any::type_name::<S::Error>);
                            }
                            Err(ClientError::Service(error))
                        }
                    });
                }
                StateProj::Rejected { reason } => {
                    let reason = *reason;
                    this.state.set(State::Done);
                    return reject(this.guard, reason).map(Err);
                }
                StateProj::Done | StateProj::Unmeasured { .. } => return Poll::Pending,
            }
        }
    }
}

/// Waits for the queued call's admission, then calls the service with it. Out of line:
/// only calls that queue come here, and keeping it out of `poll` keeps that small.
#[inline(never)]
fn admit<S, B>(
    queued: &mut Queued<S, B>,
    guard: &mut ClientGuard,
    cx: &mut Context<'_>,
) -> Poll<Result<S::Future, RejectionReason>>
where
    S: Service<Request<B>>,
{
    let permit = match ready!(queued.poll_admit(cx)) {
        Ok(()) => true,
        Err(RejectionReason::Timeout) => return Poll::Ready(Err(RejectionReason::Timeout)),
        // The gate is never closed; should it be, the call goes through unadmitted rather
        // than fail.
        Err(RejectionReason::Overloaded) => false,
    };
    let now = now_nanos();
    guard
        .shared()
        .tier
        .record_queue_time(seconds_between(guard.sent_at(), now));
    guard.admit(now, permit);
    match queued.call() {
        Some(future) => Poll::Ready(Ok(future)),
        // Called already: cannot happen, as admission completes only once.
        None => Poll::Pending,
    }
}

/// Fails a refused call with [`Refused`](super::Refused), and records it: the rejection
/// in `scalewatch.tier.rejections`, and the call's duration, when its guard drops.
#[cold]
#[inline(never)]
fn reject<E>(guard: &mut Option<ClientGuard>, reason: RejectionReason) -> Poll<ClientError<E>> {
    match guard.take() {
        Some(mut g) => {
            g.reject(reason);
            let shared = g.shared();
            shared.tier.record_rejection(reason);
            Poll::Ready(ClientError::Refused(shared.refused(reason)))
        }
        // Cannot happen: only a guarded call is refused, once.
        None => Poll::Pending,
    }
}

/// Hands the guard to the response body, which records when it ends. A response with no
/// body to stream (HEAD, or an empty body) ends here.
#[inline]
fn finish<T: http_body::Body>(
    guard: &mut Option<ClientGuard>,
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
