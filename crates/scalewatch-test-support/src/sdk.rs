//! Plain OpenTelemetry SDK pipelines (not scalewatch's) pointed at a receiver, for the
//! tests of the receiver and the collector harness themselves: either transport, a
//! temporality, a timeout, a retry policy and an optional secret header.

use std::collections::HashMap;
use std::time::Duration;

use crate::OtlpListener;
use opentelemetry::KeyValue;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    MetricExporter, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use scalewatch_otlp::Protocol;

/// The value of the secret header, which must never appear in any output.
pub const SECRET: &str = "sentinel-secret-7f3a";

/// How an exporter is built.
#[derive(Debug, Clone)]
pub struct Options {
    /// Its transport: OTLP/gRPC, or OTLP/HTTP with protobuf bodies.
    pub protocol: Protocol,
    /// Cumulative (the default) or delta.
    pub temporality: Temporality,
    /// The export timeout (5 s by default).
    pub timeout: Duration,
    /// Retries (none by default).
    pub retry: RetryPolicy,
    /// Whether an `authorization` header carrying [`SECRET`] is sent.
    pub secret_header: bool,
}

impl Options {
    /// The defaults over `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Options {
            protocol,
            temporality: Temporality::Cumulative,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::disabled(),
            secret_header: false,
        }
    }
}

impl Options {
    /// A meter provider exporting to `receiver` with these options, whose periodic reader
    /// in effect only exports on `force_flush` and `shutdown`. Must be called inside a
    /// Tokio runtime (the tonic channel spawns onto it).
    pub fn meter_provider_to(&self, receiver: &impl OtlpListener) -> SdkMeterProvider {
        meter_provider(receiver, self)
    }

    /// A tracer provider exporting to `receiver` with these options, through a batch
    /// processor.
    pub fn tracer_provider_to(&self, receiver: &impl OtlpListener) -> SdkTracerProvider {
        tracer_provider(receiver, self)
    }
}

/// Flushes `provider` off the async workers (the exporters block), and returns how the
/// flush went.
pub async fn flush_meters(provider: &SdkMeterProvider) -> OTelSdkResult {
    let provider = provider.clone();
    blocking(move || provider.force_flush()).await
}

/// Flushes `provider` off the async workers (the exporters block), and returns how the
/// flush went.
pub async fn flush_tracers(provider: &SdkTracerProvider) -> OTelSdkResult {
    let provider = provider.clone();
    blocking(move || provider.force_flush()).await
}

/// Shuts `provider` down off the async workers.
///
/// # Panics
/// If the shutdown fails.
pub async fn shut_down_meters(provider: SdkMeterProvider) {
    blocking(move || provider.shutdown())
        .await
        .expect("shutdown");
}

/// Shuts `provider` down off the async workers.
///
/// # Panics
/// If the shutdown fails.
pub async fn shut_down_tracers(provider: SdkTracerProvider) {
    blocking(move || provider.shutdown())
        .await
        .expect("shutdown");
}

/// The resource every pipeline here exports: service `test-support-svc`, environment
/// `test`.
pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name("test-support-svc")
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build()
}

fn meter_provider(to: &impl OtlpListener, o: &Options) -> SdkMeterProvider {
    let exporter = match o.protocol {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            if o.secret_header {
                metadata.insert("authorization", SECRET.parse().expect("metadata"));
            }
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(to.grpc_endpoint())
                .with_timeout(o.timeout)
                .with_retry_policy(o.retry.clone())
                .with_metadata(metadata)
                .with_temporality(o.temporality)
                .build()
                .expect("grpc metric exporter")
        }
        Protocol::HttpProtobuf => {
            let mut headers = HashMap::new();
            if o.secret_header {
                headers.insert("authorization".to_owned(), SECRET.to_owned());
            }
            MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/metrics", to.http_endpoint()))
                .with_timeout(o.timeout)
                .with_retry_policy(o.retry.clone())
                .with_headers(headers)
                .with_temporality(o.temporality)
                .build()
                .expect("http metric exporter")
        }
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(3600))
        .build();
    SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(reader)
        .build()
}

fn tracer_provider(to: &impl OtlpListener, o: &Options) -> SdkTracerProvider {
    let exporter = match o.protocol {
        Protocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(to.grpc_endpoint())
            .with_timeout(o.timeout)
            .with_retry_policy(o.retry.clone())
            .build()
            .expect("grpc span exporter"),
        Protocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", to.http_endpoint()))
            .with_timeout(o.timeout)
            .with_retry_policy(o.retry.clone())
            .build()
            .expect("http span exporter"),
    };
    SdkTracerProvider::builder()
        .with_resource(resource())
        .with_batch_exporter(exporter)
        .build()
}

/// Runs a blocking SDK call (force_flush, shutdown) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}
