//! The `SellerIdHeader` security scheme's checker, called by the generated routing.

use poem::Request;
use poem_openapi::auth::ApiKey;

use crate::{api::caller::Caller, domain::SellerId};

/// What an authenticated operation receives: the calling seller.
pub type Principal = SellerId;

/// The seller `X-Seller-Id` names, as resolved once for the request (the key itself is the same
/// header). A missing header never reaches here: poem-openapi rejects it first and the problem
/// layer names it `MISSING_SELLER_ID`.
pub async fn seller_id_header(req: &Request, _key: ApiKey) -> poem::Result<Principal> {
    Caller::of_request(req).require().map_err(poem::Error::from)
}
