//! An in-process OTLP receiver (gRPC and HTTP/protobuf) that records everything it is sent
//! and answers with scripted faults.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::snapshot::{describe_spans, render_any_value, render_attributes};
use crate::{MetricsSnapshot, OtlpAddrs, OtlpListener, ReceivedSpan};

/// Largest request accepted over either transport.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How often the `wait_for_*` helpers look again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Reads with `read` every [`POLL_INTERVAL`] (waiting with `sleep`) until `pred` holds for
/// a reading, which it returns; once `timeout` has passed, hands the last reading to
/// `fail`, which must panic.
async fn until_with<T, S: Future<Output = ()>>(
    timeout: Duration,
    read: impl Fn() -> T,
    pred: impl Fn(&T) -> bool,
    fail: impl Fn(&T),
    sleep: impl Fn(Duration) -> S,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(reading) = poll(deadline, &read, &pred, &fail) {
            return reading;
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// [`until_with`] on the async runtime's timer.
async fn until<T>(
    timeout: Duration,
    read: impl Fn() -> T,
    pred: impl Fn(&T) -> bool,
    fail: impl Fn(&T),
) -> T {
    until_with(timeout, read, pred, fail, tokio::time::sleep).await
}

/// [`until_with`] for code without an async runtime: it sleeps the thread, so every await
/// is ready at once and one poll runs the whole wait.
fn until_blocking<T>(
    timeout: Duration,
    read: impl Fn() -> T,
    pred: impl Fn(&T) -> bool,
    fail: impl Fn(&T),
) -> T {
    let wait = until_with(timeout, read, pred, fail, |interval| {
        std::thread::sleep(interval);
        std::future::ready(())
    });
    match std::pin::pin!(wait).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(reading) => reading,
        Poll::Pending => unreachable!("a blocking wait never awaits anything that is not ready"),
    }
}

/// One reading of [`until`]: `Some` once `pred` holds; `fail` once `deadline` is past.
fn poll<T>(
    deadline: Instant,
    read: impl Fn() -> T,
    pred: impl Fn(&T) -> bool,
    fail: impl Fn(&T),
) -> Option<T> {
    let reading = read();
    if pred(&reading) {
        return Some(reading);
    }
    if Instant::now() >= deadline {
        fail(&reading);
    }
    None
}

/// An OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// `MetricsService/Export`, `POST /v1/metrics`.
    Metrics,
    /// `TraceService/Export`, `POST /v1/traces`.
    Traces,
    /// `LogsService/Export`, `POST /v1/logs`.
    Logs,
}

impl Signal {
    fn index(self) -> usize {
        match self {
            Signal::Metrics => 0,
            Signal::Traces => 1,
            Signal::Logs => 2,
        }
    }
}

/// How the receiver answers exports, set with [`FakeReceiver::set_fault`].
///
/// Every export is counted in [`FakeReceiver::export_count`] and its bytes kept in
/// [`FakeReceiver::raw_payloads`] whatever the fault; only accepted exports add data to
/// [`FakeReceiver::metrics`], [`FakeReceiver::traces`] and [`FakeReceiver::logs`].
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Fault {
    /// Accept every export (the default).
    #[default]
    None,
    /// Answer every export with an error: the gRPC status `grpc` (with a `RetryInfo` detail
    /// when `retry_after` is set) or the HTTP status `http` (with a `Retry-After` header in
    /// whole seconds, rounded up, when `retry_after` is set). The data is dropped.
    Status {
        /// gRPC status code, e.g. `tonic::Code::Unavailable`.
        grpc: tonic::Code,
        /// HTTP status code, e.g. 503.
        http: u16,
        /// Throttling hint sent to the client.
        retry_after: Option<Duration>,
    },
    /// Accept the request and never answer while this fault is set. When the fault is changed
    /// or the receiver is dropped the pending requests are answered with `UNAVAILABLE` / 503
    /// (clients have usually timed out by then). The data is dropped.
    BlackHole,
    /// Wait this long, then accept the export as with [`Fault::None`].
    Delay(Duration),
}

impl Fault {
    /// [`Fault::Status`] without a throttling hint: every export is refused with the gRPC
    /// status `grpc` or the HTTP status `http`.
    pub fn status(grpc: tonic::Code, http: u16) -> Self {
        Fault::Status {
            grpc,
            http,
            retry_after: None,
        }
    }
}

/// One log record as received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLog {
    /// The body rendered as text.
    pub body: String,
    /// Severity text.
    pub severity_text: String,
    /// Log record attributes rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes of the export it came in.
    pub resource_attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Store {
    metrics: MetricsSnapshot,
    arrival: u64,
    spans: Vec<ReceivedSpan>,
    logs: Vec<ReceivedLog>,
    raw: Vec<Vec<u8>>,
    requests: [u64; 3],
    accepted: [u64; 3],
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    fault: watch::Sender<Fault>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store consistent enough for a test.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Counts and logs the request, applies the fault, and records the data if accepted.
    async fn handle(&self, request: Decoded, metadata: String) -> Outcome {
        let signal = request.signal();
        {
            let mut store = self.store();
            store.requests[signal.index()] += 1;
            let mut raw = request.encode();
            store.raw.push(std::mem::take(&mut raw));
            store.raw.push(metadata.into_bytes());
        }
        let fault = self.fault.borrow().clone();
        match fault {
            Fault::None => {}
            Fault::Delay(delay) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.shutdown_signal() => return Outcome::unavailable(),
                }
            }
            Fault::Status {
                grpc,
                http,
                retry_after,
            } => {
                return Outcome::Rejected {
                    grpc,
                    http,
                    retry_after,
                }
            }
            Fault::BlackHole => {
                let mut rx = self.fault.subscribe();
                tokio::select! {
                    _ = rx.wait_for(|f| *f != Fault::BlackHole) => {}
                    _ = self.shutdown_signal() => {}
                }
                return Outcome::unavailable();
            }
        }
        let mut store = self.store();
        store.accepted[signal.index()] += 1;
        match request {
            Decoded::Metrics(req) => {
                let store = &mut *store;
                store.metrics.push_request(&req, &mut store.arrival);
            }
            Decoded::Traces(req) => store.spans.extend(ReceivedSpan::from_request(&req)),
            Decoded::Logs(req) => store.logs.extend(received_logs(&req)),
        }
        Outcome::Accepted
    }
}

fn received_logs(request: &ExportLogsServiceRequest) -> Vec<ReceivedLog> {
    let mut out = Vec::new();
    for rl in &request.resource_logs {
        let resource = rl
            .resource
            .as_ref()
            .map(|r| render_attributes(&r.attributes))
            .unwrap_or_default();
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                out.push(ReceivedLog {
                    body: record
                        .body
                        .as_ref()
                        .map(render_any_value)
                        .unwrap_or_default(),
                    severity_text: record.severity_text.clone(),
                    attributes: render_attributes(&record.attributes),
                    resource_attributes: resource.clone(),
                });
            }
        }
    }
    out
}

enum Decoded {
    Metrics(ExportMetricsServiceRequest),
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Decoded {
    fn decode(signal: Signal, body: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(match signal {
            Signal::Metrics => Decoded::Metrics(Message::decode(body)?),
            Signal::Traces => Decoded::Traces(Message::decode(body)?),
            Signal::Logs => Decoded::Logs(Message::decode(body)?),
        })
    }

    fn signal(&self) -> Signal {
        match self {
            Decoded::Metrics(_) => Signal::Metrics,
            Decoded::Traces(_) => Signal::Traces,
            Decoded::Logs(_) => Signal::Logs,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Decoded::Metrics(m) => m.encode_to_vec(),
            Decoded::Traces(m) => m.encode_to_vec(),
            Decoded::Logs(m) => m.encode_to_vec(),
        }
    }
}

enum Outcome {
    Accepted,
    Rejected {
        grpc: tonic::Code,
        http: u16,
        retry_after: Option<Duration>,
    },
}

impl Outcome {
    fn unavailable() -> Self {
        Outcome::Rejected {
            grpc: tonic::Code::Unavailable,
            http: 503,
            retry_after: None,
        }
    }

    fn into_grpc<T>(self, ok: T) -> Result<tonic::Response<T>, tonic::Status> {
        match self {
            Outcome::Accepted => Ok(tonic::Response::new(ok)),
            Outcome::Rejected {
                grpc, retry_after, ..
            } => {
                let message = "fault injected by FakeReceiver";
                Err(match retry_after {
                    Some(delay) => tonic::Status::with_error_details(
                        grpc,
                        message,
                        ErrorDetails::with_retry_info(Some(delay)),
                    ),
                    None => tonic::Status::new(grpc, message),
                })
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Grpc(Arc<Shared>);

impl Grpc {
    async fn export<T: Message + Clone>(
        &self,
        request: tonic::Request<T>,
        wrap: fn(T) -> Decoded,
    ) -> Outcome {
        let metadata = headers_text("grpc", &request.metadata().clone().into_headers(), None);
        self.0.handle(wrap(request.into_inner()), metadata).await
    }
}

/// Implements one OTLP gRPC service on [`Grpc`]: decode, record, answer.
macro_rules! grpc_service {
    ($($service:ident($request:ty) -> $response:ty => $decoded:ident;)+) => {$(
        #[tonic::async_trait]
        impl $service for Grpc {
            async fn export(
                &self,
                request: tonic::Request<$request>,
            ) -> Result<tonic::Response<$response>, tonic::Status> {
                Grpc::export(self, request, Decoded::$decoded)
                    .await
                    .into_grpc(<$response>::default())
            }
        }
    )+};
}

grpc_service! {
    MetricsService(ExportMetricsServiceRequest) -> ExportMetricsServiceResponse => Metrics;
    TraceService(ExportTraceServiceRequest) -> ExportTraceServiceResponse => Traces;
    LogsService(ExportLogsServiceRequest) -> ExportLogsServiceResponse => Logs;
}

fn headers_text(transport: &str, headers: &HeaderMap, request_line: Option<String>) -> String {
    let mut out = format!("[{transport} request]\n");
    if let Some(line) = request_line {
        out.push_str(&line);
        out.push('\n');
    }
    for (name, value) in headers {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        out.push('\n');
    }
    out
}

async fn http_export(
    shared: Arc<Shared>,
    signal: Signal,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metadata = headers_text("http", &headers, Some(format!("{method} {uri}")));
    let gzip = headers
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzip {
        let mut out = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out) {
            return (StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")).into_response();
        }
        Bytes::from(out)
    } else {
        body
    };
    let is_json = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        shared.store().raw.push(body.to_vec());
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the fake receiver only speaks application/x-protobuf",
        )
            .into_response();
    }
    let decoded = match Decoded::decode(signal, &body) {
        Ok(decoded) => decoded,
        Err(e) => {
            shared.store().raw.push(body.to_vec());
            return (StatusCode::BAD_REQUEST, format!("bad protobuf body: {e}")).into_response();
        }
    };
    let protobuf = [(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    )];
    match shared.handle(decoded, metadata).await {
        Outcome::Accepted => {
            let body = match signal {
                Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
                Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
                Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
            };
            (StatusCode::OK, protobuf, body).into_response()
        }
        Outcome::Rejected {
            http, retry_after, ..
        } => {
            let status = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, protobuf, Vec::new()).into_response();
            if let Some(delay) = retry_after {
                let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
    }
}

fn http_router(shared: Arc<Shared>) -> Router {
    fn route(signal: Signal) -> axum::routing::MethodRouter<Arc<Shared>> {
        post(
            move |State(shared): State<Arc<Shared>>,
                  method: Method,
                  uri: Uri,
                  headers: HeaderMap,
                  body: Bytes| http_export(shared, signal, method, uri, headers, body),
        )
    }
    Router::new()
        .route("/v1/metrics", route(Signal::Metrics))
        .route("/v1/traces", route(Signal::Traces))
        .route("/v1/logs", route(Signal::Logs))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(shared)
}

/// An in-process OTLP receiver: an OTLP/gRPC server and an OTLP/HTTP (protobuf) server on
/// loopback, both recording into one store, with scripted faults.
///
/// The servers run on a runtime of their own (a dedicated thread), so the receiver keeps
/// answering while the test's runtime is blocked (for example in a blocking `shutdown()`),
/// and it works from plain `#[test]` functions too (see [`start_blocking`](Self::start_blocking)).
/// Dropping the receiver stops both servers and releases black-holed requests.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use scalewatch_test_support::{FakeReceiver, OtlpListener as _};
///
/// let receiver = FakeReceiver::start().await;
/// assert!(receiver.grpc_endpoint().starts_with("http://127.0.0.1:"));
/// assert!(receiver.metrics().names().is_empty());
/// # }
/// ```
#[derive(Debug)]
pub struct FakeReceiver {
    shared: Arc<Shared>,
    addrs: OtlpAddrs,
    thread: Option<JoinHandle<()>>,
}

impl FakeReceiver {
    /// Binds `127.0.0.1:0` twice and starts the gRPC and HTTP servers. They accept
    /// connections as soon as this returns.
    ///
    /// # Panics
    /// If loopback ports cannot be bound or the runtime thread cannot start.
    pub async fn start() -> FakeReceiver {
        Self::start_blocking()
    }

    /// [`start`](Self::start) for code without an async runtime. Never blocks for long.
    ///
    /// # Panics
    /// If loopback ports cannot be bound or the runtime thread cannot start.
    pub fn start_blocking() -> FakeReceiver {
        let bind = || {
            let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .expect("fake receiver: bind 127.0.0.1:0");
            listener
                .set_nonblocking(true)
                .expect("fake receiver: set_nonblocking");
            listener
        };
        let grpc_listener = bind();
        let http_listener = bind();
        let addrs = OtlpAddrs {
            grpc: grpc_listener
                .local_addr()
                .expect("fake receiver: local_addr"),
            http: http_listener
                .local_addr()
                .expect("fake receiver: local_addr"),
        };
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            fault: watch::channel(Fault::None).0,
            shutdown: watch::channel(false).0,
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-otlp-receiver".into())
            .spawn(move || serve(thread_shared, grpc_listener, http_listener))
            .expect("fake receiver: spawn runtime thread");
        FakeReceiver {
            shared,
            addrs,
            thread: Some(thread),
        }
    }

    /// Sets how later (and black-holed pending) exports are answered.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.shared.fault.borrow().clone()
    }

    /// Every metric data point accepted so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.store().metrics.clone()
    }

    /// Every span accepted so far, in arrival order.
    pub fn traces(&self) -> Vec<ReceivedSpan> {
        self.shared.store().spans.clone()
    }

    /// Every log record accepted so far, in arrival order.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        self.shared.store().logs.clone()
    }

    /// Everything sent to the receiver, faulted requests included, for searching secrets:
    /// for each request, the message bytes (the HTTP body after gzip decoding, or the gRPC
    /// message re-encoded) followed by a text entry with the request line (HTTP) and every
    /// header or gRPC metadata entry as `name: value` lines.
    pub fn raw_payloads(&self) -> Vec<Vec<u8>> {
        self.shared.store().raw.clone()
    }

    /// How many times `needle` occurs in [`raw_payloads`](Self::raw_payloads) (overlapping
    /// occurrences count separately).
    pub fn payload_occurrences(&self, needle: &[u8]) -> usize {
        if needle.is_empty() {
            return 0;
        }
        self.shared
            .store()
            .raw
            .iter()
            .map(|p| p.windows(needle.len()).filter(|w| *w == needle).count())
            .sum()
    }

    /// Export requests received for `signal` over both transports, faulted ones included.
    pub fn export_count(&self, signal: Signal) -> u64 {
        self.shared.store().requests[signal.index()]
    }

    /// Export requests for `signal` whose data was accepted.
    pub fn accepted_count(&self, signal: Signal) -> u64 {
        self.shared.store().accepted[signal.index()]
    }

    /// Forgets everything received (counts included); the fault is kept.
    pub fn clear(&self) {
        *self.shared.store() = Store::default();
    }

    /// Waits until `pred` holds for the metrics received, polling every 20 ms, and returns
    /// the snapshot that satisfied it.
    ///
    /// # Panics
    /// After `timeout`, with every metric name and series seen.
    pub async fn wait_for_metrics(
        &self,
        timeout: Duration,
        pred: impl Fn(&MetricsSnapshot) -> bool,
    ) -> MetricsSnapshot {
        until(
            timeout,
            || self.metrics(),
            pred,
            |s| self.metrics_timeout(timeout, s),
        )
        .await
    }

    /// [`wait_for_metrics`](Self::wait_for_metrics) for code without an async runtime.
    ///
    /// # Panics
    /// After `timeout`, with every metric name and series seen.
    pub fn wait_for_metrics_blocking(
        &self,
        timeout: Duration,
        pred: impl Fn(&MetricsSnapshot) -> bool,
    ) -> MetricsSnapshot {
        until_blocking(
            timeout,
            || self.metrics(),
            pred,
            |s| self.metrics_timeout(timeout, s),
        )
    }

    /// Waits until `pred` holds for the spans received, polling every 20 ms, and returns them.
    ///
    /// # Panics
    /// After `timeout`, with every span seen.
    pub async fn wait_for_spans(
        &self,
        timeout: Duration,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        until(
            timeout,
            || self.traces(),
            |s| pred(s),
            |s| self.spans_timeout(timeout, s),
        )
        .await
    }

    /// [`wait_for_spans`](Self::wait_for_spans) for code without an async runtime.
    ///
    /// # Panics
    /// After `timeout`, with every span seen.
    pub fn wait_for_spans_blocking(
        &self,
        timeout: Duration,
        pred: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        until_blocking(
            timeout,
            || self.traces(),
            |s| pred(s),
            |s| self.spans_timeout(timeout, s),
        )
    }

    fn counts(&self) -> String {
        let store = self.shared.store();
        format!(
            "metrics exports {} ({} accepted), trace exports {} ({} accepted), log exports {} ({} accepted), fault {:?}",
            store.requests[0],
            store.accepted[0],
            store.requests[1],
            store.accepted[1],
            store.requests[2],
            store.accepted[2],
            self.fault(),
        )
    }

    fn metrics_timeout(&self, timeout: Duration, snapshot: &MetricsSnapshot) -> ! {
        panic!(
            "fake receiver: metrics condition not met within {timeout:?}; {}; metrics seen:\n{}",
            self.counts(),
            snapshot.describe()
        )
    }

    fn spans_timeout(&self, timeout: Duration, spans: &[ReceivedSpan]) -> ! {
        panic!(
            "fake receiver: spans condition not met within {timeout:?}; {}; spans seen:\n{}",
            self.counts(),
            describe_spans(spans)
        )
    }
}

impl OtlpListener for FakeReceiver {
    fn addrs(&self) -> OtlpAddrs {
        self.addrs
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(shared: Arc<Shared>, grpc: StdTcpListener, http: StdTcpListener) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fake-otlp-receiver-worker")
        .enable_all()
        .build()
        .expect("fake receiver: build runtime");
    runtime.block_on(async {
        let grpc = tokio::net::TcpListener::from_std(grpc).expect("fake receiver: grpc listener");
        let http = tokio::net::TcpListener::from_std(http).expect("fake receiver: http listener");
        let service = Grpc(shared.clone());
        let grpc_server = tonic::transport::Server::builder()
            .add_service(
                MetricsServiceServer::new(service.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                TraceServiceServer::new(service.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                LogsServiceServer::new(service)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(grpc));
        tokio::spawn(grpc_server);
        let router = http_router(shared.clone());
        tokio::spawn(async move { axum::serve(http, router).await });
        shared.shutdown_signal().await;
    });
    // Tasks still running (open connections, black-holed requests) are dropped here.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
