//! [`Telemetry`]: the meter and tracer providers built from configuration, and their
//! bounded shutdown.

use crate::config::{Config, ConfigError, Destination, Protocol};
use crate::console::ConsoleExporter;
use crate::transport::{ExportRuntime, RuntimeHttpClient};
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The instrumentation scope scalewatch's instruments are created under.
pub const SCOPE: &str = "scalewatch";

/// The default deadline of [`Telemetry::shutdown`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The console reporter's interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set.
pub const CONSOLE_INTERVAL: Duration = Duration::from_secs(10);

/// Targets whose spans and events are the exporter's own transport: they never reach the
/// OpenTelemetry layer, so exporting can never feed back into what is exported.
pub const TRANSPORT_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "reqwest",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
];

/// The pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A configuration value was invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter's runtime could not start.
    #[error("could not start the exporter's runtime thread")]
    Runtime(#[source] std::io::Error),
    /// An OTLP exporter could not be built.
    #[error("could not build the OTLP {signal} exporter")]
    Exporter {
        /// `metrics` or `traces`.
        signal: &'static str,
        /// What the exporter said.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A header name or value cannot be sent.
    #[error(
        "invalid OTEL_EXPORTER_OTLP_HEADERS: header `{0}` is not a valid header name or value"
    )]
    Header(String),
    /// A global tracing subscriber was already installed.
    #[error("a global tracing subscriber is already installed: use `Telemetry::tracing_layer` to add scalewatch's layer to it instead")]
    Subscriber(#[source] tracing_subscriber::util::TryInitError),
    /// The Prometheus scrape endpoint could not start.
    #[error(transparent)]
    Prometheus(#[from] crate::PrometheusError),
}

/// Shutdown did not complete cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The deadline passed; whatever was still being exported was given up.
    #[error("telemetry shutdown did not finish within {0:?}; unexported data was dropped")]
    Timeout(Duration),
    /// A provider reported an error while flushing.
    #[error("telemetry shutdown failed to flush {signal}")]
    Flush {
        /// `metrics` or `traces`.
        signal: &'static str,
        /// What the provider said.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
    },
}

/// Configures a [`Telemetry`] pipeline: the `OTEL_*` variables first, then code-side
/// overrides. Invalid values are reported by [`TelemetryBuilder::build`].
#[must_use]
pub struct TelemetryBuilder {
    vars: HashMap<String, String>,
    headers: Vec<(String, String)>,
    resource: Vec<(String, String)>,
    shutdown_timeout: Duration,
    install_subscriber: bool,
}

impl fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("install_subscriber", &self.install_subscriber)
            .finish_non_exhaustive()
    }
}

impl Default for TelemetryBuilder {
    fn default() -> Self {
        Self::from_env()
    }
}

impl TelemetryBuilder {
    /// Starts from the process's `OTEL_*` environment variables.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars().filter(|(k, _)| k.starts_with("OTEL_")))
    }

    /// Starts from the given variables only (the environment is not read).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            vars: vars.into_iter().collect(),
            headers: Vec::new(),
            resource: Vec::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            install_subscriber: false,
        }
    }

    fn set(mut self, var: &str, value: impl Into<String>) -> Self {
        self.vars.insert(var.to_owned(), value.into());
        self
    }

    /// The OTLP base endpoint (as `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(self, url: impl Into<String>) -> Self {
        self.set("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    }

    /// The OTLP protocol (as `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn protocol(self, protocol: Protocol) -> Self {
        self.set("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.as_str())
    }

    /// A header sent with every export, such as an API key.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `service.name` (as `OTEL_SERVICE_NAME`).
    pub fn service_name(self, name: impl Into<String>) -> Self {
        self.set("OTEL_SERVICE_NAME", name)
    }

    /// An extra resource attribute.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource.push((key.into(), value.into()));
        self
    }

    /// How often metrics are exported (as `OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn export_interval(self, interval: Duration) -> Self {
        self.set(
            "OTEL_METRIC_EXPORT_INTERVAL",
            interval.as_millis().to_string(),
        )
    }

    /// Deadline of one export (as `OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub fn export_timeout(self, timeout: Duration) -> Self {
        self.set(
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            timeout.as_millis().to_string(),
        )
    }

    /// Metrics to the console reporter instead of OTLP (as `OTEL_METRICS_EXPORTER=console`).
    pub fn console(self) -> Self {
        self.set("OTEL_METRICS_EXPORTER", "console")
    }

    /// Deadline of [`Telemetry::shutdown`] (default [`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Also install a global `tracing` subscriber: a stderr formatter plus the
    /// OpenTelemetry layer (when traces are exported), with the exporter's own transport
    /// crates filtered out. Off by default: libraries install no globals unless asked.
    pub fn install_tracing_subscriber(mut self) -> Self {
        self.install_subscriber = true;
        self
    }

    /// The resolved configuration, or the first invalid value.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::from_lookup(|k| self.vars.get(k).cloned())?;
        config.headers.extend(self.headers.iter().cloned());
        config
            .resource_attributes
            .extend(self.resource.iter().cloned());
        if config.metrics == Destination::Console
            && !self.vars.contains_key("OTEL_METRIC_EXPORT_INTERVAL")
        {
            config.export_interval = CONSOLE_INTERVAL;
        }
        Ok(config)
    }

    /// Validates the configuration and builds the pipeline.
    pub fn build(self) -> Result<Telemetry, InitError> {
        let config = self.config()?;
        let telemetry = Telemetry::from_config(&config, self.shutdown_timeout)?;
        if self.install_subscriber {
            telemetry.install_subscriber()?;
        }
        Ok(telemetry)
    }
}

/// Builds the pipeline from the `OTEL_*` environment: `TelemetryBuilder::from_env().build()`.
pub fn init() -> Result<Telemetry, InitError> {
    TelemetryBuilder::from_env().build()
}

struct Providers {
    meters: Option<SdkMeterProvider>,
    tracers: Option<SdkTracerProvider>,
    runtime: Option<ExportRuntime>,
}

/// What a shutdown's flush of metrics and traces came to.
type Flushed = (
    opentelemetry_sdk::error::OTelSdkResult,
    opentelemetry_sdk::error::OTelSdkResult,
);

impl Providers {
    /// Flushes and stops both providers within `deadline`, then drops them and the
    /// runtime that drives their exporters. Blocks the calling thread: run it where
    /// blocking is harmless.
    fn shut_down(self, deadline: Duration, done: impl FnOnce(Flushed)) {
        let metrics = self
            .meters
            .as_ref()
            .map_or(Ok(()), |p| p.shutdown_with_timeout(deadline));
        let traces = self
            .tracers
            .as_ref()
            .map_or(Ok(()), |p| p.shutdown_with_timeout(deadline));
        done((metrics, traces));
        // The exporters' clients first, then the runtime that drives them (in the
        // background: it never blocks).
        drop(self.meters);
        drop(self.tracers);
        drop(self.runtime);
    }
}

/// Whether a shutdown waits for its flush.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until the flush ends or its deadline passes ([`Telemetry::shutdown`], and a drop
    /// outside any async runtime).
    ForFlush,
    /// Not at all: a drop on an async runtime, whose worker must not stall.
    Detached,
}

/// A running telemetry pipeline. Hand [`Telemetry::meter`] to scalewatch's layers and
/// instruments; call [`Telemetry::shutdown`] (or drop it) before exiting to flush.
///
/// Dropped outside any async runtime (plain `fn main`, a blocking thread), it flushes as
/// [`Telemetry::shutdown`] does, waiting at most the shutdown deadline (plus half a
/// second). Dropped on a tokio runtime, it never blocks the runtime's thread: the flush
/// runs on a thread of its own, bounded by the same deadline, and the drop returns at
/// once. A process that exits right after such a drop may exit before that flush ends;
/// where the last measurements matter, call [`Telemetry::shutdown`] instead, which waits
/// (from `spawn_blocking`, or at the end of an async `main`, where blocking is harmless).
pub struct Telemetry {
    providers: Option<Providers>,
    meter: Meter,
    config: Config,
    shutdown_timeout: Duration,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.config)
            .field("running", &self.providers.is_some())
            .finish()
    }
}

impl Telemetry {
    /// Starts configuring a pipeline from the environment.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::from_env()
    }

    fn from_config(config: &Config, shutdown_timeout: Duration) -> Result<Self, InitError> {
        let disabled = config.disabled;
        let needs_runtime = !disabled
            && (config.metrics == Destination::Otlp || config.traces == Destination::Otlp);
        // Dropped without blocking if anything below fails, even on an async runtime.
        let runtime = if needs_runtime {
            Some(ExportRuntime::start().map_err(InitError::Runtime)?)
        } else {
            None
        };
        let resource = resource(config);
        let meters = if disabled {
            None
        } else {
            let mut builder = SdkMeterProvider::builder().with_resource(resource.clone());
            match config.metrics {
                Destination::Otlp => {
                    let exporter = metric_exporter(config, runtime.as_ref())?;
                    builder = builder.with_reader(
                        PeriodicReader::builder(exporter)
                            .with_interval(config.export_interval)
                            .build(),
                    );
                }
                Destination::Console => {
                    builder = builder.with_reader(
                        PeriodicReader::builder(ConsoleExporter::stderr())
                            .with_interval(config.export_interval)
                            .build(),
                    );
                }
                Destination::None => {}
            }
            if let Some(endpoint) = &config.prometheus {
                let reader = crate::prometheus::PrometheusReader::start(endpoint)?;
                builder = builder.with_reader(reader);
            }
            Some(builder.build())
        };
        let tracers = match (disabled, config.traces) {
            (false, Destination::Otlp) => Some(
                SdkTracerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(span_exporter(config, runtime.as_ref())?)
                    .build(),
            ),
            _ => None,
        };
        let scope = opentelemetry::InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = match &meters {
            Some(p) => p.meter_with_scope(scope),
            None => opentelemetry::metrics::noop::NoopMeterProvider::new().meter_with_scope(scope),
        };
        Ok(Self {
            providers: Some(Providers {
                meters,
                tracers,
                runtime,
            }),
            meter,
            config: config.clone(),
            shutdown_timeout,
        })
    }

    /// The meter scalewatch's instruments are created on (scope `scalewatch`).
    pub fn meter(&self) -> Meter {
        self.meter.clone()
    }

    /// Whether telemetry is on: `false` under `OTEL_SDK_DISABLED=true`. Hand it to the
    /// builders' `enabled` so that instrumentation that exports nowhere also measures
    /// nothing.
    pub fn is_enabled(&self) -> bool {
        !self.config.disabled
    }

    /// The configuration the pipeline runs with (header values redacted in `Debug`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The meter provider, for the application's own instruments; `None` when disabled.
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.providers.as_ref().and_then(|p| p.meters.as_ref())
    }

    /// The tracer provider, when traces are exported.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.providers.as_ref().and_then(|p| p.tracers.as_ref())
    }

    /// A `tracing` layer that sends spans to this pipeline, for applications that build
    /// their own subscriber; the exporter's transport crates are filtered out. `None` when
    /// traces are not exported.
    pub fn tracing_layer<S>(&self) -> Option<impl tracing_subscriber::Layer<S>>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        let tracer = self.tracer_provider()?.tracer(SCOPE);
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(not_transport()),
        )
    }

    fn install_subscriber(&self) -> Result<(), InitError> {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::Layer as _;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
            .with_filter(not_transport());
        tracing_subscriber::registry()
            .with(fmt)
            .with(self.tracing_layer())
            .try_init()
            .map_err(InitError::Subscriber)
    }

    /// Exports what has been recorded so far. Blocks the calling thread until the
    /// exporters answer or time out.
    pub fn force_flush(&self) -> Result<(), ShutdownError> {
        let Some(p) = &self.providers else {
            return Ok(());
        };
        if let Some(m) = &p.meters {
            m.force_flush().map_err(|source| ShutdownError::Flush {
                signal: "metrics",
                source,
            })?;
        }
        if let Some(t) = &p.tracers {
            t.force_flush().map_err(|source| ShutdownError::Flush {
                signal: "traces",
                source,
            })?;
        }
        Ok(())
    }

    /// Flushes and stops the pipeline. Returns within the shutdown deadline (plus half a
    /// second) whatever the collector does: the flush runs on its own thread, which is
    /// abandoned if the deadline passes. It blocks the calling thread meanwhile: from async
    /// code, call it from `spawn_blocking` or where stalling the runtime's thread does not
    /// matter (the end of `main`).
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        self.shutdown_now(Wait::ForFlush)
    }

    fn shutdown_now(&mut self, wait: Wait) -> Result<(), ShutdownError> {
        let Some(providers) = self.providers.take() else {
            return Ok(());
        };
        let deadline = self.shutdown_timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        // Handed to the thread through a slot rather than moved into it, so that they are
        // still here, to shut down on this thread, should the thread fail to start.
        let slot = Arc::new(Mutex::new(Some(providers)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("scalewatch-shutdown".into())
            .spawn(move || {
                let providers = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
                if let Some(providers) = providers {
                    providers.shut_down(deadline, |flushed| {
                        let _ = tx.send(flushed);
                    });
                }
            });
        if spawned.is_err() {
            // No thread to be had (the process is out of them): shut down here, blocking
            // this thread for up to the deadline, rather than leave the exporters running.
            let providers = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            let mut flushed = None;
            if let Some(providers) = providers {
                providers.shut_down(deadline, |f| flushed = Some(f));
            }
            return flushed.map_or(Ok(()), report);
        }
        if wait == Wait::Detached {
            return Ok(());
        }
        let margin = Duration::from_millis(500);
        match rx.recv_timeout(deadline + margin) {
            Ok(flushed) => report(flushed),
            Err(_) => Err(ShutdownError::Timeout(deadline)),
        }
    }
}

/// The outcome of a shutdown's flush.
fn report((metrics, traces): Flushed) -> Result<(), ShutdownError> {
    ignore_already_shut(metrics).map_err(|source| ShutdownError::Flush {
        signal: "metrics",
        source,
    })?;
    ignore_already_shut(traces).map_err(|source| ShutdownError::Flush {
        signal: "traces",
        source,
    })
}

fn ignore_already_shut(
    r: opentelemetry_sdk::error::OTelSdkResult,
) -> opentelemetry_sdk::error::OTelSdkResult {
    match r {
        Err(opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown) => Ok(()),
        other => other,
    }
}

impl Drop for Telemetry {
    /// Shuts the pipeline down as [`Telemetry::shutdown`] does, except on an async
    /// runtime, where the flush goes on in the background and the drop returns at once
    /// (see [`Telemetry`]).
    fn drop(&mut self) {
        let wait = if tokio::runtime::Handle::try_current().is_ok() {
            Wait::Detached
        } else {
            Wait::ForFlush
        };
        let _ = self.shutdown_now(wait);
    }
}

fn not_transport() -> tracing_subscriber::filter::FilterFn {
    tracing_subscriber::filter::filter_fn(|meta| {
        let target = meta.target();
        !TRANSPORT_TARGETS.iter().any(|t| {
            target == *t || (target.starts_with(t) && target.as_bytes().get(t.len()) == Some(&b':'))
        })
    })
}

fn resource(config: &Config) -> Resource {
    let mut builder = Resource::builder();
    if let Some(name) = &config.service_name {
        builder = builder.with_service_name(name.clone());
    }
    builder
        .with_attributes(
            config
                .resource_attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .build()
}

fn header_map(config: &Config) -> Result<HashMap<String, String>, InitError> {
    let mut map = HashMap::new();
    for (k, v) in &config.headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err()
            || http::HeaderValue::from_str(v).is_err()
        {
            return Err(InitError::Header(k.clone()));
        }
        map.insert(k.clone(), v.clone());
    }
    Ok(map)
}

fn metadata(config: &Config) -> Result<tonic::metadata::MetadataMap, InitError> {
    let headers = header_map(config)?;
    let mut http_headers = http::HeaderMap::new();
    for (k, v) in headers {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(&v),
        ) else {
            return Err(InitError::Header(k));
        };
        http_headers.insert(name, value);
    }
    Ok(tonic::metadata::MetadataMap::from_headers(http_headers))
}

fn http_client(config: &Config, runtime: &tokio::runtime::Runtime) -> RuntimeHttpClient {
    let inner =
        opentelemetry_http::hyper::HyperClient::with_default_connector(config.export_timeout, None);
    RuntimeHttpClient::new(runtime.handle().clone(), Arc::new(inner))
}

/// Builds one signal's OTLP exporter for the configured transport. A macro because the
/// SDK's metric and span exporter builders share methods but no trait for `build`.
macro_rules! otlp_exporter {
    ($exporter:ty, $signal:literal, $endpoint:expr, $config:expr, $runtime:expr) => {{
        let (config, runtime): (&Config, Option<&ExportRuntime>) = ($config, $runtime);
        let runtime = runtime.and_then(ExportRuntime::get);
        let Some(runtime) = runtime else {
            return Err(InitError::Runtime(std::io::Error::other(
                "no exporter runtime",
            )));
        };
        let built = match config.protocol {
            Protocol::Grpc => {
                // The gRPC channel's worker is spawned on the pipeline's runtime.
                let _entered = runtime.enter();
                <$exporter>::builder()
                    .with_tonic()
                    .with_endpoint($endpoint)
                    .with_timeout(config.export_timeout)
                    .with_metadata(metadata(config)?)
                    .build()
            }
            Protocol::HttpProtobuf => <$exporter>::builder()
                .with_http()
                .with_endpoint($endpoint)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(config.export_timeout)
                .with_headers(header_map(config)?)
                .with_http_client(http_client(config, runtime))
                .build(),
        };
        built.map_err(|source| InitError::Exporter {
            signal: $signal,
            source,
        })
    }};
}

fn metric_exporter(
    config: &Config,
    runtime: Option<&ExportRuntime>,
) -> Result<opentelemetry_otlp::MetricExporter, InitError> {
    otlp_exporter!(
        opentelemetry_otlp::MetricExporter,
        "metrics",
        &config.metrics_endpoint,
        config,
        runtime
    )
}

fn span_exporter(
    config: &Config,
    runtime: Option<&ExportRuntime>,
) -> Result<opentelemetry_otlp::SpanExporter, InitError> {
    otlp_exporter!(
        opentelemetry_otlp::SpanExporter,
        "traces",
        &config.traces_endpoint,
        config,
        runtime
    )
}
