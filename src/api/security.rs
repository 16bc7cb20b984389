//! The `SellerIdHeader` security scheme's checker, called by the generated routing.

use poem::Request;
use poem_openapi::auth::ApiKey;

use crate::{
    api::error::{codes, Problem},
    domain::{SellerId, SellerIdError},
};

/// What an authenticated operation receives: the calling seller.
pub type Principal = SellerId;

/// Checks `X-Seller-Id`. A missing header never reaches here: poem-openapi rejects it first
/// and the problem layer names it `MISSING_SELLER_ID`.
pub async fn seller_id_header(_req: &Request, key: ApiKey) -> poem::Result<Principal> {
    SellerId::parse(&key.key).map_err(|e| {
        let message = match e {
            SellerIdError::TooLong => format!("Invalid seller identifier: {e}"),
            SellerIdError::Malformed => format!("Invalid seller identifier: {e}"),
        };
        Problem::new(
            poem::http::StatusCode::UNAUTHORIZED,
            codes::INVALID_SELLER_ID,
            message,
        )
        .into()
    })
}
