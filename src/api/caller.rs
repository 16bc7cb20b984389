//! Who a request acts for, established once.
//!
//! `AUTH_MODE=header`: `X-Seller-Id` names the seller, which a trusted gateway or network
//! vouches for. `AUTH_MODE=jwt`: `Authorization: Bearer <JWT>` proves it, and an `X-Seller-Id`
//! sent as well must agree. On the event stream, which browsers open with an `EventSource`
//! that cannot set headers, the query may carry them instead (`sellerId`, `access_token`).
//!
//! [`Resolve`] runs once per request, before anything needs the answer, and leaves the
//! [`Caller`] in the request's extensions: the rate limiter keys on it, the problem renderer
//! explains a rejection by it, the security checkers turn it into the handler's principal, and
//! the request's log span records the seller (never the token).

use std::sync::Arc;

use poem::{http::StatusCode, Endpoint, IntoResponse, Middleware, Request, Response};

use crate::{
    api::{
        error::{codes, Problem},
        query_param,
    },
    domain::{Identity, SellerId, SellerIdError},
    infra::identity::{TokenError, Verifier},
};

/// The one operation that also takes its credentials from the query.
const STREAM_PATH: &str = "/api/events/stream";

/// Who a request says it acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Authenticated(Identity),
    /// A seller was named but is not a valid seller id (header mode).
    Invalid(SellerIdError),
    /// No seller named (header mode); `in_query` where the query could have named it.
    Missing {
        in_query: bool,
    },
    /// No bearer token (jwt mode).
    NoToken {
        in_query: bool,
    },
    /// A bearer token that does not verify (jwt mode).
    BadToken(TokenError),
    /// `X-Seller-Id` (or `sellerId`) names another seller than the token (jwt mode).
    Mismatch,
}

impl Caller {
    /// Header mode: the seller `X-Seller-Id` (or, on the stream, `sellerId`) names.
    fn from_header(req: &Request) -> Self {
        let in_query = req.uri().path() == STREAM_PATH;
        let raw = match named_seller(req) {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => return Self::Invalid(e),
            None => return Self::Missing { in_query },
        };
        match SellerId::parse(&raw) {
            Ok(seller) => Self::Authenticated(Identity::trusted(seller)),
            Err(e) => Self::Invalid(e),
        }
    }

    /// Jwt mode: the seller a verified bearer token names.
    async fn from_token(req: &Request, verifier: &Verifier) -> Self {
        let in_query = req.uri().path() == STREAM_PATH;
        let token = match bearer(req) {
            Some(token) => token,
            None if in_query => match query_param(req.uri().query(), "access_token") {
                Some(token) => token,
                None => return Self::NoToken { in_query },
            },
            None => return Self::NoToken { in_query },
        };
        let identity = match verifier.verify(&token).await {
            Ok(identity) => identity,
            Err(e) => return Self::BadToken(e),
        };
        match named_seller(req) {
            Some(Ok(raw)) if raw == identity.seller.as_str() => Self::Authenticated(identity),
            Some(_) => Self::Mismatch,
            None => Self::Authenticated(identity),
        }
    }

    /// The request's caller, as [`Resolve`] left it.
    pub fn of_request(req: &Request) -> &Self {
        req.extensions()
            .get::<Self>()
            .unwrap_or(&Self::Missing { in_query: false })
    }

    pub fn seller(&self) -> Option<&SellerId> {
        match self {
            Self::Authenticated(identity) => Some(&identity.seller),
            _ => None,
        }
    }

    /// The identity, or the problem that explains why there is none.
    pub fn require(&self) -> Result<Identity, Problem> {
        let unauthorized =
            |code, message: String| Err(Problem::new(StatusCode::UNAUTHORIZED, code, message));
        match self {
            Self::Authenticated(identity) => Ok(identity.clone()),
            Self::Invalid(e) => unauthorized(
                codes::INVALID_SELLER_ID,
                format!("Invalid seller identifier: {e}"),
            ),
            Self::Missing { in_query } => unauthorized(
                codes::MISSING_SELLER_ID,
                match in_query {
                    true => "X-Seller-Id header (or sellerId query parameter) required",
                    false => "X-Seller-Id header required",
                }
                .to_string(),
            ),
            Self::NoToken { in_query } => unauthorized(
                codes::MISSING_TOKEN,
                match in_query {
                    true => "Authorization: Bearer <token> (or the access_token query parameter) required",
                    false => "Authorization: Bearer <token> required",
                }
                .to_string(),
            ),
            Self::BadToken(TokenError::KeysUnavailable(e)) => {
                tracing::warn!(error = %e, "cannot verify a token: no keys");
                Err(Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    codes::IDENTITY_PROVIDER_UNAVAILABLE,
                    "The identity provider's keys cannot be fetched; try again shortly",
                ))
            }
            Self::BadToken(e) => {
                unauthorized(codes::INVALID_TOKEN, format!("Invalid bearer token: {e}"))
            }
            Self::Mismatch => Err(Problem::new(
                StatusCode::FORBIDDEN,
                codes::SELLER_MISMATCH,
                "X-Seller-Id names a different seller than the bearer token",
            )),
        }
    }
}

/// The raw seller `X-Seller-Id` names, or on the stream the `sellerId` query parameter.
fn named_seller(req: &Request) -> Option<Result<String, SellerIdError>> {
    match req.headers().get("x-seller-id").map(|v| v.to_str()) {
        Some(Ok(v)) => Some(Ok(v.to_string())),
        Some(Err(_)) => Some(Err(SellerIdError::NotVisibleAscii)),
        None if req.uri().path() == STREAM_PATH => {
            query_param(req.uri().query(), "sellerId").map(Ok)
        }
        None => None,
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// Resolves every request's [`Caller`] once, then passes it on.
pub struct Resolve {
    /// `None` in header mode.
    pub verifier: Option<Arc<Verifier>>,
}

impl<E: Endpoint> Middleware<E> for Resolve {
    type Output = ResolveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ResolveEndpoint {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

pub struct ResolveEndpoint<E> {
    inner: E,
    verifier: Option<Arc<Verifier>>,
}

impl<E: Endpoint> Endpoint for ResolveEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let caller = match &self.verifier {
            None => Caller::from_header(&req),
            // Only `/api` operations act for a seller; health, docs and the contract do not.
            Some(_) if !req.uri().path().starts_with("/api/") => {
                Caller::NoToken { in_query: false }
            }
            Some(verifier) => Caller::from_token(&req, verifier).await,
        };
        if let Some(seller) = caller.seller() {
            tracing::Span::current().record("seller_id", seller.as_str());
        }
        let stream_until = match (&caller, req.uri().path() == STREAM_PATH) {
            (Caller::Authenticated(identity), true) => identity.expires_at,
            _ => None,
        };
        req.extensions_mut().insert(caller);
        let resp = self.inner.call(req).await?.into_response();
        Ok(match stream_until {
            Some(at) => end_at(resp, at),
            None => resp,
        })
    }
}

/// An event stream opened with a token ends when the token expires: the stream must not
/// outlive the credentials that opened it. The client reconnects with a fresh token and
/// `Last-Event-ID`, and misses nothing.
fn end_at(mut resp: Response, at: chrono::DateTime<chrono::Utc>) -> Response {
    use futures::StreamExt;
    if !resp.status().is_success() {
        return resp;
    }
    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    let body = resp.take_body().into_bytes_stream();
    let until = tokio::time::sleep(left);
    resp.set_body(poem::Body::from_bytes_stream(body.take_until(until)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uri: &str, header: Option<&[u8]>) -> Caller {
        let mut builder = Request::builder().uri(uri.parse().expect("uri"));
        if let Some(h) = header {
            builder = builder.header(
                "x-seller-id",
                poem::http::HeaderValue::from_bytes(h).expect("header"),
            );
        }
        Caller::from_header(&builder.finish())
    }

    #[test]
    fn the_header_names_the_seller_and_the_stream_also_takes_the_query() {
        let seller =
            |s| Caller::Authenticated(Identity::trusted(SellerId::parse(s).expect("valid")));
        let cases = [
            (
                "/api/products",
                Some(&b"seller-alice"[..]),
                seller("seller-alice"),
            ),
            (
                "/api/products?sellerId=seller-bob",
                None,
                Caller::Missing { in_query: false },
            ),
            (
                "/api/events/stream?sellerId=seller-bob",
                None,
                seller("seller-bob"),
            ),
            (
                "/api/events/stream?sellerId=seller-bob",
                Some(&b"seller-alice"[..]),
                seller("seller-alice"),
            ),
            (
                "/api/products",
                Some(&b"alice"[..]),
                Caller::Invalid(SellerIdError::Malformed),
            ),
            (
                "/api/products",
                Some(&b"seller-\xe9"[..]),
                Caller::Invalid(SellerIdError::NotVisibleAscii),
            ),
            ("/api/products", None, Caller::Missing { in_query: false }),
            (
                "/api/events/stream",
                None,
                Caller::Missing { in_query: true },
            ),
        ];
        for (uri, header, expected) in cases {
            assert_eq!(caller(uri, header), expected, "{uri} {header:?}");
        }
    }

    #[test]
    fn only_a_bearer_authorization_carries_a_token() {
        let token = |v: &str| bearer(&Request::builder().header("authorization", v).finish());
        assert_eq!(token("Bearer abc.def.ghi"), Some("abc.def.ghi".into()));
        assert_eq!(token("bearer  abc"), Some("abc".into()));
        assert_eq!(token("Basic YWxhZGRpbjpvcGVu"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(token("Bearer"), None);
    }
}
