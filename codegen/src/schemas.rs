//! Component schemas: one poem-openapi `Object` per model, with its validation as validators
//! and as rule data.

use crate::prelude::*;

/// `type: string, format: binary`.
pub(crate) fn is_binary(schema: &Schema) -> bool {
    matches!(
        &schema.schema_kind,
        SchemaKind::Type(Type::String(StringType {
            format: VariantOrUnknownOrEmpty::Item(StringFormat::Binary),
            enumeration,
            pattern: None,
            min_length: None,
            max_length: None,
        })) if enumeration.is_empty()
    )
}

/// A schema, a reference to a component schema, borrowed from either kind of `ReferenceOr`.
pub(crate) enum SchemaRef<'a> {
    Component(&'a str),
    Inline(&'a Schema),
}

pub(crate) fn schema_ref<'a, T: std::borrow::Borrow<Schema>>(
    r: &'a ReferenceOr<T>,
    ptr: &str,
) -> Result<SchemaRef<'a>> {
    match r {
        ReferenceOr::Item(s) => Ok(SchemaRef::Inline(s.borrow())),
        ReferenceOr::Reference { reference } => {
            match reference.strip_prefix("#/components/schemas/") {
                Some(name) => Ok(SchemaRef::Component(name)),
                None => err(
                    ptr,
                    format!("unsupported $ref `{reference}`: only #/components/schemas/*"),
                ),
            }
        }
    }
}

/// A Rust type for a schema plus the poem-openapi validators the schema asks for.
pub(crate) struct Typed {
    pub(crate) ty: TokenStream,
    pub(crate) validators: Vec<TokenStream>,
    /// The same rules as data ([`runtime::rule_kind`]), so a rejected body can be
    /// explained field by field.
    pub(crate) kind: TokenStream,
}

pub(crate) fn opt_f64(v: Option<f64>, exclusive: bool) -> TokenStream {
    match v {
        Some(v) => {
            let v = f64_lit(v);
            quote!(::std::option::Option::Some((#v, #exclusive)))
        }
        None => quote!(::std::option::Option::None),
    }
}

pub(crate) fn opt_usize(v: Option<usize>) -> TokenStream {
    match v {
        Some(v) => {
            let v = Literal::usize_unsuffixed(v);
            quote!(::std::option::Option::Some(#v))
        }
        None => quote!(::std::option::Option::None),
    }
}

impl<'a> Generator<'a> {
    pub(crate) fn model(&mut self, name: &str, schema: &Schema, ptr: &str) -> Result<()> {
        let converted;
        let obj = match &schema.schema_kind {
            SchemaKind::Type(Type::Object(o)) if !o.properties.is_empty() => o,
            SchemaKind::Any(any) => {
                converted = object_with_any_required(any, ptr)?;
                &converted
            }
            _ => return err(ptr, "component schemas must be objects with properties; inline other schemas where they are used"),
        };
        if obj.additional_properties.is_some() {
            return err(
                &format!("{ptr}/additionalProperties"),
                "objects with properties cannot also take additionalProperties",
            );
        }
        if obj.min_properties.is_some() || obj.max_properties.is_some() {
            return err(ptr, "minProperties/maxProperties on an object are not supported; say it in the description and check it in the service");
        }
        if schema.schema_data.nullable {
            return err(
                &format!("{ptr}/nullable"),
                "a component schema cannot be nullable; make the property that uses it nullable",
            );
        }
        let ty = type_ident(name);
        let doc = doc_attrs(schema.schema_data.description.as_deref());
        let mut fields = Vec::new();
        let mut rules = Vec::new();
        for (field, prop) in &obj.properties {
            let fptr = format!("{ptr}/properties/{}", seg(field));
            let (f, r) = self.field(name, field, prop, obj, &fptr)?;
            fields.push(f);
            rules.push(r);
        }
        // An example is parsed by the model itself when the spec is rendered, so an example
        // that breaks the schema fails the spec test instead of being published.
        let (example_attr, example_impl) = match &schema.schema_data.example {
            Some(example) => {
                let json = example.to_string();
                let message = format!("the spec's example of {name} matches its schema");
                (
                    quote!(, example),
                    quote! {
                        impl ::poem_openapi::types::Example for #ty {
                            fn example() -> Self {
                                let value = ::serde_json::from_str(#json).ok();
                                <Self as ::poem_openapi::types::ParseFromJSON>::parse_from_json(value)
                                    .map_err(|e| e.into_message())
                                    .expect(#message)
                            }
                        }
                    },
                )
            }
            None => (quote!(), quote!()),
        };
        let field_rule = runtime::field_rule();
        let rules_module = runtime::rules_module();
        let rules_const = format_ident!("{}", name.to_snake_case().to_uppercase());
        let rules_doc = format!(" The rules of `{name}`'s properties.");
        self.rules.push(quote! {
            #[doc = #rules_doc]
            pub const #rules_const: &[#field_rule] = &[#(#rules),*];
        });
        self.items.push(quote! {
            #doc
            #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq, ::poem_openapi::Object)]
            #[oai(rename = #name #example_attr)]
            pub struct #ty { #(#fields),* }

            #example_impl

            impl #ty {
                /// The spec's rules for each property, as data.
                pub const RULES: &'static [#field_rule] = #rules_module::#rules_const;
            }
        });
        self.model_names.push(name.to_string());
        Ok(())
    }

    pub(crate) fn field(
        &mut self,
        parent: &str,
        field: &str,
        prop: &ReferenceOr<Box<Schema>>,
        obj: &ObjectType,
        ptr: &str,
    ) -> Result<(TokenStream, TokenStream)> {
        let required = obj.required.iter().any(|r| r == field);
        let hint = format!("{parent}_{field}");
        let typed = self.schema_type(prop, &hint, ptr)?;
        let (nullable, description, read_only, write_only) = match prop {
            ReferenceOr::Item(s) => {
                let d = &s.schema_data;
                if d.default.is_some() {
                    return err(
                        &format!("{ptr}/default"),
                        "defaults on properties are not supported; apply them in the service",
                    );
                }
                if d.example.is_some() {
                    return err(&format!("{ptr}/example"), "examples on properties are not rendered; put the property in the component schema's `example`");
                }
                (d.nullable, d.description.clone(), d.read_only, d.write_only)
            }
            ReferenceOr::Reference { .. } => (false, None, false, false),
        };
        let base = typed.ty;
        let (ty, mut attrs) = match (required, nullable) {
            (true, false) => (base, vec![]),
            (true, true) => return err(ptr, "a required property cannot be nullable (poem-openapi renders Option<T> as not required); drop it from `required`"),
            (false, false) => (quote!(::std::option::Option<#base>), vec![quote!(skip_serializing_if_is_none)]),
            (false, true) => (quote!(::poem_openapi::types::MaybeUndefined<#base>), vec![quote!(nullable)]),
        };
        attrs.insert(0, quote!(rename = #field));
        if read_only {
            attrs.push(quote!(read_only));
        }
        if write_only {
            attrs.push(quote!(write_only));
        }
        let validators = &typed.validators;
        if !validators.is_empty() {
            attrs.push(quote!(validator(#(#validators),*)));
        }
        let id = ident(field);
        let doc = doc_attrs(description.as_deref());
        let kind = typed.kind;
        let field_rule = runtime::field_rule();
        let rule = quote! {
            #field_rule { name: #field, required: #required, nullable: #nullable, kind: #kind }
        };
        Ok((quote!(#doc #[oai(#(#attrs),*)] pub #id: #ty), rule))
    }
}
