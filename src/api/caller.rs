//! The seller a request names, parsed and validated once.
//!
//! `X-Seller-Id` names the seller; on the event stream, which browsers open with an
//! `EventSource` that cannot set headers, the `sellerId` query parameter may name it instead.
//! [`resolve`] reads it once per request, before anything needs it, and leaves the
//! [`Caller`] in the request's extensions: the rate limiter keys on it, the problem renderer
//! tells a missing seller from a malformed one by it, the security checker turns it into the
//! handler's `Principal`, the stream's handler receives it, and the request's log span records
//! it.

use std::sync::Arc;

use poem::{http::StatusCode, Endpoint, IntoResponse, Request, Response};

use crate::{
    api::{
        error::{codes, Problem},
        query_param,
    },
    domain::{SellerId, SellerIdError},
};

/// The one operation that also takes the seller from its query.
const STREAM_PATH: &str = "/api/events/stream";

/// Who a request says it acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Seller(SellerId),
    /// A seller was named but is not a valid seller id.
    Invalid(SellerIdError),
    /// No seller named; `in_query` where the query could have named it (the stream).
    Missing {
        in_query: bool,
    },
}

impl Caller {
    fn of(req: &Request) -> Self {
        let header = req.headers().get("x-seller-id").map(|v| v.to_str());
        let raw = match header {
            Some(Ok(v)) => Some(v.to_string()),
            Some(Err(_)) => return Self::Invalid(SellerIdError::NotVisibleAscii),
            None if req.uri().path() == STREAM_PATH => query_param(req.uri().query(), "sellerId"),
            None => None,
        };
        match raw.map(|r| SellerId::parse(&r)) {
            Some(Ok(seller)) => Self::Seller(seller),
            Some(Err(e)) => Self::Invalid(e),
            None => Self::Missing {
                in_query: req.uri().path() == STREAM_PATH,
            },
        }
    }

    /// The request's caller, as [`resolve`] left it.
    pub fn of_request(req: &Request) -> &Self {
        req.extensions()
            .get::<Self>()
            .unwrap_or(&Self::Missing { in_query: false })
    }

    pub fn seller(&self) -> Option<&SellerId> {
        match self {
            Self::Seller(seller) => Some(seller),
            _ => None,
        }
    }

    /// The seller, or the 401 `MISSING_SELLER_ID` / `INVALID_SELLER_ID` problem.
    pub fn require(&self) -> Result<SellerId, Problem> {
        match self {
            Self::Seller(seller) => Ok(seller.clone()),
            Self::Invalid(e) => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                codes::INVALID_SELLER_ID,
                format!("Invalid seller identifier: {e}"),
            )),
            Self::Missing { in_query } => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                codes::MISSING_SELLER_ID,
                match in_query {
                    true => "X-Seller-Id header (or sellerId query parameter) required",
                    false => "X-Seller-Id header required",
                },
            )),
        }
    }
}

/// Resolves `req`'s [`Caller`] once, then passes it on (`EndpointExt::around`).
pub async fn resolve<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let caller = Caller::of(&req);
    if let Some(seller) = caller.seller() {
        tracing::Span::current().record("seller_id", seller.as_str());
    }
    req.extensions_mut().insert(caller);
    Ok(next.call(req).await?.into_response())
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
        Caller::of(&builder.finish())
    }

    #[test]
    fn the_header_names_the_seller_and_the_stream_also_takes_the_query() {
        let alice = SellerId::parse("seller-alice").expect("valid");
        let bob = SellerId::parse("seller-bob").expect("valid");
        let cases = [
            (
                "/api/products",
                Some(&b"seller-alice"[..]),
                Caller::Seller(alice.clone()),
            ),
            (
                "/api/products?sellerId=seller-bob",
                None,
                Caller::Missing { in_query: false },
            ),
            (
                "/api/events/stream?sellerId=seller-bob",
                None,
                Caller::Seller(bob),
            ),
            (
                "/api/events/stream?sellerId=seller-bob",
                Some(&b"seller-alice"[..]),
                Caller::Seller(alice),
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
}
