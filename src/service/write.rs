//! One write, one transaction: the product change, the outbox events describing it and, with
//! an `Idempotency-Key`, the recorded response commit together or not at all. After the
//! commit the new events are announced, so the relay and live subscribers see them at once.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::Notify;

use crate::{
    entity::outbox::Model as OutboxRow,
    repository::{self, is_unique_violation, outbox::NewRow},
    service::{
        idempotency::{self, IdempotencyError, Scope},
        notifications::Committed,
    },
};

/// What a write produced: the response value and the events to append.
pub struct Written<T> {
    pub value: T,
    pub events: Vec<NewRow>,
}

/// Tells the rest of the process that events were committed: wakes the Kafka relay and hands
/// the rows to the live-notification forwarder.
#[derive(Clone)]
pub struct Announcer {
    relay: Arc<Notify>,
    live: Option<Committed>,
}

impl Announcer {
    pub fn new(relay: Arc<Notify>, live: Option<Committed>) -> Self {
        Self { relay, live }
    }

    pub fn announce(&self, rows: Vec<OutboxRow>) {
        if rows.is_empty() {
            return;
        }
        self.relay.notify_one();
        if let Some(live) = &self.live {
            live.send(rows);
        }
    }
}

/// Runs writes: the database, how long idempotency keys live, and whom to tell of commits.
#[derive(Clone)]
pub struct Writer {
    pub db: DatabaseConnection,
    pub idempotency_ttl: Duration,
    pub announcer: Announcer,
}

impl Writer {
    /// Runs `work` in a transaction and appends its events. With a scope, a live earlier
    /// response under the key is replayed instead (and nothing is announced), and the new
    /// response is recorded before the commit.
    pub async fn run<T, E, F>(&self, scope: Option<Scope<'_>>, work: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send,
        E: From<IdempotencyError> + From<DbErr>,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<Written<T>, E>>,
    {
        let (db, ttl) = (&self.db, self.idempotency_ttl);
        let txn = db.begin().await?;
        if let Some(scope) = &scope {
            if let Some(prior) = idempotency::prior(&txn, scope, ttl).await? {
                txn.rollback().await?;
                return Ok(prior);
            }
        }
        let written = match work(&txn).await {
            Ok(written) => written,
            Err(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        };
        let rows = repository::outbox::append(&txn, written.events).await?;
        if let Some(scope) = &scope {
            if let Err(e) = idempotency::record(&txn, scope, &written.value).await {
                txn.rollback().await?;
                // A concurrent request with the same key committed first: answer as it did.
                if matches!(&e, IdempotencyError::Database(db_err) if is_unique_violation(db_err)) {
                    if let Some(prior) = idempotency::prior(db, scope, ttl).await? {
                        return Ok(prior);
                    }
                }
                return Err(e.into());
            }
        }
        txn.commit().await?;
        self.announcer.announce(rows);
        Ok(written.value)
    }
}
