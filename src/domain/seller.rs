//! The seller: who is calling, validated once.

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
    /// A header value with bytes that are not visible ASCII.
    #[error("not visible ASCII")]
    NotVisibleAscii,
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

    /// A seller id read back from storage, where only parsed ids are written.
    pub(crate) fn stored(raw: &str) -> Self {
        Self(raw.to_string())
    }
}

impl fmt::Display for SellerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
}
