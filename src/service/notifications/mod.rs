//! Live notifications: committed outbox rows become [`Notification`]s on the event bus, and
//! each SSE connection turns the bus plus the outbox into one ordered stream for one seller.
//!
//! The outbox is what a stream sends; a notification only says that something may be new. A
//! stream subscribes to the bus before it reads the outbox, so nothing committed meanwhile is
//! missed, and on each notification for its seller above the last id it sent it reads the
//! outbox after that id, so events go out once each, in id order, which for one seller is
//! commit order (see `repository::outbox::append`). A stream that falls behind the bus (or
//! whose Redis subscription was re-established, or that gets a resync marker because
//! notifications were dropped) reads the outbox the same way instead of blocking others.
//!
//! Three parts: [`message`] renders an outbox row as the SSE `data` clients read, [`forward`]
//! carries committed rows to the bus as one doorbell per seller, and [`streams`] runs each
//! seller's stream.

mod forward;
mod message;
mod streams;

use std::sync::Arc;

use sea_orm::DbErr;

use crate::infra::event_bus::Notification;

pub use forward::{forwarder, Committed};
pub use message::notification;
pub use streams::Streams;

/// A frame of one seller's stream.
#[derive(Debug, Clone)]
pub enum Frame {
    Connected,
    Event(Arc<Notification>),
    /// The resume point is older than what the outbox keeps: refetch.
    Reset {
        last_event_id: i64,
    },
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("seller already holds {0} event streams")]
    TooManyStreams(usize),
    #[error(transparent)]
    Database(#[from] DbErr),
}
