//! The hand-written items of the server that the generated code names, in one place. They
//! live in the server's `src/api/`; renaming one means changing it here and nowhere else in
//! the generator.

use heck::ToSnakeCase;
use proc_macro2::TokenStream;
use quote::quote;

/// Turns a handler's `Problem` of a status its operation does not declare into a 500.
pub fn undeclared_status() -> TokenStream {
    quote!(crate::api::error::undeclared_status)
}

/// One property's rules as data, and the kinds of rule.
pub fn field_rule() -> TokenStream {
    quote!(crate::validation::FieldRule)
}

/// Where the rules of every model are generated as constants, below the HTTP layer, so the
/// importer checks rows against them without naming the API.
pub fn rules_module() -> TokenStream {
    quote!(crate::validation::rules)
}

pub fn rule_kind() -> TokenStream {
    quote!(crate::validation::Kind)
}

/// What a security scheme's checker returns: the caller's identity and grant.
pub fn principal() -> TokenStream {
    quote!(crate::api::security::Principal)
}

/// What an authenticated operation's handler receives once its scope is checked.
pub fn seller() -> TokenStream {
    quote!(crate::api::security::Seller)
}

/// `fn(Principal, Option<&str>) -> Result<Seller, Problem>`: the scope check.
pub fn authorize() -> TokenStream {
    quote!(crate::api::security::authorize)
}

/// `fn(&Caller, Option<&str>) -> Result<Seller, Problem>`: the same for `x-caller` operations.
pub fn authorize_caller() -> TokenStream {
    quote!(crate::api::security::authorize_caller)
}

/// Who a request acts for, resolved once per request, for `x-caller` operations.
pub fn caller() -> TokenStream {
    quote!(crate::api::caller::Caller)
}

/// The checker function of the security scheme `scheme`, as poem-openapi's `checker` names it.
pub fn security_checker(scheme: &str) -> String {
    format!("crate::api::security::{}", scheme.to_snake_case())
}

/// A string checked against a pattern, and the trait a pattern's marker type implements.
pub fn matching() -> TokenStream {
    quote!(crate::api::pattern::Matching)
}

pub fn pattern_spec() -> TokenStream {
    quote!(crate::api::pattern::Spec)
}

/// An unread uploaded file, and its multipart and `text/csv` payloads.
pub fn upload() -> TokenStream {
    quote!(crate::api::upload::Upload)
}

pub fn form_upload() -> TokenStream {
    quote!(crate::api::upload::FormUpload)
}

pub fn csv_upload() -> TokenStream {
    quote!(crate::api::upload::CsvUpload)
}

/// A streamed `text/csv` response body.
pub fn csv_body() -> TokenStream {
    quote!(crate::api::csv_body::CsvBody)
}

/// A Server-Sent Events response body.
pub fn sse_body() -> TokenStream {
    quote!(crate::api::sse::SseBody)
}

/// A decimal number with a fixed scale (`multipleOf: 0.01`).
pub fn decimal() -> TokenStream {
    quote!(crate::api::decimal::Decimal)
}
