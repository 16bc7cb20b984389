//! `Idempotency-Key` handling: the first response under a key is stored in the same
//! transaction as the write it answers (see `service::write`), so a retry either replays that
//! response or, if the first attempt rolled back, performs the write afresh. Nothing is
//! written twice.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbErr};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::{domain::SellerId, entity::idempotency_key::Model as Record, repository};

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("the idempotency key was already used with a different request")]
    KeyReused,
    #[error("stored idempotent response is unreadable")]
    Corrupt(#[from] serde_json::Error),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Records the response to the scope's request, in the caller's transaction.
pub(crate) async fn record(
    db: &impl ConnectionTrait,
    scope: &Scope<'_>,
    response: &impl Serialize,
) -> Result<(), IdempotencyError> {
    let record = Record {
        seller_id: scope.seller.as_str().to_string(),
        key: scope.key.to_string(),
        operation: scope.operation.to_string(),
        fingerprint: scope.fingerprint.clone(),
        response: serde_json::to_string(response)?,
        created_at: Utc::now(),
    };
    repository::idempotency::insert(db, record).await?;
    Ok(())
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

/// The stored response for the scope's key, if one is live; a key used with another request
/// is an error. An expired record is removed so the key starts afresh.
pub(crate) async fn prior<T: DeserializeOwned>(
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
