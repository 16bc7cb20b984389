//! The Rust type of every schema a field, parameter or header uses, with the validators and
//! rule data its keywords ask for: strings (enums, patterns), numbers, arrays, free-form objects.

use crate::prelude::*;

impl<'a> Generator<'a> {
    /// Maps a schema to a Rust type; `hint` names a generated enum if the schema is one.
    pub(crate) fn schema_type<T: std::borrow::Borrow<Schema>>(
        &mut self,
        r: &ReferenceOr<T>,
        hint: &str,
        ptr: &str,
    ) -> Result<Typed> {
        let schema = match schema_ref(r, ptr)? {
            SchemaRef::Component(name) => {
                let exists = self
                    .spec
                    .components
                    .as_ref()
                    .is_some_and(|c| c.schemas.contains_key(name));
                if !exists {
                    return err(ptr, format!("$ref to unknown schema `{name}`"));
                }
                let ty = type_ident(name);
                let k = runtime::rule_kind();
                return Ok(Typed {
                    ty: quote!(#ty),
                    validators: vec![],
                    kind: quote!(#k::Object),
                });
            }
            SchemaRef::Inline(s) => s,
        };
        match &schema.schema_kind {
            SchemaKind::Type(Type::String(s)) => self.string_type(s, hint, ptr),
            SchemaKind::Type(Type::Integer(i)) => integer_type(i, ptr),
            SchemaKind::Type(Type::Number(n)) => number_type(n, ptr),
            SchemaKind::Type(Type::Boolean(_)) => {
                let k = runtime::rule_kind();
                Ok(Typed { ty: quote!(bool), validators: vec![], kind: quote!(#k::Boolean) })
            }
            SchemaKind::Type(Type::Array(a)) => self.array_type(a, hint, ptr),
            SchemaKind::Type(Type::Object(o)) => free_form_object(o, ptr),
            SchemaKind::Any(any) => integer_except(any, ptr),
            _ => err(ptr, "oneOf/allOf/anyOf/not and untyped schemas are not supported; give the schema a `type`"),
        }
    }

    pub(crate) fn string_type(&mut self, s: &StringType, hint: &str, ptr: &str) -> Result<Typed> {
        if !s.enumeration.is_empty() {
            if s.pattern.is_some() || s.min_length.is_some() || s.max_length.is_some() {
                return err(ptr, "an enum cannot also have pattern or length limits");
            }
            let values = s
                .enumeration
                .iter()
                .map(|v| v.clone().ok_or(()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .or_else(|()| {
                    err(
                        &format!("{ptr}/enum"),
                        "null is not supported as an enum value; use nullable",
                    )
                })?;
            let ty = self.string_enum(hint, &values, ptr)?;
            let k = runtime::rule_kind();
            return Ok(Typed {
                ty,
                validators: vec![],
                kind: quote!(#k::Enum(&[#(#values),*])),
            });
        }
        let ty = match &s.format {
            VariantOrUnknownOrEmpty::Empty => match &s.pattern {
                Some(p) => {
                    let marker = self.pattern_marker(p);
                    let matching = runtime::matching();
                    quote!(#matching<#marker>)
                }
                None => quote!(::std::string::String),
            },
            VariantOrUnknownOrEmpty::Item(_) if s.pattern.is_some() => {
                return err(
                    &format!("{ptr}/pattern"),
                    "patterns are supported on plain strings only",
                )
            }
            VariantOrUnknownOrEmpty::Item(StringFormat::DateTime) => {
                quote!(::chrono::DateTime<::chrono::Utc>)
            }
            VariantOrUnknownOrEmpty::Item(StringFormat::Date) => quote!(::chrono::NaiveDate),
            _ => {
                return err(
                    &format!("{ptr}/format"),
                    "unsupported string format; use date-time, date or none",
                )
            }
        };
        let mut validators = Vec::new();
        if let Some(n) = s.min_length {
            let n = Literal::usize_unsuffixed(n);
            validators.push(quote!(min_length = #n));
        }
        if let Some(n) = s.max_length {
            let n = Literal::usize_unsuffixed(n);
            validators.push(quote!(max_length = #n));
        }
        let k = runtime::rule_kind();
        let (min, max) = (opt_usize(s.min_length), opt_usize(s.max_length));
        let pattern = match &s.pattern {
            Some(p) => quote!(::std::option::Option::Some(#p)),
            None => quote!(::std::option::Option::None),
        };
        let kind = quote!(#k::String { min_length: #min, max_length: #max, pattern: #pattern });
        Ok(Typed {
            ty,
            validators,
            kind,
        })
    }

    /// The marker type of a spec pattern, emitted once per distinct pattern.
    pub(crate) fn pattern_marker(&mut self, pattern: &str) -> Ident {
        let index = match self.patterns.iter().position(|p| p == pattern) {
            Some(i) => i,
            None => {
                self.patterns.push(pattern.to_string());
                let i = self.patterns.len() - 1;
                let ty = format_ident!("Pattern{}", i);
                let doc = format!(" The spec pattern `{pattern}`.");
                let spec = runtime::pattern_spec();
                self.items.push(quote! {
                    #[doc = #doc]
                    #[derive(::std::fmt::Debug)]
                    pub struct #ty;

                    impl #spec for #ty {
                        const PATTERN: &'static str = #pattern;
                    }
                });
                i
            }
        };
        format_ident!("Pattern{}", index)
    }

    pub(crate) fn string_enum(
        &mut self,
        hint: &str,
        values: &[String],
        ptr: &str,
    ) -> Result<TokenStream> {
        let name = hint.to_upper_camel_case();
        let ty = type_ident(&name);
        if !self.enum_names.insert(name.clone()) {
            return err(
                ptr,
                format!("two inline enums would both be named `{name}`"),
            );
        }
        let variants = values.iter().map(|v| {
            let id = type_ident(v);
            quote!(#[oai(rename = #v)] #id)
        });
        let arms = values.iter().map(|v| {
            let id = type_ident(v);
            quote!(Self::#id => #v)
        });
        self.items.push(quote! {
            #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::marker::Copy, ::std::cmp::PartialEq, ::std::cmp::Eq, ::std::hash::Hash, ::poem_openapi::Enum)]
            #[oai(rename = #name)]
            pub enum #ty { #(#variants),* }

            impl #ty {
                /// The value as written in the spec.
                pub fn as_str(self) -> &'static str {
                    match self { #(#arms),* }
                }
            }
        });
        Ok(quote!(#ty))
    }

    pub(crate) fn array_type(&mut self, a: &ArrayType, hint: &str, ptr: &str) -> Result<Typed> {
        let Some(items) = &a.items else {
            return err(ptr, "arrays need `items`");
        };
        let inner = self.schema_type(items, hint, &format!("{ptr}/items"))?;
        if !inner.validators.is_empty() {
            return err(
                &format!("{ptr}/items"),
                "validation on array items is not supported; move the item to components/schemas",
            );
        }
        let mut validators = Vec::new();
        if let Some(n) = a.min_items {
            let n = Literal::usize_unsuffixed(n);
            validators.push(quote!(min_items = #n));
        }
        if let Some(n) = a.max_items {
            let n = Literal::usize_unsuffixed(n);
            validators.push(quote!(max_items = #n));
        }
        if a.unique_items {
            validators.push(quote!(unique_items));
        }
        let ty = inner.ty;
        let k = runtime::rule_kind();
        Ok(Typed {
            ty: quote!(::std::vec::Vec<#ty>),
            validators,
            kind: quote!(#k::Array),
        })
    }
}

/// An object schema with `allOf: [{anyOf: [{required: [property]}, …]}]`: at least one of
/// those properties must be present. (Wrapped in allOf because generated clients keep the
/// object's type that way.) poem-openapi has no such rule, so the service checks it (with the
/// spec's constraint in the error); everything else is generated as for any object.
pub(crate) fn object_with_any_required(any: &AnySchema, ptr: &str) -> Result<ObjectType> {
    let unsupported = || {
        err(
            ptr,
            "component schemas must be objects with properties; beside them only `allOf: [{anyOf: [{required: [property]}, ...]}]` is supported",
        )
    };
    let plain = AnySchema {
        typ: any.typ.clone(),
        properties: any.properties.clone(),
        required: any.required.clone(),
        all_of: any.all_of.clone(),
        ..AnySchema::default()
    };
    if any.typ.as_deref() != Some("object")
        || any.properties.is_empty()
        || any.all_of.len() != 1
        || *any != plain
    {
        return unsupported();
    }
    let alternatives = match &any.all_of[0] {
        ReferenceOr::Item(Schema {
            schema_kind: SchemaKind::AnyOf { any_of },
            ..
        }) if !any_of.is_empty() => any_of,
        _ => return unsupported(),
    };
    for (i, alternative) in alternatives.iter().enumerate() {
        let aptr = format!("{ptr}/allOf/0/anyOf/{i}");
        let ReferenceOr::Item(Schema {
            schema_kind: SchemaKind::Any(a),
            ..
        }) = alternative
        else {
            return err(
                &aptr,
                "an `anyOf` alternative must be `{required: [property]}`",
            );
        };
        let names_a_property = a.required.len() == 1 && any.properties.contains_key(&a.required[0]);
        let only_required = *a
            == AnySchema {
                required: a.required.clone(),
                ..AnySchema::default()
            };
        if !names_a_property || !only_required {
            return err(&aptr, "an `anyOf` alternative must be `{required: [property]}` naming one of the object's properties");
        }
    }
    Ok(ObjectType {
        properties: any.properties.clone(),
        required: any.required.clone(),
        additional_properties: None,
        min_properties: None,
        max_properties: None,
    })
}

/// `type: object` without properties: a free-form map (`additionalProperties: {}` or `true`).
pub(crate) fn free_form_object(o: &ObjectType, ptr: &str) -> Result<Typed> {
    let free = match &o.additional_properties {
        Some(AdditionalProperties::Any(true)) => true,
        Some(AdditionalProperties::Schema(s)) => {
            matches!(&**s, ReferenceOr::Item(s) if matches!(s.schema_kind, SchemaKind::Any(_)))
        }
        _ => false,
    };
    if !o.properties.is_empty() || !free {
        return err(ptr, "inline objects are not supported; move the object to components/schemas and $ref it, or make it free-form with `additionalProperties: {}`");
    }
    let k = runtime::rule_kind();
    Ok(Typed {
        ty: quote!(::std::collections::BTreeMap<::std::string::String, ::serde_json::Value>),
        validators: vec![],
        kind: quote!(#k::Object),
    })
}

pub(crate) fn default_expr(
    value: &serde_json::Value,
    schema: &ReferenceOr<Schema>,
    ty: &TokenStream,
    ptr: &str,
) -> Result<TokenStream> {
    let ReferenceOr::Item(schema) = schema else {
        return err(ptr, "defaults need an inline schema");
    };
    match (&schema.schema_kind, value) {
        (SchemaKind::Type(Type::String(s)), serde_json::Value::String(v)) if !s.enumeration.is_empty() => {
            if !s.enumeration.iter().any(|e| e.as_deref() == Some(v.as_str())) {
                return err(ptr, format!("default `{v}` is not one of the enum values"));
            }
            let variant = type_ident(v);
            Ok(quote!(#ty::#variant))
        }
        (SchemaKind::Type(Type::String(_)), serde_json::Value::String(v)) => Ok(quote!(#v.to_string())),
        (SchemaKind::Type(Type::Integer(_)), serde_json::Value::Number(n)) if n.is_i64() => {
            let v = Literal::i64_unsuffixed(n.as_i64().unwrap_or_default());
            Ok(quote!(#v))
        }
        (SchemaKind::Type(Type::Boolean(_)), serde_json::Value::Bool(b)) => Ok(quote!(#b)),
        _ => err(ptr, "unsupported default; use a string, integer, boolean or enum value of the parameter's type"),
    }
}
