//! Generates the typed HTTP surface of product-api from its OpenAPI document.
//!
//! The spec is the source of truth. From it [`generate`] writes Rust code for poem-openapi:
//! - one `Object` per schema in `components/schemas`, with the spec's validation as
//!   poem-openapi validators and as rule data, and one `Enum` per inline string enum;
//! - per operation, a `<Op>Response` enum of its success statuses and a `<Op>Error` enum of
//!   its error statuses (every error body is the `Problem` schema);
//! - one `<Tag>Handlers` trait per tag with an async method per `operationId`, and the
//!   `#[OpenApi]` routing `Routes<H: Handlers>` that extracts the parameters and calls it;
//! - tables the hand-written middleware reads (paths, methods, bodies, uploads, query
//!   parameters, bulk operations) and the document itself as JSON, the served contract.
//!
//! The generated code names hand-written items of the server (`crate::api::…`); they are all
//! listed in [`runtime`]. The generator supports a deliberate subset of OpenAPI 3.0; anything
//! outside it is an [`Error`] with the JSON pointer of the construct and what to use instead,
//! rather than being dropped silently.

mod bodies;
mod names;
mod numbers;
mod operations;
mod parameters;
mod responses;
pub mod runtime;
mod schemas;
mod security;
mod types;

use std::collections::BTreeSet;

use openapiv3::OpenAPI;
use proc_macro2::{Ident, TokenStream};

/// What the generated code and its helpers import.
mod prelude {
    pub(crate) use std::collections::BTreeSet;

    pub(crate) use heck::{ToSnakeCase, ToUpperCamelCase};
    pub(crate) use openapiv3::{
        APIKeyLocation, AdditionalProperties, AnySchema, ArrayType, Header, IntegerFormat,
        IntegerType, NumberFormat, NumberType, ObjectType, Operation, Parameter, ParameterData,
        ParameterSchemaOrContent, ReferenceOr, RequestBody, Response, Schema, SchemaKind,
        SecurityScheme, StatusCode, StringFormat, StringType, Type, VariantOrUnknownOrEmpty,
    };
    pub(crate) use proc_macro2::{Ident, Literal, Span, TokenStream};
    pub(crate) use quote::{format_ident, quote};

    pub(crate) use crate::{
        err, names::*, numbers::*, runtime, schemas::*, security::Access, types::*, Generator, Op,
        Result, PROBLEM, UPLOAD_MEDIA,
    };
}

/// The schema every error response must carry.
const PROBLEM: &str = "Problem";
/// The media types of a file upload request body.
const UPLOAD_MEDIA: &[&str] = &["multipart/form-data", "text/csv"];

/// A construct the generator refuses: where it is (a JSON pointer into the document) and what
/// to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}: {}", self.pointer, self.message)
    }
}

impl std::error::Error for Error {}

pub(crate) type Result<T> = std::result::Result<T, Error>;

pub(crate) fn err<T>(pointer: &str, message: impl Into<String>) -> Result<T> {
    Err(Error {
        pointer: pointer.to_string(),
        message: message.into(),
    })
}

/// What [`generate`] writes.
#[derive(Debug)]
pub struct Generated {
    /// The Rust code of the HTTP surface, formatted, with a header naming `source`.
    pub code: String,
    /// Every model's rules as constants, for [`runtime::rules_module`], formatted likewise.
    pub rules: String,
    /// The document as JSON.
    pub contract_json: String,
}

/// Generates the code for the OpenAPI document `text` (YAML or JSON), read from `source`.
pub fn generate(source: &str, text: &str) -> Result<Generated> {
    let spec: OpenAPI = serde_yaml::from_str(text).map_err(|e| Error {
        pointer: String::new(),
        message: format!("not a valid OpenAPI 3.0 document: {e}"),
    })?;
    let document: serde_json::Value = serde_yaml::from_str(text).map_err(|e| Error {
        pointer: String::new(),
        message: format!("not a valid YAML document: {e}"),
    })?;
    let (code, rules) = Generator::new(&spec).generate()?;
    Ok(Generated {
        code: formatted(source, code)?,
        rules: formatted(source, rules)?,
        contract_json: document.to_string(),
    })
}

fn formatted(source: &str, tokens: TokenStream) -> Result<String> {
    let file: syn::File = syn::parse2(tokens.clone()).map_err(|e| Error {
        pointer: String::new(),
        message: format!("generated code does not parse ({e}): {tokens}"),
    })?;
    Ok(format!(
        "// Generated from {source} by the codegen crate. Do not edit: change the spec instead.\n\n{}",
        prettyplease::unparse(&file)
    ))
}

/// A generated operation: its handler method and its route.
pub(crate) struct Op {
    /// The trait the handler method belongs to: `<Tag>Handlers`.
    handlers: Ident,
    trait_method: TokenStream,
    route: TokenStream,
}

pub(crate) struct Generator<'a> {
    spec: &'a OpenAPI,
    items: Vec<TokenStream>,
    enum_names: BTreeSet<String>,
    /// Distinct string patterns, each with a marker type `Pattern<index>`.
    patterns: Vec<String>,
    model_names: Vec<String>,
    /// (METHOD, path template, body schema) of every operation with a JSON body.
    bodies: Vec<(String, String, String)>,
    /// (METHOD, path template) of every operation marked `x-rate-limit-class: bulk`.
    bulk: Vec<(String, String)>,
    /// (METHOD, path template) of every operation that takes a file upload.
    uploads: Vec<(String, String)>,
    /// (METHOD, path template, name) of every query parameter.
    query_params: Vec<(String, String, String)>,
    /// Every model's rules as a constant, for the rules file.
    rules: Vec<TokenStream>,
}

impl<'a> Generator<'a> {
    fn new(spec: &'a OpenAPI) -> Self {
        Self {
            spec,
            items: Vec::new(),
            enum_names: BTreeSet::new(),
            patterns: Vec::new(),
            model_names: Vec::new(),
            bodies: Vec::new(),
            bulk: Vec::new(),
            uploads: Vec::new(),
            query_params: Vec::new(),
            rules: Vec::new(),
        }
    }
}
