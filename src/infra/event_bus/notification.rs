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
