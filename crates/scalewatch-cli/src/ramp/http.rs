//! Plain-HTTP requests over a pooled keep-alive client.

use super::engine::{Failure, Target};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The client every HTTP request of the ramp goes through.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive HTTP/1.1 client with Nagle off, so small requests go out at once.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Sends `request` and reads the whole answer; a status outside 2xx is a failure.
pub(crate) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Bytes, Failure> {
    let response = client
        .request(request)
        .await
        .map_err(|e| Failure::Transport(chain(&e)))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Transport(chain(&e)))?
        .to_bytes();
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::Status(status.as_u16()))
    }
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

/// `GET uri`, for the server's own report: `Ok(None)` when the target has no such route.
pub(crate) async fn get_optional(client: &HttpClient, uri: Uri) -> Result<Option<Bytes>, Failure> {
    let request = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| Failure::Transport(e.to_string()))?;
    match send(client, request).await {
        Ok(body) => Ok(Some(body)),
        Err(Failure::Status(code)) if code == StatusCode::NOT_FOUND.as_u16() => Ok(None),
        Err(other) => Err(other),
    }
}
