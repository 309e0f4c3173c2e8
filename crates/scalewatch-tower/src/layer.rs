//! The public types of a tier layer, defined once for both sides: [`tier_layer!`] declares
//! a side's layer, its builder, the service it produces and that service's response future
//! and body. They are newtypes over (or handles to) the shared, crate-private machinery,
//! declared by a macro because a public type cannot name the crate-private side it is built
//! for (tower's own `opaque_future!` wraps its futures the same way). Each side's module
//! invokes it with what is its own, and adds its own options and items.

/// Declares a side's public tier layer types from what differs between the sides:
/// - `side`: the [`Classify`](crate::classify::Classify) side, which also implements
///   [`Respond`](crate::future::Respond) with `Body = ResponseBody<B>` and `Error = $error`;
/// - `layer`: the layer's name and docs;
/// - `builder`: the builder's name and docs, its default tier name and its own extra fields
///   with their defaults (their setters are the side's to write); `refused`, how a refused
///   request ends (for the docs); `target cap`, the option capping HTTP targets and its
///   default; `http`, how the builder creates the side's HTTP instruments;
/// - `service`: the service's name and docs, the first target it caches (see
///   [`Local`](crate::shared::Local)) and the function finding a request's target;
/// - `response body`, `response future`: their docs; `error`, the service's error; and the
///   bound a response body must meet.
macro_rules! tier_layer {
    (
        side: $side:ty,
        $(#[$layer_doc:meta])*
        layer: $layer:ident,
        $(#[$builder_doc:meta])*
        builder: $builder:ident {
            tier_name: $tier_name:literal,
            $($field:ident: $field_ty:ty = $field_default:expr,)*
        },
        refused: $refused:literal,
        $(#[$cap_doc:meta])*
        target cap: $cap:ident = $cap_default:expr,
        http: |$builder_arg:ident, $meter_arg:ident| $http:expr,
        $(#[$service_doc:meta])*
        service: $service:ident { first: $first:ty, target: $target:path },
        $(#[$body_doc:meta])*
        response body: ResponseBody,
        $(#[$future_doc:meta])*
        response future: ResponseFuture,
        error: $error:ty,
        where ResBody: $($bound:tt)+
    ) => {
        $(#[$layer_doc])*
        #[derive(Clone)]
        pub struct $layer {
            shared: std::sync::Arc<$crate::shared::Shared>,
        }

        impl std::fmt::Debug for $layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($layer))
                    .field("tier", &self.shared.tier)
                    .finish_non_exhaustive()
            }
        }

        impl $layer {
            /// Starts configuring a layer.
            pub fn builder() -> $builder {
                $builder::default()
            }

            /// The tier this layer measures (for reports and capacity models).
            pub fn tier(&self) -> &scalewatch_core::Tier {
                &self.shared.tier
            }
        }

        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service {
                    inner,
                    local: std::sync::Arc::new($crate::shared::Local::new(&self.shared)),
                }
            }
        }

        $(#[$builder_doc])*
        #[derive(Debug, Clone)]
        #[must_use]
        pub struct $builder {
            options: $crate::shared::Options,
            $($field: $field_ty,)*
        }

        impl Default for $builder {
            fn default() -> Self {
                Self {
                    options: $crate::shared::Options::new($tier_name, $cap_default),
                    $($field: $field_default,)*
                }
            }
        }

        impl $builder {
            #[doc = concat!(
                "The tier's name (`scalewatch.tier.name`); defaults to `", $tier_name, "`."
            )]
            pub fn tier_name(mut self, name: &'static str) -> Self {
                self.options.tier_name = name;
                self
            }

            /// Admit at most `limit` requests at once; the rest wait in the layer's queue,
            /// and that wait is measured as `scalewatch.tier.queue.time`. The queue holds
            /// at most [`max_queued`](Self::max_queued) requests (by default
            /// [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × `limit`); a
            #[doc = concat!("request that finds it full is ", $refused, ", and counted in")]
            /// `scalewatch.tier.rejections` with reason `overloaded`.
            pub fn concurrency_limit(mut self, limit: usize) -> Self {
                self.options.limit = Some(limit);
                self
            }

            /// Refuse requests (reason `overloaded`) once `max` are already waiting;
            /// default [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × the
            /// `concurrency_limit`. `usize::MAX` lifts the bound: memory then grows with
            /// every request that waits.
            pub fn max_queued(mut self, max: usize) -> Self {
                self.options.max_queued = Some(max);
                self
            }

            /// Refuse requests (reason `overloaded`) instead of queueing them:
            /// `max_queued(0)`.
            pub fn load_shed(self) -> Self {
                self.max_queued(0)
            }

            /// Refuse requests (reason `timeout`) that waited longer than `timeout` for
            /// admission. Needs the tokio runtime's time driver, as any tokio timer does.
            pub fn queue_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.options.queue_timeout = Some(timeout);
                self
            }

            $(#[$cap_doc])*
            pub fn $cap(mut self, cap: usize) -> Self {
                self.options.target_cap = cap;
                self
            }

            /// Cap on distinct `rpc.method` values (default
            /// [`DEFAULT_METHOD_CAP`](crate::DEFAULT_METHOD_CAP)).
            pub fn method_cap(mut self, cap: usize) -> Self {
                self.options.method_cap = cap;
                self
            }

            /// Whether to measure at all (default `true`). Built with `false`, the layer
            /// exports nothing and, unless it has a concurrency limit to enforce, hands each
            /// request straight to the inner service: pass `telemetry.is_enabled()` so that
            /// `OTEL_SDK_DISABLED=true` costs next to nothing.
            pub fn enabled(mut self, enabled: bool) -> Self {
                self.options.enabled = enabled;
                self
            }

            /// Validates the configuration and creates the layer's instruments on `meter`.
            ///
            /// Build it once and clone the handle: each build registers observers on
            /// `meter` that live as long as its meter provider.
            pub fn build(
                self,
                meter: &opentelemetry::metrics::Meter,
            ) -> Result<$layer, $crate::BuildError> {
                let shared = self
                    .options
                    .build::<$side>(meter, stringify!($cap), |meter| self.http_signals(meter))?;
                Ok($layer {
                    shared: std::sync::Arc::new(shared),
                })
            }

            fn http_signals(
                &self,
                meter: &opentelemetry::metrics::Meter,
            ) -> $crate::signals::HttpSignals {
                let ($builder_arg, $meter_arg) = (self, meter);
                $http
            }
        }

        $(#[$service_doc])*
        #[derive(Clone)]
        pub struct $service<S> {
            inner: S,
            local: std::sync::Arc<$crate::shared::Local<$first>>,
        }

        impl<S: std::fmt::Debug> std::fmt::Debug for $service<S> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("inner", &self.inner)
                    .field("tier", &self.local.shared.tier)
                    .finish_non_exhaustive()
            }
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $service<S>
        where
            S: tower_service::Service<
                    http::Request<ReqBody>,
                    Response = http::Response<ResBody>,
                > + Clone,
            ResBody: $($bound)+,
        {
            type Response = http::Response<ResponseBody<ResBody>>;
            type Error = $error;
            type Future = ResponseFuture<S, ReqBody>;

            #[inline]
            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx).map_err(
                    <$side as $crate::future::Respond<ResBody, S::Error>>::service_error,
                )
            }

            fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
                ResponseFuture($crate::future::GuardedFuture::call(
                    &self.local,
                    &mut self.inner,
                    req,
                    $target,
                ))
            }
        }

        $(#[$body_doc])*
        #[pin_project::pin_project]
        pub struct ResponseBody<B>(#[pin] $crate::body::GuardedBody<B, $side>);

        impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<B: http_body::Body> http_body::Body for ResponseBody<B> {
            type Data = B::Data;
            type Error = B::Error;

            #[inline]
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
                self.project().0.poll_frame(cx)
            }

            fn is_end_stream(&self) -> bool {
                self.0.is_end_stream()
            }

            fn size_hint(&self) -> http_body::SizeHint {
                self.0.size_hint()
            }
        }

        $(#[$future_doc])*
        #[pin_project::pin_project]
        pub struct ResponseFuture<S, B>(#[pin] $crate::future::GuardedFuture<S, B, $side>)
        where
            S: tower_service::Service<http::Request<B>>;

        impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
        where
            S: tower_service::Service<http::Request<B>>,
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<S, B, ResBody> std::future::Future for ResponseFuture<S, B>
        where
            S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
            ResBody: $($bound)+,
        {
            type Output = Result<http::Response<ResponseBody<ResBody>>, $error>;

            #[inline]
            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                self.project().0.poll(cx)
            }
        }
    };
}
pub(crate) use tier_layer;
