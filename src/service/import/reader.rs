//! Reads an import's file from a position in batches of parsed rows, in a task of its own, so the
//! next batch is parsed while the current one is written.

use csv_async::ByteRecord;
use tokio::sync::mpsc;

use super::{batch::Batch, columns::Columns, rows, scan, spool::Spool, ImportError};

/// Field bytes after which a batch ends whatever its row count, so wide rows cannot make a
/// batch (of which an import holds up to four: read, queued, written, committing) large.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` records of `name,price,quantity,category` with a `width`-byte name, after the
    /// header; read from the start of the first record.
    async fn batch_sizes(rows: usize, width: usize, size: usize) -> Vec<usize> {
        let dir = std::env::temp_dir().join(format!("reader-test-{}", uuid::Uuid::new_v4()));
        tokio::fs::create_dir_all(&dir).await.expect("dir");
        let path = dir.join("file.csv");
        let header = "name,price,quantity,category\n";
        let mut csv = String::from(header);
        for _ in 0..rows {
            csv.push_str(&format!("{},1,1,C\n", "n".repeat(width)));
        }
        tokio::fs::write(&path, csv).await.expect("write");
        let columns =
            Columns::from_header(["name", "price", "quantity", "category"].map(str::as_bytes))
                .expect("header");
        let start = At {
            offset: header.len() as u64,
            line: 2,
        };
        let mut rx = batches(Spool::File(path), start, columns, size);
        let mut sizes = Vec::new();
        while let Some(read) = rx.recv().await {
            sizes.push(read.expect("batch").0.len());
        }
        tokio::fs::remove_dir_all(&dir).await.expect("cleanup");
        sizes
    }

    #[tokio::test]
    async fn a_batch_ends_at_its_row_count() {
        assert_eq!(batch_sizes(12, 10, 5).await, vec![5, 5, 2]);
    }

    #[tokio::test]
    async fn a_batch_of_wide_rows_ends_at_its_byte_limit() {
        // 16 KiB names: 4 MiB is 256 of them (each record a few bytes more).
        let sizes = batch_sizes(600, 16 << 10, 5000).await;
        assert_eq!(sizes.iter().sum::<usize>(), 600);
        assert_eq!(sizes, vec![256, 256, 88]);
    }
}
