//! Admission control, shared by the server and client layers: a semaphore of `limit`
//! permits in front of the inner service, and a bounded queue in front of the semaphore.

use http::Request;
use scalewatch_core::RejectionReason;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tower_service::Service;

/// How many requests may wait for admission per permit when no `max_queued` is given: a
/// layer with a `concurrency_limit` of 64 queues at most 256 and refuses the rest. The same
/// default as custom tiers' ([`TierBuilder::DEFAULT_QUEUE_PER_PERMIT`](scalewatch_core::TierBuilder::DEFAULT_QUEUE_PER_PERMIT)).
pub const DEFAULT_QUEUE_PER_PERMIT: usize = scalewatch_core::TierBuilder::DEFAULT_QUEUE_PER_PERMIT;

/// A layer's admission: `limit` permits, and a queue of at most `max_queued` requests
/// waiting for one.
pub(crate) struct Admission {
    semaphore: Arc<Semaphore>,
    /// The permits the gate was built with (for refusals' messages).
    pub(crate) limit: usize,
    /// Requests waiting for a permit now. Kept apart from the tier's per-thread `queued`
    /// cells, which are summed lazily: the bound needs one exact count, and only requests
    /// that have to wait touch it.
    waiting: AtomicUsize,
    pub(crate) max_queued: usize,
    pub(crate) queue_timeout: Option<Duration>,
}

impl Admission {
    /// A gate of `limit` permits (checked against [`Semaphore::MAX_PERMITS`] by the caller)
    /// with a queue of `max_queued`, or [`DEFAULT_QUEUE_PER_PERMIT`] × `limit` when `None`.
    pub(crate) fn new(
        limit: usize,
        max_queued: Option<usize>,
        queue_timeout: Option<Duration>,
    ) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: AtomicUsize::new(0),
            max_queued: max_queued
                .unwrap_or_else(|| limit.saturating_mul(DEFAULT_QUEUE_PER_PERMIT)),
            queue_timeout,
        }
    }

    /// Takes a permit if one is free now. The guard of the admitted request holds it as a
    /// flag (no `Arc` clone per request) and gives it back with [`Admission::release`].
    #[inline]
    pub(crate) fn try_admit(&self) -> bool {
        self.semaphore
            .try_acquire()
            .map(tokio::sync::SemaphorePermit::forget)
            .is_ok()
    }

    /// Gives back a permit taken by [`Admission::try_admit`] or by a [`Queued`] request.
    #[inline]
    pub(crate) fn release(&self) {
        self.semaphore.add_permits(1);
    }

    /// Takes a place in the queue if one is left; the guard gives it back with
    /// [`Admission::leave_queue`] when the request leaves the queue, however it does.
    pub(crate) fn try_enqueue(&self) -> bool {
        self.waiting
            .fetch_update(Relaxed, Relaxed, |n| (n < self.max_queued).then(|| n + 1))
            .is_ok()
    }

    /// Gives back a place taken by [`Admission::try_enqueue`].
    #[inline]
    pub(crate) fn leave_queue(&self) {
        self.waiting.fetch_sub(1, Relaxed);
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A request waiting for admission, with the (ready) service that will serve it. Boxed in
/// the response future's state, so only requests that actually queue pay for it.
pub(crate) struct Queued<S, B> {
    acquire: Acquire,
    deadline: Option<Pin<Box<Sleep>>>,
    service: S,
    request: Request<B>,
}

impl<S, B> Queued<S, B> {
    /// `request`, to be served by `service` once `admission` lets it in.
    pub(crate) fn new(admission: &Admission, service: S, request: Request<B>) -> Self {
        Self {
            acquire: Box::pin(admission.semaphore.clone().acquire_owned()),
            deadline: admission
                .queue_timeout
                .map(|d| Box::pin(tokio::time::sleep(d))),
            service,
            request,
        }
    }

    /// Waits for a permit: `Timeout` once the queue timeout passes. The permit taken is the
    /// caller's to give back, with [`Admission::release`] (the guard does when it drops).
    pub(crate) fn poll_admit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RejectionReason>> {
        if let Some(deadline) = self.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(RejectionReason::Timeout));
            }
        }
        self.acquire
            .as_mut()
            .poll(cx)
            .map(|acquired| match acquired {
                Ok(permit) => {
                    permit.forget();
                    Ok(())
                }
                Err(_closed) => {
                    // Cannot happen: only a closed semaphore fails an acquire, and an
                    // `Admission` never closes its own. Should one be closed, refuse the
                    // request as overloaded rather than let it past the limit.
                    debug_assert!(false, "an admission semaphore was closed");
                    Err(RejectionReason::Overloaded)
                }
            })
    }

    /// Calls the ready service with the waiting request, once admitted.
    pub(crate) fn call(mut self) -> S::Future
    where
        S: Service<Request<B>>,
    {
        self.service.call(self.request)
    }
}
