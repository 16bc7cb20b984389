//! Names and literals: JSON pointer segments, Rust identifiers, numbers, doc attributes.

use crate::prelude::*;

/// Escapes one JSON pointer segment (RFC 6901).
pub(crate) fn seg(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub(crate) fn ident(name: &str) -> Ident {
    let snake = name.to_snake_case();
    match syn::parse_str::<Ident>(&snake) {
        Ok(_) if !matches!(snake.as_str(), "self" | "super" | "crate" | "Self") => {
            Ident::new(&snake, Span::call_site())
        }
        _ => format_ident!("{}_", snake),
    }
}

pub(crate) fn type_ident(name: &str) -> Ident {
    Ident::new(&name.to_upper_camel_case(), Span::call_site())
}

pub(crate) fn f64_lit(v: f64) -> Literal {
    Literal::f64_unsuffixed(v)
}

/// A bound for a poem-openapi validator; attribute syntax has no unary minus, so negative
/// values go in as strings, which darling parses.
pub(crate) fn bound_lit(v: f64) -> TokenStream {
    if v < 0.0 {
        let s = v.to_string();
        quote!(#s)
    } else {
        let l = f64_lit(v);
        quote!(#l)
    }
}

pub(crate) fn doc_attrs(text: Option<&str>) -> TokenStream {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return quote!();
    };
    let lines = text.lines().map(|l| format!(" {l}"));
    quote!(#(#[doc = #lines])*)
}

pub(crate) fn status_name(code: u16) -> String {
    match code {
        200 => "Ok",
        201 => "Created",
        202 => "Accepted",
        204 => "NoContent",
        304 => "NotModified",
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "UnprocessableEntity",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        _ => return format!("Status{code}"),
    }
    .to_string()
}

/// The item `r` is, or the component its `$ref` names (`#/components/<kind>s/<name>`, found
/// with `lookup`), with the JSON pointer of where it is defined. A `$ref` to a `$ref` is refused.
pub(crate) fn resolve_ref<'s, T>(
    r: &'s ReferenceOr<T>,
    kind: &str,
    lookup: impl Fn(&str) -> Option<&'s ReferenceOr<T>>,
    ptr: &str,
) -> Result<(&'s T, String)> {
    let reference = match r {
        ReferenceOr::Item(item) => return Ok((item, ptr.to_string())),
        ReferenceOr::Reference { reference } => reference,
    };
    let section = format!("#/components/{kind}s/");
    let Some(name) = reference.strip_prefix(&section) else {
        return err(
            ptr,
            format!("{kind} $refs must point into #/components/{kind}s"),
        );
    };
    match lookup(name) {
        Some(ReferenceOr::Item(item)) => Ok((item, format!("/components/{kind}s/{}", seg(name)))),
        _ => err(ptr, format!("unknown or indirect {kind} `{reference}`")),
    }
}
