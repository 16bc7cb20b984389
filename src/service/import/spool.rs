//! Streams an uploaded file to a spool file chunk by chunk, so memory stays constant at any
//! size, counting its bytes and watching its fields and records as they arrive: the file-size
//! limit is always 413 `FILE_TOO_LARGE`, and a field or record over its limit always 413
//! `FIELD_TOO_LARGE`/`RECORD_TOO_LARGE`, whether the bytes came at once or chunked.

use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{record_size::RecordSize, FileBytes, ImportError, Settings};

/// Stores the uploaded file at `path`; returns its size. The caller removes the file when this
/// fails.
pub async fn store(
    mut chunks: FileBytes,
    path: &Path,
    settings: &Settings,
) -> Result<u64, ImportError> {
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
