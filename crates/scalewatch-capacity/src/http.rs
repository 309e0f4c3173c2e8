//! The report as JSON on an HTTP route, so that a load generator (`scalewatch ramp`) or an
//! operator can read what the service sees from inside.

use crate::CapacityModel;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

/// The path scalewatch's tools look for by default.
pub const REPORT_PATH: &str = "/debug/scalewatch";

/// A `tower` service that answers `GET` (and `HEAD`) with the model's current
/// [`CapacityReport`](crate::CapacityReport) as JSON, and any other method with
/// `405 Method Not Allowed`. Mount it on a route of your choice; nothing is served unless
/// you do.
///
/// The report holds tier and resource names, load figures and fits: no request data, no
/// keys, no headers. It still tells an outsider how close the service is to its limits,
/// so keep the route on an internal listener or behind your authentication.
///
/// ```
/// use axum::Router;
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_capacity::{CapacityModel, REPORT_PATH};
///
/// let meter = opentelemetry::global::meter_provider().meter("example");
/// let model = CapacityModel::new(&meter);
/// let app: Router = Router::new().route_service(REPORT_PATH, model.report_service());
/// ```
#[derive(Clone)]
pub struct ReportService {
    model: CapacityModel,
}

impl std::fmt::Debug for ReportService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportService").finish_non_exhaustive()
    }
}

impl CapacityModel {
    /// A service that serves this model's report as JSON; see [`ReportService`].
    pub fn report_service(&self) -> ReportService {
        ReportService {
            model: self.clone(),
        }
    }
}

impl<B> tower_service::Service<Request<B>> for ReportService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.respond(request.method())))
    }
}

impl ReportService {
    fn respond(&self, method: &Method) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match *method {
            Method::GET | Method::HEAD => match serde_json::to_vec(&self.model.report()) {
                Ok(json) => (StatusCode::OK, "application/json", json),
                // Plain data does not fail to encode; should that ever change, answer
                // with the reason rather than take the route down.
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("cannot encode the report: {e}\n").into_bytes(),
                ),
            },
            _ => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"use GET\n".to_vec(),
            ),
        };
        let body = if *method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(body)
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        }
        response
    }
}
