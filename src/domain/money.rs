//! Money as stored: integer cents.

use std::fmt;

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
mod tests {
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
