//! The exporters' I/O runs on a small runtime the pipeline owns, so exporting works from
//! plain `fn main`, a current-thread runtime or a multi-thread one alike, and never needs
//! the application's reactor.

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::fmt;
use std::sync::Arc;

/// An HTTP client whose requests run on the pipeline's runtime, whatever thread (and
/// executor) the SDK's export loop calls it from.
pub(crate) struct RuntimeHttpClient {
    handle: tokio::runtime::Handle,
    inner: Arc<dyn HttpClient>,
}

impl RuntimeHttpClient {
    pub(crate) fn new(handle: tokio::runtime::Handle, inner: Arc<dyn HttpClient>) -> Self {
        Self { handle, inner }
    }
}

impl fmt::Debug for RuntimeHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHttpClient").finish_non_exhaustive()
    }
}

#[async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let inner = self.inner.clone();
        self.handle
            .spawn(async move { inner.send_bytes(request).await })
            .await
            .map_err(|e| -> HttpError { Box::new(e) })?
    }
}

/// The pipeline's runtime: one worker thread, named so it is recognisable. Dropping it
/// never blocks: the runtime shuts down in the background, so it may be dropped anywhere,
/// an application's async context included (where dropping a tokio `Runtime` panics).
pub(crate) struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl ExportRuntime {
    /// Starts the runtime's worker.
    pub(crate) fn start() -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("scalewatch-export")
            .enable_all()
            .build()
            .map(|runtime| Self(Some(runtime)))
    }

    /// The runtime; `None` only while it is being dropped.
    pub(crate) fn get(&self) -> Option<&tokio::runtime::Runtime> {
        self.0.as_ref()
    }
}

impl fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportRuntime").finish_non_exhaustive()
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Whatever the exporters still had in flight was given up by the providers'
            // shutdown (or its deadline); nothing is waited for here.
            runtime.shutdown_background();
        }
    }
}
