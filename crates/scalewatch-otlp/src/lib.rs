//! One call to export scalewatch's signals over OTLP, configured by the standard `OTEL_*`
//! environment variables, with a console reporter when no collector is configured.
//!
//! # Concepts
//! - [`init`] reads `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or
//!   `http/protobuf`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//!   the per-signal `…_METRICS_…`/`…_TRACES_…` variants, `OTEL_METRICS_EXPORTER`,
//!   `OTEL_TRACES_EXPORTER` and `OTEL_SDK_DISABLED`. An invalid value is an error that
//!   names the variable. [`TelemetryBuilder`] overrides any of them in code.
//! - `OTEL_METRICS_EXPORTER=prometheus` serves the metrics for Prometheus to scrape on
//!   `OTEL_EXPORTER_PROMETHEUS_HOST`:`OTEL_EXPORTER_PROMETHEUS_PORT` (`localhost:9464`),
//!   path `/metrics`, through the OpenTelemetry Prometheus exporter; `otlp,prometheus` runs
//!   both.
//! - With no endpoint configured, metrics go to a console reporter that prints a compact
//!   per-tier summary to stderr every 10 s, so a service run locally shows its scaling
//!   signals with no backend at all.
//! - Exports run on the SDK's own threads and a small runtime the pipeline owns: they never
//!   block the request path, and the pipeline works from plain `fn main`, a current-thread
//!   runtime or a multi-thread runtime. Failed exports are retried as the OTLP spec says
//!   (retryable codes only, exponential backoff, server throttling hints).
//! - [`Telemetry::shutdown`] flushes on its own thread and returns within its deadline even
//!   when the collector never answers. Nothing global is installed unless asked
//!   ([`TelemetryBuilder::install_tracing_subscriber`]).
//!
//! ```
//! use std::time::Duration;
//!
//! let telemetry = scalewatch_otlp::TelemetryBuilder::from_vars([])
//!     .service_name("checkout")
//!     .console()
//!     .shutdown_timeout(Duration::from_secs(2))
//!     .build()?;
//! let meter = telemetry.meter(); // hand this to scalewatch's layers
//! # let _ = meter;
//! telemetry.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod console;
mod pipeline;
mod prometheus;
mod transport;

pub use self::prometheus::PrometheusError;
pub use config::redact_url;
pub use config::{
    Config, ConfigError, Destination, PrometheusEndpoint, Protocol, DEFAULT_EXPORT_INTERVAL,
    DEFAULT_EXPORT_TIMEOUT, DEFAULT_PROMETHEUS_HOST, DEFAULT_PROMETHEUS_PORT, PROMETHEUS_PATH,
};
pub use console::format_seconds;
pub use pipeline::{
    init, InitError, ShutdownError, Telemetry, TelemetryBuilder, CONSOLE_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT, SCOPE, TRANSPORT_TARGETS,
};
