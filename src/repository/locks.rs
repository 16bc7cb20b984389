//! PostgreSQL advisory locks: which instance relays the outbox, which worker runs an import.
//! SQLite needs neither: one process owns the file.

use sea_orm::{
    sqlx::{pool::PoolConnection, Postgres},
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, RuntimeErr, Statement,
};

/// Advisory lock key of the relay ("outbox" in ASCII).
const RELAY_LOCK: i64 = 0x6f7574626f78;
/// Advisory lock key of schema migrations ("migrate" in ASCII).
pub const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Runs `work` while holding the session advisory lock `key` (waiting for it), so only one
/// instance at a time does it; on SQLite, just runs it. The lock is held on a connection of its
/// own, outside the pool, which `work` may need whole; closing it releases the lock.
pub async fn exclusively<T>(
    db: &DatabaseConnection,
    key: i64,
    work: impl std::future::Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    use sea_orm::sqlx::{postgres::PgConnection, Connection};
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return work.await;
    }
    let options = db.get_postgres_connection_pool().connect_options();
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(sqlx_err)?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut conn)
        .await
        .map_err(sqlx_err)?;
    let done = work.await;
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "lock connection not closed cleanly");
    }
    done
}

/// Takes the relay's lock for the rest of the transaction `txn`; `false` when another
/// instance holds it.
pub async fn try_relay_lock(txn: &impl ConnectionTrait) -> Result<bool, DbErr> {
    let lock = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_try_advisory_xact_lock($1) AS locked",
        [RELAY_LOCK.into()],
    );
    Ok(txn
        .query_one(lock)
        .await?
        .map(|r| r.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false))
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(e))
}

/// The right to process one import, held until released: on PostgreSQL a session advisory
/// lock on a dedicated connection, so a crashed instance's claim ends with its connection.
pub struct ImportClaim {
    /// PostgreSQL: the connection whose session holds the advisory lock.
    conn: Option<PoolConnection<Postgres>>,
    id: String,
}

impl ImportClaim {
    /// Takes the claim on import `id`, or `None` when another worker holds it.
    pub async fn take(db: &DatabaseConnection, id: &str) -> Result<Option<Self>, DbErr> {
        let id = id.to_string();
        if db.get_database_backend() != DatabaseBackend::Postgres {
            // One process owns an SQLite file, and this worker runs one import at a time.
            return Ok(Some(Self { conn: None, id }));
        }
        let mut conn = db
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(sqlx_err)?;
        let locked: bool =
            sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&id)
                .fetch_one(&mut *conn)
                .await
                .map_err(sqlx_err)?;
        Ok(locked.then_some(Self {
            conn: Some(conn),
            id,
        }))
    }

    pub async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let unlocked = sea_orm::sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.id)
            .execute(&mut *conn)
            .await;
        if let Err(e) = unlocked {
            tracing::warn!(error = %e, "import lock not released; closing its connection");
            // Closing the session ends the lock with it.
            drop(conn.detach());
        }
    }
}
