use serde::{Deserialize, Serialize};

/// One committed product change, as delivered to SSE clients.
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
