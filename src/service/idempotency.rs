//! `Idempotency-Key` handling: the first response under a key is stored in the same
//! transaction as the write it answers, so a retry either replays that response or, if the
//! first attempt rolled back, performs the write afresh. Nothing is written twice.

use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    domain::SellerId,
    entity::idempotency_key::Model as Record,
    repository::{self, is_unique_violation},
};

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("the idempotency key was already used with a different request")]
    KeyReused,
    #[error("stored idempotent response is unreadable")]
    Corrupt(#[from] serde_json::Error),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Which request a key belongs to.
pub struct Scope<'a> {
    pub seller: &'a SellerId,
    pub key: &'a str,
    pub operation: &'static str,
    pub fingerprint: String,
}

impl<'a> Scope<'a> {
    /// Scopes `key` to `operation` and the request's content (`request` serialized).
    pub fn new(
        seller: &'a SellerId,
        key: &'a str,
        operation: &'static str,
        request: &impl Serialize,
    ) -> Result<Self, IdempotencyError> {
        let body = serde_json::to_vec(request)?;
        let mut hash = Sha256::new();
        hash.update(operation.as_bytes());
        hash.update([0]);
        hash.update(&body);
        let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            seller,
            key,
            operation,
            fingerprint,
        })
    }
}

/// Runs `work` in a transaction. With a scope, a live earlier response under the key is
/// replayed instead, and the new response is recorded before the commit.
pub async fn run<T, E, F>(
    db: &DatabaseConnection,
    ttl: Duration,
    scope: Option<Scope<'_>>,
    work: F,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned + Send,
    E: From<IdempotencyError> + From<DbErr>,
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T, E>>,
{
    let txn = db.begin().await?;
    if let Some(scope) = &scope {
        if let Some(prior) = prior(&txn, scope, ttl).await? {
            txn.rollback().await?;
            return Ok(prior);
        }
    }
    let value = match work(&txn).await {
        Ok(value) => value,
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    if let Some(scope) = &scope {
        let record = Record {
            seller_id: scope.seller.as_str().to_string(),
            key: scope.key.to_string(),
            operation: scope.operation.to_string(),
            fingerprint: scope.fingerprint.clone(),
            response: serde_json::to_string(&value).map_err(IdempotencyError::from)?,
            created_at: Utc::now(),
        };
        if let Err(e) = repository::idempotency::insert(&txn, record).await {
            txn.rollback().await?;
            // A concurrent request with the same key committed first: answer as it did.
            if is_unique_violation(&e) {
                if let Some(prior) = prior(db, scope, ttl).await? {
                    return Ok(prior);
                }
            }
            return Err(e.into());
        }
    }
    txn.commit().await?;
    Ok(value)
}

/// The stored response for the scope's key, if one is live; a key used with another request
/// is an error. An expired record is removed so the key starts afresh.
async fn prior<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    scope: &Scope<'_>,
    ttl: Duration,
) -> Result<Option<T>, IdempotencyError> {
    let Some(record) = repository::idempotency::find(db, scope.seller, scope.key).await? else {
        return Ok(None);
    };
    let age = Utc::now().signed_duration_since(record.created_at);
    if age.to_std().is_ok_and(|age| age > ttl) {
        repository::idempotency::delete(db, scope.seller, scope.key).await?;
        return Ok(None);
    }
    if record.operation != scope.operation || record.fingerprint != scope.fingerprint {
        return Err(IdempotencyError::KeyReused);
    }
    Ok(Some(serde_json::from_str(&record.response)?))
}
