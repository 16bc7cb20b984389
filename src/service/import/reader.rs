//! Reads an import's file from a position in batches of parsed rows, in a task of its own, so the
//! next batch is parsed while the current one is written.

use csv_async::ByteRecord;
use tokio::sync::mpsc;

use super::{batch::Batch, columns::Columns, rows, scan, spool::Spool, ImportError};

/// Field bytes after which a batch ends whatever its row count, so wide rows cannot make a
/// batch (of which an import holds two) large.
pub const BATCH_BYTES: usize = 4 << 20;

/// A position in the file: byte offset and 1-based line.
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub offset: u64,
    pub line: u64,
}

/// A batch and where the record after it starts: the import's resume point once the batch is
/// committed.
pub type Read = Result<(Batch, At), ImportError>;

/// Starts reading the file at `start`; the receiver gets batches until the end of the file (or
/// the first error), and dropping it stops the reader.
pub fn batches(spool: Spool, start: At, columns: Columns, size: usize) -> mpsc::Receiver<Read> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        if let Err(e) = read(&spool, start, &columns, size, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    rx
}

async fn read(
    spool: &Spool,
    start: At,
    columns: &Columns,
    size: usize,
    tx: &mpsc::Sender<Read>,
) -> Result<(), ImportError> {
    let mut csv = scan::reader(spool.open(start.offset).await?);
    // Positions the reader reports are relative to `start`.
    let absolute = |p: &csv_async::Position| At {
        offset: start.offset + p.byte(),
        line: start.line + p.line() - 1,
    };
    let mut record = ByteRecord::new();
    let mut carried = None;
    loop {
        let mut batch = Batch::default();
        let mut next = None;
        let mut bytes = 0;
        if let Some((row, len)) = carried.take() {
            batch.push(row);
            bytes += len;
        }
        while batch.len() < size && bytes < BATCH_BYTES {
            let at = absolute(csv.position());
            if !csv.read_byte_record(&mut record).await? {
                break;
            }
            let line = i64::try_from(at.line).unwrap_or(i64::MAX);
            let row = rows::parse(&record, columns, line);
            let len = record.as_slice().len();
            if batch.repeats_sku(&row) {
                carried = Some((row, len));
                next = Some(at);
                break;
            }
            batch.push(row);
            bytes += len;
        }
        if batch.is_empty() {
            return Ok(());
        }
        let next = next.unwrap_or_else(|| absolute(csv.position()));
        if tx.send(Ok((batch, next))).await.is_err() {
            return Ok(());
        }
    }
}
