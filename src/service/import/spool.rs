//! Streams an upload to a spool file chunk by chunk, so memory stays constant at any size.
//!
//! Every way past a limit gives the same answer whatever the sending style: a declared
//! `Content-Length` over the limit is refused before reading, and otherwise the bytes are
//! counted as they arrive (raw or inside a form, chunked or not), so the file-size limit is
//! always 413 `FILE_TOO_LARGE`, and a field or record over its limit always 413
//! `FIELD_TOO_LARGE`/`RECORD_TOO_LARGE`, never whichever counter happened to trip first.

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::{record_size::RecordSize, ImportError, Settings};
use crate::api::upload::{essence, Upload, UploadFormat};

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

/// Writes `chunks` to `path`; returns the byte count.
async fn write<S>(mut chunks: S, path: &Path, settings: &Settings) -> Result<u64, ImportError>
where
    S: Stream<Item = Result<Bytes, ImportError>> + Unpin,
{
    let mut file = tokio::fs::File::create(path).await?;
    let mut records = RecordSize::new(settings.max_field_bytes, settings.max_record_bytes);
    let mut size: u64 = 0;
    let mut first = true;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        // Text never holds NUL; a binary file sent as CSV is refused before it is stored.
        if first && chunk.contains(&0) {
            return Err(ImportError::InvalidFileType(
                "the file is binary, not CSV text".into(),
            ));
        }
        first = chunk.is_empty() && first;
        size += chunk.len() as u64;
        if size > settings.max_bytes {
            return Err(ImportError::FileTooLarge(settings.max_bytes));
        }
        records.feed(&chunk).map_err(ImportError::Oversized)?;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(size)
}

/// A multipart error as the import reports it: past the form's size is past the file's.
fn form_error(e: multer::Error, max_bytes: u64) -> ImportError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ImportError::FileTooLarge(max_bytes)
        }
        other => ImportError::Upload(other.to_string()),
    }
}

/// Stores the uploaded file at `path`. The caller removes the file when this fails.
pub async fn store(upload: Upload, path: &Path, settings: &Settings) -> Result<u64, ImportError> {
    let max_bytes = settings.max_bytes;
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
        let chunks = body.map(|c| c.map_err(|e| ImportError::Upload(e.to_string())));
        return write(chunks, path, settings).await;
    };
    let limits =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(form_limit));
    let mut form = multer::Multipart::with_constraints(body, boundary, limits);
    let mut size = None;
    let mut unexpected = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| form_error(e, max_bytes))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" || size.is_some() {
            unexpected.get_or_insert(name);
            continue;
        }
        if let Some(mime) = field.content_type() {
            let mime = essence(mime.as_ref());
            if !CSV_TYPES.contains(&mime.as_str()) {
                return Err(ImportError::InvalidFileType(format!(
                    "the file is {mime}, not text/csv"
                )));
            }
        }
        let chunks = field.map(|c| c.map_err(|e| form_error(e, max_bytes)));
        size = Some(write(chunks, path, settings).await?);
    }
    match (size, unexpected) {
        (None, _) => Err(ImportError::MissingFile),
        (Some(_), Some(name)) => Err(ImportError::UnexpectedField(name)),
        (Some(size), None) => Ok(size),
    }
}
