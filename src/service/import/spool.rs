//! Where an import's file waits and is read from: a file in the spool directory (SQLite, the
//! embedded default: one process owns the database) or chunks in PostgreSQL, so that any
//! instance's worker can run the import or resume it after its instance died.
//!
//! The upload is streamed in chunk by chunk, so memory stays constant at any size, counting
//! its bytes and watching its fields and records as they arrive: the file-size limit is always
//! 413 `FILE_TOO_LARGE`, and a field or record over its limit always 413
//! `FIELD_TOO_LARGE`/`RECORD_TOO_LARGE`, whether the bytes came at once or chunked.

use std::{
    path::{Path, PathBuf},
    pin::Pin,
};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt};

use super::{record_size::RecordSize, FileBytes, ImportError, Settings};
use crate::{
    entity::import::Model as Import,
    repository::import_chunks::{self, CHUNK_BYTES},
};

/// The file read from an offset.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// Where one import's file is kept.
#[derive(Clone, Debug)]
pub enum Spool {
    File(PathBuf),
    Database {
        db: DatabaseConnection,
        import_id: String,
    },
}

impl Spool {
    /// Where a new import's file goes: PostgreSQL keeps it, SQLite's server a file.
    pub fn new(db: &DatabaseConnection, settings: &Settings, import_id: &str) -> Self {
        match db.get_database_backend() {
            DatabaseBackend::Postgres => Self::Database {
                db: db.clone(),
                import_id: import_id.to_string(),
            },
            _ => Self::File(settings.spool_dir.join(format!("{import_id}.csv"))),
        }
    }

    /// The file of a stored import: an empty `spool_path` says it is in the database.
    pub fn of(db: &DatabaseConnection, import: &Import) -> Self {
        match import.spool_path.as_str() {
            "" => Self::Database {
                db: db.clone(),
                import_id: import.id.clone(),
            },
            path => Self::File(PathBuf::from(path)),
        }
    }

    /// What the import row records as its `spool_path`.
    pub fn path(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Database { .. } => String::new(),
        }
    }

    /// Stores the upload; returns its size. The caller removes what was stored when this fails.
    pub async fn store(
        &self,
        mut chunks: FileBytes,
        settings: &Settings,
    ) -> Result<u64, ImportError> {
        let mut sink = Sink::open(self).await?;
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
            sink.write(chunk).await?;
        }
        sink.finish().await?;
        Ok(size)
    }

    /// Whether the file is (still) there.
    pub async fn exists(&self) -> Result<bool, ImportError> {
        match self {
            Self::File(path) => Ok(tokio::fs::try_exists(path).await?),
            Self::Database { db, import_id } => Ok(import_chunks::count(db, import_id).await? > 0),
        }
    }

    /// The file from byte `offset` on.
    pub async fn open(&self, offset: u64) -> Result<Reader, ImportError> {
        match self {
            Self::File(path) => {
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(std::io::SeekFrom::Start(offset)).await?;
                Ok(Box::pin(file))
            }
            Self::Database { db, import_id } => {
                let chunk = CHUNK_BYTES as u64;
                let seq = i32::try_from(offset / chunk).map_err(std::io::Error::other)?;
                // Only the first chunk read starts inside itself.
                let skip = (offset % chunk) as usize;
                let chunks = futures::stream::try_unfold(
                    (db.clone(), import_id.clone(), seq, skip),
                    |(db, id, seq, skip)| async move {
                        let data = import_chunks::read(&db, &id, seq)
                            .await
                            .map_err(std::io::Error::other)?;
                        Ok::<_, std::io::Error>(data.map(|data| {
                            let mut data = Bytes::from(data);
                            let rest = data.split_off(skip.min(data.len()));
                            (rest, (db, id, seq + 1, 0))
                        }))
                    },
                );
                Ok(Box::pin(tokio_util::io::StreamReader::new(chunks)))
            }
        }
    }

    /// Removes the file; a failure is logged, not returned: the import is over either way.
    pub async fn remove(&self) {
        match self {
            Self::File(path) => remove_file(path).await,
            Self::Database { db, import_id } => {
                if let Err(e) = import_chunks::delete(db, import_id).await {
                    tracing::warn!(error = %e, import = import_id, "import file not deleted");
                }
            }
        }
    }
}

async fn remove_file(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, path = %path.display(), "spool file not removed");
        }
    }
}

/// The writing end of a spool.
enum Sink<'a> {
    File(tokio::fs::File),
    Database(Chunks<'a>),
}

/// Bytes gathered into chunks of `CHUNK_BYTES`, each stored as it fills.
struct Chunks<'a> {
    db: &'a DatabaseConnection,
    import_id: &'a str,
    pending: BytesMut,
    seq: i32,
}

impl Chunks<'_> {
    /// Stores the first `len` pending bytes as the next chunk.
    async fn store(&mut self, len: usize) -> Result<(), ImportError> {
        let data = self.pending.split_to(len);
        import_chunks::append(self.db, self.import_id, self.seq, data.to_vec()).await?;
        self.seq += 1;
        Ok(())
    }
}

impl<'a> Sink<'a> {
    async fn open(spool: &'a Spool) -> Result<Self, ImportError> {
        Ok(match spool {
            Spool::File(path) => {
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                Self::File(tokio::fs::File::create(path).await?)
            }
            Spool::Database { db, import_id } => Self::Database(Chunks {
                db,
                import_id,
                pending: BytesMut::with_capacity(CHUNK_BYTES),
                seq: 0,
            }),
        })
    }

    async fn write(&mut self, bytes: Bytes) -> Result<(), ImportError> {
        match self {
            Self::File(file) => file.write_all(&bytes).await?,
            Self::Database(chunks) => {
                chunks.pending.extend_from_slice(&bytes);
                while chunks.pending.len() >= CHUNK_BYTES {
                    chunks.store(CHUNK_BYTES).await?;
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<(), ImportError> {
        match self {
            Self::File(mut file) => {
                file.flush().await?;
                file.sync_all().await?;
            }
            Self::Database(mut chunks) => {
                let rest = chunks.pending.len();
                if rest > 0 {
                    chunks.store(rest).await?;
                }
            }
        }
        Ok(())
    }
}
