//! CSV export: the seller's live products, oldest first, streamed so memory stays constant
//! whatever the row count. On PostgreSQL the rows come from one binary `COPY … TO STDOUT` (one
//! snapshot; `repository::exported`); on SQLite from keyset chunks. Both are encoded here, by
//! the same code, so both give the same bytes (a test holds them to it).
//!
//! Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab
//! or carriage return) are prefixed with `'` (OWASP's advice), as is text starting with `'`;
//! the importer removes it again.

use bytes::Bytes;
use chrono::SecondsFormat;
use futures::{stream::BoxStream, StreamExt};
use sea_orm::{DatabaseConnection, DbErr, Order};

use crate::{
    domain::{Filter, Money, SellerId, SortKey},
    entity::product::Model as Product,
    repository::{
        exported::{self, Exported},
        products::{self, Start},
    },
};

/// Rows read per query.
const CHUNK: u64 = 1000;

/// The columns, in the order the importer reads them.
pub const COLUMNS: [&str; 10] = [
    "id",
    "sku",
    "name",
    "description",
    "price",
    "quantity",
    "category",
    "low_stock_threshold",
    "created_at",
    "updated_at",
];

/// A cell as written: formula-like text gets a leading `'`, and so does text that already
/// starts with one, so the importer's un-escaping gives back every value exactly.
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn row(p: &Exported) -> [String; 10] {
    let text = |s: &str| neutralise(s);
    [
        p.id.to_string(),
        p.sku.as_deref().map(text).unwrap_or_default(),
        text(&p.name),
        p.description.as_deref().map(text).unwrap_or_default(),
        Money::from_cents(p.price_cents).to_string(),
        p.quantity.to_string(),
        text(&p.category),
        p.low_stock_threshold
            .map(|t| t.to_string())
            .unwrap_or_default(),
        p.created_at.to_rfc3339_opts(SecondsFormat::Micros, false),
        p.updated_at.to_rfc3339_opts(SecondsFormat::Micros, false),
    ]
}

pub(crate) fn encode<I, R>(rows: I) -> std::io::Result<Bytes>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(row).map_err(std::io::Error::other)?;
    }
    writer
        .into_inner()
        .map(Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

struct Cursor {
    db: DatabaseConnection,
    seller: SellerId,
    filter: Filter,
    after: Option<(sea_orm::Value, i64)>,
    done: bool,
}

async fn next_chunk(mut c: Cursor) -> Option<(std::io::Result<Bytes>, Cursor)> {
    if c.done {
        return None;
    }
    let start = match c.after.take() {
        Some((value, id)) => Start::After(value, id),
        None => Start::Offset(0),
    };
    let chunk: Result<Vec<Product>, DbErr> = products::page(
        &c.db,
        &c.seller,
        &c.filter,
        SortKey::CreatedAt,
        Order::Asc,
        start,
        CHUNK,
    )
    .await;
    match chunk {
        Ok(rows) if rows.is_empty() => None,
        Ok(rows) => {
            c.done = (rows.len() as u64) < CHUNK;
            c.after = rows.last().map(|p| (SortKey::CreatedAt.value_of(p), p.id));
            let rows = rows.into_iter().map(Exported::from);
            Some((encode(rows.map(|p| row(&p))), c))
        }
        Err(e) => {
            tracing::error!(error = %e, "export query failed mid-stream");
            c.done = true;
            Some((Err(std::io::Error::other("export failed")), c))
        }
    }
}

/// The CSV stream: a header row, then the products.
pub fn stream(
    db: DatabaseConnection,
    seller: SellerId,
    filter: Filter,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    let header = futures::stream::once(async { encode([COLUMNS]) });
    let records = futures::stream::once(async move {
        match copied(&db, &seller, &filter).await {
            Ok(Some(copied)) => copied,
            Ok(None) => chunked(db, seller, filter),
            Err(e) => {
                tracing::error!(error = %e, "export COPY did not start");
                futures::stream::once(async { Err(std::io::Error::other("export failed")) }).boxed()
            }
        }
    })
    .flatten();
    header.chain(records).boxed()
}

/// The products' records (no header) from PostgreSQL's COPY; `None` where `chunked` serves.
pub async fn copied(
    db: &DatabaseConnection,
    seller: &SellerId,
    filter: &Filter,
) -> Result<Option<BoxStream<'static, std::io::Result<Bytes>>>, DbErr> {
    let Some(batches) = exported::copy(db, seller, filter).await? else {
        return Ok(None);
    };
    Ok(Some(
        batches
            .map(|batch| match batch {
                Ok(rows) => encode(rows.iter().map(row)),
                Err(e) => {
                    tracing::error!(error = %e, "export COPY failed mid-stream");
                    Err(std::io::Error::other("export failed"))
                }
            })
            .boxed(),
    ))
}

/// The products' records (no header), read in keyset chunks.
pub fn chunked(
    db: DatabaseConnection,
    seller: SellerId,
    filter: Filter,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    let cursor = Cursor {
        db,
        seller,
        filter,
        after: None,
        done: false,
    };
    futures::stream::unfold(cursor, next_chunk).boxed()
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn formula_cells_are_neutralised() {
        for (cell, out) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), out, "{cell:?}");
        }
    }
}
