//! The Prometheus scrape endpoint (`OTEL_METRICS_EXPORTER=prometheus`), built on the
//! OpenTelemetry project's own exporter, `opentelemetry-prometheus`: it names series by the
//! OpenTelemetry–Prometheus compatibility rules (dots to underscores, the unit as a suffix,
//! `{request}/s` as `_per_second`, `1` as `_ratio`, `_total` on counters), so a series
//! scraped here has the name it gets through a Collector's `prometheus` exporter or
//! Prometheus' own OTLP ingestion with their default translation.
//!
//! The endpoint is a small HTTP/1.1 server on a thread of its own with a one-thread runtime:
//! a scrape never runs on the application's runtime, and the pipeline works from plain
//! `fn main` as from any runtime. It lives as long as the meter provider: shutting the
//! provider down (or dropping it) stops the server and frees the port.

use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use ::prometheus::{Encoder as _, TextEncoder};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, Pipeline, Temporality};

use crate::config::{PrometheusEndpoint, PROMETHEUS_PATH};

/// Scrapes served at once; further connections wait to be accepted.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping waits for the server thread to close its sockets.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The Prometheus scrape endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrometheusError {
    /// `OTEL_EXPORTER_PROMETHEUS_HOST` does not resolve to any address.
    #[error("invalid OTEL_EXPORTER_PROMETHEUS_HOST: `{host}` does not resolve to an address to listen on")]
    Resolve {
        /// The host as configured.
        host: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
    /// The address could not be listened on (often: the port is taken).
    #[error("cannot serve Prometheus metrics on {addr} (OTEL_EXPORTER_PROMETHEUS_HOST, OTEL_EXPORTER_PROMETHEUS_PORT)")]
    Bind {
        /// The address, `host:port`.
        addr: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The exporter could not be built.
    #[error("could not build the Prometheus exporter")]
    Exporter(#[source] opentelemetry_sdk::error::OTelSdkError),
    /// The server's thread or runtime could not start.
    #[error("could not start the Prometheus endpoint's thread")]
    Thread(#[source] std::io::Error),
}

/// A [`MetricReader`] that serves what it reads on `/metrics`: the OpenTelemetry
/// Prometheus exporter plus the HTTP server in front of it, stopped when the meter
/// provider shuts down or drops it.
pub(crate) struct PrometheusReader {
    exporter: opentelemetry_prometheus::PrometheusExporter,
    server: Mutex<Option<Server>>,
    addrs: Vec<SocketAddr>,
}

impl fmt::Debug for PrometheusReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusReader")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl PrometheusReader {
    /// Builds the exporter and starts serving it on `endpoint`.
    pub(crate) fn start(endpoint: &PrometheusEndpoint) -> Result<Self, PrometheusError> {
        let registry = ::prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(PrometheusError::Exporter)?;
        let listeners = bind(endpoint)?;
        let addrs = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let server = Server::start(listeners, registry)?;
        Ok(Self {
            exporter,
            server: Mutex::new(Some(server)),
            addrs,
        })
    }

    fn stop(&self) {
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            server.stop();
        }
    }
}

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.exporter.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.exporter.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop();
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.exporter.temporality(kind)
    }
}

impl Drop for PrometheusReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Listens on every address the host resolves to (`localhost`: IPv4 and IPv6 loopback),
/// as long as at least one can be listened on; a port already taken is always an error.
fn bind(endpoint: &PrometheusEndpoint) -> Result<Vec<std::net::TcpListener>, PrometheusError> {
    let resolved: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|source| PrometheusError::Resolve {
            host: endpoint.host.clone(),
            source,
        })?
        .collect();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    let shown = |addr: &SocketAddr| addr.to_string();
    let mut listeners = Vec::new();
    let mut first_error = None;
    for addr in &addrs {
        match std::net::TcpListener::bind(addr).and_then(|l| {
            l.set_nonblocking(true)?;
            Ok(l)
        }) {
            Ok(listener) => listeners.push(listener),
            Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(PrometheusError::Bind {
                    addr: shown(addr),
                    source,
                })
            }
            Err(source) => {
                first_error.get_or_insert((shown(addr), source));
            }
        }
    }
    match (listeners.is_empty(), first_error) {
        (false, _) => Ok(listeners),
        (true, Some((addr, source))) => Err(PrometheusError::Bind { addr, source }),
        (true, None) => Err(PrometheusError::Resolve {
            host: endpoint.host.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }),
    }
}

/// The running HTTP server: a thread with a one-thread runtime.
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: mpsc::Receiver<()>,
}

impl Server {
    fn start(
        listeners: Vec<std::net::TcpListener>,
        registry: ::prometheus::Registry,
    ) -> Result<Self, PrometheusError> {
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel::<std::io::Result<()>>();
        let registry = Arc::new(registry);
        // The runtime is built, and dropped, on the server's own thread: never on the
        // caller's, which may be an async runtime's worker.
        std::thread::Builder::new()
            .name("scalewatch-prometheus".into())
            .spawn(move || {
                let started = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        let listeners = {
                            let _entered = runtime.enter();
                            listeners
                                .into_iter()
                                .map(tokio::net::TcpListener::from_std)
                                .collect::<Result<Vec<_>, _>>()?
                        };
                        Ok((runtime, listeners))
                    });
                let (runtime, listeners) = match started {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                runtime.block_on(async move {
                    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                    for listener in listeners {
                        tokio::spawn(accept(
                            listener,
                            Arc::clone(&registry),
                            Arc::clone(&connections),
                        ));
                    }
                    // Stopped, or the reader is gone: either way, stop serving.
                    let _ = stop_rx.await;
                });
                // Every connection and listener closes with the runtime.
                drop(runtime);
                let _ = stopped_tx.send(());
            })
            .map_err(PrometheusError::Thread)?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Self {
                stop: Some(stop),
                stopped,
            }),
            Ok(Err(e)) => Err(PrometheusError::Thread(e)),
            Err(_) => Err(PrometheusError::Thread(std::io::Error::other(
                "the Prometheus endpoint's thread ended before it started serving",
            ))),
        }
    }

    /// Stops serving and waits (briefly) until the sockets are closed.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.stopped.recv_timeout(STOP_WAIT);
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    registry: Arc<::prometheus::Registry>,
    connections: Arc<tokio::sync::Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let registry = Arc::clone(&registry);
                async move { Ok::<_, Infallible>(respond(&request, &registry)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// `GET /metrics` (and `HEAD`): the Prometheus text format; anything else is refused.
fn respond(
    request: &Request<Incoming>,
    registry: &::prometheus::Registry,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if request.uri().path() != PROMETHEUS_PATH {
        return text(
            StatusCode::NOT_FOUND,
            "not found: Prometheus metrics are served at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response
            .headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if encoder.encode(&registry.gather(), &mut body).is_err() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n",
        );
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    if let Ok(content_type) = http::HeaderValue::from_str(encoder.format_type()) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}
