//! Security schemes and scopes.
//!
//! Each `apiKey` or HTTP `bearer` scheme becomes a poem-openapi `SecurityScheme` whose checker is
//! hand-written and returns the `Principal`. An operation's requirement may list several
//! schemes as alternatives (one scheme each, no scopes: OpenAPI 3.0 allows scopes only on
//! OAuth2); they become one `SecurityScheme` enum that accepts whichever the request carries.
//! The scopes a bearer token may hold are the schemes' `x-scopes`; an operation names the one
//! it needs as `x-scope`, and its generated route checks it before the handler runs.

use crate::prelude::*;

/// How an operation learns who calls it.
pub(crate) enum Access {
    /// No credentials.
    Open,
    /// poem-openapi's scheme type (a struct or an enum of alternatives).
    Secured(Ident),
    /// `x-caller: true`: no scheme; the route reads the request's resolved caller.
    Caller,
}

impl<'a> Generator<'a> {
    /// Each scheme's `SecurityScheme` struct.
    pub(crate) fn security_schemes(&self) -> Result<TokenStream> {
        let mut out = TokenStream::new();
        let Some(components) = &self.spec.components else {
            return Ok(out);
        };
        for (name, scheme) in &components.security_schemes {
            let ptr = format!("/components/securitySchemes/{}", seg(name));
            let ReferenceOr::Item(scheme) = scheme else {
                return err(&ptr, "security schemes must be inline");
            };
            let ty = type_ident(name);
            let checker = runtime::security_checker(name);
            let principal = runtime::principal();
            let (attrs, description) = match scheme {
                SecurityScheme::APIKey {
                    location,
                    name: key_name,
                    description,
                    ..
                } => {
                    let key_in = match location {
                        APIKeyLocation::Header => "header",
                        APIKeyLocation::Query => "query",
                        APIKeyLocation::Cookie => {
                            return err(
                                &ptr,
                                "apiKey in cookie is not supported; use header or query",
                            )
                        }
                    };
                    (
                        quote!(ty = "api_key", key_name = #key_name, key_in = #key_in),
                        description,
                    )
                }
                SecurityScheme::HTTP {
                    scheme,
                    bearer_format,
                    description,
                    ..
                } if scheme.eq_ignore_ascii_case("bearer") => {
                    let format = bearer_format.as_deref().unwrap_or("JWT");
                    (quote!(ty = "bearer", bearer_format = #format), description)
                }
                _ => return err(&ptr, "only apiKey and HTTP bearer schemes are supported"),
            };
            let doc = doc_attrs(description.as_deref());
            out.extend(quote! {
                #doc
                #[derive(::poem_openapi::SecurityScheme)]
                #[oai(rename = #name, #attrs, checker = #checker)]
                pub struct #ty(pub #principal);

                impl #ty {
                    pub fn into_principal(self) -> #principal {
                        self.0
                    }
                }
            });
        }
        Ok(out)
    }

    /// The scopes the schemes declare (`x-scopes`: scope → what it allows).
    fn declared_scopes(&self) -> Vec<String> {
        let Some(components) = &self.spec.components else {
            return Vec::new();
        };
        let extensions = components
            .security_schemes
            .values()
            .filter_map(|s| match s {
                ReferenceOr::Item(SecurityScheme::HTTP { extensions, .. })
                | ReferenceOr::Item(SecurityScheme::APIKey { extensions, .. }) => {
                    extensions.get("x-scopes")
                }
                _ => None,
            });
        extensions
            .filter_map(serde_json::Value::as_object)
            .flat_map(|scopes| scopes.keys().cloned())
            .collect()
    }

    pub(crate) fn access_of(&mut self, op: &Operation, ptr: &str) -> Result<Access> {
        let caller = match op.extensions.get("x-caller") {
            None => false,
            Some(serde_json::Value::Bool(true)) => true,
            Some(_) => {
                return err(
                    &format!("{ptr}/x-caller"),
                    "x-caller must be `true` when given",
                )
            }
        };
        // The operation's own requirement, else the document's.
        let (reqs, reqs_ptr) = match &op.security {
            Some(reqs) => (Some(reqs), format!("{ptr}/security")),
            None => (self.spec.security.as_ref(), "/security".to_string()),
        };
        let schemes = match reqs.map(Vec::as_slice) {
            None | Some([]) => Vec::new(),
            Some(reqs) => self.alternatives(reqs, &reqs_ptr)?,
        };
        match (schemes.as_slice(), caller) {
            ([], false) => Ok(Access::Open),
            ([], true) => Ok(Access::Caller),
            ([one], false) => Ok(Access::Secured(type_ident(one))),
            (many, false) => Ok(Access::Secured(self.alternatives_enum(many))),
            (_, true) => err(
                &format!("{ptr}/x-caller"),
                "x-caller: true is for operations with `security: []`; a secured operation's route gets its Principal from the scheme",
            ),
        }
    }

    /// The schemes of a requirement list, each alternative naming exactly one known scheme.
    fn alternatives(
        &self,
        reqs: &[openapiv3::SecurityRequirement],
        ptr: &str,
    ) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let ptr = format!("{ptr}/{i}");
            let mut schemes = req.iter();
            let (Some((name, scopes)), None) = (schemes.next(), schemes.next()) else {
                return err(
                    &ptr,
                    "each security requirement names exactly one scheme (list alternatives as separate requirements)",
                );
            };
            if !scopes.is_empty() {
                return err(
                    &ptr,
                    "scopes in a security requirement are OAuth2-only in OpenAPI 3.0; name the operation's scope with `x-scope`",
                );
            }
            let known = self
                .spec
                .components
                .as_ref()
                .is_some_and(|c| c.security_schemes.contains_key(name));
            if !known {
                return err(&ptr, format!("unknown security scheme `{name}`"));
            }
            names.push(name.clone());
        }
        Ok(names)
    }

    /// One `SecurityScheme` enum per distinct list of alternatives, emitted once.
    fn alternatives_enum(&mut self, schemes: &[String]) -> Ident {
        let name = schemes
            .iter()
            .map(|s| s.to_upper_camel_case())
            .collect::<Vec<_>>()
            .join("Or");
        let ty = format_ident!("{name}");
        if self.enum_names.insert(name) {
            let variants: Vec<Ident> = schemes.iter().map(|s| type_ident(s)).collect();
            let principal = runtime::principal();
            self.items.push(quote! {
                /// Any of the spec's alternative security schemes, tried in order.
                #[derive(::poem_openapi::SecurityScheme)]
                pub enum #ty {
                    #(#variants(#variants)),*
                }

                impl #ty {
                    pub fn into_principal(self) -> #principal {
                        match self {
                            #(Self::#variants(scheme) => scheme.0),*
                        }
                    }
                }
            });
        }
        ty
    }

    /// The operation's `x-scope`: required on secured and caller operations when the spec
    /// declares scopes, one of them, and only with a declared 403 to answer with.
    pub(crate) fn scope_of(
        &self,
        op: &Operation,
        access: &Access,
        ptr: &str,
    ) -> Result<Option<String>> {
        let declared = self.declared_scopes();
        let responses = format!("{ptr}/responses");
        let ptr = format!("{ptr}/x-scope");
        let scope = match op.extensions.get("x-scope") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return err(&ptr, "x-scope must be a string naming one scope"),
        };
        let needs = !matches!(access, Access::Open) && !declared.is_empty();
        match &scope {
            None if needs => {
                return err(
                    &ptr,
                    format!("every authenticated operation names its scope, one of {declared:?}"),
                )
            }
            None => return Ok(None),
            Some(_) if matches!(access, Access::Open) => {
                return err(
                    &ptr,
                    "an operation without credentials cannot require a scope",
                )
            }
            Some(s) if !declared.contains(s) => {
                return err(
                    &ptr,
                    format!(
                        "`{s}` is not among the scopes the security schemes declare ({declared:?})"
                    ),
                )
            }
            Some(_) => {}
        }
        let forbids = op.responses.responses.contains_key(&StatusCode::Code(403));
        if !forbids {
            return err(
                &responses,
                "an operation that requires a scope must declare the 403 it answers without it",
            );
        }
        Ok(scope)
    }
}
