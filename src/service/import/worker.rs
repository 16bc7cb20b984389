//! The import worker: takes unfinished imports oldest first and processes each from its
//! resume point, one batch per transaction, until it is done, cancelled or the server stops.
//! On PostgreSQL the next batch's products are written while a batch commits (see `pass`).
//!
//! On PostgreSQL the file is in the database and any instance's worker may take an import: it
//! is claimed with a session advisory lock on a dedicated connection, so two instances never
//! run the same import and a crashed instance's claim ends with its connection; the next sweep
//! of another instance resumes it. A seller's imports run in the order they were queued: a
//! worker that finds a seller's import claimed elsewhere leaves that seller's later ones too.
//! Each batch's commit also checks that the import's resume point is still where this worker
//! left it, so a worker that lost its claim without noticing cannot write a batch twice.
//! With `error_policy=abort` every row is checked before the first is written.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use csv_async::ByteRecord;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::{
    batch::{self, Applied, Batch, Plan, Seen},
    columns::Columns,
    reader::{self, At},
    scan,
    spool::Spool,
    ErrorPolicy, ImportError, Mode, Settings,
};
use crate::{
    domain::SellerId,
    entity::import::Model as Import,
    metrics::Metrics,
    repository::{
        self,
        imports::{Progress, CANCELLED, COMPLETED, FAILED},
        locks::ImportClaim,
        transaction::Transaction,
    },
    service::{
        events::{import_event, EventType},
        now,
        write::Announcer,
    },
};

/// How often the worker looks for imports besides being woken when one is queued; it also
/// retries an import whose batch failed on a database error.
const SWEEP: Duration = Duration::from_secs(5);
/// `ImportProgress` events are at most this frequent per import.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Chunks this old that no unfinished import reads are deleted: no upload takes as long.
const ORPHAN_HOURS: i32 = 24;
/// Rows an import writes before the first refresh of the planner's statistics; each later
/// refresh waits for twice as many.
const FIRST_ANALYZE: u64 = 5_000;

/// How an import ended.
enum End {
    Completed,
    Cancelled,
    Failed(String),
}

/// What a pass over the rows does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// `error_policy=abort`, before writing: validate and classify every row, record errors.
    Check,
    /// `dry_run=true`: classify and count, write no product.
    DryRun,
    Write,
}

enum PassEnd {
    Done {
        failed: i64,
    },
    Cancelled,
    /// The server is stopping; the import resumes at the next start.
    Interrupted,
}

/// What a pass carries from one batch's commit to the next.
struct Tracker {
    last_progress: Instant,
    /// The resume point as this worker left it: a batch commits only from there.
    checkpoint: i64,
}

/// A batch whose products are written in its open transaction: its commit adds the row
/// errors, the progress and the events.
struct Staged {
    txn: Transaction,
    applied: Applied,
    rows_read: i64,
    next: At,
    at: DateTime<Utc>,
}

/// What a batch's commit reports.
struct Committed {
    rows: u64,
    failed: i64,
    cancel: bool,
}

pub struct Worker {
    db: DatabaseConnection,
    announcer: Announcer,
    settings: Arc<Settings>,
    wake: Arc<Notify>,
    metrics: Metrics,
}

impl Worker {
    pub(super) fn new(
        db: DatabaseConnection,
        announcer: Announcer,
        settings: Arc<Settings>,
        wake: Arc<Notify>,
        metrics: Metrics,
    ) -> Self {
        Self {
            db,
            announcer,
            settings,
            wake,
            metrics,
        }
    }

    /// Processes imports until shutdown; an import interrupted by it resumes at next start.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match repository::imports::worker_unfinished(&self.db).await {
                Ok(imports) => {
                    // Sellers with an import not over (claimed elsewhere, or failed here and
                    // to be retried): their later ones wait for it.
                    let mut waiting = HashSet::new();
                    for import in imports {
                        if shutdown.is_cancelled() {
                            return;
                        }
                        if waiting.contains(&import.seller_id) {
                            continue;
                        }
                        let seller = import.seller_id.clone();
                        if !self.process(import, &shutdown).await {
                            waiting.insert(seller);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list unfinished imports"),
            }
            self.delete_orphans().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
        }
    }

    /// Runs the import unless another worker holds it; returns whether it is over (ended or
    /// deleted), so that the seller's next import may start.
    async fn process(&self, import: Import, shutdown: &CancellationToken) -> bool {
        let claim = match ImportClaim::take(&self.db, &import.id).await {
            Ok(Some(claim)) => claim,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, import = import.id, "cannot claim import");
                return false;
            }
        };
        let spool = Spool::of(&self.db, &import);
        let end = match spool.exists().await {
            Ok(true) => {
                self.metrics.imports_running.inc();
                let end = self.run_import(&import.id, &spool, shutdown).await;
                self.metrics.imports_running.dec();
                end
            }
            // A spool file of another instance (from before imports were kept in PostgreSQL):
            // that instance runs it.
            Ok(false)
                if matches!(spool, Spool::File(_))
                    && self.db.get_database_backend() == DatabaseBackend::Postgres =>
            {
                Ok(None)
            }
            Ok(false) => Ok(Some(End::Failed("the uploaded file is gone".into()))),
            Err(e) => Err(e),
        };
        let over = match end {
            Ok(Some(end)) => match self.finish(&import.id, end).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, import = import.id, "import not finished; retrying");
                    false
                }
            },
            // Ended elsewhere, interrupted, or a file this instance does not have.
            Ok(None) => false,
            // Deleted while it ran: its last batch rolled back with the progress update.
            Err(ImportError::NotFound(_)) => {
                tracing::info!(import = import.id, "import deleted while running");
                true
            }
            Err(ImportError::Overtaken) => {
                tracing::warn!(import = import.id, "import taken over by another worker");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, import = import.id, "import batch failed; retrying");
                self.metrics.import_batch_retries.inc();
                false
            }
        };
        claim.release().await;
        over
    }

    /// Deletes the chunks a crash left behind (see `import_chunks::delete_orphans`).
    async fn delete_orphans(&self) {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        match repository::import_chunks::delete_orphans(&self.db, ORPHAN_HOURS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(chunks = n, "deleted the chunks of abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "abandoned upload chunks not deleted"),
        }
    }

    async fn run_import(
        &self,
        id: &str,
        spool: &Spool,
        shutdown: &CancellationToken,
    ) -> Result<Option<End>, ImportError> {
        let Some(import) = repository::imports::worker_start(&self.db, id, now()).await? else {
            return Ok(None);
        };
        let mut csv = scan::reader(spool.open(0).await?);
        let mut record = ByteRecord::new();
        if !csv.read_byte_record(&mut record).await? {
            return Ok(Some(End::Failed("the file is empty".into())));
        }
        let columns = match Columns::from_header(record.iter()) {
            Ok(columns) => columns,
            Err(e) => return Ok(Some(End::Failed(e.to_string()))),
        };
        let header_end = At {
            offset: csv.position().byte(),
            line: csv.position().line(),
        };
        let abort = import.error_policy == ErrorPolicy::Abort.as_str() && !import.dry_run;
        if abort && import.resume_offset == 0 {
            match self
                .pass(&import, spool, &columns, header_end, Pass::Check, shutdown)
                .await?
            {
                PassEnd::Interrupted => return Ok(None),
                PassEnd::Cancelled => return Ok(Some(End::Cancelled)),
                PassEnd::Done { failed } if failed > 0 => {
                    let rows = if failed == 1 { "row is" } else { "rows are" };
                    return Ok(Some(End::Failed(format!(
                        "{failed} {rows} invalid; nothing was written (error_policy=abort)"
                    ))));
                }
                PassEnd::Done { .. } => {}
            }
        }
        let start = match import.resume_offset {
            0 => header_end,
            offset => At {
                offset: u64::try_from(offset).unwrap_or_default(),
                line: u64::try_from(import.resume_line).unwrap_or(1),
            },
        };
        let pass = if import.dry_run {
            Pass::DryRun
        } else {
            Pass::Write
        };
        Ok(
            match self
                .pass(&import, spool, &columns, start, pass, shutdown)
                .await?
            {
                PassEnd::Done { .. } => Some(End::Completed),
                PassEnd::Cancelled => Some(End::Cancelled),
                PassEnd::Interrupted => None,
            },
        )
    }

    /// Reads the rows from `start` in batches and commits each.
    ///
    /// On PostgreSQL a batch's products are written while the batch before it commits, so
    /// the database works on both at once; a batch that shares a sku with the one before it
    /// waits for that commit, so that it finds what that batch created. No lock can close a
    /// cycle: the batch before has taken its seller's product count (by its product insert,
    /// if it has one) before the next one starts, so the next one's insert waits for that
    /// commit rather than the other way round; a commit takes only the import's row and the
    /// seller's outbox lock, which no staged batch holds. SQLite has one writer: each batch
    /// waits for the commit before.
    async fn pass(
        &self,
        import: &Import,
        spool: &Spool,
        columns: &Columns,
        start: At,
        pass: Pass,
        shutdown: &CancellationToken,
    ) -> Result<PassEnd, ImportError> {
        let mut batches = reader::batches(
            spool.clone(),
            start,
            columns.clone(),
            self.settings.batch_size,
        );
        let overlap = self.db.get_database_backend() == DatabaseBackend::Postgres;
        let mut seen = Seen::default();
        let mut tracker = Tracker {
            last_progress: Instant::now(),
            checkpoint: import.resume_offset,
        };
        let mut pending: Option<Staged> = None;
        let mut failed = 0;
        let mut written: u64 = 0;
        let mut analyze_at = FIRST_ANALYZE;
        let mut analyzing: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            // A batch written but not committed rolls back; the import resumes before it.
            if shutdown.is_cancelled() {
                return Ok(PassEnd::Interrupted);
            }
            let before = pending
                .as_mut()
                .map(|s| std::mem::take(&mut s.applied.skus));
            let (commit_done, committed) = oneshot::channel::<()>();
            let commit = async {
                let Some(staged) = pending.take() else {
                    return Ok(None);
                };
                let done = self.commit(import, pass, staged, &mut tracker).await;
                drop(commit_done);
                done.map(Some)
            };
            let stage = async {
                let Some(read) = batches.recv().await else {
                    return Ok(None);
                };
                let (batch, next) = read?;
                let shares = before.as_ref().is_some_and(|b| !b.is_disjoint(&batch.skus));
                if shares || !overlap {
                    // Closed once the batch before has committed (or failed).
                    let _ = committed.await;
                }
                self.stage(import, pass, batch, next, &mut seen)
                    .await
                    .map(Some)
            };
            let (done, staged) = tokio::join!(commit, stage);
            if let Some(done) = done? {
                failed += done.failed;
                if done.cancel {
                    return Ok(PassEnd::Cancelled);
                }
                written += done.rows;
                // On a connection of its own, while the batches go on; one at a time.
                let idle = analyzing.as_ref().is_none_or(|a| a.is_finished());
                if pass == Pass::Write && written >= analyze_at && idle {
                    analyzing = Some(tokio::spawn(analyze(self.db.clone())));
                    analyze_at *= 2;
                }
            }
            match staged? {
                Some(staged) => pending = Some(staged),
                None => return Ok(PassEnd::Done { failed }),
            }
        }
    }

    /// Opens the batch's transaction and writes its products (none when checking or in a dry
    /// run, which classify only).
    async fn stage(
        &self,
        import: &Import,
        pass: Pass,
        batch: Batch,
        next: At,
        seen: &mut Seen,
    ) -> Result<Staged, ImportError> {
        let seller = SellerId::stored(&import.seller_id);
        let mode = if import.mode == Mode::Insert.as_str() {
            Mode::Insert
        } else {
            Mode::Upsert
        };
        let rows_read = batch.len() as i64;
        let plan = Plan {
            seller: &seller,
            mode,
            dry: pass != Pass::Write,
            low_stock_threshold: self.settings.low_stock_threshold,
            at: now(),
        };
        let txn = Transaction::begin(&self.db).await?;
        let applied = batch::apply(&txn, &plan, batch, seen).await?;
        Ok(Staged {
            txn,
            applied,
            rows_read,
            next,
            at: plan.at,
        })
    }

    /// Completes a staged batch: row errors, progress (from where this worker left it) and
    /// events, then the commit.
    async fn commit(
        &self,
        import: &Import,
        pass: Pass,
        staged: Staged,
        tracker: &mut Tracker,
    ) -> Result<Committed, ImportError> {
        let Staged {
            txn,
            applied,
            rows_read,
            next,
            at,
        } = staged;
        let counts = applied.counts;
        repository::imports::worker_add_errors(&txn, &import.id, applied.errors).await?;
        let progress = match pass {
            // Checking writes no product, so the import resumes from the start.
            Pass::Check => Progress {
                failed: counts.failed,
                ..Progress::default()
            },
            Pass::DryRun | Pass::Write => Progress {
                processed: rows_read,
                created: counts.created,
                updated: counts.updated,
                unchanged: counts.unchanged,
                failed: counts.failed,
                resume_offset: i64::try_from(next.offset).unwrap_or(i64::MAX),
                resume_line: i64::try_from(next.line).unwrap_or(i64::MAX),
            },
        };
        let Some(current) =
            repository::imports::worker_advance(&txn, &import.id, tracker.checkpoint, progress, at)
                .await?
        else {
            // Rolled back with the transaction: nothing of this batch is written.
            let seller = SellerId::stored(&import.seller_id);
            return Err(
                match repository::imports::find(&txn, &seller, &import.id).await? {
                    Some(_) => ImportError::Overtaken,
                    None => ImportError::NotFound(import.id.clone()),
                },
            );
        };
        let mut events = applied.events;
        if pass != Pass::Check && tracker.last_progress.elapsed() >= PROGRESS_EVERY {
            events.push(import_event(EventType::ImportProgress, &current, at));
            tracker.last_progress = Instant::now();
        }
        let stored = repository::outbox::append_batch(&txn, events).await?;
        txn.commit().await?;
        tracker.checkpoint = progress.resume_offset;
        self.announcer.announce(stored);
        if pass == Pass::Write {
            let rows = &self.metrics.import_rows;
            rows.with_label_values(&["created"])
                .inc_by(counts.created.unsigned_abs());
            rows.with_label_values(&["updated"])
                .inc_by(counts.updated.unsigned_abs());
            rows.with_label_values(&["unchanged"])
                .inc_by(counts.unchanged.unsigned_abs());
            rows.with_label_values(&["failed"])
                .inc_by(counts.failed.unsigned_abs());
        }
        Ok(Committed {
            rows: rows_read.unsigned_abs(),
            failed: counts.failed,
            cancel: current.cancel_requested,
        })
    }

    /// Records the end, with its `ImportCompleted` event, and removes the file.
    async fn finish(&self, id: &str, end: End) -> Result<(), DbErr> {
        let (status, failure) = match end {
            End::Completed => (COMPLETED, None),
            End::Cancelled => (CANCELLED, None),
            End::Failed(why) => (FAILED, Some(why)),
        };
        let at = now();
        let txn = self.db.begin().await?;
        let Some(done) = repository::imports::worker_finish(&txn, id, status, failure, at).await?
        else {
            txn.rollback().await?;
            return Ok(());
        };
        let event = import_event(EventType::ImportCompleted, &done, at);
        let stored = repository::outbox::append(&txn, vec![event]).await?;
        txn.commit().await?;
        self.announcer.announce(stored);
        self.metrics
            .imports_finished
            .with_label_values(&[status])
            .inc();
        Spool::of(&self.db, &done).remove().await;
        Ok(())
    }
}

/// Refreshes PostgreSQL's statistics of the products table. A seller the planner last saw with
/// no products looks as cheap to scan whole as to look up by sku; as an import grows that
/// seller by thousands of rows a batch, stale statistics would make every batch's sku lookup
/// scan all of them.
async fn analyze(db: DatabaseConnection) {
    if let Err(e) = repository::products::analyze(&db).await {
        tracing::warn!(error = %e, "ANALYZE products failed");
    }
}
