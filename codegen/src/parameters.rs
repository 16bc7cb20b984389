//! Parameters: query, header and path parameters with their validation and defaults.

use crate::prelude::*;

impl<'a> Generator<'a> {
    pub(crate) fn resolve_parameter(
        &self,
        p: &'a ReferenceOr<Parameter>,
        ptr: &str,
    ) -> Result<(&'a Parameter, String)> {
        let components = self.spec.components.as_ref();
        resolve_ref(p, "parameter", |name| components?.parameters.get(name), ptr)
    }

    /// Returns the route argument, the handler argument and the expression passing one to
    /// the other.
    pub(crate) fn parameter(
        &mut self,
        op_id: &str,
        param: &Parameter,
        ptr: &str,
        arg_names: &mut BTreeSet<String>,
    ) -> Result<(TokenStream, TokenStream, TokenStream)> {
        let location = match param {
            Parameter::Query { .. } => "query",
            Parameter::Header { .. } => "header",
            Parameter::Path { .. } => "path",
            Parameter::Cookie { .. } => "cookie",
        };
        let (data, wrapper) = match param {
            // The server reads an empty query value as absent (src/api/query.rs); the spec
            // must say so, or generated clients and fuzzers would expect otherwise.
            Parameter::Query { allow_empty_value: None | Some(false), .. } => return err(ptr, "query parameters must declare `allowEmptyValue: true`: the server reads an empty value as no value (src/api/query.rs)"),
            Parameter::Query { parameter_data, allow_reserved: false, style: openapiv3::QueryStyle::Form, allow_empty_value: Some(true) } => (parameter_data, quote!(::poem_openapi::param::Query)),
            Parameter::Header { parameter_data, style: openapiv3::HeaderStyle::Simple } => (parameter_data, quote!(::poem_openapi::param::Header)),
            Parameter::Path { parameter_data, style: openapiv3::PathStyle::Simple } => (parameter_data, quote!(::poem_openapi::param::Path)),
            _ => return err(ptr, "only query (form), header (simple) and path (simple) parameters without allowReserved are supported"),
        };
        let ParameterData {
            name,
            required,
            deprecated,
            format,
            explode,
            example,
            examples,
            ..
        } = data;
        if example.is_some() || !examples.is_empty() {
            return err(
                &format!("{ptr}/example"),
                "parameter examples are not rendered; describe the value in `description`",
            );
        }
        if explode.is_some() {
            return err(&format!("{ptr}/explode"), "explode is not supported");
        }
        let ParameterSchemaOrContent::Schema(schema) = format else {
            return err(ptr, "parameters need a `schema`, not `content`");
        };
        let sptr = format!("{ptr}/schema");
        let hint = format!("{op_id}_{name}");
        let typed = self.schema_type(schema, &hint, &sptr)?;
        let default = match schema {
            ReferenceOr::Item(s) => s.schema_data.default.clone(),
            ReferenceOr::Reference { .. } => None,
        };
        let base = typed.ty;
        let mut attrs = vec![quote!(name = #name)];
        if deprecated == &Some(true) {
            attrs.push(quote!(deprecated));
        }
        let validators = typed.validators;
        if !validators.is_empty() {
            attrs.push(quote!(validator(#(#validators),*)));
        }
        let has_default = default.is_some();
        let ty = match (required, default) {
            (true, Some(_)) => {
                return err(
                    &format!("{sptr}/default"),
                    "a required parameter cannot have a default",
                )
            }
            (true, None) => base,
            (false, Some(value)) => {
                let f = format_ident!("default_{}_{}", op_id.to_snake_case(), name.to_snake_case());
                let fname = f.to_string();
                let expr = default_expr(&value, schema, &base, &format!("{sptr}/default"))?;
                self.items.push(quote! {
                    fn #f() -> #base { #expr }
                });
                attrs.push(quote!(default = #fname));
                base
            }
            (false, None) => quote!(::std::option::Option<#base>),
        };
        // `Last-Event-ID` (header) and `lastEventId` (query) are both `last_event_id`: the
        // second one is named after its location.
        let mut id = ident(name);
        if !arg_names.insert(id.to_string()) {
            id = format_ident!("{}_{}", id, location);
            if !arg_names.insert(id.to_string()) {
                return err(ptr, format!("two parameters would both be named `{id}`"));
            }
        }
        // Handlers take a pattern-checked string as a plain `String`.
        let matched = matches!(
            schema,
            ReferenceOr::Item(Schema {
                schema_kind: SchemaKind::Type(Type::String(StringType {
                    pattern: Some(_),
                    format: VariantOrUnknownOrEmpty::Empty,
                    ..
                })),
                ..
            })
        );
        let (trait_ty, call) = match (matched, required) {
            (false, _) => (ty.clone(), quote!(#id.0)),
            (true, true) => (quote!(::std::string::String), quote!(#id.0.into_inner())),
            (true, false) if !has_default => {
                (quote!(::std::option::Option<::std::string::String>), {
                    let matching = runtime::matching();
                    quote!(#id.0.map(#matching::into_inner))
                })
            }
            (true, false) => {
                return err(
                    &sptr,
                    "a parameter with a pattern cannot also have a default",
                )
            }
        };
        Ok((
            quote!(#[oai(#(#attrs),*)] #id: #wrapper<#ty>),
            quote!(#id: #trait_ty),
            call,
        ))
    }
}
