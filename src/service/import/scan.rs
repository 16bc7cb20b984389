//! The check made before an import is accepted: the header row is readable and names the
//! required columns, and the file has no more data rows than allowed.

use csv_async::{AsyncReaderBuilder, ByteRecord};

use super::{columns::Columns, ImportError};

pub struct Scanned {
    pub columns: Columns,
    pub rows: u64,
}

/// A CSV reader of the spool file: records of any width (ragged rows are row errors, not
/// parse errors), the header read as a record like the others.
pub fn reader<R>(file: R) -> csv_async::AsyncReader<R>
where
    R: tokio::io::AsyncRead + Unpin + Send,
{
    AsyncReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .create_reader(file)
}

pub async fn scan<R>(file: R, max_rows: u64) -> Result<Scanned, ImportError>
where
    R: tokio::io::AsyncRead + Unpin + Send,
{
    let mut csv = reader(file);
    let mut record = ByteRecord::new();
    if !csv.read_byte_record(&mut record).await? {
        return Err(super::columns::HeaderError::Empty.into());
    }
    let columns = Columns::from_header(record.iter())?;
    let mut rows: u64 = 0;
    while csv.read_byte_record(&mut record).await? {
        rows += 1;
        if rows > max_rows {
            return Err(ImportError::TooManyRows(max_rows));
        }
    }
    Ok(Scanned { columns, rows })
}
