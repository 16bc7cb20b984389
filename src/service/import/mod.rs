//! CSV imports: the upload is stored (in PostgreSQL, or a spool file on SQLite; see `spool`)
//! and its header checked while the client waits; a background worker (`worker`), on any
//! instance, then writes the rows in batches, each one transaction with its products, their
//! outbox events and the import's progress, so an import killed midway resumes from its last
//! committed batch with exact counts.

pub mod batch;
pub mod columns;
pub mod reader;
pub mod record_size;
pub mod rows;
pub mod scan;
pub mod spool;
pub mod worker;

use std::{path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures::{stream::BoxStream, StreamExt};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;

pub use crate::domain::{ErrorPolicy, Mode};
use crate::{
    domain::{ImportReport, ImportStatus, RowErrorReport, SellerId},
    entity::{import::Model as Import, import_error::Model as StoredError},
    metrics::Metrics,
    repository::{
        self,
        imports::{CANCELLED, COMPLETED, FAILED, QUEUED},
    },
    service::{
        events::{import_event, EventType},
        export::encode,
        now,
        write::Announcer,
    },
};

use columns::HeaderError;
use spool::Spool;

/// An uploaded file's bytes as they arrive; the HTTP layer takes them out of the request.
pub type FileBytes = BoxStream<'static, Result<Bytes, ImportError>>;

/// Row errors shown with an import's status; all of them are in its errors CSV.
pub const ERRORS_SHOWN: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("The CSV file exceeds the limit of {0} bytes")]
    FileTooLarge(u64),
    #[error("{}", oversized_message(.0))]
    Oversized(record_size::Oversized),
    #[error("The CSV file has more than {0} data rows")]
    TooManyRows(u64),
    #[error("{0}")]
    InvalidFileType(String),
    #[error("the multipart body has no `file` field")]
    MissingFile,
    #[error("the form takes one field, `file`; it also has `{0}`")]
    UnexpectedField(String),
    #[error("the upload could not be read: {0}")]
    Upload(String),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("import {0} not found")]
    NotFound(String),
    #[error("another worker has taken the import over")]
    Overtaken,
    #[error("import {id} is already {status}")]
    Finished { id: String, status: String },
    #[error("import file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] DbErr),
}

fn oversized_message(o: &record_size::Oversized) -> String {
    match o {
        record_size::Oversized::Field { limit, line } => format!(
            "The CSV record on line {line} has a field longer than {limit} bytes (no product \
             field is that long; is a quote left open?)"
        ),
        record_size::Oversized::Record { limit, line } => {
            format!("The CSV record on line {line} is longer than {limit} bytes")
        }
    }
}

impl From<csv_async::Error> for ImportError {
    fn from(e: csv_async::Error) -> Self {
        Self::Io(std::io::Error::other(e.to_string()))
    }
}

/// What the client asked for; `mode: None` picks upsert when the file has a `sku` column.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub mode: Option<Mode>,
    pub dry_run: bool,
    pub error_policy: ErrorPolicy,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub spool_dir: PathBuf,
    pub max_bytes: u64,
    pub max_rows: u64,
    pub max_field_bytes: u64,
    pub max_record_bytes: u64,
    pub batch_size: usize,
    /// `LOW_STOCK_THRESHOLD`, for the events of imported products.
    pub low_stock_threshold: i32,
}

#[derive(Clone)]
pub struct ImportService {
    db: DatabaseConnection,
    announcer: Announcer,
    metrics: Metrics,
    settings: Arc<Settings>,
    /// Wakes the worker when an import is queued.
    wake: Arc<Notify>,
}

impl ImportService {
    pub fn new(
        db: DatabaseConnection,
        announcer: Announcer,
        settings: Settings,
        metrics: Metrics,
    ) -> Self {
        Self {
            db,
            announcer,
            metrics,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Stores the upload, checks its header and queues the import.
    pub async fn accept(
        &self,
        seller: &SellerId,
        file: FileBytes,
        options: Options,
    ) -> Result<ImportReport, ImportError> {
        let id = format!("import-{}", uuid::Uuid::new_v4().simple());
        let spool = Spool::new(&self.db, &self.settings, &id);
        let accepted = self.queue(seller, id, &spool, file, options).await;
        if accepted.is_err() {
            spool.remove().await;
        }
        accepted.map(|import| report(import, Vec::new()))
    }

    async fn queue(
        &self,
        seller: &SellerId,
        id: String,
        spool: &Spool,
        file: FileBytes,
        options: Options,
    ) -> Result<Import, ImportError> {
        let size = spool.store(file, &self.settings).await?;
        let scanned = scan::scan(spool.open(0).await?, self.settings.max_rows).await?;
        let has_sku = scanned.columns.sku.is_some();
        // Upsert updates the product with a row's sku and creates the others, so without a
        // sku column it creates every row, as insert does.
        let mode = match (options.mode, has_sku) {
            (Some(mode), _) => mode,
            (None, true) => Mode::Upsert,
            (None, false) => Mode::Insert,
        };
        let at = now();
        let import = Import {
            id,
            seller_id: seller.as_str().to_string(),
            status: QUEUED.to_string(),
            mode: mode.as_str().to_string(),
            dry_run: options.dry_run,
            error_policy: options.error_policy.as_str().to_string(),
            spool_path: spool.path(),
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            total_rows: i64::try_from(scanned.rows).unwrap_or(i64::MAX),
            processed: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            failed: 0,
            warnings: serde_json::to_string(&scanned.columns.warnings)
                .unwrap_or_else(|_| "[]".to_string()),
            failure: None,
            resume_offset: 0,
            resume_line: 0,
            cancel_requested: false,
            created_at: at,
            started_at: None,
            finished_at: None,
            updated_at: at,
        };
        let stored = repository::imports::insert(&self.db, import).await?;
        self.wake.notify_one();
        Ok(stored)
    }

    /// The import and its first row errors.
    pub async fn get(&self, seller: &SellerId, id: &str) -> Result<ImportReport, ImportError> {
        let import = self.find(seller, id).await?;
        let errors = repository::imports::errors(&self.db, id, None, ERRORS_SHOWN).await?;
        Ok(report(import, errors))
    }

    async fn find(&self, seller: &SellerId, id: &str) -> Result<Import, ImportError> {
        repository::imports::find(&self.db, seller, id)
            .await?
            .ok_or_else(|| ImportError::NotFound(id.to_string()))
    }

    /// Cancels a queued import now, a running one after its current batch.
    pub async fn cancel(&self, seller: &SellerId, id: &str) -> Result<ImportReport, ImportError> {
        let import = self.find(seller, id).await?;
        match import.status.as_str() {
            COMPLETED | FAILED => {
                return Err(ImportError::Finished {
                    id: import.id,
                    status: import.status,
                })
            }
            CANCELLED => {}
            _ => {
                // Queued: cancelled at once. Running (or started meanwhile): after its batch.
                let txn = self.db.begin().await?;
                let at = now();
                let mut events = Vec::new();
                let was_queued = repository::imports::cancel_queued(&txn, seller, id, at).await?;
                if was_queued {
                    if let Some(done) = repository::imports::find(&txn, seller, id).await? {
                        let row = import_event(EventType::ImportCompleted, &done, at);
                        events = repository::outbox::append(&txn, vec![row]).await?;
                    }
                } else {
                    repository::imports::request_cancel(&txn, seller, id, at).await?;
                }
                txn.commit().await?;
                self.announcer.announce(events);
                if was_queued {
                    Spool::of(&self.db, &import).remove().await;
                }
            }
        }
        self.get(seller, id).await
    }

    /// Cancels the import (a running one loses the batch it is writing) and deletes it.
    pub async fn delete(&self, seller: &SellerId, id: &str) -> Result<(), ImportError> {
        let txn = self.db.begin().await?;
        let import = repository::imports::find(&txn, seller, id)
            .await?
            .ok_or_else(|| ImportError::NotFound(id.to_string()))?;
        repository::imports::delete(&txn, seller, id).await?;
        txn.commit().await?;
        Spool::of(&self.db, &import).remove().await;
        Ok(())
    }

    /// Every row error as CSV (`row, column, value, message`), read in chunks.
    pub async fn errors_csv(
        &self,
        seller: &SellerId,
        id: &str,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, ImportError> {
        repository::imports::find(&self.db, seller, id)
            .await?
            .ok_or_else(|| ImportError::NotFound(id.to_string()))?;
        let header =
            futures::stream::once(async { encode([["row", "column", "value", "message"]]) });
        let pages = futures::stream::unfold(
            (self.db.clone(), id.to_string(), None, false),
            |(db, id, after, done)| async move {
                if done {
                    return None;
                }
                let chunk = 1000;
                match repository::imports::errors(&db, &id, after, chunk).await {
                    Ok(rows) if rows.is_empty() => None,
                    Ok(rows) => {
                        let next = rows.last().map(|e| (e.row, e.id));
                        let last = (rows.len() as u64) < chunk;
                        let csv = encode(rows.iter().map(|e| {
                            [
                                e.row.to_string(),
                                e.column.clone().unwrap_or_default(),
                                e.value.clone().unwrap_or_default(),
                                e.message.clone(),
                            ]
                        }));
                        Some((csv, (db, id, next, last)))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "import errors query failed mid-stream");
                        Some((
                            Err(std::io::Error::other("errors export failed")),
                            (db, id, None, true),
                        ))
                    }
                }
            },
        );
        Ok(header.chain(pages).boxed())
    }

    pub fn worker(&self) -> worker::Worker {
        worker::Worker::new(
            self.db.clone(),
            self.announcer.clone(),
            self.settings.clone(),
            self.wake.clone(),
            self.metrics.clone(),
        )
    }
}

/// The import as the services report it.
fn report(import: Import, errors: Vec<StoredError>) -> ImportReport {
    ImportReport {
        status: ImportStatus::parse(&import.status).unwrap_or(ImportStatus::Queued),
        mode: Mode::parse(&import.mode).unwrap_or(Mode::Upsert),
        error_policy: ErrorPolicy::parse(&import.error_policy).unwrap_or(ErrorPolicy::SkipInvalid),
        warnings: serde_json::from_str(&import.warnings).unwrap_or_default(),
        errors: errors
            .into_iter()
            .map(|e| RowErrorReport {
                row: e.row,
                column: e.column,
                value: e.value,
                message: e.message,
            })
            .collect(),
        id: import.id,
        dry_run: import.dry_run,
        total_rows: import.total_rows,
        processed: import.processed,
        created: import.created,
        updated: import.updated,
        unchanged: import.unchanged,
        failed: import.failed,
        failure: import.failure,
        cancel_requested: import.cancel_requested,
        created_at: import.created_at,
        started_at: import.started_at,
        finished_at: import.finished_at,
        updated_at: import.updated_at,
    }
}
