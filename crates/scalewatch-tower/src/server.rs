//! [`ServerTierLayer`] and the [`ServerTier`] service it wraps around a server.

use crate::body::GuardedBody;
use crate::classify::Server;
use crate::future::Respond;
use crate::grpc::Code;
use crate::guard::Guard;
use crate::layer::tier_layer;
use crate::shared::Local;
use crate::signals::{HttpSignals, NO_TARGET};
use http::{HeaderValue, Request, Response, StatusCode};
use scalewatch_core::RejectionReason;

/// Default cap on distinct `http.route` values per layer.
pub const DEFAULT_ROUTE_CAP: usize = 256;

tier_layer! {
    side: Server,
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
    layer: ServerTierLayer,
    /// Configures a [`ServerTierLayer`].
    builder: ServerTierLayerBuilder {
        tier_name: "server",
        scheme: &'static str = "http",
    },
    refused: "answered with `503` (gRPC: `RESOURCE_EXHAUSTED`)",
    /// Cap on distinct `http.route` values (default [`DEFAULT_ROUTE_CAP`]).
    target cap: route_cap = DEFAULT_ROUTE_CAP,
    http: |builder, meter| HttpSignals::server(meter, builder.scheme, builder.options.target_cap),
    /// The service [`ServerTierLayer`] produces.
    service: ServerTier { first: FirstRoute, target: route_of },
    /// The response body of [`ServerTier`]: the inner body, untouched, plus the request's
    /// measurement, recorded when the body ends or is dropped.
    response body: ResponseBody,
    /// The response future of [`ServerTier`].
    response future: ResponseFuture,
    error: S::Error,
    where ResBody: http_body::Body + Default
}

impl ServerTierLayerBuilder {
    /// The `url.scheme` the server is reached by (`http` by default; `https` behind TLS).
    pub fn scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }
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

/// The first route a [`ServerTier`] served, its template and index: axum applies a layer
/// to each route separately, so after the first request the template is found there.
type FirstRoute = (Box<str>, u32);

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

#[inline]
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
