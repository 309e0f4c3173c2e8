//! What every example server does the same way: where it listens, and how it stops and
//! flushes its telemetry on Ctrl-C or SIGTERM.
//!
//! Each example declares `mod common;` (a directory, so Cargo does not take it for an
//! example of its own) and uses the part it needs.

// Each example uses only some of these: the gRPC one does not serve axum.
#![allow(dead_code)]

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The address to listen on: `SCALEWATCH_ADDR`, or `default` when it is not set.
pub(crate) fn listen_addr(default: &str) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let addr = std::env::var("SCALEWATCH_ADDR").unwrap_or_else(|_| default.into());
    Ok(addr.parse()?)
}

/// Binds [`listen_addr`] and says where it listens.
pub(crate) async fn bind(default: &str) -> Result<TcpListener, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(listen_addr(default)?).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

/// Serves `router` on `listener` until [`shutdown_signal`].
pub(crate) async fn serve(listener: TcpListener, router: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

/// Resolves on Ctrl-C or SIGTERM, so that the server stops and the telemetry is flushed.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("shutting down, flushing telemetry");
}
