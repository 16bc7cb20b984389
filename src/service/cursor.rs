//! Opaque keyset cursors for the product list.
//!
//! A cursor names the last row of a page by its sort value and id, plus the sort and a hash
//! of the filters it was made for, so it cannot silently be replayed against another query.
//! It is base64url JSON: opaque to clients, easy to debug for us.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use sea_orm::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Filter, SortKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("cursor is not one this server issued")]
    Malformed,
    #[error("cursor was issued for another sort or other filters")]
    Mismatch,
}

#[derive(Serialize, Deserialize)]
struct Encoded {
    /// Sort key and direction, e.g. `created_at:desc`.
    s: String,
    /// Filter hash.
    f: String,
    /// Sort value of the last row.
    v: serde_json::Value,
    /// Id of the last row.
    i: i64,
    /// Number of the page the cursor leads to.
    p: u32,
}

/// A decoded cursor: resume after `(value, id)`; the page it leads to is `page`.
pub struct Position {
    pub value: Value,
    pub id: i64,
    pub page: u32,
}

fn sort_tag(sort: SortKey, descending: bool) -> String {
    format!("{sort:?}:{}", if descending { "desc" } else { "asc" })
}

fn filter_hash(filter: &Filter) -> String {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}",
        filter.category, filter.min_quantity, filter.max_quantity, filter.search, filter.sku
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::String(Some(s)) => serde_json::Value::String(s.to_string()),
        Value::BigInt(Some(n)) => serde_json::Value::from(*n),
        Value::ChronoDateTimeUtc(Some(t)) => {
            serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }
        _ => serde_json::Value::Null,
    }
}

fn from_json(sort: SortKey, value: serde_json::Value) -> Option<Value> {
    match (sort, value) {
        (SortKey::Name, serde_json::Value::String(s)) => Some(s.into()),
        (SortKey::Price | SortKey::Quantity, serde_json::Value::Number(n)) => {
            n.as_i64().map(Value::from)
        }
        (SortKey::CreatedAt | SortKey::UpdatedAt, serde_json::Value::String(s)) => {
            DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|t| Value::from(t.with_timezone(&Utc)))
        }
        _ => None,
    }
}

pub fn encode(
    sort: SortKey,
    descending: bool,
    filter: &Filter,
    value: &Value,
    id: i64,
    page: u32,
) -> String {
    let encoded = Encoded {
        s: sort_tag(sort, descending),
        f: filter_hash(filter),
        v: to_json(value),
        i: id,
        p: page,
    };
    // Serializing a struct of strings and numbers cannot fail.
    let json = serde_json::to_vec(&encoded).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode(
    cursor: &str,
    sort: SortKey,
    descending: bool,
    filter: &Filter,
) -> Result<Position, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::Malformed)?;
    let encoded: Encoded = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if encoded.s != sort_tag(sort, descending) || encoded.f != filter_hash(filter) {
        return Err(CursorError::Mismatch);
    }
    let value = from_json(sort, encoded.v).ok_or(CursorError::Malformed)?;
    Ok(Position {
        value,
        id: encoded.i,
        page: encoded.p.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_queries() {
        let filter = Filter {
            category: Some("Books".into()),
            ..Filter::default()
        };
        let now = Utc::now();
        let cases = [
            (SortKey::CreatedAt, Value::from(now)),
            (SortKey::Name, Value::from("Zebra \"quoted\"".to_string())),
            (SortKey::Price, Value::from(2999_i64)),
        ];
        for (sort, value) in cases {
            let c = encode(sort, true, &filter, &value, 42, 3);
            let p = decode(&c, sort, true, &filter).expect("decodes");
            assert_eq!(p.id, 42, "{sort:?}");
            assert_eq!(p.page, 3, "{sort:?}");
            assert_eq!(to_json(&p.value), to_json(&value), "{sort:?}");
            assert_eq!(
                decode(&c, sort, false, &filter).err(),
                Some(CursorError::Mismatch)
            );
            assert_eq!(
                decode(&c, sort, true, &Filter::default()).err(),
                Some(CursorError::Mismatch)
            );
        }
        assert_eq!(
            decode("not-a-cursor", SortKey::Name, true, &filter).err(),
            Some(CursorError::Malformed)
        );
    }
}
