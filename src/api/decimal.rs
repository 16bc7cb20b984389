//! `Decimal<SCALE>`: a JSON number with at most `SCALE` decimal places, the type the generator
//! gives `type: number` with `multipleOf: 10^-SCALE` (prices use `Decimal<2>`).
//!
//! poem-openapi's own `multipleOf` uses a float remainder, which rejects `29.99` for `0.01`;
//! this type checks against the nearest multiple instead and converts to integer units
//! (cents) exactly, while rendering the same `multipleOf` keyword in the served spec.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::{Number, Value};

use crate::validation::is_multiple_of;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decimal<const SCALE: u32>(f64);

impl<const SCALE: u32> Decimal<SCALE> {
    fn scale() -> f64 {
        10f64.powi(SCALE as i32)
    }

    /// The step between allowed values, e.g. `0.01` for `SCALE = 2`.
    pub fn step() -> f64 {
        1.0 / Self::scale()
    }

    /// True when `value` has at most `SCALE` decimals.
    pub fn fits(value: f64) -> bool {
        is_multiple_of(value, Self::step())
    }

    /// The value in integer units of the last decimal place (cents for `SCALE = 2`).
    pub fn units(self) -> i64 {
        (self.0 * Self::scale()).round() as i64
    }

    pub fn from_units(units: i64) -> Self {
        Self(units as f64 / Self::scale())
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

impl<const SCALE: u32> Type for Decimal<SCALE> {
    const IS_REQUIRED: bool = true;

    type RawValueType = f64;

    type RawElementValueType = f64;

    fn name() -> Cow<'static, str> {
        format!("number_decimal{SCALE}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new_with_format("number", "double");
        schema.multiple_of = Some(Self::step());
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&f64> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a f64> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

fn checked<const SCALE: u32>(n: f64) -> ParseResult<Decimal<SCALE>> {
    if Decimal::<SCALE>::fits(n) {
        Ok(Decimal(n))
    } else {
        Err(ParseError::custom(format!(
            "must be a multiple of {}",
            Decimal::<SCALE>::step()
        )))
    }
}

impl<const SCALE: u32> ParseFromJSON for Decimal<SCALE> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Number(n) => match n.as_f64() {
                Some(n) => checked(n),
                None => Err(ParseError::custom("invalid number")),
            },
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<const SCALE: u32> ParseFromParameter for Decimal<SCALE> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let n: f64 = value.parse().map_err(ParseError::custom)?;
        checked(n)
    }
}

impl<const SCALE: u32> ToJSON for Decimal<SCALE> {
    fn to_json(&self) -> Option<Value> {
        Number::from_f64(self.0).map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_fit_and_round_trip() {
        for ok in [0.0, 0.01, 29.99, 0.3, 1234567.89, 999999999.99] {
            assert!(Decimal::<2>::fits(ok), "{ok}");
        }
        for bad in [0.001, 29.999, 0.015, 1e-9, 5e-324] {
            assert!(!Decimal::<2>::fits(bad), "{bad}");
        }
        for cents in [1_i64, 99, 2999, 10_000, 99_999_999_999] {
            assert_eq!(
                Decimal::<2>::from_units(cents).units(),
                cents,
                "cents {cents}"
            );
        }
        assert_eq!(
            Decimal::<2>::from_units(2999).to_json(),
            Some(serde_json::json!(29.99))
        );
    }
}
