//! Limits on a request's head: the URL's length, and the headers' total size and count.
//!
//! hyper, under poem, has fixed caps of its own (100 headers, about 400 KiB of head, 64 KiB
//! of URI) that poem does not let us configure, and it refuses a request past them with a bare
//! 431 or 414. These limits sit below those caps, so every request a client can reasonably
//! send over them gets the problem+json answer with the variable that sets it; config
//! validation keeps them below hyper's.

use poem::{http::StatusCode, Endpoint, IntoResponse, Middleware, Request, Response};
use serde_json::json;

use crate::api::{
    error::{codes, Problem},
    request_context,
};

#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// `MAX_URL_BYTES`: path and query.
    pub max_url_bytes: usize,
    /// `MAX_HEADER_BYTES`: every header's name and value.
    pub max_header_bytes: usize,
    /// `MAX_HEADERS`: header lines.
    pub max_headers: usize,
}

impl HeadLimits {
    /// The problem a request's head earns, if any.
    fn check(&self, req: &Request) -> Option<Problem> {
        let url = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if url > self.max_url_bytes {
            return Some(
                Problem::new(
                    StatusCode::URI_TOO_LONG,
                    codes::URI_TOO_LONG,
                    format!(
                        "The URL is {url} bytes; the limit is {} (MAX_URL_BYTES)",
                        self.max_url_bytes
                    ),
                )
                .with_details(json!({ "limit": self.max_url_bytes })),
            );
        }
        let headers = req.headers();
        if headers.len() > self.max_headers {
            return Some(too_large(
                format!(
                    "The request has {} headers; the limit is {} (MAX_HEADERS)",
                    headers.len(),
                    self.max_headers
                ),
                self.max_headers,
            ));
        }
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        (bytes > self.max_header_bytes).then(|| {
            too_large(
                format!(
                    "The request's headers are {bytes} bytes; the limit is {} (MAX_HEADER_BYTES)",
                    self.max_header_bytes
                ),
                self.max_header_bytes,
            )
        })
    }
}

fn too_large(message: String, limit: usize) -> Problem {
    Problem::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        codes::HEADERS_TOO_LARGE,
        message,
    )
    .with_details(json!({ "limit": limit }))
}

impl<E: Endpoint> Middleware<E> for HeadLimits {
    type Output = HeadLimitsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HeadLimitsEndpoint {
            inner,
            limits: *self,
        }
    }
}

pub struct HeadLimitsEndpoint<E> {
    inner: E,
    limits: HeadLimits,
}

impl<E: Endpoint> Endpoint for HeadLimitsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if let Some(problem) = self.limits.check(&req) {
            return Ok(request_context::answer(&req, problem));
        }
        Ok(self.inner.call(req).await?.into_response())
    }
}
