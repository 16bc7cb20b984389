//! A transaction the import's batches run in. On PostgreSQL it holds the pool's connection
//! itself, so the batch's rows go by `COPY … FROM STDIN` and the rest of the batch by the
//! repositories' usual SeaORM statements, all in one transaction; SeaORM's own transaction
//! does not lend its connection to COPY. Elsewhere it is SeaORM's transaction.

use sea_orm::{
    sqlx::{self, Postgres},
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use sea_query_binder::SqlxValues;
use tokio::sync::Mutex;

pub enum Transaction {
    Postgres(PgTransaction),
    Other(DatabaseTransaction),
}

/// `COPY` data goes in messages of at most this size: the connection copies each into its
/// write buffer, which it keeps at its largest for as long as it lives in the pool.
const COPY_MESSAGE_BYTES: usize = 256 << 10;

/// A PostgreSQL transaction on a pooled connection; rolled back if dropped uncommitted.
pub struct PgTransaction(Mutex<sqlx::Transaction<'static, Postgres>>);

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e))
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e))
}

fn bound(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(&stmt.sql, SqlxValues(values))
}

impl Transaction {
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(Self::Other(db.begin().await?));
        }
        let txn = db
            .get_postgres_connection_pool()
            .begin()
            .await
            .map_err(query_err)?;
        Ok(Self::Postgres(PgTransaction(Mutex::new(txn))))
    }

    /// The PostgreSQL transaction, which can also take `COPY`.
    pub fn postgres(&self) -> Option<&PgTransaction> {
        match self {
            Self::Postgres(pg) => Some(pg),
            Self::Other(_) => None,
        }
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Postgres(pg) => pg.0.into_inner().commit().await.map_err(exec_err),
            Self::Other(txn) => txn.commit().await,
        }
    }
}

impl PgTransaction {
    /// Runs `statement` (`COPY … FROM STDIN (FORMAT binary)`) with `data`; the rows copied.
    pub async fn copy_in(&self, statement: &str, data: Vec<u8>) -> Result<u64, DbErr> {
        let mut txn = self.0.lock().await;
        let mut copy = txn.copy_in_raw(statement).await.map_err(exec_err)?;
        for message in data.chunks(COPY_MESSAGE_BYTES) {
            if let Err(e) = copy.send(message).await {
                // Ends the COPY so the connection can report the error and roll back.
                let _ = copy.abort(e.to_string()).await;
                return Err(exec_err(e));
            }
        }
        copy.finish().await.map_err(exec_err)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Transaction {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Postgres(_) => DbBackend::Postgres,
            Self::Other(txn) => txn.get_database_backend(),
        }
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Self::Postgres(pg) => {
                let mut txn = pg.0.lock().await;
                let done = bound(&stmt).execute(&mut **txn).await;
                done.map(ExecResult::from).map_err(exec_err)
            }
            Self::Other(txn) => txn.execute(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Postgres(pg) => {
                let mut txn = pg.0.lock().await;
                let done = sqlx::Executor::execute(&mut **txn, sql).await;
                done.map(ExecResult::from).map_err(exec_err)
            }
            Self::Other(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Postgres(pg) => {
                let mut txn = pg.0.lock().await;
                let row = bound(&stmt).fetch_optional(&mut **txn).await;
                row.map(|r| r.map(QueryResult::from)).map_err(query_err)
            }
            Self::Other(txn) => txn.query_one(stmt).await,
        }
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Postgres(pg) => {
                let mut txn = pg.0.lock().await;
                let rows = bound(&stmt).fetch_all(&mut **txn).await;
                rows.map(|r| r.into_iter().map(QueryResult::from).collect())
                    .map_err(query_err)
            }
            Self::Other(txn) => txn.query_all(stmt).await,
        }
    }
}
