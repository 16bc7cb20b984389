//! File uploads: the request body types the generator gives operations that take a file as
//! `multipart/form-data` (field `file`) or as a raw `text/csv` body, and the file's bytes
//! taken out of either as a stream, so the importer spools them to disk and never holds the
//! whole file in memory. Multipart stays here; the importer sees only bytes.
//!
//! Every way past the size limit gives the same answer whatever the sending style: a declared
//! `Content-Length` over it is refused before reading, and otherwise the importer counts the
//! file's bytes as they arrive; the form's own size cap (the limit plus framing) answers the
//! same `FILE_TOO_LARGE`.

use futures::{stream, StreamExt};
use poem::{http::StatusCode, Body, Request, RequestBody};
use poem_openapi::{
    payload::{ParsePayload, Payload},
    registry::{MetaSchema, MetaSchemaRef},
};

use crate::{
    api::error::{codes, Problem},
    service::import::{FileBytes, ImportError},
};

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

/// Part media types browsers and tools send for a CSV file.
const CSV_TYPES: [&str; 6] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "text/comma-separated-values",
    "application/vnd.ms-excel",
    "application/octet-stream",
];

/// Multipart framing and other small fields allowed beyond the file's own limit.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// A multipart error as the import reports it: past the form's size is past the file's.
fn form_error(e: multer::Error, max_bytes: u64) -> ImportError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ImportError::FileTooLarge(max_bytes)
        }
        other => ImportError::Upload(other.to_string()),
    }
}

/// Where the form is while its file streams out.
enum Form {
    /// Looking for the `file` field; the first other field's name, if any.
    Seeking(multer::Multipart<'static>, Option<String>),
    /// Streaming the file.
    InFile(
        multer::Multipart<'static>,
        Box<multer::Field<'static>>,
        Option<String>,
    ),
    /// After the file: any further field is refused once the file is in.
    After(multer::Multipart<'static>, Option<String>),
}

impl Form {
    /// The next chunk of the file, or where the form stands after it.
    async fn next(self, max_bytes: u64) -> Result<Option<(bytes::Bytes, Self)>, ImportError> {
        let mut state = self;
        loop {
            state = match state {
                Self::Seeking(mut form, mut unexpected) => {
                    let field = form
                        .next_field()
                        .await
                        .map_err(|e| form_error(e, max_bytes))?;
                    let Some(field) = field else {
                        return Err(ImportError::MissingFile);
                    };
                    if field.name() != Some("file") {
                        unexpected.get_or_insert(field.name().unwrap_or_default().to_string());
                        Self::Seeking(form, unexpected)
                    } else {
                        if let Some(mime) = field.content_type() {
                            let mime = essence(mime.as_ref());
                            if !CSV_TYPES.contains(&mime.as_str()) {
                                return Err(ImportError::InvalidFileType(format!(
                                    "the file is {mime}, not text/csv"
                                )));
                            }
                        }
                        Self::InFile(form, Box::new(field), unexpected)
                    }
                }
                Self::InFile(form, mut field, unexpected) => {
                    match field.chunk().await.map_err(|e| form_error(e, max_bytes))? {
                        Some(chunk) => {
                            return Ok(Some((chunk, Self::InFile(form, field, unexpected))))
                        }
                        None => Self::After(form, unexpected),
                    }
                }
                Self::After(mut form, mut unexpected) => {
                    match form
                        .next_field()
                        .await
                        .map_err(|e| form_error(e, max_bytes))?
                    {
                        Some(field) => {
                            unexpected.get_or_insert(field.name().unwrap_or_default().to_string());
                            Self::After(form, unexpected)
                        }
                        None => match unexpected {
                            Some(name) => return Err(ImportError::UnexpectedField(name)),
                            None => return Ok(None),
                        },
                    }
                }
            };
        }
    }
}

/// The uploaded file's bytes, raw or out of the form, refused at once when the client declared
/// a length over `max_bytes` (plus the form's framing).
pub fn file_bytes(upload: Upload, max_bytes: u64) -> Result<FileBytes, ImportError> {
    let Upload {
        format,
        body,
        declared_len,
    } = upload;
    let form_limit = match &format {
        UploadFormat::Csv => max_bytes,
        UploadFormat::Form { .. } => max_bytes.saturating_add(FORM_OVERHEAD),
    };
    if declared_len.is_some_and(|n| n > form_limit) {
        return Err(ImportError::FileTooLarge(max_bytes));
    }
    let body = body.into_bytes_stream();
    let UploadFormat::Form { boundary } = format else {
        return Ok(body
            .map(|c| c.map_err(|e| ImportError::Upload(e.to_string())))
            .boxed());
    };
    let limits =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(form_limit));
    let form = multer::Multipart::with_constraints(body, boundary, limits);
    Ok(stream::try_unfold(Form::Seeking(form, None), move |state| {
        state.next(max_bytes)
    })
    .boxed())
}
