//! File uploads: the request body types the generator gives operations that take a file as
//! `multipart/form-data` (field `file`) or as a raw `text/csv` body. They hold the body
//! unread, so the service streams it to disk and never holds the whole file in memory.

use poem::{http::StatusCode, Body, Request, RequestBody};
use poem_openapi::{
    payload::{ParsePayload, Payload},
    registry::{MetaSchema, MetaSchemaRef},
};

use crate::api::error::{codes, Problem};

/// An uploaded file, not yet read.
pub struct Upload {
    pub format: UploadFormat,
    pub body: Body,
    /// `Content-Length`, when the client declared it: a body declared over the limit is
    /// refused before a byte of it is read.
    pub declared_len: Option<u64>,
}

pub enum UploadFormat {
    /// `multipart/form-data`; the file is its `file` field.
    Form { boundary: String },
    /// A raw `text/csv` body.
    Csv,
}

fn declared_len(req: &Request) -> Option<u64> {
    req.headers()
        .get(poem::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The media type's essence (`text/csv` of `Text/CSV; charset=utf-8`), lower-cased.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn binary() -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")))
}

pub struct FormUpload(pub Upload);

impl Payload for FormUpload {
    const CONTENT_TYPE: &'static str = "multipart/form-data";

    fn check_content_type(content_type: &str) -> bool {
        essence(content_type) == Self::CONTENT_TYPE
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some("The form has one field, `file`; any other is a 400."),
            required: vec!["file"],
            properties: vec![("file", binary())],
            max_properties: Some(1),
            ..MetaSchema::new("object")
        }))
    }
}

impl ParsePayload for FormUpload {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let boundary =
            multer::parse_boundary(req.content_type().unwrap_or_default()).map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    codes::MISSING_FILE,
                    format!("The multipart body cannot be read: {e}"),
                )
            })?;
        Ok(Self(Upload {
            format: UploadFormat::Form { boundary },
            body: body.take()?,
            declared_len: declared_len(req),
        }))
    }
}

pub struct CsvUpload(pub Upload);

impl Payload for CsvUpload {
    const CONTENT_TYPE: &'static str = "text/csv";

    fn check_content_type(content_type: &str) -> bool {
        essence(content_type) == Self::CONTENT_TYPE
    }

    fn schema_ref() -> MetaSchemaRef {
        binary()
    }
}

impl ParsePayload for CsvUpload {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(Upload {
            format: UploadFormat::Csv,
            body: body.take()?,
            declared_len: declared_len(req),
        }))
    }
}
