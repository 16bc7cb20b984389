//! The CSV export's rows on PostgreSQL: one `COPY (SELECT …) TO STDOUT (FORMAT binary)`, one
//! snapshot, streamed as it arrives and decoded here. PostgreSQL only sends the columns as
//! they are stored (no text formatting, its costliest part of a text COPY); the service
//! formats them, on another core, with the same code as SQLite's keyset export.

use bytes::{Buf, BytesMut};
use chrono::{DateTime, Utc};
use futures::{stream::BoxStream, StreamExt};
use sea_orm::{
    sea_query::{Expr, PostgresQueryBuilder, Query},
    ConnectionTrait, DatabaseConnection, DbErr, Order,
};

use super::{
    binary_copy::{PG_EPOCH_MICROS, SIGNATURE},
    products::filtered,
};
use crate::{
    domain::{Filter, SellerId},
    entity::product::{Column, Entity, Model},
};

/// Exports running `COPY` at once per process; more wait their turn. Each holds a connection
/// of its own, outside the pool, for as long as its client reads.
const EXPORTS_AT_ONCE: usize = 4;

/// Rows handed on at once.
const BATCH: usize = 1000;

/// A product as the export writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub id: i64,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub price_cents: i64,
    pub quantity: i64,
    pub category: String,
    pub low_stock_threshold: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Model> for Exported {
    fn from(p: Model) -> Self {
        Self {
            id: p.id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            price_cents: p.price_cents,
            quantity: p.quantity,
            category: p.category,
            low_stock_threshold: p.low_stock_threshold,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// The columns selected, in `Exported`'s order, cast to the types the decoder reads.
const COLUMNS: [&str; 10] = [
    "id::int8",
    "sku::text",
    "name::text",
    "description",
    "price_cents::int8",
    "quantity::int8",
    "category::text",
    "low_stock_threshold::int4",
    "created_at",
    "updated_at",
];

/// The seller's live products matching `filter`, oldest first, in batches. `None` where the
/// keyset export must serve instead: on SQLite, which has no COPY, and for filter text with
/// control characters.
///
/// COPY takes no bind parameters, so the filter's values are inlined by sea-query's
/// PostgreSQL quoting (`E'…'` with `'` and `\` escaped). That quoting spells a few control
/// characters as escapes PostgreSQL reads differently (U+001A as `\z`), so filter text with
/// one goes to the keyset export, whose parameters are bound.
///
/// The COPY runs on a connection of its own, never the pool's: a client that stops reading
/// leaves the rest of the COPY unread on its connection, which must then be closed, not
/// handed to the next query. A task owns the connection and forwards the batches; when the
/// receiver is gone it stops, and the connection closes with it.
pub async fn copy(
    db: &DatabaseConnection,
    seller: &SellerId,
    filter: &Filter,
) -> Result<Option<BoxStream<'static, Result<Vec<Exported>, DbErr>>>, DbErr> {
    use std::sync::LazyLock;

    use sea_orm::sqlx::{postgres::PgConnection, Connection};
    use tokio::sync::{mpsc, oneshot, Semaphore};

    static EXPORTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(EXPORTS_AT_ONCE));
    let sqlx = |e| DbErr::Query(sea_orm::RuntimeErr::SqlxError(e));

    let texts = [&filter.category, &filter.search, &filter.sku];
    let controls = texts.iter().filter_map(|t| t.as_deref()).any(|t| {
        t.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    });
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres || controls {
        return Ok(None);
    }
    let select = Query::select()
        .exprs(COLUMNS.iter().map(|c| Expr::cust(*c)))
        .from(Entity)
        .cond_where(filtered(seller, filter))
        .order_by(Column::CreatedAt, Order::Asc)
        .order_by(Column::Id, Order::Asc)
        .to_string(PostgresQueryBuilder);
    let copy = format!("COPY ({select}) TO STDOUT WITH (FORMAT binary)");

    let permit = EXPORTS
        .acquire()
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let options = db.get_postgres_connection_pool().connect_options();
    let mut conn = PgConnection::connect_with(&options).await.map_err(sqlx)?;
    let (started_tx, started) = oneshot::channel();
    let (tx, rx) = mpsc::channel::<Result<Vec<Exported>, DbErr>>(4);
    tokio::spawn(async move {
        let _permit = permit;
        let mut chunks = match conn.copy_out_raw(&copy).await {
            Ok(chunks) => chunks,
            Err(e) => {
                let _ = started_tx.send(Err(sqlx(e)));
                return;
            }
        };
        let _ = started_tx.send(Ok(()));
        let mut decoder = Decoder::default();
        let mut rows = Vec::with_capacity(BATCH);
        while let Some(chunk) = chunks.next().await {
            let decoded = chunk
                .map_err(sqlx)
                .and_then(|chunk| decoder.feed(&chunk, &mut rows).map_err(DbErr::Custom));
            if let Err(e) = decoded {
                let _ = tx.send(Err(e)).await;
                return;
            }
            if rows.len() >= BATCH && tx.send(Ok(std::mem::take(&mut rows))).await.is_err() {
                return;
            }
        }
        if !decoder.ended() {
            let _ = tx
                .send(Err(DbErr::Custom(
                    "the COPY ended without its trailer".into(),
                )))
                .await;
        } else if !rows.is_empty() {
            let _ = tx.send(Ok(rows)).await;
        }
        // Dropping `chunks` and `conn` closes the connection, mid-COPY or not.
    });
    started
        .await
        .map_err(|_| DbErr::Custom("the export task ended before COPY started".into()))??;
    Ok(Some(
        tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
    ))
}

/// PostgreSQL's binary COPY format, read incrementally: a signature and header, then per row
/// a 16-bit field count and each field as a 32-bit length (-1 for NULL) and its bytes, then a
/// field count of -1.
#[derive(Default)]
struct Decoder {
    pending: BytesMut,
    header_read: bool,
    ended: bool,
}

impl Decoder {
    fn ended(&self) -> bool {
        self.ended
    }

    /// Takes a chunk; appends the rows it completes to `rows`.
    fn feed(&mut self, chunk: &[u8], rows: &mut Vec<Exported>) -> Result<(), String> {
        self.pending.extend_from_slice(chunk);
        if !self.header_read {
            let Some(len) = header_len(&self.pending)? else {
                return Ok(());
            };
            self.pending.advance(len);
            self.header_read = true;
        }
        while !self.ended {
            match row(&self.pending)? {
                Tuple::Incomplete => break,
                Tuple::Trailer => {
                    self.pending.advance(2);
                    self.ended = true;
                }
                Tuple::Row(row, len) => {
                    self.pending.advance(len);
                    rows.push(*row);
                }
            }
        }
        Ok(())
    }
}

fn header_len(data: &[u8]) -> Result<Option<usize>, String> {
    let fixed = SIGNATURE.len() + 8;
    if data.len() < fixed {
        return Ok(None);
    }
    if !data.starts_with(SIGNATURE) {
        return Err("not a binary COPY stream".into());
    }
    let extension = i32::from_be_bytes([data[15], data[16], data[17], data[18]]);
    let extension = usize::try_from(extension).map_err(|_| "bad COPY header".to_string())?;
    Ok((data.len() >= fixed + extension).then_some(fixed + extension))
}

enum Tuple {
    Incomplete,
    Trailer,
    /// A row and the bytes it took.
    Row(Box<Exported>, usize),
}

/// The fields of one row as they are read.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    /// The next field's bytes (`Some(None)` for NULL); `None` if the row is incomplete.
    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        let len = self.data.get(self.at..self.at + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.at += 4;
        let Ok(len) = usize::try_from(len) else {
            return Some(None);
        };
        let bytes = self.data.get(self.at..self.at + len)?;
        self.at += len;
        Some(Some(bytes))
    }
}

fn row(data: &[u8]) -> Result<Tuple, String> {
    let Some(count) = data.get(..2) else {
        return Ok(Tuple::Incomplete);
    };
    match i16::from_be_bytes([count[0], count[1]]) {
        -1 => return Ok(Tuple::Trailer),
        n if n as usize == COLUMNS.len() => {}
        n => return Err(format!("a COPY row of {n} fields, not {}", COLUMNS.len())),
    }
    let mut fields = Fields { data, at: 2 };
    let mut raw: [Option<&[u8]>; 10] = [None; 10];
    for field in &mut raw {
        let Some(value) = fields.next() else {
            return Ok(Tuple::Incomplete);
        };
        *field = value;
    }
    let [id, sku, name, description, price, quantity, category, threshold, created, updated] = raw;
    let row = Exported {
        id: int8(required(id)?)?,
        sku: sku.map(text).transpose()?,
        name: text(required(name)?)?,
        description: description.map(text).transpose()?,
        price_cents: int8(required(price)?)?,
        quantity: int8(required(quantity)?)?,
        category: text(required(category)?)?,
        low_stock_threshold: threshold.map(int4).transpose()?,
        created_at: timestamp(required(created)?)?,
        updated_at: timestamp(required(updated)?)?,
    };
    Ok(Tuple::Row(Box::new(row), fields.at))
}

fn required(field: Option<&[u8]>) -> Result<&[u8], String> {
    field.ok_or_else(|| "NULL in a NOT NULL column".to_string())
}

fn int8(bytes: &[u8]) -> Result<i64, String> {
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_be_bytes)
        .map_err(|_| "an int8 of the wrong size".to_string())
}

fn int4(bytes: &[u8]) -> Result<i32, String> {
    <[u8; 4]>::try_from(bytes)
        .map(i32::from_be_bytes)
        .map_err(|_| "an int4 of the wrong size".to_string())
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "text that is not UTF-8".to_string())
}

fn timestamp(bytes: &[u8]) -> Result<DateTime<Utc>, String> {
    let micros = int8(bytes)?;
    DateTime::from_timestamp_micros(micros.saturating_add(PG_EPOCH_MICROS))
        .ok_or_else(|| format!("a timestamp out of range: {micros}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        use chrono::TimeZone;
        let at = |day, micros| {
            Utc.with_ymd_and_hms(2000, 1, day, 0, 0, 1)
                .single()
                .expect("a date")
                + chrono::Duration::microseconds(micros)
        };
        let mut rows = crate::repository::binary_copy::Rows::new(10, 0);
        rows.row()
            .int8(7)
            .null()
            .text("Ünï")
            .text("")
            .int8(1999)
            .int8(5)
            .text("Tools")
            .int4(3)
            .timestamp(at(1, 2))
            .timestamp(at(2, 2));
        rows.finish()
    }

    #[test]
    fn rows_decode_whatever_the_chunking() {
        let whole = stream();
        for size in [1, 2, 3, 7, 19, 64, whole.len()] {
            let mut decoder = Decoder::default();
            let mut rows = Vec::new();
            for chunk in whole.chunks(size) {
                decoder.feed(chunk, &mut rows).expect("decodes");
            }
            assert!(decoder.ended(), "chunks of {size}");
            assert_eq!(rows.len(), 1, "chunks of {size}");
            let row = &rows[0];
            assert_eq!(
                (row.id, row.sku.as_deref(), row.name.as_str()),
                (7, None, "Ünï")
            );
            assert_eq!(row.description.as_deref(), Some(""));
            assert_eq!(
                (row.price_cents, row.quantity, row.low_stock_threshold),
                (1999, 5, Some(3))
            );
            assert_eq!(
                row.created_at.to_rfc3339(),
                "2000-01-01T00:00:01.000002+00:00"
            );
            assert_eq!(
                row.updated_at.to_rfc3339(),
                "2000-01-02T00:00:01.000002+00:00"
            );
        }
    }

    #[test]
    fn a_stream_that_is_not_binary_copy_is_refused() {
        let mut decoder = Decoder::default();
        let refused = decoder.feed(b"id,sku,name,description\n1,A,B,C\n", &mut Vec::new());
        assert!(refused.is_err());
    }
}
