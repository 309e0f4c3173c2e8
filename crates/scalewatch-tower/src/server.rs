//! [`ServerTierLayer`] and the [`ServerTier`] service it wraps around a server.

use crate::body::GuardedBody;
use crate::classify::Server;
use crate::future::{response_types, GuardedFuture, Respond};
use crate::grpc::Code;
use crate::guard::Guard;
use crate::shared::{BuildError, Local, Options, Shared};
use crate::signals::{HttpSignals, NO_TARGET};
use http::{HeaderValue, Request, Response, StatusCode};
use opentelemetry::metrics::Meter;
use scalewatch_core::{RejectionReason, Tier};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_layer::Layer;
use tower_service::Service;

/// Default cap on distinct `http.route` values per layer.
pub const DEFAULT_ROUTE_CAP: usize = 256;

response_types! {
    /// The response body of [`ServerTier`]: the inner body, untouched, plus the request's
    /// measurement, recorded when the body ends or is dropped.
    body of Server;
    /// The response future of [`ServerTier`].
    future output Result<Response<ResponseBody<ResBody>>, S::Error>,
        where ResBody: http_body::Body + Default
}

/// A server answers a refused request itself (see [`rejection`]), and otherwise returns
/// what the inner service does.
impl<B: http_body::Body + Default, E> Respond<B, E> for Server {
    type Body = ResponseBody<B>;
    type Error = E;

    #[inline]
    fn body(body: GuardedBody<B, Self>) -> ResponseBody<B> {
        ResponseBody(body)
    }

    #[inline]
    fn service_error(error: E) -> E {
        error
    }

    fn refuse(guard: &mut Guard<Self>, reason: RejectionReason) -> Result<Response<B>, E> {
        Ok(rejection(guard.is_grpc(), reason))
    }
}

/// The answer to a refused request: `503` for HTTP; for gRPC a trailers-only response with
/// `RESOURCE_EXHAUSTED` (overloaded) or `UNAVAILABLE` (timed out in the queue).
fn rejection<T: Default>(grpc: bool, reason: RejectionReason) -> Response<T> {
    let mut response = Response::new(T::default());
    if grpc {
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            "grpc-status",
            HeaderValue::from(u16::from(Code::of_refusal(reason).value())),
        );
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
/// [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × the limit. Requests that
/// find it full, and with [`queue_timeout`](ServerTierLayerBuilder::queue_timeout) those
/// that waited too long, are answered with `503 Service Unavailable` (gRPC:
/// `RESOURCE_EXHAUSTED` or `UNAVAILABLE`) and counted in `scalewatch.tier.rejections`.
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
            local: Arc::new(Local::new(&self.shared)),
        }
    }
}

/// Configures a [`ServerTierLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerTierLayerBuilder {
    options: Options,
    scheme: &'static str,
    route_cap: usize,
}

impl Default for ServerTierLayerBuilder {
    fn default() -> Self {
        Self {
            options: Options::new("server"),
            scheme: "http",
            route_cap: DEFAULT_ROUTE_CAP,
        }
    }
}

impl ServerTierLayerBuilder {
    /// The tier's name (`scalewatch.tier.name`); defaults to `server`.
    pub fn tier_name(mut self, name: &'static str) -> Self {
        self.options.tier_name = name;
        self
    }

    /// Admit at most `limit` requests at once; the rest wait in the layer's queue, which
    /// holds at most [`max_queued`](Self::max_queued) requests (by default
    /// [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × `limit`). Requests
    /// that find the queue full are answered with `503` (gRPC: `RESOURCE_EXHAUSTED`) and
    /// counted in `scalewatch.tier.rejections` with reason `overloaded`.
    pub fn concurrency_limit(mut self, limit: usize) -> Self {
        self.options.limit = Some(limit);
        self
    }

    /// Refuse requests (reason `overloaded`) once `max` are already waiting; default
    /// [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × the
    /// `concurrency_limit`. `usize::MAX` lifts the bound: memory then grows with every
    /// request that waits.
    pub fn max_queued(mut self, max: usize) -> Self {
        self.options.max_queued = Some(max);
        self
    }

    /// Refuse requests (reason `overloaded`) instead of queueing them: `max_queued(0)`.
    pub fn load_shed(self) -> Self {
        self.max_queued(0)
    }

    /// Refuse requests (reason `timeout`) that waited longer than `timeout` for admission.
    /// Needs the tokio runtime's time driver, as any tokio timer does.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.options.queue_timeout = Some(timeout);
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

    /// Cap on distinct `rpc.method` values (default
    /// [`DEFAULT_METHOD_CAP`](crate::DEFAULT_METHOD_CAP)).
    pub fn method_cap(mut self, cap: usize) -> Self {
        self.options.method_cap = cap;
        self
    }

    /// Whether to measure at all (default `true`). Built with `false`, the layer exports
    /// nothing and, unless it has a concurrency limit to enforce, hands each request
    /// straight to the inner service: pass `telemetry.is_enabled()` so that
    /// `OTEL_SDK_DISABLED=true` costs next to nothing.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.options.enabled = enabled;
        self
    }

    /// Validates the configuration and creates the layer's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<ServerTierLayer, BuildError> {
        let shared =
            self.options
                .build::<Server>(meter, ("route_cap", self.route_cap), |meter| {
                    HttpSignals::server(meter, self.scheme, self.route_cap)
                })?;
        Ok(ServerTierLayer {
            shared: Arc::new(shared),
        })
    }
}

/// The service [`ServerTierLayer`] produces.
#[derive(Clone)]
pub struct ServerTier<S> {
    inner: S,
    /// The route this service instance serves, once seen: axum applies a layer to each
    /// route separately, so after the first request the template is found here.
    local: Arc<Local<FirstRoute>>,
}

/// The first route a [`ServerTier`] served: its template and index.
type FirstRoute = (Box<str>, u32);

impl<S: fmt::Debug> fmt::Debug for ServerTier<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTier")
            .field("inner", &self.inner)
            .field("tier", &self.local.shared.tier)
            .finish_non_exhaustive()
    }
}

/// The route index of `request`: from axum's `MatchedPath` (with the `axum` feature) or a
/// [`RouteTemplate`](crate::RouteTemplate); [`NO_TARGET`] when no route matched.
fn route_of<B>(local: &Local<FirstRoute>, request: &Request<B>) -> u32 {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return route_index(local, path.as_str());
    }
    match request.extensions().get::<crate::RouteTemplate>() {
        Some(route) => route_index(local, route.0),
        None => NO_TARGET,
    }
}

fn route_index(local: &Local<FirstRoute>, template: &str) -> u32 {
    if let Some((t, i)) = local.first.get() {
        if **t == *template {
            return *i;
        }
    }
    let index = local.shared.http.target(template);
    let _ = local.first.set((template.into(), index));
    index
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
        ResponseFuture(GuardedFuture::call(
            &self.local,
            &mut self.inner,
            req,
            route_of,
        ))
    }
}
