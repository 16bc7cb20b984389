//! Per-seller rate limiting of `/api` operations.
//!
//! Standard operations count against the seller's standard policy, operations the spec marks
//! `x-rate-limit-class: bulk` against the bulk one (and not also against standard). Requests
//! without a valid seller id count against the anonymous policy of their client address before
//! the routing rejects them. The spec, `/docs` and health endpoints are not limited.
//!
//! Every limited response carries the `X-RateLimit-*` and IETF `RateLimit*` headers; a
//! rejection is 429 problem+json with an accurate `Retry-After`. While the store is down and
//! the limiter fails open, no headers are sent rather than made-up numbers.

use poem::{
    http::{HeaderName, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response,
};
use serde_json::json;

use crate::{
    api::{
        caller::Caller,
        error::{codes, Problem},
        generated, request_context, route_of,
    },
    infra::rate_limit::{rate_limit_headers, Decision, Policy, PolicyClass, RateLimits},
};

/// Limits requests with `RateLimits`, or passes everything when there are none
/// (`RATE_LIMIT_ENABLED=false`).
pub struct RateLimitLayer(Option<RateLimits>);

impl RateLimitLayer {
    pub fn new(limits: Option<RateLimits>) -> Self {
        Self(limits)
    }
}

impl<E: Endpoint> Middleware<E> for RateLimitLayer {
    type Output = RateLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RateLimitEndpoint {
            inner,
            limits: self.0.clone(),
        }
    }
}

pub struct RateLimitEndpoint<E> {
    inner: E,
    limits: Option<RateLimits>,
}

impl RateLimits {
    /// The key and policy a request counts against, or `None` when it is not limited.
    fn classify(&self, req: &Request) -> Option<(String, &Policy)> {
        let path = req.uri().path();
        if !path.starts_with("/api/") || path == "/api/openapi.json" {
            return None;
        }
        let seller = Caller::of_request(req).seller();
        let Some(seller) = seller else {
            let client = req
                .remote_addr()
                .as_socket_addr()
                .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
            return Some((client, &self.anonymous));
        };
        let bulk = route_of(path).is_some_and(|(template, _)| {
            generated::BULK_OPERATIONS
                .iter()
                .any(|(m, p)| *m == req.method().as_str() && *p == template)
        });
        let policy = match bulk {
            true => &self.bulk,
            false => &self.standard,
        };
        Some((seller.as_str().to_string(), policy))
    }
}

fn add_headers(resp: &mut Response, decision: &Decision) {
    if decision.degraded {
        return;
    }
    for (name, value) in rate_limit_headers(decision) {
        resp.headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

fn rejection(decision: &Decision, instance: String) -> Response {
    let retry_after = decision.retry_after_secs.unwrap_or(1);
    let who = match decision.policy {
        PolicyClass::Anonymous => "per client address",
        _ => "per seller",
    };
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMIT_EXCEEDED,
        format!(
            "Rate limit exceeded. Maximum {} requests per {}s {who}.",
            decision.limit, decision.window_secs
        ),
    )
    .with_details(json!({
        "limit": decision.limit,
        "window": format!("{}s", decision.window_secs),
        "retry_after": retry_after,
        "policy": decision.policy.as_str(),
    }));
    problem.instance = Some(instance);
    let mut resp = poem::error::ResponseError::as_response(&problem);
    add_headers(&mut resp, decision);
    resp
}

impl<E: Endpoint> Endpoint for RateLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let limited = self
            .limits
            .as_ref()
            .and_then(|l| Some((l, l.classify(&req)?)));
        let Some((limits, (key, policy))) = limited else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let decision = limits.limiter.decide(&key, policy).await;
        if !decision.allowed {
            limits
                .metrics
                .rate_limited
                .with_label_values(&[decision.policy.as_str()])
                .inc();
            return Ok(rejection(&decision, request_context::instance(&req)));
        }
        let mut resp = self.inner.call(req).await?.into_response();
        add_headers(&mut resp, &decision);
        Ok(resp)
    }
}
