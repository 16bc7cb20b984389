//! Imports and their row errors. Handlers reach an import only through the seller-scoped
//! functions; the worker, which serves every seller, uses the `worker_` ones.

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::{Expr, Func},
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::{
    domain::{ImportStatus, SellerId},
    entity::{
        import::{ActiveModel, Column, Entity, Model},
        import_error,
    },
};

// The stored names of the states queries select on.
pub const QUEUED: &str = ImportStatus::Queued.as_str();
pub const PROCESSING: &str = ImportStatus::Processing.as_str();
pub const COMPLETED: &str = ImportStatus::Completed.as_str();
pub const FAILED: &str = ImportStatus::Failed.as_str();
pub const CANCELLED: &str = ImportStatus::Cancelled.as_str();

/// Counter increments and the new resume point of one committed batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub resume_offset: i64,
    pub resume_line: i64,
}

/// A row error to store.
pub struct NewError {
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

pub async fn insert(db: &impl ConnectionTrait, import: Model) -> Result<Model, DbErr> {
    let active = ActiveModel {
        id: Set(import.id),
        seller_id: Set(import.seller_id),
        status: Set(import.status),
        mode: Set(import.mode),
        dry_run: Set(import.dry_run),
        error_policy: Set(import.error_policy),
        spool_path: Set(import.spool_path),
        size_bytes: Set(import.size_bytes),
        total_rows: Set(import.total_rows),
        processed: Set(import.processed),
        created: Set(import.created),
        updated: Set(import.updated),
        unchanged: Set(import.unchanged),
        failed: Set(import.failed),
        warnings: Set(import.warnings),
        failure: Set(import.failure),
        resume_offset: Set(import.resume_offset),
        resume_line: Set(import.resume_line),
        cancel_requested: Set(import.cancel_requested),
        created_at: Set(import.created_at),
        started_at: Set(import.started_at),
        finished_at: Set(import.finished_at),
        updated_at: Set(import.updated_at),
    };
    Entity::insert(active).exec_with_returning(db).await
}

fn scoped(seller: &SellerId, id: &str) -> Condition {
    Condition::all()
        .add(Column::SellerId.eq(seller.as_str()))
        .add(Column::Id.eq(id))
}

pub async fn find(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(scoped(seller, id)).one(db).await
}

/// Cancels a queued import at once; returns whether it was queued.
pub async fn cancel_queued(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = Entity::update_many()
        .col_expr(Column::Status, Expr::value(CANCELLED))
        .col_expr(Column::CancelRequested, Expr::value(true))
        .col_expr(Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(scoped(seller, id).add(Column::Status.eq(QUEUED)))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Deletes an import and its row errors; returns whether there was one.
pub async fn delete(db: &impl ConnectionTrait, seller: &SellerId, id: &str) -> Result<bool, DbErr> {
    if find(db, seller, id).await?.is_none() {
        return Ok(false);
    }
    import_error::Entity::delete_many()
        .filter(import_error::Column::ImportId.eq(id))
        .exec(db)
        .await?;
    let done = Entity::delete_many()
        .filter(scoped(seller, id))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Asks the worker to stop a running import after its current batch.
pub async fn request_cancel(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::CancelRequested, Expr::value(true))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(scoped(seller, id).add(Column::Status.eq(PROCESSING)))
        .exec(db)
        .await?;
    Ok(())
}

/// The first `limit` row errors of an import after position `(row, id)`, in row order.
pub async fn errors(
    db: &impl ConnectionTrait,
    import_id: &str,
    after: Option<(i64, i64)>,
    limit: u64,
) -> Result<Vec<import_error::Model>, DbErr> {
    use import_error::Column as E;
    let mut cond = Condition::all().add(E::ImportId.eq(import_id));
    if let Some((row, id)) = after {
        cond = cond.add(
            Condition::any()
                .add(E::Row.gt(row))
                .add(Condition::all().add(E::Row.eq(row)).add(E::Id.gt(id))),
        );
    }
    import_error::Entity::find()
        .filter(cond)
        .order_by_asc(E::Row)
        .order_by_asc(E::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Imports not finished yet, oldest first: what the worker has to do.
pub async fn worker_unfinished(db: &impl ConnectionTrait) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.is_in([QUEUED, PROCESSING]))
        .order_by_asc(Column::CreatedAt)
        .all(db)
        .await
}

/// Marks an unfinished import as processing; `None` when it is finished (say, cancelled
/// while queued) or gone.
pub async fn worker_start(
    db: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let rows = Entity::update_many()
        .col_expr(Column::Status, Expr::value(PROCESSING))
        .col_expr(
            Column::StartedAt,
            Func::coalesce([Expr::col(Column::StartedAt).into(), Expr::value(now)]).into(),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in([QUEUED, PROCESSING]))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Adds a batch's counts and moves the resume point from `from`; returns the import as it now
/// is, or `None` when it is gone or its resume point is no longer `from` (another worker
/// moved it).
pub async fn worker_advance(
    db: &impl ConnectionTrait,
    id: &str,
    from: i64,
    p: Progress,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let add = |c: Column, n: i64| Expr::col(c).add(n);
    let rows = Entity::update_many()
        .col_expr(Column::Processed, add(Column::Processed, p.processed))
        .col_expr(Column::Created, add(Column::Created, p.created))
        .col_expr(Column::Updated, add(Column::Updated, p.updated))
        .col_expr(Column::Unchanged, add(Column::Unchanged, p.unchanged))
        .col_expr(Column::Failed, add(Column::Failed, p.failed))
        .col_expr(Column::ResumeOffset, Expr::value(p.resume_offset))
        .col_expr(Column::ResumeLine, Expr::value(p.resume_line))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .filter(Column::ResumeOffset.eq(from))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Ends an import in `status`; returns it as it now is.
pub async fn worker_finish(
    db: &impl ConnectionTrait,
    id: &str,
    status: &str,
    failure: Option<String>,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let rows = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::Failure, Expr::value(failure))
        .col_expr(Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Appends row errors with multi-row inserts.
pub async fn worker_add_errors(
    db: &impl ConnectionTrait,
    import_id: &str,
    errors: Vec<NewError>,
) -> Result<(), DbErr> {
    for chunk in super::statements(errors) {
        let chunk = chunk.into_iter().map(|e| import_error::ActiveModel {
            import_id: Set(import_id.to_string()),
            row: Set(e.row),
            column: Set(e.column),
            value: Set(e.value),
            message: Set(e.message),
            ..Default::default()
        });
        import_error::Entity::insert_many(chunk).exec(db).await?;
    }
    Ok(())
}
