//! Streams an upload to a spool file chunk by chunk, so memory stays constant at any size,
//! and stops as soon as the file passes the size limit.

use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::ImportError;
use crate::api::upload::{essence, Upload};

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
async fn write<S, E>(mut chunks: S, path: &Path, max_bytes: u64) -> Result<u64, ImportError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(path).await?;
    let mut size: u64 = 0;
    let mut first = true;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| ImportError::Upload(e.to_string()))?;
        // Text never holds NUL; a binary file sent as CSV is refused before it is stored.
        if first && chunk.contains(&0) {
            return Err(ImportError::InvalidFileType(
                "the file is binary, not CSV text".into(),
            ));
        }
        first = chunk.is_empty() && first;
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(ImportError::FileTooLarge(max_bytes));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok(size)
}

/// Stores the uploaded file at `path`. The caller removes the file when this fails.
pub async fn store(upload: Upload, path: &Path, max_bytes: u64) -> Result<u64, ImportError> {
    match upload {
        Upload::Csv(body) => write(body.into_bytes_stream(), path, max_bytes).await,
        Upload::Form { boundary, body } => {
            let limits = multer::Constraints::new().size_limit(
                multer::SizeLimit::new().whole_stream(max_bytes.saturating_add(FORM_OVERHEAD)),
            );
            let mut form =
                multer::Multipart::with_constraints(body.into_bytes_stream(), boundary, limits);
            let mut size = None;
            let mut unexpected = None;
            loop {
                let field = match form.next_field().await {
                    Ok(Some(field)) => field,
                    Ok(None) => break,
                    Err(multer::Error::StreamSizeExceeded { .. }) => {
                        return Err(ImportError::FileTooLarge(max_bytes))
                    }
                    Err(e) => return Err(ImportError::Upload(e.to_string())),
                };
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
                size = Some(write(field, path, max_bytes).await?);
            }
            match (size, unexpected) {
                (None, _) => Err(ImportError::MissingFile),
                (Some(_), Some(name)) => Err(ImportError::UnexpectedField(name)),
                (Some(size), None) => Ok(size),
            }
        }
    }
}
