//! An uploaded import file kept in PostgreSQL as numbered chunks of `CHUNK_BYTES` (the last
//! one shorter), so an offset names its chunk without an index of its own. The worker, which
//! serves every seller, is the only reader; the file is reached through its import, which is
//! seller-scoped.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement, Value};

use super::imports::{PROCESSING, QUEUED};

/// Size of every chunk but the last: a read from an offset fetches at most this much that it
/// skips.
pub const CHUNK_BYTES: usize = 1 << 20;

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

pub async fn append(
    db: &impl ConnectionTrait,
    import_id: &str,
    seq: i32,
    data: Vec<u8>,
) -> Result<(), DbErr> {
    db.execute(statement(
        "INSERT INTO import_chunks (import_id, seq, data) VALUES ($1, $2, $3)",
        [import_id.into(), seq.into(), data.into()],
    ))
    .await?;
    Ok(())
}

/// Chunk `seq` of the file; `None` past its end.
pub async fn read(
    db: &impl ConnectionTrait,
    import_id: &str,
    seq: i32,
) -> Result<Option<Vec<u8>>, DbErr> {
    db.query_one(statement(
        "SELECT data FROM import_chunks WHERE import_id = $1 AND seq = $2",
        [import_id.into(), seq.into()],
    ))
    .await?
    .map(|row| row.try_get::<Vec<u8>>("", "data"))
    .transpose()
}

/// How many chunks the file has.
pub async fn count(db: &impl ConnectionTrait, import_id: &str) -> Result<i64, DbErr> {
    Ok(db
        .query_one(statement(
            "SELECT count(*) AS n FROM import_chunks WHERE import_id = $1",
            [import_id.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

pub async fn delete(db: &impl ConnectionTrait, import_id: &str) -> Result<(), DbErr> {
    db.execute(statement(
        "DELETE FROM import_chunks WHERE import_id = $1",
        [import_id.into()],
    ))
    .await?;
    Ok(())
}

/// Deletes the chunks, older than `hours`, of files no unfinished import reads: an upload cut
/// off by a crash before it was refused or queued, or the file of an import that ended (or
/// was deleted) by a process that crashed before deleting it. Returns how many went.
pub async fn delete_orphans(db: &impl ConnectionTrait, hours: i32) -> Result<u64, DbErr> {
    let done = db
        .execute(statement(
            "DELETE FROM import_chunks c
             WHERE c.created_at < now() - make_interval(hours => $1)
               AND NOT EXISTS (SELECT 1 FROM imports i
                               WHERE i.id = c.import_id AND i.status IN ($2, $3))",
            [hours.into(), QUEUED.into(), PROCESSING.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}
