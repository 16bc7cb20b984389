//! Domain events of product changes, in the JSON contract the existing Kafka consumers read:
//! `{eventId, eventType, timestamp (epoch ms), data: {productId, sellerId, …}}`.
//!
//! `LowStockWarning` fires only on the transition into low stock: created below the threshold,
//! or moved from at-or-above to below it. It never repeats while the product stays low.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::{
    domain::Money,
    entity::{import::Model as Import, product::Model as Product},
    repository::outbox::NewRow,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    LowStockWarning,
    /// An import's counters, at most once a second while it runs. Live only: not on Kafka.
    ImportProgress,
    /// An import ended (completed, failed or cancelled). Live only: not on Kafka.
    ImportCompleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductCreated => "ProductCreated",
            Self::ProductUpdated => "ProductUpdated",
            Self::ProductDeleted => "ProductDeleted",
            Self::LowStockWarning => "LowStockWarning",
            Self::ImportProgress => "ImportProgress",
            Self::ImportCompleted => "ImportCompleted",
        }
    }

    /// Whether the event describes a product change, the kind published to Kafka.
    pub fn is_product_change(self) -> bool {
        !matches!(self, Self::ImportProgress | Self::ImportCompleted)
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ProductCreated,
            Self::ProductUpdated,
            Self::ProductDeleted,
            Self::LowStockWarning,
            Self::ImportProgress,
            Self::ImportCompleted,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn price(cents: i64) -> Value {
    json!(Money::from_cents(cents).units())
}

/// The `ProductData` of the contract, plus the fields this service adds; serialized straight
/// from the row, as bulk imports write one per product.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductData<'a> {
    product_id: i64,
    seller_id: &'a str,
    sku: Option<&'a str>,
    name: &'a str,
    description: Option<&'a str>,
    price: f64,
    quantity: i64,
    category: &'a str,
    low_stock_threshold: Option<i32>,
    created_at: String,
    updated_at: String,
    /// `ProductUpdated`: `{field: {old, new}}` of what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Map<String, Value>>,
    /// `ProductUpdated` by an adjustment: its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn product_data(p: &Product) -> ProductData<'_> {
    ProductData {
        product_id: p.id,
        seller_id: &p.seller_id,
        sku: p.sku.as_deref(),
        name: &p.name,
        description: p.description.as_deref(),
        price: Money::from_cents(p.price_cents).units(),
        quantity: p.quantity,
        category: &p.category,
        low_stock_threshold: p.low_stock_threshold,
        created_at: time(p.created_at),
        updated_at: time(p.updated_at),
        changes: None,
        reason: None,
    }
}

/// The Kafka record value: `{eventId, eventType, timestamp, data}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, D> {
    event_id: String,
    event_type: &'a str,
    timestamp: i64,
    data: D,
}

/// The outbox row of an import event (`ImportProgress` or `ImportCompleted`): the import's
/// status and counters. Its `product_id` is 0: it concerns no single product.
pub fn import_event(kind: EventType, import: &Import, at: DateTime<Utc>) -> NewRow {
    let millis = at.timestamp_millis();
    let payload = json!({
        "eventId": format!("{}-{}-{}-{millis}", import.seller_id, import.id, kind.as_str()),
        "eventType": kind.as_str(),
        "timestamp": millis,
        "data": {
            "importId": import.id,
            "sellerId": import.seller_id,
            "status": import.status,
            "dryRun": import.dry_run,
            "totalRows": import.total_rows,
            "processed": import.processed,
            "created": import.created,
            "updated": import.updated,
            "unchanged": import.unchanged,
            "failed": import.failed,
            "failure": import.failure,
        },
    });
    NewRow {
        seller_id: import.seller_id.clone(),
        event_type: kind.as_str(),
        product_id: 0,
        payload: payload.to_string(),
        created_at: at,
    }
}

/// Builds outbox rows for one product change.
pub struct Events {
    default_threshold: i64,
    rows: Vec<NewRow>,
}

impl Events {
    pub fn new(default_threshold: i32) -> Self {
        Self {
            default_threshold: i64::from(default_threshold),
            rows: Vec::new(),
        }
    }

    pub fn into_rows(self) -> Vec<NewRow> {
        self.rows
    }

    fn push(&mut self, kind: EventType, p: &Product, at: DateTime<Utc>, data: impl Serialize) {
        let millis = at.timestamp_millis();
        let envelope = Envelope {
            event_id: format!("{}-{}-{}-{millis}", p.seller_id, p.id, kind.as_str()),
            event_type: kind.as_str(),
            timestamp: millis,
            data,
        };
        self.rows.push(NewRow {
            seller_id: p.seller_id.clone(),
            event_type: kind.as_str(),
            product_id: p.id,
            // Plain data serializes without fail; `null` would only hide a bug.
            payload: serde_json::to_string(&envelope).unwrap_or_else(|_| "null".to_string()),
            created_at: at,
        });
    }

    fn threshold(&self, p: &Product) -> i64 {
        p.low_stock_threshold
            .map_or(self.default_threshold, i64::from)
    }

    fn low_stock_if_crossed(&mut self, before: Option<&Product>, after: &Product) {
        let threshold = self.threshold(after);
        let was_low = before.is_some_and(|b| b.quantity < self.threshold(b));
        if after.quantity >= threshold || was_low {
            return;
        }
        let mut data = Map::new();
        data.insert("productId".into(), json!(after.id));
        data.insert("sellerId".into(), json!(after.seller_id));
        data.insert("name".into(), json!(after.name));
        data.insert("quantity".into(), json!(after.quantity));
        data.insert("threshold".into(), json!(threshold));
        data.insert("category".into(), json!(after.category));
        data.insert("price".into(), price(after.price_cents));
        if let Some(b) = before {
            data.insert("previousQuantity".into(), json!(b.quantity));
        }
        self.push(EventType::LowStockWarning, after, after.updated_at, data);
    }

    pub fn created(mut self, p: &Product) -> Self {
        self.push(EventType::ProductCreated, p, p.created_at, product_data(p));
        self.low_stock_if_crossed(None, p);
        self
    }

    /// A change from `before` to `after`; `reason` is an adjustment's.
    pub fn updated(mut self, before: &Product, after: &Product, reason: Option<&str>) -> Self {
        let mut changes = Map::new();
        let mut diff = |field: &str, old: Value, new: Value| {
            if old != new {
                changes.insert(field.to_string(), json!({ "old": old, "new": new }));
            }
        };
        diff("name", json!(before.name), json!(after.name));
        diff(
            "description",
            json!(before.description),
            json!(after.description),
        );
        diff("price", price(before.price_cents), price(after.price_cents));
        diff("quantity", json!(before.quantity), json!(after.quantity));
        diff("category", json!(before.category), json!(after.category));
        diff("sku", json!(before.sku), json!(after.sku));
        diff(
            "lowStockThreshold",
            json!(before.low_stock_threshold),
            json!(after.low_stock_threshold),
        );
        let data = ProductData {
            changes: Some(changes),
            reason,
            ..product_data(after)
        };
        self.push(EventType::ProductUpdated, after, after.updated_at, data);
        self.low_stock_if_crossed(Some(before), after);
        self
    }

    pub fn deleted(mut self, p: &Product) -> Self {
        let at = p.deleted_at.unwrap_or(p.updated_at);
        let data = json!({
            "productId": p.id,
            "sellerId": p.seller_id,
            "name": p.name,
            "category": p.category,
            "deletedAt": time(at),
        });
        if let Value::Object(map) = data {
            self.push(EventType::ProductDeleted, p, at, map);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(quantity: i64, threshold: Option<i32>) -> Product {
        let now = Utc::now();
        Product {
            id: 7,
            seller_id: "seller-1".into(),
            sku: None,
            name: "Widget".into(),
            description: None,
            price_cents: 999,
            quantity,
            category: "Tools".into(),
            low_stock_threshold: threshold,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }

    fn kinds(events: Events) -> Vec<&'static str> {
        events.into_rows().iter().map(|r| r.event_type).collect()
    }

    #[test]
    fn low_stock_fires_once_per_crossing() {
        let cases = [
            (
                "created low",
                product(3, None),
                vec!["ProductCreated", "LowStockWarning"],
            ),
            (
                "created at threshold",
                product(10, None),
                vec!["ProductCreated"],
            ),
            (
                "own threshold",
                product(4, Some(5)),
                vec!["ProductCreated", "LowStockWarning"],
            ),
        ];
        for (case, p, expected) in cases {
            assert_eq!(kinds(Events::new(10).created(&p)), expected, "{case}");
        }
        let moves = [
            (
                "crosses down",
                10,
                9,
                vec!["ProductUpdated", "LowStockWarning"],
            ),
            ("stays low", 9, 8, vec!["ProductUpdated"]),
            ("stays high", 20, 10, vec!["ProductUpdated"]),
            ("recovers", 5, 50, vec!["ProductUpdated"]),
        ];
        for (case, from, to, expected) in moves {
            let events = Events::new(10).updated(&product(from, None), &product(to, None), None);
            assert_eq!(kinds(events), expected, "{case}");
        }
    }

    #[test]
    fn payload_follows_the_contract() {
        let before = product(20, None);
        let mut after = product(5, None);
        after.price_cents = 1299;
        let rows = Events::new(10)
            .updated(&before, &after, Some("sale"))
            .into_rows();
        let v: Value = serde_json::from_str(&rows[0].payload).expect("json");
        assert_eq!(v["eventType"], "ProductUpdated");
        assert!(v["timestamp"].is_i64());
        let id = v["eventId"].as_str().expect("eventId");
        assert!(id.starts_with("seller-1-7-ProductUpdated-"), "{id}");
        assert_eq!(
            v["data"]["changes"]["quantity"],
            json!({"old": 20, "new": 5})
        );
        assert_eq!(
            v["data"]["changes"]["price"],
            json!({"old": 9.99, "new": 12.99})
        );
        assert_eq!(v["data"]["reason"], "sale");
        let low: Value = serde_json::from_str(&rows[1].payload).expect("json");
        assert_eq!(low["data"]["previousQuantity"], 20);
        assert_eq!(low["data"]["threshold"], 10);
    }
}
