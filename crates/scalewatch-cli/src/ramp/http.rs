//! Plain-HTTP requests over a pooled keep-alive client, with bodies read up to a cap.

use super::engine::{Failure, Target};
use bytes::{Bytes, BytesMut};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The client every HTTP request of the ramp goes through.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The most bytes of an answer kept in memory (the target's report is read up to this);
/// bytes beyond it are counted and dropped as they arrive.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// A keep-alive HTTP/1.1 client with Nagle off, so small requests go out at once.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// An answer's body, read up to a cap.
#[derive(Debug, Default)]
pub(crate) struct Capped {
    /// The first bytes, up to the cap.
    pub bytes: Bytes,
    /// How many bytes came beyond the cap (counted, not kept).
    pub dropped: u64,
}

/// Reads `body` to its end, keeping at most `cap` bytes: memory stays flat however much
/// the peer sends. The caller bounds the time.
async fn read_capped(mut body: Incoming, cap: usize) -> Result<Capped, hyper::Error> {
    let mut kept = BytesMut::new();
    let mut dropped = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        let take = cap.saturating_sub(kept.len()).min(data.len());
        kept.extend_from_slice(&data[..take]);
        dropped += (data.len() - take) as u64;
    }
    Ok(Capped {
        bytes: kept.freeze(),
        dropped,
    })
}

/// Sends `request` and reads the answer, keeping at most `cap` bytes of it; a status
/// outside 2xx is a failure (its body is still read, so the connection can be reused).
async fn exchange(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    cap: usize,
) -> Result<Capped, Failure> {
    let response = client
        .request(request)
        .await
        .map_err(|e| Failure::Transport(chain(&e)))?;
    let status = response.status();
    let body = read_capped(response.into_body(), cap)
        .await
        .map_err(|e| Failure::Transport(chain(&e)))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::Status(status.as_u16()))
    }
}

/// Sends `request` and reads the whole answer without keeping any of it (`dropped` is its
/// length); a status outside 2xx is a failure. Unbounded in time: callers put a deadline
/// on it.
pub(crate) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Capped, Failure> {
    exchange(client, request, 0).await
}

/// An error with its causes on one line (hyper's own message alone says little).
fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The same request, again and again.
#[derive(Clone, Debug)]
pub(crate) struct HttpTarget {
    client: HttpClient,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl HttpTarget {
    pub(crate) fn new(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            client: client(),
            method,
            uri,
            headers,
            body,
        }
    }
}

impl Target for HttpTarget {
    async fn call(&self) -> Result<(), Failure> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        send(&self.client, request).await.map(drop)
    }
}

/// `GET uri`, for the target's own report, keeping at most [`MAX_BODY`] bytes of the
/// answer: `Ok(None)` when the target has no such route. Unbounded in time: callers put a
/// deadline on it.
pub(crate) async fn get_optional(
    client: &HttpClient,
    uri: Uri,
    authorization: Option<&HeaderValue>,
) -> Result<Option<Capped>, Failure> {
    let mut request = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Failure::Transport(e.to_string()))?;
    if let Some(value) = authorization {
        request.headers_mut().insert(AUTHORIZATION, value.clone());
    }
    match exchange(client, request, MAX_BODY).await {
        Ok(body) => Ok(Some(body)),
        Err(Failure::Status(code)) if code == StatusCode::NOT_FOUND.as_u16() => Ok(None),
        Err(other) => Err(other),
    }
}
