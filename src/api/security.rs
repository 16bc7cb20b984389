//! The `SellerIdHeader` security scheme's checker, called by the generated routing.

use poem::Request;
use poem_openapi::auth::ApiKey;

use crate::{
    api::error::{codes, Problem},
    domain::SellerId,
};

/// What an authenticated operation receives: the calling seller.
pub type Principal = SellerId;

/// A seller id from a header or query value, or the 401 `INVALID_SELLER_ID` problem.
pub fn parse_seller(raw: &str) -> Result<SellerId, Problem> {
    SellerId::parse(raw).map_err(|e| {
        Problem::new(
            poem::http::StatusCode::UNAUTHORIZED,
            codes::INVALID_SELLER_ID,
            format!("Invalid seller identifier: {e}"),
        )
    })
}

/// Checks `X-Seller-Id`. A missing header never reaches here: poem-openapi rejects it first
/// and the problem layer names it `MISSING_SELLER_ID`.
pub async fn seller_id_header(_req: &Request, key: ApiKey) -> poem::Result<Principal> {
    parse_seller(&key.key).map_err(poem::Error::from)
}
