//! The client side: [`ClientTierLayer`] measures calls to a dependency made through any
//! tower service over `http::Request` (a hyper client, reqwest through tower-reqwest's
//! `HttpClientLayer`, a tonic `Channel`) as a tier of kind `client`.
//!
//! - HTTP calls get `http.client.request.duration` with `http.request.method`,
//!   `server.address` and `server.port` (from the request URI's authority, capped per
//!   layer; past the cap `_OTHER`, counted in `scalewatch.sdk.overflow`),
//!   `http.response.status_code` and `error.type` (4xx and 5xx statuses, the inner
//!   service's error type, `cancelled`, `panic`).
//! - gRPC calls (`content-type: application/grpc`) get `rpc.client.call.duration` with the
//!   same attributes as the server side; the status comes from the response headers or
//!   trailers, and every status but `OK` is an `error.type`.
//! - A call is in flight from `call` until its response body ends or is dropped, so
//!   streamed responses count until their trailers; durations run over the same span.
//! - With a [`concurrency_limit`](ClientTierLayerBuilder::concurrency_limit), calls beyond
//!   the limit wait in the layer's queue, measured as `scalewatch.tier.queue.time` and
//!   `scalewatch.tier.queued`. The queue is bounded
//!   ([`max_queued`](ClientTierLayerBuilder::max_queued), by default
//!   [`DEFAULT_QUEUE_PER_PERMIT`](crate::DEFAULT_QUEUE_PER_PERMIT) × the limit): a call that
//!   finds it full, or that waited past its
//!   [`queue_timeout`](ClientTierLayerBuilder::queue_timeout), fails with [`Refused`]
//!   without reaching the inner service, and is counted in `scalewatch.tier.rejections`.
//! - Errors are a [`ClientError`]: the inner service's own error, untouched
//!   ([`ClientError::Service`], whose message and source it shows as its own), or the
//!   tier's [`Refused`].

use crate::body::GuardedBody;
use crate::classify::Client;
use crate::future::Respond;
use crate::guard::Guard;
use crate::layer::tier_layer;
use crate::shared::{Local, Shared};
use crate::signals::{HttpSignals, NO_TARGET};
use http::{Request, Response};
use scalewatch_core::RejectionReason;
use std::fmt;
use std::time::Duration;

/// Default cap on distinct `server.address`/`server.port` pairs per client layer.
pub const DEFAULT_SERVER_CAP: usize = 64;

/// The error of a [`ClientTier`]: the inner service's own error, or the tier's refusal.
///
/// It is a [`std::error::Error`] whenever the inner service's error is one, so `?` turns
/// it into a `Box<dyn Error>` and a tonic client accepts the service. An inner service
/// whose error is already a `Box<dyn Error + Send + Sync>` (a tower `Timeout` under this
/// layer, say) gets it back with [`ClientError::into_box_error`], for instance through
/// `tower::ServiceBuilder::map_err(ClientError::into_box_error)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError<E> {
    /// The inner service failed; its error, untouched. Its message and source are this
    /// error's.
    Service(E),
    /// The tier's admission refused the call; it never reached the inner service.
    Refused(Refused),
}

impl<E> ClientError<E> {
    /// The refusal, when the tier refused the call.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            ClientError::Refused(refused) => Some(refused),
            ClientError::Service(_) => None,
        }
    }

    /// The inner service's error, when the call reached it and it failed.
    pub fn service_error(&self) -> Option<&E> {
        match self {
            ClientError::Service(error) => Some(error),
            ClientError::Refused(_) => None,
        }
    }

    /// The inner service's error as it was, or the refusal, boxed: for stacks whose
    /// errors are `Box<dyn Error + Send + Sync>`, as tower's middleware's are.
    pub fn into_box_error(self) -> Box<dyn std::error::Error + Send + Sync>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self {
            ClientError::Service(error) => error.into(),
            ClientError::Refused(refused) => Box::new(refused),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Service(error) => error.fmt(f),
            ClientError::Refused(refused) => refused.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ClientError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Service(error) => error.source(),
            ClientError::Refused(refused) => refused.source(),
        }
    }
}

/// A call the client tier's admission refused: every permit was taken and the queue was
/// full ([`RejectionReason::Overloaded`]), or the call waited longer than the
/// `queue_timeout` ([`RejectionReason::Timeout`]). The call never reached the inner
/// service. Its message names the settings to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    tier: &'static str,
    reason: RejectionReason,
    limit: usize,
    max_queued: usize,
    queue_timeout: Option<Duration>,
}

impl Refused {
    /// The refusing tier's name (`scalewatch.tier.name`).
    pub fn tier(&self) -> &'static str {
        self.tier
    }

    /// Why the call was refused.
    pub fn reason(&self) -> RejectionReason {
        self.reason
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tier, limit) = (self.tier, self.limit);
        match (self.reason, self.queue_timeout) {
            (RejectionReason::Timeout, Some(timeout)) => write!(
                f,
                "client tier `{tier}` refused the call: it waited longer than its \
                 `queue_timeout` ({timeout:?}) for one of its {limit} permits; raise \
                 `queue_timeout` or `concurrency_limit` on its ClientTierLayerBuilder, or \
                 send fewer calls"
            ),
            _ if self.max_queued == 0 => write!(
                f,
                "client tier `{tier}` refused the call: all {limit} permits were taken and it \
                 queues none (`load_shed` or `max_queued(0)`); raise `concurrency_limit` or \
                 `max_queued` on its ClientTierLayerBuilder, or send fewer calls"
            ),
            _ => write!(
                f,
                "client tier `{tier}` refused the call: all {limit} permits were taken and \
                 {max} calls were already waiting; raise `concurrency_limit` or `max_queued` \
                 on its ClientTierLayerBuilder, or send fewer calls",
                max = self.max_queued
            ),
        }
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

tier_layer! {
    side: Client,
    /// A [`tower_layer::Layer`] that measures outbound calls as a client tier: HTTP and gRPC
    /// semconv client durations, and the tier's concurrency, limit, utilization and time in
    /// queue (`scalewatch.tier.kind` = `client`).
    ///
    /// Wrap an HTTP client (any `Service<http::Request<B>>`, such as hyper-util's legacy
    /// `Client`) with `layer.layer(client)`; reqwest with
    /// `ServiceBuilder::new().layer(layer).layer(tower_reqwest::HttpClientLayer).service(client)`;
    /// a tonic `Channel` with `tower::ServiceBuilder::new().layer(layer).service(channel)`,
    /// building the generated client on the result.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_tower::ClientTierLayer;
    /// use tower::{service_fn, Layer, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let meter = opentelemetry::global::meter_provider().meter("my-service");
    /// let layer = ClientTierLayer::builder()
    ///     .tier_name("billing-api")
    ///     .concurrency_limit(32)
    ///     .build(&meter)?;
    /// let client = layer.layer(service_fn(|_req: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("paid")))
    /// }));
    /// let request = http::Request::get("http://billing.internal:8080/invoices").body(String::new())?;
    /// let response = client.oneshot(request).await?;
    /// assert_eq!(layer.tier().in_flight(), 1); // until the body is read or dropped
    /// drop(response);
    /// assert_eq!(layer.tier().in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    layer: ClientTierLayer,
    /// Configures a [`ClientTierLayer`]; name its tier after the dependency it calls.
    builder: ClientTierLayerBuilder {
        tier_name: "client",
    },
    refused: "failed with [`Refused`] without reaching the inner service",
    /// Cap on distinct `server.address`/`server.port` pairs (default
    /// [`DEFAULT_SERVER_CAP`]).
    target cap: server_cap = DEFAULT_SERVER_CAP,
    http: |builder, meter| HttpSignals::client(meter, builder.options.target_cap),
    /// The service [`ClientTierLayer`] produces.
    service: ClientTier { first: FirstServer, target: server_of },
    /// The response body of [`ClientTier`]: the inner body, untouched, plus the call's
    /// measurement, recorded when the body ends or is dropped.
    response body: ResponseBody,
    /// The response future of [`ClientTier`].
    response future: ResponseFuture,
    error: ClientError<S::Error>,
    where ResBody: http_body::Body
}

/// A client fails a refused call with [`Refused`], and wraps the inner service's errors in
/// [`ClientError::Service`].
impl<B: http_body::Body, E> Respond<B, E> for Client {
    type Body = ResponseBody<B>;
    type Error = ClientError<E>;

    #[inline]
    fn body(body: GuardedBody<B, Self>) -> ResponseBody<B> {
        ResponseBody(body)
    }

    #[inline]
    fn service_error(error: E) -> ClientError<E> {
        ClientError::Service(error)
    }

    fn refuse(
        guard: &mut Guard<Self>,
        reason: RejectionReason,
    ) -> Result<Response<B>, ClientError<E>> {
        guard.refused_with_error(std::any::type_name::<Refused>, reason);
        Err(ClientError::Refused(refused(guard.shared(), reason)))
    }
}

/// The refusal of a call for `reason` by the layer sharing `shared`.
fn refused(shared: &Shared, reason: RejectionReason) -> Refused {
    let (limit, max_queued, queue_timeout) = shared
        .admission
        .as_ref()
        .map_or((0, 0, None), |a| (a.limit, a.max_queued, a.queue_timeout));
    Refused {
        tier: shared.tier.name(),
        reason,
        limit,
        max_queued,
        queue_timeout,
    }
}

/// Longest `host:port` kept as a server key; longer authorities fold into `_OTHER`.
const MAX_SERVER_KEY: usize = 262;

/// The first server a [`ClientTier`] called: as the URI wrote it, and as its key.
struct FirstServer {
    /// The URI's scheme and authority as written. Equal ones give the same key, so a
    /// match skips parsing the authority, the costliest part of a call's bookkeeping.
    scheme: Option<Box<str>>,
    authority: Box<str>,
    key: Box<str>,
    index: u32,
}

/// Writes the server key `host:port` (or `host:` when no port is known) of `uri` into
/// `buf`, without allocating. `None` when the URI has no authority or the key is too long.
fn server_key<'a>(uri: &http::Uri, buf: &'a mut [u8; MAX_SERVER_KEY]) -> Option<&'a str> {
    let host = uri.host()?;
    let port = uri.port_u16().or_else(|| match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    });
    let len = host.len();
    // Room for the host, the colon and a port of up to five digits.
    if len + 6 > buf.len() {
        return None;
    }
    buf[..len].copy_from_slice(host.as_bytes());
    buf[len] = b':';
    let mut end = len + 1;
    if let Some(mut port) = port {
        let mut digits = [0u8; 5];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (port % 10) as u8;
            n += 1;
            port /= 10;
            if port == 0 {
                break;
            }
        }
        for d in digits[..n].iter().rev() {
            buf[end] = *d;
            end += 1;
        }
    }
    std::str::from_utf8(&buf[..end]).ok()
}

/// The server index of `request`, by its URI's authority: [`NO_TARGET`] when it has none
/// (a relative URI), `_OTHER` when it is too long to be a key.
fn server_of<B>(local: &Local<FirstServer>, request: &Request<B>) -> u32 {
    let uri = request.uri();
    let first = local.first.get();
    if let (Some(first), Some(authority)) = (first, uri.authority()) {
        if *first.authority == *authority.as_str() && first.scheme.as_deref() == uri.scheme_str() {
            return first.index;
        }
    }
    let mut buf = [0u8; MAX_SERVER_KEY];
    let Some(key) = server_key(uri, &mut buf) else {
        return match uri.authority() {
            None => NO_TARGET,
            Some(_) => local.shared.http.fold_target(),
        };
    };
    if let Some(first) = first {
        if *first.key == *key {
            return first.index;
        }
        return local.shared.http.target(key);
    }
    let index = local.shared.http.target(key);
    if let Some(authority) = uri.authority() {
        let _ = local.first.set(FirstServer {
            scheme: uri.scheme_str().map(Box::from),
            authority: authority.as_str().into(),
            key: key.into(),
            index,
        });
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> Option<String> {
        let mut buf = [0u8; MAX_SERVER_KEY];
        server_key(&uri.parse().unwrap(), &mut buf).map(str::to_owned)
    }

    #[test]
    fn server_keys_come_from_the_authority() {
        assert_eq!(
            key("http://a.example:8080/x").as_deref(),
            Some("a.example:8080")
        );
        assert_eq!(key("http://a.example/x").as_deref(), Some("a.example:80"));
        assert_eq!(
            key("https://user:pw@a.example/x").as_deref(),
            Some("a.example:443")
        );
        assert_eq!(key("http://[::1]:9/").as_deref(), Some("[::1]:9"));
        assert_eq!(key("/pkg.Svc/Method"), None);
        let long = format!("http://{}/", "a".repeat(300));
        assert_eq!(key(&long), None);
    }

    #[test]
    fn a_relative_uri_names_no_server_and_a_too_long_authority_folds_into_other() {
        let layer = ClientTierLayer::builder()
            .build(&opentelemetry::global::meter("t"))
            .unwrap();
        let local = Local::new(&layer.shared);
        let index = |uri: &str| server_of(&local, &Request::get(uri).body(()).unwrap());
        assert_eq!(index("/pkg.Svc/Method"), NO_TARGET);
        let long = format!("http://{}/", "a".repeat(300));
        assert_eq!(index(&long), layer.shared.http.fold_target());
        let known = index("http://a.example/x");
        assert_ne!(known, NO_TARGET);
        assert_ne!(known, layer.shared.http.fold_target());
        assert_eq!(index("http://a.example:80/y"), known, "the same key");
    }
}
