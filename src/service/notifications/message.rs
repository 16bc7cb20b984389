//! The SSE `data` of an outbox row, in the notification shape existing clients read:
//! `{id, type, message, data, timestamp}`, with a sentence for people.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    entity::outbox::Model as OutboxRow, infra::event_bus::Notification, service::events::EventType,
};

/// The parts of an event's data its sentence names; what a type lacks stays empty.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Named {
    name: Option<String>,
    quantity: Option<i64>,
    import_id: Option<String>,
    status: Option<String>,
    processed: Option<i64>,
    total_rows: Option<i64>,
    created: Option<i64>,
    updated: Option<i64>,
    unchanged: Option<i64>,
    failed: Option<i64>,
}

fn sentence(event_type: Option<EventType>, data: &Named) -> String {
    let name = data.name.as_deref().unwrap_or("product");
    let n = |v: Option<i64>| v.unwrap_or_default();
    let import = data.import_id.as_deref().unwrap_or_default();
    match event_type {
        Some(EventType::ProductCreated) => format!("New product: {name}"),
        Some(EventType::ProductDeleted) => format!("Product deleted: {name}"),
        Some(EventType::LowStockWarning) => {
            format!("Low stock: {name} ({} left)", n(data.quantity))
        }
        Some(EventType::ImportProgress) => format!(
            "Import {import}: {} of {} rows processed",
            n(data.processed),
            n(data.total_rows)
        ),
        Some(EventType::ImportCompleted) => format!(
            "Import {import} {}: {} created, {} updated, {} unchanged, {} failed",
            data.status.as_deref().unwrap_or_default(),
            n(data.created),
            n(data.updated),
            n(data.unchanged),
            n(data.failed)
        ),
        Some(EventType::ProductUpdated) | None => format!("Product updated: {name}"),
    }
}

/// An outbox payload, its `data` kept as written.
#[derive(Deserialize)]
struct Stored<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    timestamp: Option<i64>,
}

/// The SSE `data` of an event.
#[derive(Serialize)]
struct Body<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'a str,
    message: String,
    data: &'a RawValue,
    timestamp: Option<i64>,
}

/// The SSE `data` of an outbox row: `{id, type, message, data, timestamp}`. The event's data
/// is copied as it is stored, not re-encoded: bulk imports send one per product.
pub fn notification(row: &OutboxRow) -> Notification {
    let null = RawValue::NULL;
    let stored = serde_json::from_str::<Stored>(&row.payload).ok();
    let data = stored.as_ref().map_or(null, |s| s.data);
    let named = serde_json::from_str::<Named>(data.get()).unwrap_or_default();
    let body = Body {
        id: row.id.to_string(),
        kind: &row.event_type,
        message: sentence(EventType::parse(&row.event_type), &named),
        data,
        timestamp: stored.and_then(|s| s.timestamp),
    };
    Notification {
        id: row.id,
        seller_id: row.seller_id.clone(),
        event_type: row.event_type.clone(),
        body: serde_json::to_string(&body).unwrap_or_else(|_| "null".to_string()),
    }
}
