//! The transactional outbox: appended with the product change, read by the relay and by SSE.

use std::collections::BTreeSet;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    sea_query::ArrayType, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Value,
};

use super::{binary_copy, transaction::Transaction};
use crate::{
    domain::SellerId,
    entity::outbox::{ActiveModel, Column, Entity, Model},
};

/// An event to append; the database assigns its sequence number.
pub struct NewRow {
    pub seller_id: String,
    pub event_type: &'static str,
    pub product_id: i64,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// Appends `rows` in order and returns them with their ids.
///
/// One seller's ids follow its commit order: on PostgreSQL a trigger locks the seller until
/// the transaction ends before it draws the id (see the migration
/// `m20261126_000005_order_outbox_ids_per_seller`); SQLite runs one writer at a time. Event
/// streams resume after the last id they sent and rely on this.
///
/// On PostgreSQL many rows go as one statement whatever their count, each column one array
/// parameter (`unnest`): the same statement text and plan for every batch. That statement
/// takes each seller's lock once and draws the ids itself, in the rows' order, which the
/// trigger would otherwise do row by row (`m20261201_000007_outbox_ids_drawn_by_batch_writers`).
pub async fn append(db: &impl ConnectionTrait, rows: Vec<NewRow>) -> Result<Vec<Model>, DbErr> {
    if rows.len() > 1 && db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        return append_unnested(db, rows).await;
    }
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in super::statements(rows) {
        let chunk = chunk.into_iter().map(|row| ActiveModel {
            seller_id: Set(row.seller_id),
            event_type: Set(row.event_type.to_string()),
            product_id: Set(row.product_id),
            payload: Set(row.payload),
            created_at: Set(row.created_at),
            published_at: Set(None),
            ..Default::default()
        });
        let mut inserted = Entity::insert_many(chunk)
            .exec_with_returning_many(db)
            .await?;
        // Ids follow the VALUES order, which is the events' order.
        inserted.sort_by_key(|r| r.id);
        stored.extend(inserted);
    }
    Ok(stored)
}

/// `append` in an import's batch: on PostgreSQL the ids are drawn in one statement, under
/// the sellers' locks, and the rows go by one binary `COPY`.
pub async fn append_batch(txn: &Transaction, rows: Vec<NewRow>) -> Result<Vec<Model>, DbErr> {
    let Some(pg) = txn.postgres().filter(|_| rows.len() > 1) else {
        return append(txn, rows).await;
    };
    const COPY: &str = "COPY outbox (id, seller_id, event_type, product_id, payload, \
        created_at) FROM STDIN (FORMAT binary)";
    let rows = to_micros(rows);
    lock_sellers(txn, &rows).await?;
    let ids = super::draw_ids(txn, "outbox_id_seq", rows.len()).await?;
    let bytes: usize = rows.iter().map(|r| r.payload.len() + 96).sum();
    let mut data = binary_copy::Rows::new(6, bytes);
    for (id, row) in ids.iter().zip(&rows) {
        data.row()
            .int8(*id)
            .text(&row.seller_id)
            .text(row.event_type)
            .int8(row.product_id)
            .text(&row.payload)
            .timestamp(row.created_at);
    }
    pg.copy_in(COPY, data.finish()).await?;
    Ok(stored(ids, rows))
}

/// Cut to microseconds, as stored, so the rows rebuilt from them equal the stored ones.
fn to_micros(rows: Vec<NewRow>) -> Vec<NewRow> {
    rows.into_iter()
        .map(|r| NewRow {
            created_at: r.created_at.trunc_subsecs(6),
            ..r
        })
        .collect()
}

/// Takes the id trigger's lock (the same keys) once per seller of `rows`, before any id is
/// drawn.
async fn lock_sellers(db: &impl ConnectionTrait, rows: &[NewRow]) -> Result<(), DbErr> {
    const LOCK: &str = "SELECT pg_advisory_xact_lock(1869968482, hashtext(s)) \
        FROM (SELECT DISTINCT unnest($1::text[]) AS s ORDER BY 1) AS sellers";
    // An import's thousands of events have one seller: send it once.
    let sellers: BTreeSet<&str> = rows.iter().map(|r| r.seller_id.as_str()).collect();
    let sellers: Vec<Value> = sellers.into_iter().map(Value::from).collect();
    let sellers = Value::Array(ArrayType::String, Some(Box::new(sellers)));
    let pg = sea_orm::DatabaseBackend::Postgres;
    db.query_all(sea_orm::Statement::from_sql_and_values(pg, LOCK, [sellers]))
        .await?;
    Ok(())
}

/// `rows` as stored with `ids`, both in the events' order. Only the ids come back from the
/// database: the rows are what was sent.
fn stored(ids: Vec<i64>, rows: Vec<NewRow>) -> Vec<Model> {
    ids.into_iter()
        .zip(rows)
        .map(|(id, row)| Model {
            id,
            seller_id: row.seller_id,
            event_type: row.event_type.to_string(),
            product_id: row.product_id,
            payload: row.payload,
            created_at: row.created_at,
            published_at: None,
        })
        .collect()
}

async fn append_unnested(
    db: &impl ConnectionTrait,
    rows: Vec<NewRow>,
) -> Result<Vec<Model>, DbErr> {
    // Output expressions are computed after ORDER BY, so ids ascend in the rows' order.
    const SQL: &str = "INSERT INTO outbox (id, seller_id, event_type, product_id, payload, \
        created_at) \
        SELECT nextval('outbox_id_seq'), seller_id, event_type, product_id, payload, created_at \
        FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::timestamptz[]) \
        WITH ORDINALITY AS r(seller_id, event_type, product_id, payload, created_at, ord) \
        ORDER BY ord RETURNING id";
    let array = |ty, items: Vec<Value>| Value::Array(ty, Some(Box::new(items)));
    let rows = to_micros(rows);
    let n = rows.len();
    let (mut seller, mut kind, mut product, mut payload, mut at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for row in &rows {
        seller.push(row.seller_id.clone().into());
        kind.push(row.event_type.into());
        product.push(row.product_id.into());
        payload.push(row.payload.clone().into());
        at.push(row.created_at.into());
    }
    let values = vec![
        array(ArrayType::String, seller),
        array(ArrayType::String, kind),
        array(ArrayType::BigInt, product),
        array(ArrayType::String, payload),
        array(ArrayType::ChronoDateTimeUtc, at),
    ];
    lock_sellers(db, &rows).await?;
    let statement =
        sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, SQL, values);
    let mut ids = super::ids_of(db.query_all(statement).await?)?;
    // The trigger draws ids as rows arrive, in `ord` order: ascending ids are the events'
    // order.
    ids.sort_unstable();
    Ok(stored(ids, rows))
}

/// The oldest `limit` rows the broker has not acknowledged yet, in sequence order.
pub async fn unpublished(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::PublishedAt.is_null())
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn mark_published(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(
            Column::PublishedAt,
            sea_orm::sea_query::Expr::value(Some(at)),
        )
        .filter(Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}

/// One seller's events after `after`, in sequence order, at most `limit`.
pub async fn after(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    after: i64,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::SellerId.eq(seller.as_str()))
        .filter(Column::Id.gt(after))
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The seller's newest event id, if any.
pub async fn last_of(db: &impl ConnectionTrait, seller: &SellerId) -> Result<Option<i64>, DbErr> {
    Entity::find()
        .select_only()
        .column_as(Column::Id.max(), "max")
        .filter(Column::SellerId.eq(seller.as_str()))
        .into_tuple::<Option<i64>>()
        .one(db)
        .await
        .map(Option::flatten)
}

/// The smallest id still stored, if any: ids below it were pruned.
pub async fn first_id(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    Entity::find()
        .select_only()
        .column_as(Column::Id.min(), "min")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await
        .map(Option::flatten)
}

/// Deletes rows created before `cutoff`; with `published_only`, only acknowledged ones.
pub async fn prune(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    published_only: bool,
) -> Result<u64, DbErr> {
    let mut query = Entity::delete_many().filter(Column::CreatedAt.lt(cutoff));
    if published_only {
        query = query.filter(Column::PublishedAt.is_not_null());
    }
    Ok(query.exec(db).await?.rows_affected)
}
