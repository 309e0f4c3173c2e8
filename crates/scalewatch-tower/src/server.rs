//! [`ServerTierLayer`] and the [`ServerTier`] service it wraps around a server.

use crate::body::ResponseBody;
use crate::classify;
use crate::future::{Queued, ResponseFuture, State};
use crate::guard::{GrpcMethod, Protocol, RequestGuard};
use crate::signals::{HttpSignals, RpcSignals, NO_ROUTE};
use http::{Request, Response};
use opentelemetry::metrics::Meter;
use scalewatch_core::catalog;
use scalewatch_core::clock::now_nanos;
use scalewatch_core::{RejectionReason, Tier, TierError, TierKind};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tower_layer::Layer;
use tower_service::Service;

/// Default cap on distinct `http.route` values per layer.
pub const DEFAULT_ROUTE_CAP: usize = 256;
/// Default cap on distinct `rpc.method` values per layer.
pub const DEFAULT_METHOD_CAP: usize = 256;

/// A [`ServerTierLayer`] could not be built from its configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The tier itself was invalid.
    #[error(transparent)]
    Tier(#[from] TierError),
    /// Queue settings were given without a limit to queue for.
    #[error("`{0}` needs a `concurrency_limit`: without a limit nothing ever queues")]
    QueueWithoutLimit(&'static str),
    /// A zero queue timeout would reject every request that has to wait.
    #[error("queue timeout is zero: use a positive duration, or `load_shed()` to refuse instead of queueing")]
    ZeroQueueTimeout,
    /// The limit is larger than the admission semaphore can hold.
    #[error("concurrency limit {0} is too large: the maximum is {max}", max = Semaphore::MAX_PERMITS)]
    LimitTooLarge(usize),
    /// A cardinality cap of zero.
    #[error("`{0}` is zero: every value would fold into _OTHER; use at least 1")]
    ZeroCap(&'static str),
}

/// How many requests may wait for admission per permit when no `max_queued` is given: a
/// layer with a `concurrency_limit` of 64 queues at most 256 and refuses the rest. The same
/// default as custom tiers' ([`TierBuilder::DEFAULT_QUEUE_PER_PERMIT`](scalewatch_core::TierBuilder::DEFAULT_QUEUE_PER_PERMIT)).
pub const DEFAULT_QUEUE_PER_PERMIT: usize = scalewatch_core::TierBuilder::DEFAULT_QUEUE_PER_PERMIT;

/// Admission control: a semaphore of `limit` permits in front of the inner service, and a
/// bounded queue in front of the semaphore.
pub(crate) struct Admission {
    pub(crate) semaphore: Arc<Semaphore>,
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

    /// Gives back a permit taken by [`Admission::try_admit`] or a queued acquire.
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

/// What every clone of a layer and its services share.
pub(crate) struct Shared {
    /// Built with [`ServerTierLayerBuilder::enabled`] `false`.
    pub(crate) enabled: bool,
    pub(crate) tier: Tier,
    pub(crate) http: HttpSignals,
    pub(crate) rpc: RpcSignals,
    pub(crate) admission: Option<Admission>,
}

/// A [`tower_layer::Layer`] that measures a server tier: HTTP and gRPC semconv latency,
/// active requests, and the tier's concurrency, limit, utilization, time in queue and
/// rejections. One layer serves axum and tonic alike.
///
/// With axum, add it with `Router::layer` so that routes are known (`http.route` is the
/// router's template, and is omitted for requests no route matched). With tonic, add it with
/// `Server::builder().layer(..)`.
///
/// With a [`concurrency_limit`](ServerTierLayerBuilder::concurrency_limit), the layer is the
/// admission point: requests beyond the limit wait in its queue, and that wait is measured
/// as `scalewatch.tier.queue.time`. The queue is bounded: at most
/// [`max_queued`](ServerTierLayerBuilder::max_queued) requests wait, by default
/// [`DEFAULT_QUEUE_PER_PERMIT`] × the limit. Requests that find it full, and with
/// [`queue_timeout`](ServerTierLayerBuilder::queue_timeout) those that waited too long, are
/// answered with `503 Service Unavailable` (gRPC: `RESOURCE_EXHAUSTED` or `UNAVAILABLE`)
/// and counted in `scalewatch.tier.rejections`.
#[derive(Clone)]
pub struct ServerTierLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for ServerTierLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTierLayer")
            .field("tier", &self.shared.tier)
            .finish_non_exhaustive()
    }
}

impl ServerTierLayer {
    fn from_shared(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Starts configuring a layer.
    pub fn builder() -> ServerTierLayerBuilder {
        ServerTierLayerBuilder::default()
    }

    /// The tier this layer measures (for reports and capacity models).
    pub fn tier(&self) -> &Tier {
        &self.shared.tier
    }
}

impl<S> Layer<S> for ServerTierLayer {
    type Service = ServerTier<S>;

    fn layer(&self, inner: S) -> ServerTier<S> {
        ServerTier {
            inner,
            local: Arc::new(Local {
                passes_through: !self.shared.enabled && self.shared.admission.is_none(),
                shared: self.shared.clone(),
                route: OnceLock::new(),
            }),
        }
    }
}

/// Configures a [`ServerTierLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerTierLayerBuilder {
    tier_name: &'static str,
    limit: Option<usize>,
    max_queued: Option<usize>,
    queue_timeout: Option<Duration>,
    scheme: &'static str,
    route_cap: usize,
    method_cap: usize,
    enabled: bool,
}

impl Default for ServerTierLayerBuilder {
    fn default() -> Self {
        Self {
            enabled: true,
            tier_name: "server",
            limit: None,
            max_queued: None,
            queue_timeout: None,
            scheme: "http",
            route_cap: DEFAULT_ROUTE_CAP,
            method_cap: DEFAULT_METHOD_CAP,
        }
    }
}

impl ServerTierLayerBuilder {
    /// The tier's name (`scalewatch.tier.name`); defaults to `server`.
    pub fn tier_name(mut self, name: &'static str) -> Self {
        self.tier_name = name;
        self
    }

    /// Admit at most `limit` requests at once; the rest wait in the layer's queue, which
    /// holds at most [`max_queued`](Self::max_queued) requests (by default
    /// [`DEFAULT_QUEUE_PER_PERMIT`] × `limit`). Requests that find the queue full are
    /// answered with `503` (gRPC: `RESOURCE_EXHAUSTED`) and counted in
    /// `scalewatch.tier.rejections` with reason `overloaded`.
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Refuse requests (reason `overloaded`) once `max` are already waiting; default
    /// [`DEFAULT_QUEUE_PER_PERMIT`] × the `concurrency_limit`. `usize::MAX` lifts the bound:
    /// memory then grows with every request that waits.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.max_queued = Some(max);
        self
    }

    /// Refuse requests (reason `overloaded`) instead of queueing them: `max_queued(0)`.
    pub fn load_shed(self) -> Self {
        self.max_queued(0)
    }

    /// Refuse requests (reason `timeout`) that waited longer than `timeout` for admission.
    /// Needs the tokio runtime's time driver, as any tokio timer does.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = Some(timeout);
        self
    }

    /// The `url.scheme` the server is reached by (`http` by default; `https` behind TLS).
    pub fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// Cap on distinct `http.route` values (default [`DEFAULT_ROUTE_CAP`]).
    pub fn route_cap(mut self, cap: usize) -> Self {
        self.route_cap = cap;
        self
    }

    /// Cap on distinct `rpc.method` values (default [`DEFAULT_METHOD_CAP`]).
    pub fn method_cap(mut self, cap: usize) -> Self {
        self.method_cap = cap;
        self
    }

    /// Whether to measure at all (default `true`). Built with `false`, the layer exports
    /// nothing and, unless it has a concurrency limit to enforce, hands each request
    /// straight to the inner service: pass `telemetry.is_enabled()` so that
    /// `OTEL_SDK_DISABLED=true` costs next to nothing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    fn shared(&self, meter: &Meter) -> Result<Shared, BuildError> {
        if self.route_cap == 0 {
            return Err(BuildError::ZeroCap("route_cap"));
        }
        if self.method_cap == 0 {
            return Err(BuildError::ZeroCap("method_cap"));
        }
        if self.queue_timeout == Some(Duration::ZERO) {
            return Err(BuildError::ZeroQueueTimeout);
        }
        let admission = match self.limit {
            Some(limit) if limit > Semaphore::MAX_PERMITS => {
                return Err(BuildError::LimitTooLarge(limit))
            }
            Some(limit) => Some(Admission::new(limit, self.max_queued, self.queue_timeout)),
            None if self.max_queued.is_some() => {
                return Err(BuildError::QueueWithoutLimit("max_queued / load_shed"))
            }
            None if self.queue_timeout.is_some() => {
                return Err(BuildError::QueueWithoutLimit("queue_timeout"))
            }
            None => None,
        };
        let meter = &scalewatch_core::meter_when(self.enabled, meter);
        let tier = Tier::builder(self.tier_name, TierKind::Server)
            .maybe_limit(self.limit.map(|l| l as u64))
            .enabled(self.enabled)
            .build(meter)?;
        Ok(Shared {
            enabled: self.enabled,
            tier,
            http: HttpSignals::new(meter, self.scheme, self.route_cap),
            rpc: RpcSignals::new(meter, &catalog::RPC_SERVER_CALL_DURATION, self.method_cap),
            admission,
        })
    }

    /// Validates the configuration and creates the layer's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<ServerTierLayer, BuildError> {
        self.shared(meter).map(ServerTierLayer::from_shared)
    }
}

/// The service [`ServerTierLayer`] produces.
#[derive(Clone)]
pub struct ServerTier<S> {
    inner: S,
    /// One `Arc` for all the service's state: routers such as axum's clone the service for
    /// every request, and each `Arc` costs two atomic operations per clone.
    local: Arc<Local>,
}

/// What the clones of one [`ServerTier`] share.
struct Local {
    /// Not enabled and no limit to enforce: requests go straight to the inner service.
    passes_through: bool,
    shared: Arc<Shared>,
    /// The route this service instance serves, once seen. axum applies a layer to each
    /// route separately, so after the first request the template is found here without
    /// touching the shared table.
    route: OnceLock<(Box<str>, u32)>,
}

impl<S: fmt::Debug> fmt::Debug for ServerTier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTier")
            .field("inner", &self.inner)
            .field("tier", &self.local.shared.tier)
            .finish_non_exhaustive()
    }
}

impl<S> ServerTier<S> {
    fn route_index(&self, template: &str) -> u32 {
        if let Some((t, i)) = self.local.route.get() {
            if **t == *template {
                return *i;
            }
        }
        let index = self.local.shared.http.route(template);
        let _ = self.local.route.set((template.into(), index));
        index
    }

    fn protocol<B>(&self, req: &Request<B>) -> Protocol {
        let shared = &self.local.shared;
        if classify::is_grpc(req.headers()) {
            let method = match classify::grpc_method(req.uri().path()) {
                None => GrpcMethod::Known(shared.rpc.fold()),
                Some(m) => match shared.rpc.find(m) {
                    Some(i) => GrpcMethod::Known(i),
                    None => GrpcMethod::Unseen(Box::new(m.to_owned())),
                },
            };
            return Protocol::Grpc { method };
        }
        let method = classify::method_index(req.method());
        if method == classify::METHOD_OTHER {
            shared.http.method_overflow.record();
        }
        Protocol::Http {
            method,
            route: self.route_of(req),
        }
    }

    fn route_of<B>(&self, req: &Request<B>) -> u32 {
        #[cfg(feature = "axum")]
        if let Some(path) = req.extensions().get::<axum::extract::MatchedPath>() {
            return self.route_index(path.as_str());
        }
        match req.extensions().get::<crate::RouteTemplate>() {
            Some(route) => self.route_index(route.0),
            None => NO_ROUTE,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerTier<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body + Default,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.local.passes_through {
            return ResponseFuture::unmeasured(self.inner.call(req));
        }
        let received = now_nanos();
        let protocol = self.protocol(&req);
        let head_only = req.method() == http::Method::HEAD;
        let shared = &self.local.shared;
        let mut guard = RequestGuard::new(shared.clone(), received, protocol, head_only);
        // Each branch builds the future in its final place: the inner future can be large
        // (axum's is a few hundred bytes), and a detour through a local costs a copy.
        let Some(admission) = &shared.admission else {
            guard.admit(received, false);
            return ResponseFuture::new(
                State::Running {
                    future: self.inner.call(req),
                },
                guard,
            );
        };
        if admission.try_admit() {
            shared.tier.record_queue_time(0.0);
            guard.admit(received, true);
            return ResponseFuture::new(
                State::Running {
                    future: self.inner.call(req),
                },
                guard,
            );
        }
        if !admission.try_enqueue() {
            let reason = RejectionReason::Overloaded;
            return ResponseFuture::new(State::Rejected { reason }, guard);
        }
        guard.enqueue();
        // The inner service is ready (poll_ready said so); keep that one for this request
        // and leave a fresh clone behind, as tower advises.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let queued = Box::new(Queued::new(admission, ready, req));
        ResponseFuture::new(State::Queued { queued }, guard)
    }
}
