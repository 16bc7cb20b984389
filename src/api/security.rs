//! The security schemes' checkers, called by the generated routing, and the scope check every
//! operation's generated route makes before its handler runs.

use poem::{http::StatusCode, Request};
use poem_openapi::auth::{ApiKey, Bearer};
use serde_json::json;

use crate::{
    api::{
        caller::Caller,
        error::{codes, Problem},
    },
    domain::{Identity, SellerId},
};

/// What a security checker hands the generated route: the caller's identity and grant.
pub type Principal = Identity;

/// What an operation's handler receives once the route checked the operation's scope.
pub type Seller = SellerId;

/// Both schemes read the caller resolved once for the request: in header mode the seller
/// `X-Seller-Id` names, in jwt mode the verified token's (an `X-Seller-Id` then only has to
/// agree). A request with neither credential never reaches here: poem-openapi rejects it and
/// the problem layer explains it by the caller.
pub async fn seller_id_header(req: &Request, _key: ApiKey) -> poem::Result<Principal> {
    Caller::of_request(req).require().map_err(poem::Error::from)
}

pub async fn bearer_token(req: &Request, _token: Bearer) -> poem::Result<Principal> {
    Caller::of_request(req).require().map_err(poem::Error::from)
}

/// The seller, when `principal` holds `scope` (the operation's `x-scope`), else 403
/// `INSUFFICIENT_SCOPE`.
pub fn authorize(principal: Principal, scope: Option<&str>) -> Result<Seller, Problem> {
    match scope {
        Some(scope) if !principal.grant.allows(scope) => Err(Problem::new(
            StatusCode::FORBIDDEN,
            codes::INSUFFICIENT_SCOPE,
            format!("The bearer token lacks the `{scope}` scope this operation requires"),
        )
        .with_details(json!({ "required_scope": scope }))),
        _ => Ok(principal.seller),
    }
}

/// As [`authorize`], for operations that resolve their caller themselves (`x-caller`).
pub fn authorize_caller(caller: &Caller, scope: Option<&str>) -> Result<Seller, Problem> {
    authorize(caller.require()?, scope)
}
