//! Request bodies: a JSON body's model, or a file upload as multipart and/or `text/csv`.

use crate::prelude::*;

impl<'a> Generator<'a> {
    /// The model of a JSON request body: its only media type, a `$ref` to a component.
    pub(crate) fn json_body(
        &mut self,
        body: &RequestBody,
        bptr: &str,
        method: &str,
        path: &str,
    ) -> Result<Ident> {
        let (media, content) = match body.content.len() {
            1 => body
                .content
                .iter()
                .next()
                .ok_or(())
                .or_else(|()| err(bptr, "no content"))?,
            _ => {
                return err(
                    &format!("{bptr}/content"),
                    "exactly one media type per JSON request body is supported",
                )
            }
        };
        if media != "application/json" {
            return err(
                &format!("{bptr}/content/{}", seg(media)),
                "request bodies are application/json, or uploads (multipart/form-data, text/csv)",
            );
        }
        if content.example.is_some() || !content.examples.is_empty() {
            return err(&format!("{bptr}/content/{}", seg(media)), "examples on media types are not rendered; put an `example` on the component schema");
        }
        let sptr = format!("{bptr}/content/{}/schema", seg(media));
        let schema = content
            .schema
            .as_ref()
            .ok_or(())
            .or_else(|()| err(&sptr, "missing schema"))?;
        let SchemaRef::Component(name) = schema_ref(schema, &sptr)? else {
            return err(
                &sptr,
                "request body schemas must be a $ref to components/schemas",
            );
        };
        self.bodies.push((
            method.to_ascii_uppercase(),
            path.to_string(),
            name.to_string(),
        ));
        Ok(type_ident(name))
    }

    /// A file upload: `multipart/form-data` with one binary property `file`, and/or a raw
    /// `text/csv` body. The handler gets the unread body as [`runtime::upload`].
    pub(crate) fn upload_body(
        &mut self,
        camel: &str,
        body: &RequestBody,
        bptr: &str,
    ) -> Result<Ident> {
        let mut variants = Vec::new();
        let mut arms = Vec::new();
        for (media, content) in &body.content {
            let cptr = format!("{bptr}/content/{}", seg(media));
            if content.example.is_some() || !content.examples.is_empty() {
                return err(&cptr, "examples on upload media types are not supported");
            }
            // The file part may name the media type it must have (for clients and fuzzers); the
            // handler checks the content itself.
            let part_type_only = content.encoding.iter().all(|(name, e)| {
                name == "file"
                    && e.content_type.is_some()
                    && e.headers.is_empty()
                    && e.style.is_none()
                    && e.extensions.is_empty()
            });
            if !content.encoding.is_empty() && (media != "multipart/form-data" || !part_type_only) {
                return err(
                    &format!("{cptr}/encoding"),
                    "only `encoding: {file: {contentType: ...}}` on multipart/form-data is supported",
                );
            }
            let schema = match &content.schema {
                Some(ReferenceOr::Item(s)) => s,
                _ => return err(&format!("{cptr}/schema"), "upload schemas must be inline"),
            };
            let sptr = format!("{cptr}/schema");
            let (variant, payload) = match media.as_str() {
                "multipart/form-data" => {
                    let file = match &schema.schema_kind {
                        SchemaKind::Type(Type::Object(o))
                            if o.required == ["file"]
                                && o.properties.len() == 1
                                && o.max_properties == Some(1) =>
                        {
                            o.properties.get("file")
                        }
                        _ => None,
                    };
                    match file {
                        Some(ReferenceOr::Item(f)) if is_binary(f) && f.schema_data == Default::default() => {}
                        _ => return err(&sptr, "multipart uploads are an object with `maxProperties: 1` and one required property `file` of `type: string, format: binary` (no other keywords)"),
                    }
                    (format_ident!("Form"), runtime::form_upload())
                }
                _ => {
                    if !is_binary(schema) || schema.schema_data != Default::default() {
                        return err(&sptr, "text/csv uploads are `type: string, format: binary` (no other keywords)");
                    }
                    (format_ident!("Csv"), runtime::csv_upload())
                }
            };
            variants.push(quote!(#variant(#payload)));
            arms.push(quote!(Self::#variant(upload) => upload.0));
        }
        let ty = format_ident!("{camel}Body");
        let doc = doc_attrs(body.description.as_deref());
        let upload = runtime::upload();
        self.items.push(quote! {
            #doc
            #[derive(::poem_openapi::ApiRequest)]
            pub enum #ty { #(#variants),* }

            impl #ty {
                pub fn into_upload(self) -> #upload {
                    match self { #(#arms),* }
                }
            }
        });
        Ok(ty)
    }
}
