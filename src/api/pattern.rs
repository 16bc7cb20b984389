//! `Matching<P>`: a string that matches the spec pattern `P::PATTERN`, the type the generator
//! gives every string with a `pattern`.
//!
//! poem-openapi's own `pattern` validator compiles its regex on every check; on a create that
//! was four compilations per request, about a fifth of the server's CPU. This type checks
//! with the compiled-once patterns of [`validation`](crate::validation) and renders the
//! same `pattern` keyword in the served spec.

use std::{borrow::Cow, marker::PhantomData};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::validation::pattern_matches;

/// A pattern of the spec; the generator emits one marker type per pattern.
pub trait Spec: Send + Sync + 'static {
    const PATTERN: &'static str;
}

#[derive(Debug)]
pub struct Matching<P: Spec>(String, PhantomData<P>);

impl<P: Spec> Clone for Matching<P> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<P: Spec> PartialEq for Matching<P> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<P: Spec> Matching<P> {
    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn checked(value: String) -> ParseResult<Self> {
        if pattern_matches(P::PATTERN, &value) {
            Ok(Self(value, PhantomData))
        } else {
            // The wording of poem-openapi's validators, which the problem layer reads.
            Err(ParseError::custom(format!(
                "verification failed. pattern(\"{}\")",
                P::PATTERN
            )))
        }
    }
}

impl<P: Spec> From<Matching<P>> for String {
    fn from(value: Matching<P>) -> Self {
        value.0
    }
}

impl<P: Spec> Type for Matching<P> {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(P::PATTERN.to_string()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<P: Spec> ParseFromJSON for Matching<P> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Self::checked(s),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<P: Spec> ParseFromParameter for Matching<P> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::checked(value.to_string())
    }
}

impl<P: Spec> ToJSON for Matching<P> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}
