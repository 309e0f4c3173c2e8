//! The response future: admission (when the tier is limited), then the inner call. One
//! future serves both sides; [`Respond`] says what each side's service returns.

use crate::admission::Queued;
use crate::body::GuardedBody;
use crate::classify::Classify;
use crate::guard::{Guard, Protocol};
use crate::shared::Local;
use http::{Request, Response};
use pin_project::pin_project;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::RejectionReason;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower_service::Service;

/// What a side's service returns for a response body `B` and an inner error `E`, which the
/// shared future builds.
pub(crate) trait Respond<B, E>: Classify {
    /// The side's public response body, a newtype over [`GuardedBody`].
    type Body;
    /// The side's error: the inner service's own (server), or a
    /// [`ClientError`](crate::ClientError) (client).
    type Error;

    /// Wraps the shared body in the side's public one.
    fn body(body: GuardedBody<B, Self>) -> Self::Body;

    /// The side's error for an error of the inner service.
    fn service_error(error: E) -> Self::Error;

    /// The outcome of a request refused for `reason`, whose guard has counted the refusal
    /// already: a response (which the guard then sees as any other) or an error.
    fn refuse(guard: &mut Guard<Self>, reason: RejectionReason)
        -> Result<Response<B>, Self::Error>;
}

#[pin_project(project = StateProj, project_replace = StateProjOwn)]
enum State<S, B>
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
    /// Refused by the tier's admission: answered (or failed) when polled.
    Rejected {
        reason: RejectionReason,
    },
    Done,
}

/// The response future of a tier service, for side `C`. Each side's public
/// `ResponseFuture` is a newtype over it.
#[pin_project]
pub(crate) struct GuardedFuture<S, B, C>
where
    S: Service<Request<B>>,
    C: Classify,
{
    #[pin]
    state: State<S, B>,
    /// The request's guard: there from `call` until the future completes, and never for
    /// an unmeasured one.
    guard: Option<Guard<C>>,
}

impl<S, B, C> fmt::Debug for GuardedFuture<S, B, C>
where
    S: Service<Request<B>>,
    C: Classify,
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

impl<S, B, C> GuardedFuture<S, B, C>
where
    S: Service<Request<B>>,
    C: Classify,
{
    #[inline]
    fn new(state: State<S, B>, guard: Guard<C>) -> Self {
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

    /// `call` of a tier service whose clones share `local`: unless the layer passes
    /// requests through, tracks `request` with a guard (`target` finds an HTTP request's
    /// target index) and takes it through the layer's admission to `inner`: at once when the
    /// tier has no limit or a permit is free, once admitted when it has to wait in the
    /// queue, never when the queue is full.
    #[inline]
    pub(crate) fn call<T>(
        local: &Local<T>,
        inner: &mut S,
        request: Request<B>,
        target: impl FnOnce(&Local<T>, &Request<B>) -> u32,
    ) -> Self
    where
        S: Clone,
    {
        if local.passes_through {
            return Self::unmeasured(inner.call(request));
        }
        let started = now_nanos();
        let shared = &*local.shared;
        let protocol = Protocol::of(&request, shared, |request| target(local, request));
        let head_only = request.method() == http::Method::HEAD;
        let mut guard = Guard::new(local.shared.clone(), started, protocol, head_only);
        // Each branch builds the future in its final place: the inner future can be large
        // (axum's is a few hundred bytes), and a detour through a local costs a copy.
        let Some(admission) = &shared.admission else {
            guard.admit(started, false);
            return Self::new(
                State::Running {
                    future: inner.call(request),
                },
                guard,
            );
        };
        if admission.try_admit() {
            shared.tier.record_queue_time(0.0);
            guard.admit(started, true);
            return Self::new(
                State::Running {
                    future: inner.call(request),
                },
                guard,
            );
        }
        if !admission.try_enqueue() {
            let reason = RejectionReason::Overloaded;
            return Self::new(State::Rejected { reason }, guard);
        }
        guard.enqueue();
        // The inner service is ready (poll_ready said so); keep that one for this request
        // and leave a fresh clone behind, as tower advises.
        let clone = inner.clone();
        let ready = std::mem::replace(inner, clone);
        let queued = Box::new(Queued::new(admission, ready, request));
        Self::new(State::Queued { queued }, guard)
    }
}

impl<S, B, ResBody, C> Future for GuardedFuture<S, B, C>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
    C: Respond<ResBody, S::Error>,
{
    type Output = Result<Response<C::Body>, C::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let StateProj::Unmeasured { future } = this.state.as_mut().project() {
            return future.poll(cx).map(|result| match result {
                Ok(response) => Ok(response.map(|body| C::body(GuardedBody::new(body, None)))),
                Err(error) => Err(C::service_error(error)),
            });
        }
        loop {
            let Some(guard) = this.guard.as_mut() else {
                // The guard leaves as the future completes: this is a poll after
                // completion. The Future contract allows anything there but undefined
                // behaviour: stay pending rather than panic in the application, and say so
                // in debug builds.
                debug_assert!(false, "ResponseFuture polled after completion");
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
                    let result = result.map_err(|error| {
                        guard.service_failed(std::any::type_name::<S::Error>);
                        C::service_error(error)
                    });
                    return Poll::Ready(Self::complete(this.guard, result));
                }
                StateProj::Queued { queued } => {
                    if let Err(reason) = ready!(admit(queued, guard, cx)) {
                        this.state.set(State::Rejected { reason });
                        continue;
                    }
                    // Admitted: the request leaves the queue to be called. (The state was
                    // `Queued` a line above, so the pattern always matches.)
                    if let StateProjOwn::Queued { queued } =
                        this.state.as_mut().project_replace(State::Done)
                    {
                        this.state.set(State::Running {
                            future: (*queued).call(),
                        });
                    }
                }
                StateProj::Rejected { reason } => {
                    let reason = *reason;
                    this.state.set(State::Done);
                    let result = refuse::<ResBody, S::Error, C>(guard, reason);
                    return Poll::Ready(Self::complete(this.guard, result));
                }
                StateProj::Done | StateProj::Unmeasured { .. } => {
                    // Cannot happen: the guard leaves as the state becomes `Done`, and an
                    // unmeasured future has none (and returned above). Stay pending, as
                    // after completion.
                    debug_assert!(false, "a finished or unmeasured ResponseFuture has a guard");
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S, B, ResBody, C> GuardedFuture<S, B, C>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
    C: Respond<ResBody, S::Error>,
{
    /// Ends a measured future with `result`: a response takes the guard into its body,
    /// which records when it ends (a response with no body to stream, HEAD or empty, ends
    /// here); an error records now.
    #[inline]
    fn complete(
        guard: &mut Option<Guard<C>>,
        result: Result<Response<ResBody>, C::Error>,
    ) -> Result<Response<C::Body>, C::Error> {
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                *guard = None;
                return Err(error);
            }
        };
        let mut guard = guard.take();
        if let Some(g) = guard.as_mut() {
            g.responded(response.status(), response.headers());
            if g.head_only() || http_body::Body::is_end_stream(response.body()) {
                guard = None;
            }
        }
        Ok(response.map(|body| C::body(GuardedBody::new(body, guard))))
    }
}

/// Waits for the queued request's admission, and admits its guard. Out of line: only
/// requests that queue come here, and keeping it out of `poll` keeps that small.
#[inline(never)]
fn admit<S, B, C: Classify>(
    queued: &mut Queued<S, B>,
    guard: &mut Guard<C>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), RejectionReason>> {
    ready!(queued.poll_admit(cx))?;
    let now = now_nanos();
    guard
        .shared()
        .tier
        .record_queue_time(seconds_between(guard.started_at(), now));
    guard.admit(now, true);
    Poll::Ready(Ok(()))
}

/// A refused request: the tier counts the refusal, and the side answers or fails it
/// ([`Respond::refuse`]).
#[cold]
#[inline(never)]
fn refuse<B, E, C: Respond<B, E>>(
    guard: &mut Guard<C>,
    reason: RejectionReason,
) -> Result<Response<B>, C::Error> {
    guard.reject(reason);
    C::refuse(guard, reason)
}
