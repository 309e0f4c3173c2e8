//! The response body wrapper: it carries the request's guard until the last frame, so a
//! streaming response counts as in flight until it ends and its gRPC trailers are read.

use crate::classify::Classify;
use crate::guard::Guard;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The inner body, untouched, plus the request's measurement, recorded when the body ends
/// or is dropped. Each side's public `ResponseBody` is a newtype over it.
#[pin_project]
pub(crate) struct GuardedBody<B, C: Classify> {
    #[pin]
    inner: B,
    guard: Option<Guard<C>>,
}

impl<B, C: Classify> GuardedBody<B, C> {
    /// `inner`, measured by `guard` until it ends (`None`: ended already, or unmeasured).
    #[inline]
    pub(crate) fn new(inner: B, guard: Option<Guard<C>>) -> Self {
        Self { inner, guard }
    }
}

impl<B: fmt::Debug, C: Classify> fmt::Debug for GuardedBody<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .field("in_flight", &self.guard.is_some())
            .finish()
    }
}

impl<B: Body, C: Classify> Body for GuardedBody<B, C> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let Some(guard) = this.guard.as_mut() else {
            // Recorded already (the body ended, or had nothing to stream).
            return polled;
        };
        let ended = match &polled {
            Poll::Pending => return polled,
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    guard.trailers(trailers);
                }
                // Servers may stop polling once the body says it has ended.
                false
            }
            Poll::Ready(Some(Err(_))) => {
                guard.body_failed(std::any::type_name::<B::Error>);
                true
            }
        };
        if ended || this.inner.is_end_stream() {
            *this.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
