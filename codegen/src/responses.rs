//! Responses: per operation a success enum and an error enum, their headers and payloads.

use crate::prelude::*;

impl<'a> Generator<'a> {
    pub(crate) fn responses(
        &mut self,
        camel: &str,
        op_id: &str,
        op: &'a Operation,
        ptr: &str,
    ) -> Result<(Ident, Ident)> {
        if op.responses.default.is_some() {
            return err(
                &format!("{ptr}/default"),
                "default responses are not supported; list the statuses",
            );
        }
        let ok_ty = format_ident!("{}Response", camel);
        let err_ty = format_ident!("{}Error", camel);
        let mut ok_variants = Vec::new();
        let mut err_variants = Vec::new();
        let mut err_arms = Vec::new();
        let mut has_500 = false;
        for (status, resp) in &op.responses.responses {
            let StatusCode::Code(code) = status else {
                return err(
                    &format!("{ptr}/{status}"),
                    "status ranges are not supported",
                );
            };
            let code = *code;
            let rptr = format!("{ptr}/{code}");
            let (resp, rptr) = self.resolve_response(resp, &rptr)?;
            let variant = Ident::new(&status_name(code), Span::call_site());
            let doc = doc_attrs(Some(&resp.description));
            let mut fields = Vec::new();
            let mut content_type = None;
            // Problem bodies are errors (a handler's `Err`); any other body, whatever its
            // status, is an outcome the handler returns (a health report's 503, say).
            let mut is_problem = false;
            match resp.content.len() {
                0 => {}
                1 => {
                    let (media, content) = resp
                        .content
                        .iter()
                        .next()
                        .ok_or(())
                        .or_else(|()| err(&rptr, "no content"))?;
                    let cptr = format!("{rptr}/content/{}", seg(media));
                    if content.example.is_some() || !content.examples.is_empty() {
                        return err(&cptr, "examples on media types are not rendered; put an `example` on the component schema");
                    }
                    let schema = content
                        .schema
                        .as_ref()
                        .ok_or(())
                        .or_else(|()| err(&cptr, "missing schema"))?;
                    if media == "text/event-stream" && code < 400 {
                        fields.push(self.event_stream(schema, &format!("{cptr}/schema"))?);
                    } else if media == "text/csv" && code < 400 {
                        if !matches!(schema, ReferenceOr::Item(s) if is_binary(s)) {
                            return err(
                                &format!("{cptr}/schema"),
                                "text/csv responses need `type: string, format: binary`",
                            );
                        }
                        fields.push(runtime::csv_body());
                    } else {
                        let SchemaRef::Component(name) =
                            schema_ref(schema, &format!("{cptr}/schema"))?
                        else {
                            return err(
                                &format!("{cptr}/schema"),
                                "response schemas must be a $ref to components/schemas",
                            );
                        };
                        match media.as_str() {
                            "application/json" => {}
                            "application/problem+json" => content_type = Some(media.clone()),
                            _ => return err(&cptr, "only application/json, application/problem+json and (for success) text/event-stream responses are supported"),
                        }
                        is_problem = name == PROBLEM;
                        if is_problem && code < 400 {
                            return err(
                                &format!("{cptr}/schema"),
                                format!("`{PROBLEM}` is for 4xx and 5xx responses"),
                            );
                        }
                        let ty = type_ident(name);
                        fields.push(quote!(::poem_openapi::payload::Json<#ty>));
                    }
                }
                _ => {
                    return err(
                        &format!("{rptr}/content"),
                        "one media type per response is supported",
                    )
                }
            }
            if code >= 400 && fields.is_empty() {
                return err(
                    &rptr,
                    format!("error responses must carry a body, normally the `{PROBLEM}` schema"),
                );
            }
            let mut attrs = vec![quote!(status = #code)];
            for (hname, header) in &resp.headers {
                let hptr = format!("{rptr}/headers/{}", seg(hname));
                let (header, hptr) = self.resolve_header(header, &hptr)?;
                match header.extensions.get("x-set-by").and_then(|v| v.as_str()) {
                    // Set by a middleware: declared on the response, not passed by handlers.
                    Some("middleware") => attrs.push(self.declared_header(hname, header, &hptr)?),
                    Some(_) => {
                        return err(
                            &format!("{hptr}/x-set-by"),
                            "x-set-by accepts only `middleware`",
                        )
                    }
                    None if is_problem => {
                        return err(&hptr, "Problem responses carry only headers with `x-set-by: middleware`: handlers return a Problem");
                    }
                    None => fields.push(self.response_header(hname, header, &hptr)?),
                }
            }
            if let Some(ct) = content_type {
                attrs.push(quote!(content_type = #ct));
            }
            let v = match fields.is_empty() {
                true => quote!(#doc #[oai(#(#attrs),*)] #variant),
                false => quote!(#doc #[oai(#(#attrs),*)] #variant(#(#fields),*)),
            };
            if is_problem {
                has_500 |= code == 500;
                err_arms.push(quote!(::std::result::Result::Ok(#code) => Self::#variant(::poem_openapi::payload::Json(problem))));
                err_variants.push(v);
            } else {
                ok_variants.push(v);
            }
        }
        if ok_variants.is_empty() {
            return err(ptr, "an operation needs at least one success response");
        }
        if !has_500 {
            return err(ptr, "every operation must declare a 500 response");
        }
        let ok_doc = format!(" Success responses of `{op_id}`.");
        let err_doc = format!(
            " Error responses of `{op_id}`; a handler's `Problem` picks one by its status."
        );
        let undeclared = runtime::undeclared_status();
        self.items.push(quote! {
            #[doc = #ok_doc]
            #[derive(::poem_openapi::ApiResponse)]
            pub enum #ok_ty { #(#ok_variants),* }

            #[doc = #err_doc]
            #[derive(::poem_openapi::ApiResponse)]
            pub enum #err_ty { #(#err_variants),* }

            impl ::std::convert::From<Problem> for #err_ty {
                fn from(problem: Problem) -> Self {
                    let problem = match ::std::primitive::u16::try_from(problem.status) {
                        #(#err_arms,)*
                        _ => Self::InternalServerError(::poem_openapi::payload::Json(
                            #undeclared(problem, #op_id),
                        )),
                    };
                    problem
                }
            }
        });
        Ok((ok_ty, err_ty))
    }

    pub(crate) fn resolve_response(
        &self,
        r: &'a ReferenceOr<Response>,
        ptr: &str,
    ) -> Result<(&'a Response, String)> {
        let components = self.spec.components.as_ref();
        resolve_ref(r, "response", |name| components?.responses.get(name), ptr)
    }

    pub(crate) fn resolve_header(
        &self,
        h: &'a ReferenceOr<Header>,
        ptr: &str,
    ) -> Result<(&'a Header, String)> {
        let components = self.spec.components.as_ref();
        resolve_ref(h, "header", |name| components?.headers.get(name), ptr)
    }

    /// `text/event-stream`: the schema is a `$ref` to the component describing one event
    /// (its `event`, `id`, `retry` and `data` fields, as OpenAPI 3.2 reads `itemSchema` and
    /// schemathesis reads a 3.0 event-stream schema). The runtime's `SseBody<Frame>` carries the
    /// frames the handler builds.
    pub(crate) fn event_stream(
        &mut self,
        schema: &ReferenceOr<Schema>,
        ptr: &str,
    ) -> Result<TokenStream> {
        let SchemaRef::Component(name) = schema_ref(schema, ptr)? else {
            return err(
                ptr,
                "event streams need `$ref` to the components/schemas object describing one event",
            );
        };
        let ty = type_ident(name);
        let sse = runtime::sse_body();
        Ok(quote!(#sse<#ty>))
    }

    /// A header the response declares but a middleware sets: poem-openapi's `header(...)`.
    pub(crate) fn declared_header(
        &mut self,
        name: &str,
        header: &Header,
        ptr: &str,
    ) -> Result<TokenStream> {
        let ParameterSchemaOrContent::Schema(schema) = &header.format else {
            return err(ptr, "headers need a `schema`");
        };
        let base = self.schema_type(schema, name, &format!("{ptr}/schema"))?.ty;
        let ty = match header.required {
            true => base.to_string(),
            false => format!("::std::option::Option<{base}>"),
        };
        let description = header.description.as_deref().unwrap_or_default().trim();
        Ok(quote!(header(name = #name, ty = #ty, description = #description)))
    }

    pub(crate) fn response_header(
        &mut self,
        name: &str,
        header: &Header,
        ptr: &str,
    ) -> Result<TokenStream> {
        let ParameterSchemaOrContent::Schema(schema) = &header.format else {
            return err(ptr, "headers need a `schema`");
        };
        let typed = self.schema_type(schema, name, &format!("{ptr}/schema"))?;
        let base = typed.ty;
        let ty = if header.required {
            base
        } else {
            quote!(::std::option::Option<#base>)
        };
        let doc = doc_attrs(header.description.as_deref());
        Ok(quote!(#doc #[oai(header = #name)] #ty))
    }
}
