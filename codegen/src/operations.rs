//! Operations and routing: the handler traits, the `#[OpenApi]` routes, the service function
//! and the per-operation tables the hand-written middleware reads.

use crate::prelude::*;

impl<'a> Generator<'a> {
    /// The HTTP surface, and every model's rules as constants.
    pub(crate) fn generate(mut self) -> Result<(TokenStream, TokenStream)> {
        let components = match &self.spec.components {
            Some(c) => c,
            None => {
                return err(
                    "/components",
                    "the spec needs components (at least the Problem schema)",
                )
            }
        };
        if !components.schemas.contains_key(PROBLEM) {
            return err(
                "/components/schemas",
                format!("missing schema `{PROBLEM}`: every error response carries it"),
            );
        }
        for (name, schema) in &components.schemas {
            let ptr = format!("/components/schemas/{}", seg(name));
            match schema {
                ReferenceOr::Item(s) => self.model(name, s, &ptr)?,
                ReferenceOr::Reference { .. } => {
                    return err(
                        &ptr,
                        "a component schema must be defined inline, not as a $ref",
                    )
                }
            }
        }
        let tags = self.tags()?;
        let security = self.security_schemes()?;
        let mut ops = Vec::new();
        // (path template, `Allow` value): the methods the spec declares on each path.
        let mut allow: Vec<(String, String)> = Vec::new();
        let spec = self.spec;
        for (path, item) in &spec.paths.paths {
            let ptr = format!("/paths/{}", seg(path));
            let ReferenceOr::Item(item) = item else {
                return err(&ptr, "path items must be inline, not $ref");
            };
            if !item.parameters.is_empty() {
                return err(
                    &format!("{ptr}/parameters"),
                    "path-level parameters are not supported; declare them on each operation",
                );
            }
            let mut methods = Vec::new();
            for (method, op) in item.iter() {
                ops.push(self.operation(path, method, op, &format!("{ptr}/{method}"))?);
                methods.push(method.to_ascii_uppercase());
            }
            allow.push((path.clone(), methods.join(", ")));
        }
        let service = self.service_fn();
        let items = &self.items;
        let mut traits: Vec<(Ident, Vec<&TokenStream>)> = Vec::new();
        for op in &ops {
            match traits.iter_mut().find(|(t, _)| *t == op.handlers) {
                Some((_, methods)) => methods.push(&op.trait_method),
                None => traits.push((op.handlers.clone(), vec![&op.trait_method])),
            }
        }
        let trait_defs = traits.iter().map(|(name, methods)| {
            let doc = format!(
                " Hand-written handlers of the operations tagged `{}`.",
                name.to_string().trim_end_matches("Handlers")
            );
            quote! {
                #[doc = #doc]
                pub trait #name: ::std::marker::Send + ::std::marker::Sync + 'static {
                    #(#methods)*
                }
            }
        });
        let bounds: Vec<&Ident> = traits.iter().map(|(name, _)| name).collect();
        let routes = ops.iter().map(|o| &o.route);
        let model_names = &self.model_names;
        let paths = spec.paths.paths.keys();
        let allow_paths = allow.iter().map(|(p, _)| p);
        let allow_methods = allow.iter().map(|(_, m)| m);
        let bulk_methods = self.bulk.iter().map(|(m, _)| m);
        let bulk_paths = self.bulk.iter().map(|(_, p)| p);
        let upload_methods = self.uploads.iter().map(|(m, _)| m);
        let upload_paths = self.uploads.iter().map(|(_, p)| p);
        let query_methods = self.query_params.iter().map(|(m, _, _)| m);
        let query_paths = self.query_params.iter().map(|(_, p, _)| p);
        let query_names = self.query_params.iter().map(|(_, _, n)| n);
        let body_methods = self.bodies.iter().map(|(m, _, _)| m);
        let body_paths = self.bodies.iter().map(|(_, p, _)| p);
        let body_schemas = self.bodies.iter().map(|(_, _, s)| s);
        let model_tys = model_names.iter().map(|n| type_ident(n));
        let field_rule = runtime::field_rule();
        let rules = &self.rules;
        let rules = quote!(#(#rules)*);
        let code = quote! {
            #tags
            #security
            #(#items)*

            #(#trait_defs)*

            /// Everything the routing needs from the hand-written side.
            pub trait Handlers: #(#bounds)+* {}
            impl<T: #(#bounds)+*> Handlers for T {}

            /// The routing generated from the spec; it extracts and validates every parameter
            /// and body, then calls the matching handler method.
            pub struct Routes<H>(pub H);

            #[::poem_openapi::OpenApi]
            impl<H: Handlers> Routes<H> {
                #(#routes)*
            }

            #service

            /// The spec's path templates, relative to the server URL.
            pub const PATHS: &[&str] = &[#(#paths),*];

            /// (path template, `Allow` header value) of each path: the methods the spec declares.
            pub const ALLOWED_METHODS: &[(&str, &str)] = &[#((#allow_paths, #allow_methods)),*];

            /// (METHOD, path template, schema) of each operation that takes a JSON body.
            pub const REQUEST_BODIES: &[(&str, &str, &str)] = &[#((#body_methods, #body_paths, #body_schemas)),*];

            /// (METHOD, path template, name) of each query parameter the spec declares.
            pub const QUERY_PARAMETERS: &[(&str, &str, &str)] = &[#((#query_methods, #query_paths, #query_names)),*];

            /// `api/openapi.yaml` as JSON: the contract the server serves.
            pub const CONTRACT_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

            /// (METHOD, path template) of each operation that takes a file upload.
            pub const UPLOADS: &[(&str, &str)] = &[#((#upload_methods, #upload_paths)),*];

            /// (METHOD, path template) of the operations limited by the bulk policy.
            pub const BULK_OPERATIONS: &[(&str, &str)] = &[#((#bulk_methods, #bulk_paths)),*];

            /// The property rules of the schema poem-openapi calls `name`.
            pub fn rules_of(name: &str) -> ::std::option::Option<&'static [#field_rule]> {
                match name {
                    #(#model_names => ::std::option::Option::Some(#model_tys::RULES),)*
                    _ => ::std::option::Option::None,
                }
            }
        };
        Ok((code, rules))
    }

    pub(crate) fn service_fn(&self) -> TokenStream {
        let info = &self.spec.info;
        let title = &info.title;
        let version = &info.version;
        let description = info.description.clone().unwrap_or_default();
        let license = info.license.as_ref().map(|l| {
            let name = &l.name;
            let url = l.url.as_ref().map(|u| quote!(.url(#u)));
            quote!(.license(::poem_openapi::LicenseObject::new(#name) #url))
        });
        let servers = self.spec.servers.iter().map(|s| {
            let url = &s.url;
            quote!(.server(#url))
        });
        quote! {
            /// The OpenAPI service for `handlers`, with the spec's info and servers.
            pub fn service<H: Handlers>(handlers: H) -> ::poem_openapi::OpenApiService<Routes<H>, ()> {
                ::poem_openapi::OpenApiService::new(Routes(handlers), #title, #version)
                    .description(#description)
                    #license
                    #(#servers)*
            }
        }
    }

    pub(crate) fn tags(&self) -> Result<TokenStream> {
        let variants = self.spec.tags.iter().map(|t| {
            let v = type_ident(&t.name);
            let name = &t.name;
            let doc = doc_attrs(t.description.as_deref());
            quote!(#doc #[oai(rename = #name)] #v)
        });
        Ok(quote! {
            /// The spec's tags.
            #[derive(::poem_openapi::Tags)]
            pub enum ApiTags { #(#variants),* }
        })
    }

    pub(crate) fn tag_path(&self, tag: &str, ptr: &str) -> Result<TokenStream> {
        if !self.spec.tags.iter().any(|t| t.name == tag) {
            return err(
                ptr,
                format!("tag `{tag}` is not declared in the top-level `tags`"),
            );
        }
        let v = type_ident(tag);
        Ok(quote!(ApiTags::#v))
    }

    pub(crate) fn operation(
        &mut self,
        path: &str,
        method: &str,
        op: &'a Operation,
        ptr: &str,
    ) -> Result<Op> {
        let Some(op_id) = &op.operation_id else {
            return err(
                ptr,
                "every operation needs an operationId: it names the handler method",
            );
        };
        let fn_name = ident(op_id);
        let camel = op_id.to_upper_camel_case();
        match op.extensions.get("x-rate-limit-class").map(|v| v.as_str()) {
            None | Some(Some("standard")) => {}
            Some(Some("bulk")) => self
                .bulk
                .push((method.to_ascii_uppercase(), path.to_string())),
            Some(_) => {
                return err(
                    &format!("{ptr}/x-rate-limit-class"),
                    "x-rate-limit-class accepts `standard` or `bulk`",
                )
            }
        }
        // poem-openapi spells path variables `:id`; it renders them back as `{id}`.
        let poem_path = path
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(var) => format!(":{var}"),
                    None => s.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        let mut route_attrs = vec![
            quote!(path = #poem_path),
            quote!(method = #method),
            quote!(operation_id = #op_id),
        ];
        let [tag] = op.tags.as_slice() else {
            return err(
                &format!("{ptr}/tags"),
                "every operation needs exactly one tag: it names the handler trait",
            );
        };
        let t = self.tag_path(tag, &format!("{ptr}/tags/0"))?;
        let t = t.to_string().replace(' ', "");
        route_attrs.push(quote!(tag = #t));
        let handlers = format_ident!("{}Handlers", tag.to_upper_camel_case());
        if op.deprecated {
            route_attrs.push(quote!(deprecated));
        }
        let mut route_args = Vec::new();
        let mut trait_args = Vec::new();
        let mut call_args = Vec::new();
        // The route checks the operation's scope, then hands the handler the seller.
        let access = self.access_of(op, ptr)?;
        let scope = match self.scope_of(op, &access, ptr)? {
            Some(s) => quote!(::std::option::Option::Some(#s)),
            None => quote!(::std::option::Option::None),
        };
        let mut checks = TokenStream::new();
        let seller = runtime::seller();
        let authorize = match &access {
            Access::Open => None,
            Access::Secured(scheme) => {
                route_args.push(quote!(auth: #scheme));
                let authorize = runtime::authorize();
                Some(quote!(#authorize(auth.into_principal(), #scope)))
            }
            // An operation without a scheme that still acts for a seller (the event stream,
            // whose browser clients name it in the query) reads the request's resolved caller.
            Access::Caller => {
                let caller = runtime::caller();
                route_args.push(quote!(caller: ::poem::web::Data<&#caller>));
                let authorize = runtime::authorize_caller();
                Some(quote!(#authorize(caller.0, #scope)))
            }
        };
        if let Some(authorize) = authorize {
            checks = quote! {
                let seller = match #authorize {
                    ::std::result::Result::Ok(seller) => seller,
                    ::std::result::Result::Err(problem) => return ::std::result::Result::Err(problem.into()),
                };
            };
            trait_args.push(quote!(seller: #seller));
            call_args.push(quote!(seller));
        }
        let mut arg_names = BTreeSet::new();
        for (i, p) in op.parameters.iter().enumerate() {
            let pptr = format!("{ptr}/parameters/{i}");
            let (param, pptr) = self.resolve_parameter(p, &pptr)?;
            if let Parameter::Query { parameter_data, .. } = param {
                self.query_params.push((
                    method.to_ascii_uppercase(),
                    path.to_string(),
                    parameter_data.name.clone(),
                ));
            }
            let (route_arg, trait_arg, call_arg) =
                self.parameter(op_id, param, &pptr, &mut arg_names)?;
            route_args.push(route_arg);
            trait_args.push(trait_arg);
            call_args.push(call_arg);
        }
        if let Some(body) = &op.request_body {
            let bptr = format!("{ptr}/requestBody");
            let ReferenceOr::Item(body) = body else {
                return err(
                    &bptr,
                    "request bodies must be inline (their schema may be a $ref)",
                );
            };
            if !body.required {
                return err(
                    &bptr,
                    "optional request bodies are not supported; set `required: true`",
                );
            }
            if body
                .content
                .keys()
                .all(|m| UPLOAD_MEDIA.contains(&m.as_str()))
            {
                let ty = self.upload_body(&camel, body, &bptr)?;
                self.uploads
                    .push((method.to_ascii_uppercase(), path.to_string()));
                route_args.push(quote!(body: #ty));
                let upload = runtime::upload();
                trait_args.push(quote!(body: #upload));
                call_args.push(quote!(body.into_upload()));
            } else {
                let ty = self.json_body(body, &bptr, method, path)?;
                route_args.push(quote!(body: ::poem_openapi::payload::Json<#ty>));
                trait_args.push(quote!(body: #ty));
                call_args.push(quote!(body.0));
            }
        }
        let (ok_ty, err_ty) = self.responses(&camel, op_id, op, &format!("{ptr}/responses"))?;
        let doc = {
            let summary = op.summary.as_deref().unwrap_or_default().trim();
            let description = op.description.as_deref().unwrap_or_default().trim();
            if summary.contains("\n\n") {
                return err(&format!("{ptr}/summary"), "a summary must be one paragraph");
            }
            match (summary.is_empty(), description.is_empty()) {
                (true, _) => return err(ptr, "every operation needs a summary"),
                (false, true) => doc_attrs(Some(summary)),
                (false, false) => doc_attrs(Some(&format!("{summary}\n\n{description}"))),
            }
        };
        Ok(Op {
            handlers: handlers.clone(),
            trait_method: quote! {
                #doc
                fn #fn_name(&self, #(#trait_args),*) -> impl ::std::future::Future<Output = ::std::result::Result<#ok_ty, Problem>> + ::std::marker::Send;
            },
            route: quote! {
                #doc
                #[oai(#(#route_attrs),*)]
                async fn #fn_name(&self, #(#route_args),*) -> ::std::result::Result<#ok_ty, #err_ty> {
                    #checks
                    #handlers::#fn_name(&self.0, #(#call_args),*).await.map_err(::std::convert::Into::into)
                }
            },
        })
    }
}
