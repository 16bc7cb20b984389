//! The seller and the scopes a verified token's claims carry.

use serde_json::{Map, Value};

use super::TokenError;
use crate::domain::{Grant, Identity, SellerId};

pub(super) fn identity(
    claims: &Map<String, Value>,
    seller_claim: &str,
) -> Result<Identity, TokenError> {
    let raw = claims
        .get(seller_claim)
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::MissingClaim(seller_claim.to_string()))?;
    let seller = SellerId::parse(raw).map_err(|error| TokenError::InvalidSeller {
        claim: seller_claim.to_string(),
        error,
    })?;
    Ok(Identity {
        seller,
        grant: Grant::Scopes(scopes(claims)),
        // Verified present before the claims reach here.
        expires_at: claims
            .get("exp")
            .and_then(Value::as_i64)
            .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0)),
    })
}

/// `scope` (RFC 8693: space-separated) and `scp` (a list, or space-separated), together.
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_string)),
            Some(Value::Array(items)) => {
                out.extend(items.iter().filter_map(Value::as_str).map(str::to_string));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_seller_claim_is_checked_and_scopes_come_from_scope_and_scp() {
        let id = identity(
            &claims(json!({"seller_id": "seller-a", "scope": "products:read  imports:write", "scp": ["products:write"]})),
            "seller_id",
        )
        .expect("valid");
        assert_eq!(id.seller.as_str(), "seller-a");
        for s in ["products:read", "imports:write", "products:write"] {
            assert!(id.grant.allows(s), "{s}");
        }
        assert!(!id.grant.allows("products"));
        assert_eq!(
            identity(&claims(json!({"sub": "seller-a"})), "seller_id"),
            Err(TokenError::MissingClaim("seller_id".into()))
        );
        assert_eq!(
            identity(&claims(json!({"seller_id": 7})), "seller_id"),
            Err(TokenError::MissingClaim("seller_id".into()))
        );
        assert!(matches!(
            identity(&claims(json!({"sub": "alice"})), "sub"),
            Err(TokenError::InvalidSeller { .. })
        ));
        let none = identity(&claims(json!({"seller_id": "seller-a"})), "seller_id").expect("valid");
        assert_eq!(none.grant, Grant::Scopes(vec![]));
    }
}
