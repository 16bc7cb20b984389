//! Product queries. Reads and writes see only live rows (`deleted_at IS NULL`) of one seller.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    sea_query::{extension::postgres::PgFunc, Expr, Func, LikeExpr, SimpleExpr},
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Value,
};

use super::{
    binary_copy,
    transaction::{PgTransaction, Transaction},
};
use crate::{
    domain::{Filter, SellerId, SortKey},
    entity::product::{ActiveModel, Column, Entity, Model},
};

/// Quantities are BIGINT in the table but int32 in the API; writes keep them in range.
pub const MAX_QUANTITY: i64 = i32::MAX as i64;

/// The columns of a new product.
pub struct NewRow {
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub price_cents: i64,
    pub quantity: i64,
    pub category: String,
    pub low_stock_threshold: Option<i32>,
}

/// The columns an update sets; `None` leaves a column as it is.
#[derive(Default)]
pub struct Changes {
    pub sku: Option<Option<String>>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub price_cents: Option<i64>,
    pub quantity: Option<i64>,
    pub category: Option<String>,
    pub low_stock_threshold: Option<Option<i32>>,
}

impl SortKey {
    fn column(self) -> Column {
        match self {
            Self::Name => Column::Name,
            Self::Price => Column::PriceCents,
            Self::Quantity => Column::Quantity,
            Self::CreatedAt => Column::CreatedAt,
            Self::UpdatedAt => Column::UpdatedAt,
        }
    }

    /// The sort column's value in `row`, the keyset position a cursor resumes after.
    pub fn value_of(self, row: &Model) -> Value {
        match self {
            Self::Name => row.name.clone().into(),
            Self::Price => row.price_cents.into(),
            Self::Quantity => row.quantity.into(),
            Self::CreatedAt => row.created_at.into(),
            Self::UpdatedAt => row.updated_at.into(),
        }
    }
}

/// Where a page starts: an offset, or after a keyset position (sort value, id).
pub enum Start {
    Offset(u64),
    After(Value, i64),
}

fn scoped(seller: &SellerId) -> Condition {
    Condition::all()
        .add(Column::SellerId.eq(seller.as_str()))
        .add(Column::DeletedAt.is_null())
}

pub(super) fn filtered(seller: &SellerId, filter: &Filter) -> Condition {
    let mut cond = scoped(seller);
    if let Some(category) = &filter.category {
        cond = cond.add(Column::Category.eq(category.as_str()));
    }
    if let Some(min) = filter.min_quantity {
        cond = cond.add(Column::Quantity.gte(min));
    }
    if let Some(max) = filter.max_quantity {
        cond = cond.add(Column::Quantity.lte(max));
    }
    if let Some(sku) = &filter.sku {
        cond = cond.add(Column::Sku.eq(sku.as_str()));
    }
    if let Some(search) = &filter.search {
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let like = |col: Column| -> SimpleExpr {
            Expr::expr(Func::lower(Expr::col(col)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        cond = cond.add(
            Condition::any()
                .add(like(Column::Name))
                .add(like(Column::Sku)),
        );
    }
    cond
}

pub async fn insert(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    row: NewRow,
    now: DateTime<Utc>,
) -> Result<Model, DbErr> {
    Entity::insert(active(seller, row, now))
        .exec_with_returning(db)
        .await
}

pub async fn find(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: i64,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(scoped(seller).add(Column::Id.eq(id)))
        .one(db)
        .await
}

/// Each key's live product (`None` where that seller has no such product), in the keys'
/// order: the by-id reads of many requests in one query.
///
/// The query selects by id alone and the seller is matched here: with the sellers in the
/// SQL as well, PostgreSQL scanned the sellers' listing indexes instead of the primary key
/// (20 times the database's CPU per read once sellers had a few hundred products). An id
/// names one row, so no more rows are read than were asked for.
pub async fn find_each(
    db: &impl ConnectionTrait,
    keys: &[(SellerId, i64)],
) -> Result<Vec<Option<Model>>, DbErr> {
    let ids: Vec<i64> = keys.iter().map(|(_, id)| *id).collect();
    let by_id = match db.get_database_backend() {
        // One array parameter: one statement text (and prepared plan) for every batch size.
        sea_orm::DatabaseBackend::Postgres => {
            Expr::col(Column::Id).eq(PgFunc::any(Expr::value(ids)))
        }
        _ => Column::Id.is_in(ids),
    };
    let rows: HashMap<i64, Model> = Entity::find()
        .filter(Condition::all().add(by_id).add(Column::DeletedAt.is_null()))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    Ok(keys
        .iter()
        .map(|(seller, id)| {
            rows.get(id)
                .filter(|row| row.seller_id == seller.as_str())
                .cloned()
        })
        .collect())
}

/// The live product, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; SQLite
/// serializes writers anyway).
pub async fn find_for_update(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: i64,
) -> Result<Option<Model>, DbErr> {
    let query = Entity::find().filter(scoped(seller).add(Column::Id.eq(id)));
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => query.lock_exclusive().one(db).await,
        _ => query.one(db).await,
    }
}

/// Applies `changes` to a live product; returns the new row, or `None` when there is none.
pub async fn update(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: i64,
    changes: Changes,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let mut query = Entity::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    if let Some(v) = changes.sku {
        query = query.col_expr(Column::Sku, Expr::value(v));
    }
    if let Some(v) = changes.name {
        query = query.col_expr(Column::Name, Expr::value(v));
    }
    if let Some(v) = changes.description {
        query = query.col_expr(Column::Description, Expr::value(v));
    }
    if let Some(v) = changes.price_cents {
        query = query.col_expr(Column::PriceCents, Expr::value(v));
    }
    if let Some(v) = changes.quantity {
        query = query.col_expr(Column::Quantity, Expr::value(v));
    }
    if let Some(v) = changes.category {
        query = query.col_expr(Column::Category, Expr::value(v));
    }
    if let Some(v) = changes.low_stock_threshold {
        query = query.col_expr(Column::LowStockThreshold, Expr::value(v));
    }
    let cond = scoped(seller).add(Column::Id.eq(id));
    let rows = query.filter(cond).exec_with_returning(db).await?;
    Ok(rows.into_iter().next())
}

/// Soft-deletes a live product; returns the deleted row.
pub async fn soft_delete(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let cond = scoped(seller).add(Column::Id.eq(id));
    let rows = Entity::update_many()
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .col_expr(Column::DeletedAt, Expr::value(Some(now)))
        .filter(cond)
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// Adds `delta` to the quantity in one statement, only while the result stays within
/// `0..=MAX_QUANTITY`; concurrent adjustments serialize on the row and none is lost.
pub async fn adjust_quantity(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    id: i64,
    delta: i64,
    now: DateTime<Utc>,
) -> Result<Option<Model>, DbErr> {
    let next = || Expr::col(Column::Quantity).add(delta);
    let rows = Entity::update_many()
        .col_expr(Column::Quantity, next())
        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(
            scoped(seller)
                .add(Column::Id.eq(id))
                .add(Expr::expr(next()).gte(0))
                .add(Expr::expr(next()).lte(MAX_QUANTITY)),
        )
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next())
}

/// One page of live products, `limit` rows at most, ordered by `(sort, id)` in `order`.
pub async fn page(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    filter: &Filter,
    sort: SortKey,
    order: Order,
    start: Start,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let col = sort.column();
    let mut cond = filtered(seller, filter);
    let mut query = Entity::find();
    match start {
        Start::Offset(0) => {}
        Start::Offset(offset) => query = query.offset(offset),
        Start::After(value, id) => {
            // A row-value comparison, `(sort, id) > (value, id)`: the index range starts right
            // there, where an OR of the two cases would scan the seller's rows from the start.
            let key = Expr::tuple([Expr::col(col).into(), Expr::col(Column::Id).into()]);
            let after = Expr::tuple([Expr::value(value), Expr::value(id)]);
            cond = cond.add(match order {
                Order::Asc => key.gt(after),
                _ => key.lt(after),
            });
        }
    }
    let query = query
        .filter(cond)
        .order_by(col, order.clone())
        .order_by(Column::Id, order);
    let backend = db.get_database_backend();
    if backend != sea_orm::DatabaseBackend::Postgres {
        return query.limit(limit).all(db).await;
    }
    // The limit is part of the statement's text, not a parameter. PostgreSQL plans a
    // prepared statement anew on every execution while its generic plan, costed for an
    // unknown limit, looks dearer than a custom one, which is what happens once the table
    // outgrows its statistics: a list then spent more time planning than reading. With the
    // limit known (at most 101 texts), the generic plan wins and is kept. PostgreSQL takes
    // `OFFSET … LIMIT …` in this order.
    let mut statement = sea_orm::QueryTrait::build(&query, backend);
    statement.sql.push_str(&format!(" LIMIT {limit}"));
    Entity::find().from_raw_sql(statement).all(db).await
}

/// How many live products of `seller` match `filter`. Unfiltered on PostgreSQL, the count the
/// triggers keep (migration `m20261201_000006_count_live_products_per_seller`): one row,
/// whatever the seller's size or the table's vacuum state.
pub async fn count(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    filter: &Filter,
) -> Result<u64, DbErr> {
    if filter.is_empty() && db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let kept = db
            .query_one(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT live FROM seller_product_counts WHERE seller_id = $1",
                [seller.as_str().into()],
            ))
            .await?;
        let live = kept.map(|r| r.try_get::<i64>("", "live")).transpose()?;
        return Ok(u64::try_from(live.unwrap_or(0)).unwrap_or(0));
    }
    Entity::find()
        .filter(filtered(seller, filter))
        .count(db)
        .await
}

/// The seller's live products with these skus (locked on PostgreSQL, as `find_for_update`).
pub async fn find_by_skus(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    skus: Vec<String>,
) -> Result<Vec<Model>, DbErr> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    match db.get_database_backend() {
        // One array parameter: planning a list of a thousand parameters costs more than the
        // lookups themselves.
        sea_orm::DatabaseBackend::Postgres => {
            let any = Expr::col(Column::Sku).eq(PgFunc::any(Expr::value(skus)));
            Entity::find()
                .filter(scoped(seller).add(any))
                .lock_exclusive()
                .all(db)
                .await
        }
        _ => {
            Entity::find()
                .filter(scoped(seller).add(Column::Sku.is_in(skus)))
                .all(db)
                .await
        }
    }
}

fn active(seller: &SellerId, row: NewRow, now: DateTime<Utc>) -> ActiveModel {
    ActiveModel {
        seller_id: Set(seller.as_str().to_string()),
        sku: Set(row.sku),
        name: Set(row.name),
        description: Set(row.description),
        price_cents: Set(row.price_cents),
        quantity: Set(row.quantity),
        category: Set(row.category),
        low_stock_threshold: Set(row.low_stock_threshold),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
        ..Default::default()
    }
}

/// Creates products; returns them in the order given. On PostgreSQL the ids are drawn in
/// one statement and the rows go by one binary `COPY`, the engine's cheapest way in: no
/// statement to plan, no text to parse, the heap filled a page at a time. SQLite takes
/// multi-row inserts.
pub async fn insert_many(
    txn: &Transaction,
    seller: &SellerId,
    rows: Vec<NewRow>,
    now: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(pg) = txn.postgres() {
        return insert_copied(txn, pg, seller, rows, now).await;
    }
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in super::statements(rows) {
        let chunk = chunk.into_iter().map(|r| active(seller, r, now));
        let mut inserted = Entity::insert_many(chunk)
            .exec_with_returning_many(txn)
            .await?;
        // Ids follow the VALUES order; sorting makes that order explicit.
        inserted.sort_by_key(|p| p.id);
        stored.extend(inserted);
    }
    Ok(stored)
}

/// `insert_many` on PostgreSQL. The rows returned are the ones sent, with their ids; the time
/// is cut to microseconds first, as PostgreSQL stores it, so they equal the stored ones.
async fn insert_copied(
    txn: &Transaction,
    pg: &PgTransaction,
    seller: &SellerId,
    rows: Vec<NewRow>,
    now: DateTime<Utc>,
) -> Result<Vec<Model>, DbErr> {
    const COPY: &str = "COPY products (id, seller_id, sku, name, description, price_cents, \
        quantity, category, low_stock_threshold, version, created_at, updated_at) \
        FROM STDIN (FORMAT binary)";
    let now = now.trunc_subsecs(6);
    let ids = super::draw_ids(txn, "products_id_seq", rows.len()).await?;
    let mut data = binary_copy::Rows::new(12, rows.len() * 160);
    for (id, row) in ids.iter().zip(&rows) {
        data.row()
            .int8(*id)
            .text(seller.as_str())
            .opt_text(row.sku.as_deref())
            .text(&row.name)
            .opt_text(row.description.as_deref())
            .int8(row.price_cents)
            .int8(row.quantity)
            .text(&row.category)
            .opt_int4(row.low_stock_threshold)
            .int8(1)
            .timestamp(now)
            .timestamp(now);
    }
    pg.copy_in(COPY, data.finish()).await?;
    Ok(ids
        .into_iter()
        .zip(rows)
        .map(|(id, row)| Model {
            id,
            seller_id: seller.as_str().to_string(),
            sku: row.sku,
            name: row.name,
            description: row.description,
            price_cents: row.price_cents,
            quantity: row.quantity,
            category: row.category,
            low_stock_threshold: row.low_stock_threshold,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
        .collect())
}

/// Writes whole rows over live products of `seller` (matched by id) with multi-row
/// statements; the caller read and locked them and computed their new versions.
pub async fn replace_many(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    rows: Vec<Model>,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::sea_query::OnConflict;
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in super::statements(rows) {
        let chunk: Vec<ActiveModel> = chunk
            .into_iter()
            .filter(|p| p.seller_id == seller.as_str() && p.deleted_at.is_none())
            .map(|p| ActiveModel {
                id: Set(p.id),
                seller_id: Set(p.seller_id),
                sku: Set(p.sku),
                name: Set(p.name),
                description: Set(p.description),
                price_cents: Set(p.price_cents),
                quantity: Set(p.quantity),
                category: Set(p.category),
                low_stock_threshold: Set(p.low_stock_threshold),
                version: Set(p.version),
                created_at: Set(p.created_at),
                updated_at: Set(p.updated_at),
                deleted_at: Set(None),
            })
            .collect();
        if chunk.is_empty() {
            continue;
        }
        // Every id exists, so each row takes the conflict branch: an UPDATE of many rows in
        // one statement, on both databases.
        let on_conflict = OnConflict::column(Column::Id)
            .update_columns([
                Column::Sku,
                Column::Name,
                Column::Description,
                Column::PriceCents,
                Column::Quantity,
                Column::Category,
                Column::LowStockThreshold,
                Column::Version,
                Column::UpdatedAt,
            ])
            .to_owned();
        stored.extend(
            Entity::insert_many(chunk)
                .on_conflict(on_conflict)
                .exec_with_returning_many(db)
                .await?,
        );
    }
    Ok(stored)
}

/// Refreshes PostgreSQL's statistics of the products table (a no-op on SQLite) for the sku
/// lookup, for callers that have just grown it by far more than the planner last saw: the
/// table's size and the columns the lookup filters on. The other columns' statistics cost as
/// much again to compute and no plan of this service needs them fresh.
pub async fn analyze(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_unprepared("ANALYZE products (seller_id, sku, deleted_at)")
            .await?;
    }
    Ok(())
}
