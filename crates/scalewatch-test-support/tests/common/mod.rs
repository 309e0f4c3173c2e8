//! Builders for real OpenTelemetry SDK pipelines pointed at a test receiver.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    MetricExporter, Protocol, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

pub const SECRET: &str = "sentinel-secret-7f3a";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Http,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub transport: Transport,
    pub temporality: Temporality,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub secret_header: bool,
}

impl Options {
    pub fn new(transport: Transport) -> Self {
        Options {
            transport,
            temporality: Temporality::Cumulative,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::disabled(),
            secret_header: false,
        }
    }
}

pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name("test-support-svc")
        .with_attribute(KeyValue::new("deployment.environment", "test"))
        .build()
}

/// A meter provider whose periodic reader effectively only exports on force_flush/shutdown.
/// Must be called inside a Tokio runtime (the tonic channel spawns onto it).
pub fn meter_provider(grpc_endpoint: &str, http_endpoint: &str, o: &Options) -> SdkMeterProvider {
    let exporter = match o.transport {
        Transport::Grpc => {
            let mut metadata = MetadataMap::new();
            if o.secret_header {
                metadata.insert("authorization", SECRET.parse().expect("metadata"));
            }
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(grpc_endpoint)
                .with_timeout(o.timeout)
                .with_retry_policy(o.retry.clone())
                .with_metadata(metadata)
                .with_temporality(o.temporality)
                .build()
                .expect("grpc metric exporter")
        }
        Transport::Http => {
            let mut headers = HashMap::new();
            if o.secret_header {
                headers.insert("authorization".to_owned(), SECRET.to_owned());
            }
            MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{http_endpoint}/v1/metrics"))
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

pub fn tracer_provider(grpc_endpoint: &str, http_endpoint: &str, o: &Options) -> SdkTracerProvider {
    let exporter = match o.transport {
        Transport::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc_endpoint)
            .with_timeout(o.timeout)
            .with_retry_policy(o.retry.clone())
            .build()
            .expect("grpc span exporter"),
        Transport::Http => SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{http_endpoint}/v1/traces"))
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
