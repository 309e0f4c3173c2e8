//! Loopback servers and addresses for tests that make real calls.

use scalewatch_otlp::Protocol;
use std::net::SocketAddr;

/// The two loopback addresses an OTLP receiver listens on, one per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtlpAddrs {
    /// The OTLP/gRPC listen address.
    pub grpc: SocketAddr,
    /// The OTLP/HTTP listen address.
    pub http: SocketAddr,
}

/// An OTLP receiver listening on loopback: the [`FakeReceiver`](crate::FakeReceiver) or a
/// [`Rotel`](crate::Rotel) collector.
pub trait OtlpListener {
    /// Where it listens.
    fn addrs(&self) -> OtlpAddrs;

    /// The OTLP/gRPC listen address.
    fn grpc_addr(&self) -> SocketAddr {
        self.addrs().grpc
    }

    /// The OTLP/HTTP listen address.
    fn http_addr(&self) -> SocketAddr {
        self.addrs().http
    }

    /// The OTLP/gRPC endpoint, `http://127.0.0.1:PORT`.
    fn grpc_endpoint(&self) -> String {
        base_url(self.grpc_addr())
    }

    /// The OTLP/HTTP base URL, `http://127.0.0.1:PORT`; exporters append `/v1/metrics`,
    /// `/v1/traces` and `/v1/logs` (give the full URL to exporters that do not).
    fn http_endpoint(&self) -> String {
        base_url(self.http_addr())
    }

    /// The endpoint for `protocol`.
    fn endpoint(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::Grpc => self.grpc_endpoint(),
            Protocol::HttpProtobuf => self.http_endpoint(),
        }
    }
}

/// Serves `app` on an ephemeral loopback port until the test's runtime ends.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Serves the gRPC services of `router` on an ephemeral loopback port until the test's
/// runtime ends.
pub async fn serve_grpc(router: tonic::transport::server::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

/// A loopback listener that accepts connections (up to 10,000), holds them open and never
/// reads or writes: a server that hangs.
pub async fn silent_listener() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..10_000 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => break,
            }
        }
    });
    addr
}

/// Sends `request` through a clone of `service` (waiting until it is ready) and returns
/// the response: one call through a client stack.
///
/// # Panics
/// If the service fails the call.
pub async fn call<S, R>(service: &S, request: R) -> S::Response
where
    S: tower::Service<R> + Clone,
    S::Error: std::fmt::Debug,
{
    tower::ServiceExt::oneshot(service.clone(), request)
        .await
        .expect("the call succeeds")
}

/// A loopback port nothing listens on (bound, then released): a call to it is refused.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

/// The plain-HTTP base URL of a listener, `http://ADDR`: what the fake receiver and the
/// collector harness give exporters, which append their signal's path to it.
pub(crate) fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
