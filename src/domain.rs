//! Value types shared by every layer.

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

/// An amount of money as stored: integer cents, so sums and comparisons are exact. Shown to
/// clients as a number with at most two decimals (`29.99`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money {
    cents: i64,
}

impl Money {
    pub fn from_cents(cents: i64) -> Self {
        Self { cents }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    /// An amount given in currency units (`29.99`), if it has at most two decimals.
    pub fn from_units(units: f64) -> Option<Self> {
        let cents = units * 100.0;
        (crate::validation::is_multiple_of(units, 0.01) && cents.abs() < i64::MAX as f64)
            .then(|| Self::from_cents(cents.round() as i64))
    }

    /// The amount in currency units, as a JSON number (`2999` cents is `29.99`).
    pub fn units(self) -> f64 {
        self.cents as f64 / 100.0
    }
}

impl fmt::Display for Money {
    /// The shortest decimal that reads back as the same amount (`29.99`, `5`, `0.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.units())
    }
}

#[cfg(test)]
mod money_tests {
    use super::Money;

    #[test]
    fn cents_show_as_the_shortest_decimal() {
        for (cents, shown) in [
            (2999, "29.99"),
            (500, "5"),
            (50, "0.5"),
            (1, "0.01"),
            (0, "0"),
        ] {
            assert_eq!(Money::from_cents(cents).to_string(), shown);
            assert_eq!(Money::from_cents(cents).cents(), cents);
        }
    }

    #[test]
    fn units_with_more_than_two_decimals_are_no_amount() {
        assert_eq!(Money::from_units(29.99), Some(Money::from_cents(2999)));
        assert_eq!(Money::from_units(0.1 + 0.2), Some(Money::from_cents(30)));
        for bad in [29.999, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(Money::from_units(bad), None, "{bad}");
        }
    }
}
