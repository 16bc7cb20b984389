//! Every request's context: its id, its span and log line, its metrics, and the security
//! headers of its response.
//!
//! `X-Request-Id` is taken from the client when it is sensible (visible ASCII, at most 128
//! characters) and generated otherwise; it is echoed in the response, recorded on the request's
//! span (so every log line of the request carries it) and named in problem+json `instance`.

use std::time::Instant;

use poem::{
    http::{HeaderValue, Method},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use tracing::Instrument;

use crate::{
    api::{error::Problem, route_of},
    metrics::Metrics,
};

/// The request's id, in the request's extensions for the layers inside.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The problem+json `instance` of a request: its id as a URN, else its path.
pub fn instance(req: &Request) -> String {
    match req.extensions().get::<RequestId>() {
        Some(RequestId(id)) => format!("urn:request:{id}"),
        None => req.uri().path().to_string(),
    }
}

/// `problem` as the answer to `req`, for the layers that answer before the problem layer.
pub fn answer(req: &Request, mut problem: Problem) -> Response {
    problem.instance = Some(instance(req));
    poem::error::ResponseError::as_response(&problem)
}

pub struct RequestContext {
    metrics: Metrics,
}

impl RequestContext {
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestContextEndpoint {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

pub struct RequestContextEndpoint<E> {
    inner: E,
    metrics: Metrics,
}

fn client_request_id(req: &Request) -> Option<String> {
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let fits = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    fits.then(|| v.to_string())
}

/// The route template, a bounded label: unknown paths share one value.
fn route_label(method: &Method, path: &str) -> &'static str {
    match route_of(path) {
        Some((template, _)) => template,
        None if path == "/metrics" => "/metrics",
        None if path == "/api/openapi.json" => "/api/openapi.json",
        None if path.starts_with("/docs") => "/docs",
        None if method == Method::OPTIONS => "preflight",
        None => "unmatched",
    }
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let id = client_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        req.extensions_mut().insert(RequestId(id.clone()));
        let method = req.method().clone();
        let route = route_label(&method, req.uri().path());
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %method,
            route,
            // Recorded by `caller::resolve` once the seller is known.
            seller_id = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut resp = match self.inner.call(req).instrument(span.clone()).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        let latency = started.elapsed();
        let status = resp.status();
        span.record("status", status.as_u16());
        span.record("latency_ms", latency.as_secs_f64() * 1000.0);
        span.in_scope(|| tracing::info!("request finished"));
        self.metrics
            .requests
            .with_label_values(&[route, method.as_str(), status.as_str()])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[route, method.as_str()])
            .observe(latency.as_secs_f64());

        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert("x-request-id", v);
        }
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        Ok(resp)
    }
}
