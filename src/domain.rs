//! Small value types shared by every layer.

use std::fmt;

/// A validated seller identifier: `seller-` then ASCII letters and digits, at most 50 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SellerId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SellerIdError {
    #[error("seller id is longer than {} characters", SellerId::MAX_LEN)]
    TooLong,
    #[error("seller id must match ^seller-[a-zA-Z0-9]+$")]
    Malformed,
}

impl SellerId {
    pub const MAX_LEN: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, SellerIdError> {
        if raw.len() > Self::MAX_LEN {
            return Err(SellerIdError::TooLong);
        }
        match raw.strip_prefix("seller-") {
            Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Ok(Self(raw.to_string()))
            }
            _ => Err(SellerIdError::Malformed),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prices travel as JSON numbers with at most two decimals and are stored as integer cents.
pub mod money {
    /// Cents for a price already validated as a positive multiple of 0.01 within range.
    pub fn to_cents(price: f64) -> i64 {
        (price * 100.0).round() as i64
    }

    /// The JSON number for `cents`; `f64` prints the shortest exact decimal, e.g. `29.99`.
    pub fn from_cents(cents: i64) -> f64 {
        cents as f64 / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seller_id_rules() {
        let cases = [
            ("seller-123", true),
            ("seller-abcXYZ09", true),
            ("seller-", false),
            ("seller-a_b", false),
            ("Seller-1", false),
            ("seller-é", false),
            ("", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(SellerId::parse(raw).is_ok(), ok, "case {raw:?}");
        }
        let at_limit = format!("seller-{}", "a".repeat(43));
        assert!(SellerId::parse(&at_limit).is_ok());
        let over = format!("seller-{}", "a".repeat(44));
        assert_eq!(SellerId::parse(&over), Err(SellerIdError::TooLong));
    }

    #[test]
    fn money_round_trips_two_decimals() {
        for cents in [1_i64, 99, 2999, 10_000, 99_999_999_999] {
            assert_eq!(
                money::to_cents(money::from_cents(cents)),
                cents,
                "cents {cents}"
            );
        }
        assert_eq!(money::from_cents(2999).to_string(), "29.99");
    }
}
