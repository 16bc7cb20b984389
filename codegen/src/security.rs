//! Security schemes: one poem-openapi `SecurityScheme` per `apiKey` scheme, and the scheme an
//! operation requires.

use crate::prelude::*;

impl<'a> Generator<'a> {
    /// Each apiKey scheme becomes a poem-openapi `SecurityScheme` whose checker is the
    /// hand-written [`runtime::security_checker`], returning `Principal`.
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
            let SecurityScheme::APIKey {
                location,
                name: key_name,
                description,
                ..
            } = scheme
            else {
                return err(&ptr, "only apiKey security schemes are supported");
            };
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
            let ty = type_ident(name);
            let checker = runtime::security_checker(name);
            let principal = runtime::principal();
            let doc = doc_attrs(description.as_deref());
            out.extend(quote! {
                #doc
                #[derive(::poem_openapi::SecurityScheme)]
                #[oai(rename = #name, ty = "api_key", key_name = #key_name, key_in = #key_in, checker = #checker)]
                pub struct #ty(pub #principal);
            });
        }
        Ok(out)
    }

    pub(crate) fn security_of(&self, op: &Operation, ptr: &str) -> Result<Option<Ident>> {
        let reqs = op.security.as_ref().or(self.spec.security.as_ref());
        let Some(reqs) = reqs else { return Ok(None) };
        match reqs.as_slice() {
            [] => Ok(None),
            [one] if one.len() == 1 => {
                let (name, scopes) = one
                    .iter()
                    .next()
                    .ok_or(())
                    .or_else(|()| err(ptr, "empty security requirement"))?;
                if !scopes.is_empty() {
                    return err(ptr, "scopes are not supported on apiKey schemes");
                }
                let known = self
                    .spec
                    .components
                    .as_ref()
                    .is_some_and(|c| c.security_schemes.contains_key(name));
                if !known {
                    return err(ptr, format!("unknown security scheme `{name}`"));
                }
                Ok(Some(type_ident(name)))
            }
            _ => err(
                ptr,
                "exactly one security scheme per operation is supported",
            ),
        }
    }
}
