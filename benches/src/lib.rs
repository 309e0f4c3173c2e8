//! Criterion benchmarks of scalewatch's hot paths (unpublished).
//!
//! Each bench in `benches/` runs, in one process and one criterion group, the bare
//! operation, the same operation behind an [`IdentityLayer`], scalewatch's instrumentation,
//! the OpenTelemetry SDK's own unbound and bound records with the same attributes, and the
//! peers where they exist, so that the overhead budgets of the README (differences and ratios)
//! come from a single run. `server_layer_report.sh` runs the server layer's and prints its
//! figures as a table; `suite.sh` runs them all.
//!
//! This library holds only what several benches share.

pub mod route;

use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// A meter provider whose instruments really aggregate (a [`ManualReader`] is attached, and
/// never collects during the run), so that recording costs what it costs in production
/// minus the export. A provider without a reader would hand out no-op instruments.
pub fn aggregating_meter_provider() -> SdkMeterProvider {
    SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
        .build()
}

/// A tower layer that does nothing: the anchor for "any middleware at all".
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityLayer;

impl<S> Layer<S> for IdentityLayer {
    type Service = Identity<S>;

    fn layer(&self, inner: S) -> Identity<S> {
        Identity { inner }
    }
}

/// The service [`IdentityLayer`] produces: forwards `poll_ready` and `call` untouched.
#[derive(Debug, Clone, Copy)]
pub struct Identity<S> {
    inner: S,
}

impl<S, R> Service<R> for Identity<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: R) -> Self::Future {
        self.inner.call(req)
    }
}
