//! Cross-origin requests from browser apps.
//!
//! The seller is named by a header, never a cookie, so a page on another origin can do no more
//! than any HTTP client: by default every origin may call the API, without credentials, as the
//! Node.js service allowed (`cors()`). `CORS_ALLOWED_ORIGINS` narrows it to a list; an origin
//! outside it gets 403 `ORIGIN_NOT_ALLOWED`, a preflight included, and nothing runs. A page
//! served by this server itself (Swagger UI) is same-origin and always passes.
//!
//! Preflights answer 204 before the rate limiter and the seller check: a browser sends them
//! without the request's headers.

use std::collections::HashSet;

use poem::{
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    Endpoint, IntoResponse, Middleware, Request, Response,
};

use crate::api::{
    error::{codes, Problem},
    request_context,
};

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
/// What clients send: the seller or the token, bodies, conditional and idempotent writes,
/// stream resumes.
const ALLOW_HEADERS: &str = "Authorization, Cache-Control, Content-Type, Idempotency-Key, \
    If-Match, If-None-Match, Last-Event-ID, X-Request-Id, X-Seller-Id";
/// What clients read beyond the CORS-safelisted response headers.
const EXPOSE_HEADERS: &str = "ETag, Location, Retry-After, RateLimit, RateLimit-Policy, \
    WWW-Authenticate, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Request-Id";
/// How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
const MAX_AGE_SECS: &str = "7200";

/// The origins allowed to call the API: `None` for any.
#[derive(Clone, Debug)]
pub struct Cors {
    origins: Option<HashSet<String>>,
}

impl Cors {
    /// Any origin when `origins` is empty, else exactly those.
    pub fn new(origins: Vec<String>) -> Self {
        Self {
            origins: (!origins.is_empty()).then(|| origins.into_iter().collect()),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorsEndpoint {
            inner,
            policy: self.clone(),
        }
    }
}

pub struct CorsEndpoint<E> {
    inner: E,
    policy: Cors,
}

/// Whether `origin` is the origin the request was sent to (`Host`, either scheme).
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let target = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    host.is_some() && target == host
}

/// The `Access-Control-Allow-Origin` value for `origin`, or `None` when it is refused.
fn allowed(policy: &Cors, headers: &HeaderMap, origin: &HeaderValue) -> Option<HeaderValue> {
    let Some(origins) = &policy.origins else {
        return Some(HeaderValue::from_static("*"));
    };
    let text = origin.to_str().ok()?;
    (origins.contains(text) || same_origin(headers, text)).then(|| origin.clone())
}

fn preflight(allow_origin: HeaderValue) -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS)
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS)
        .header(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECS)
        .header(header::VARY, "Origin")
        .finish()
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            return Ok(self.inner.call(req).await?.into_response());
        };
        let Some(allow_origin) = allowed(&self.policy, req.headers(), &origin) else {
            let problem = Problem::new(
                StatusCode::FORBIDDEN,
                codes::ORIGIN_NOT_ALLOWED,
                format!(
                    "Origin {} may not call this API; the deployment allows a list of origins \
                     (CORS_ALLOWED_ORIGINS)",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            );
            return Ok(request_context::answer(&req, problem));
        };
        let is_preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            return Ok(preflight(allow_origin));
        }
        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        let headers = resp.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        h
    }

    #[test]
    fn which_origins_pass() {
        let any = Cors::new(Vec::new());
        let listed = Cors::new(vec!["https://shop.example".into()]);
        let h = headers("api.example:3001");
        let origin = |o: &'static str| HeaderValue::from_static(o);
        let cases = [
            (&any, "https://elsewhere.example", Some("*")),
            (
                &listed,
                "https://shop.example",
                Some("https://shop.example"),
            ),
            (&listed, "https://shop.example.evil", None),
            (&listed, "http://shop.example", None),
            (&listed, "null", None),
            (
                &listed,
                "http://api.example:3001",
                Some("http://api.example:3001"),
            ),
            (&listed, "http://api.example:30011", None),
        ];
        for (policy, o, expected) in cases {
            let got = allowed(policy, &h, &origin(o));
            assert_eq!(
                got.as_ref().and_then(|v| v.to_str().ok()),
                expected,
                "{o} with {policy:?}"
            );
        }
    }
}
