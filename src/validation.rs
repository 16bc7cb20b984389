//! The spec's rules as data, and the one check of a body or an import row against them.
//!
//! poem-openapi enforces the spec's rules while parsing, but its rejections name neither the
//! field nor the value when the type is wrong or a field is missing. The generator therefore
//! also emits each model's rules as data (`FieldRule`, in [`rules`]), and [`explain`] re-reads
//! a rejected body against them to say exactly which field broke which rule with which value.
//! The importer checks each row with the same rules, so the API and imports validate alike.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, PoisonError, RwLock},
};

use regex::Regex;
use serde_json::Value;

/// Every model's rules, generated from the spec (`ProductCreateRequest` is
/// `PRODUCT_CREATE_REQUEST`); the generated models' `RULES` point here.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod rules {
    include!(concat!(env!("OUT_DIR"), "/rules.rs"));
}

/// True when `value` is a multiple of `step` (a power of ten: the generator refuses others).
///
/// Below one, either test suffices: the decimal the client wrote (`value`'s shortest
/// round-trip decimal, what `Display` prints, never in exponent form) has at most as many
/// decimals as `step`; or `value / step` is within a millionth of a whole number, which lets
/// binary noise such as JavaScript's `0.1 + 0.2` (`0.30000000000000004`) through as `0.3`.
/// The first covers what the tolerance cannot at large magnitudes (`154677081.57 / 0.01` is
/// further than that from a whole number). Neither makes a value other than zero a multiple
/// by rounding it to zero units: `5e-324` is no price, and would be stored as 0.
pub fn is_multiple_of(value: f64, step: f64) -> bool {
    if !value.is_finite() {
        return false;
    }
    let units = value / step;
    let whole = units.round();
    let near = (units - whole).abs() < 1e-6 && (whole != 0.0 || value == 0.0);
    if step >= 1.0 {
        return near;
    }
    let places = (-step.log10()).round() as usize;
    let written = value.to_string();
    near || written.split_once('.').map_or(0, |(_, d)| d.len()) <= places
}

/// Whether `text` matches the spec pattern `pattern`; each pattern is compiled once, as bulk
/// imports check it for every row. The compiled regex is shared, not cloned: a clone would
/// start with an empty matching cache of its own.
pub fn pattern_matches(pattern: &'static str, text: &str) -> bool {
    type Compiled = HashMap<&'static str, Option<Arc<Regex>>>;
    static COMPILED: LazyLock<RwLock<Compiled>> = LazyLock::new(Default::default);
    let cached = COMPILED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
        .cloned();
    let re = cached.unwrap_or_else(|| {
        let re = Regex::new(pattern).ok().map(Arc::new);
        COMPILED
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pattern, re.clone());
        re
    });
    re.is_some_and(|re| re.is_match(text))
}

/// A property's rules, generated from the spec.
#[derive(Debug)]
pub struct FieldRule {
    pub name: &'static str,
    pub required: bool,
    pub nullable: bool,
    pub kind: Kind,
}

/// A bound and whether it is exclusive.
pub type Bound = Option<(f64, bool)>;

#[derive(Debug)]
pub enum Kind {
    String {
        min_length: Option<usize>,
        max_length: Option<usize>,
        pattern: Option<&'static str>,
    },
    Enum(&'static [&'static str]),
    Integer {
        bits: u8,
        minimum: Bound,
        maximum: Bound,
    },
    Number {
        minimum: Bound,
        maximum: Bound,
        multiple_of: Option<f64>,
    },
    Boolean,
    Array,
    Object,
}

/// The first rule a body breaks.
#[derive(Debug, PartialEq)]
pub struct Violation {
    pub field: Option<&'static str>,
    pub constraint: String,
    pub value: Value,
    pub message: String,
}

fn violation(rule: &FieldRule, constraint: String, value: &Value, what: String) -> Violation {
    Violation {
        field: Some(rule.name),
        constraint,
        value: value.clone(),
        message: format!("{} {what}", rule.name),
    }
}

fn check_bounds(rule: &FieldRule, n: f64, min: Bound, max: Bound, v: &Value) -> Option<Violation> {
    if let Some((m, exclusive)) = min {
        if n < m || (exclusive && n == m) {
            let (c, what) = match exclusive {
                true => ("exclusiveMinimum", format!("must be greater than {m}")),
                false => ("minimum", format!("must be at least {m}")),
            };
            return Some(violation(rule, format!("{c}({m})"), v, what));
        }
    }
    if let Some((m, exclusive)) = max {
        if n > m || (exclusive && n == m) {
            let (c, what) = match exclusive {
                true => ("exclusiveMaximum", format!("must be less than {m}")),
                false => ("maximum", format!("must be at most {m}")),
            };
            return Some(violation(rule, format!("{c}({m})"), v, what));
        }
    }
    None
}

fn check_value(rule: &FieldRule, v: &Value) -> Option<Violation> {
    let wrong_type = |t: &str| {
        Some(violation(
            rule,
            format!("type({t})"),
            v,
            format!("must be {t}"),
        ))
    };
    match &rule.kind {
        Kind::String {
            min_length,
            max_length,
            pattern,
        } => {
            let Some(s) = v.as_str() else {
                return wrong_type("a string");
            };
            let len = s.chars().count();
            if let Some(min) = min_length.filter(|min| len < *min) {
                let what = format!("must be at least {min} characters long");
                return Some(violation(rule, format!("minLength({min})"), v, what));
            }
            if let Some(max) = max_length.filter(|max| len > *max) {
                let what = format!("must be at most {max} characters long");
                return Some(violation(rule, format!("maxLength({max})"), v, what));
            }
            if let Some(p) = pattern {
                let matches = pattern_matches(p, s);
                if !matches {
                    let what = format!("must match the pattern {p}");
                    return Some(violation(rule, format!("pattern({p})"), v, what));
                }
            }
            None
        }
        Kind::Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => None,
            _ => {
                let what = format!("must be one of {}", values.join(", "));
                Some(violation(
                    rule,
                    format!("enum({})", values.join(",")),
                    v,
                    what,
                ))
            }
        },
        Kind::Integer {
            bits,
            minimum,
            maximum,
        } => {
            let Some(n) = v.as_i64() else {
                return wrong_type("an integer");
            };
            if *bits == 32 && i32::try_from(n).is_err() {
                return wrong_type("a 32-bit integer");
            }
            check_bounds(rule, n as f64, *minimum, *maximum, v)
        }
        Kind::Number {
            minimum,
            maximum,
            multiple_of,
        } => {
            let Some(n) = v.as_f64() else {
                return wrong_type("a number");
            };
            if let Some(b) = check_bounds(rule, n, *minimum, *maximum, v) {
                return Some(b);
            }
            match multiple_of {
                Some(m) if !is_multiple_of(n, *m) => {
                    let what = format!("must be a multiple of {m}");
                    Some(violation(rule, format!("multipleOf({m})"), v, what))
                }
                _ => None,
            }
        }
        Kind::Boolean if !v.is_boolean() => wrong_type("a boolean"),
        Kind::Array if !v.is_array() => wrong_type("an array"),
        Kind::Object if !v.is_object() => wrong_type("an object"),
        Kind::Boolean | Kind::Array | Kind::Object => None,
    }
}

/// The first rule of `rules` that `body` breaks, in the spec's property order.
pub fn explain(rules: &[FieldRule], body: &Value) -> Option<Violation> {
    let Some(object) = body.as_object() else {
        return Some(Violation {
            field: None,
            constraint: "type(object)".to_string(),
            value: body.clone(),
            message: "the body must be a JSON object".to_string(),
        });
    };
    rules.iter().find_map(|rule| match object.get(rule.name) {
        None | Some(Value::Null) if rule.required => Some(violation(
            rule,
            "required".to_string(),
            &Value::Null,
            "is required".to_string(),
        )),
        None => None,
        Some(Value::Null) if rule.nullable => None,
        // null is a value, and a non-nullable property's type does not admit it.
        Some(v) => check_value(rule, v),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::rules::{PRODUCT_CREATE_REQUEST, PRODUCT_UPDATE_REQUEST};
    use super::*;

    #[test]
    fn explains_the_first_broken_rule() {
        let base = json!({"name": "A", "price": 1.5, "quantity": 1, "category": "C"});
        let cases = [
            ("name", json!(null), "required"),
            ("name", json!(""), "minLength(1)"),
            (
                "name",
                json!("   "),
                "pattern(^[^\\x00]*[^\\s\\x00][^\\x00]*$)",
            ),
            (
                "name",
                json!("a\u{0}b"),
                "pattern(^[^\\x00]*[^\\s\\x00][^\\x00]*$)",
            ),
            ("name", json!(7), "type(a string)"),
            ("price", json!(0), "exclusiveMinimum(0)"),
            ("price", json!(1.234), "multipleOf(0.01)"),
            ("price", json!("12"), "type(a number)"),
            ("quantity", json!(-1), "minimum(0)"),
            ("quantity", json!(1.5), "type(an integer)"),
            (
                "quantity",
                json!(3_000_000_000_i64),
                "type(a 32-bit integer)",
            ),
            ("sku", json!("a b"), "pattern(^[A-Za-z0-9._-]+$)"),
            ("description", json!("a\u{0}b"), "pattern(^[^\\x00]*$)"),
        ];
        for (field, value, constraint) in cases {
            let mut body = base.clone();
            body[field] = value.clone();
            let v = explain(PRODUCT_CREATE_REQUEST, &body).expect(field);
            assert_eq!(v.field, Some(field), "{field}={value}");
            assert_eq!(v.constraint, constraint, "{field}={value}");
        }
        assert_eq!(explain(PRODUCT_CREATE_REQUEST, &base), None);
        assert!(explain(PRODUCT_CREATE_REQUEST, &json!([1])).is_some());
    }

    #[test]
    fn multiples_of_a_decimal_step_are_judged_on_the_decimal_written() {
        for (value, step, multiple) in [
            (154_677_081.57, 0.01, true),
            (29.99, 0.01, true),
            (0.1 + 0.2, 0.01, true),
            (0.305, 0.01, false),
            (5.0, 0.01, true),
            (0.0, 0.01, true),
            (1.234, 0.01, false),
            (5e-324, 0.01, false),
            (99_999_999_999.99, 0.01, true),
            (30.0, 10.0, true),
            (35.0, 10.0, false),
            (f64::NAN, 0.01, false),
        ] {
            assert_eq!(is_multiple_of(value, step), multiple, "{value} of {step}");
        }
    }

    #[test]
    fn null_is_not_absent_for_a_property_that_is_not_nullable() {
        let v = explain(PRODUCT_UPDATE_REQUEST, &json!({"category": null})).expect("a violation");
        assert_eq!(v.field, Some("category"));
        assert_eq!(v.constraint, "type(a string)");
        let clears = json!({"description": null});
        assert_eq!(explain(PRODUCT_UPDATE_REQUEST, &clears), None);
    }
}
