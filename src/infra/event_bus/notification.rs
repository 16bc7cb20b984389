use serde::{Deserialize, Serialize};

/// One committed event, as delivered to SSE clients. On the bus the service
/// sends only doorbells (`id` and `seller_id`) and resync markers: streams read
/// the events themselves from the outbox.
///
/// Wire format between instances: a JSON array of these objects per Redis
/// message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Outbox sequence id, strictly increasing per writer.
    pub id: i64,
    pub seller_id: String,
    pub event_type: String,
    /// JSON text sent to the SSE client as-is.
    pub body: String,
}

impl Notification {
    /// Says only that `seller_id` has events up to `id`: event streams read the events
    /// themselves from the outbox.
    pub fn doorbell(seller_id: String, id: i64) -> Self {
        Self {
            id,
            seller_id,
            event_type: String::new(),
            body: String::new(),
        }
    }

    /// Not an event: tells every stream to read what it may have missed from the outbox
    /// (published after notifications were dropped). Seller ids are never empty.
    pub fn resync() -> Self {
        Self {
            id: 0,
            seller_id: String::new(),
            event_type: String::new(),
            body: String::new(),
        }
    }

    pub fn is_resync(&self) -> bool {
        self.seller_id.is_empty()
    }
}
