//! In-process and cross-instance fan-out of committed product-change
//! notifications to Server-Sent-Event clients.
//!
//! Notifications are persisted elsewhere (the outbox, with a sequence id)
//! before they are published here. This bus is a best-effort, low-latency
//! delivery path on top of that:
//!
//! * [`MemoryBus`]: single process; `publish` sends straight into a
//!   [`tokio::sync::broadcast`] channel.
//! * [`RedisBus`]: every server instance publishes with one Redis `PUBLISH`
//!   per batch and receives every batch (its own included) through a
//!   dedicated pub/sub connection, then fans it out in-process through the
//!   same kind of broadcast channel.
//!
//! # What subscribers must handle
//!
//! [`EventBus::subscribe`] returns a [`broadcast::Receiver`]. A receiver that
//! falls more than `capacity` notifications behind does not slow anyone else
//! down; instead its next `recv()` returns
//! [`broadcast::error::RecvError::Lagged`]. **Callers must handle `Lagged`**
//! by resynchronising from the database (the outbox), then keep receiving.
//!
//! Redis pub/sub does not buffer for a disconnected subscriber, so
//! notifications published while an instance's subscription was down are
//! lost for that instance. [`RedisBus::subscription_epoch`] (also on
//! [`AnyBus`]) changes every time the subscription is (re)established;
//! treat a change exactly like `Lagged`.
//!
//! Ordering: notifications of one batch are delivered in batch order, and
//! batches published one after another (each `publish` awaited before the
//! next) by one caller are delivered in that order on every instance.
//! Concurrent `publish` calls have no defined relative order.

mod error;
mod memory;
mod notification;
mod redis_bus;
mod redis_subscriber;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

pub use error::BusError;
pub use memory::MemoryBus;
pub use notification::Notification;
pub use redis_bus::{RedisBus, RedisBusConfig};

/// Default capacity of the in-process broadcast channel.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A publish/subscribe bus for [`Notification`]s.
///
/// Not object-safe (`publish` returns `impl Future`); use [`AnyBus`] where the
/// implementation is chosen at run time.
pub trait EventBus: Send + Sync {
    /// Publishes a batch. Delivery is in batch order. An empty batch is a
    /// no-op. Having no subscribers is not an error.
    fn publish(
        &self,
        batch: Vec<Notification>,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// A new receiver that sees every notification published after this call.
    /// See the module docs: callers must handle `RecvError::Lagged`.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>>;
}

/// Run-time choice of bus implementation.
#[derive(Clone, Debug)]
pub enum AnyBus {
    Memory(MemoryBus),
    Redis(RedisBus),
}

impl AnyBus {
    /// See [`EventBus::publish`].
    pub async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        match self {
            AnyBus::Memory(bus) => bus.publish(batch).await,
            AnyBus::Redis(bus) => bus.publish(batch).await,
        }
    }

    /// See [`EventBus::subscribe`].
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        match self {
            AnyBus::Memory(bus) => bus.subscribe(),
            AnyBus::Redis(bus) => bus.subscribe(),
        }
    }

    /// For health checks: always `true` for the memory bus.
    pub fn is_connected(&self) -> bool {
        match self {
            AnyBus::Memory(_) => true,
            AnyBus::Redis(bus) => bus.is_connected(),
        }
    }

    /// Changes whenever notifications may have been missed because the
    /// cross-instance subscription was re-established (never changes for the
    /// memory bus). See the module docs.
    pub fn subscription_epoch(&self) -> watch::Receiver<u64> {
        match self {
            AnyBus::Memory(bus) => bus.subscription_epoch(),
            AnyBus::Redis(bus) => bus.subscription_epoch(),
        }
    }
}

impl EventBus for AnyBus {
    async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        AnyBus::publish(self, batch).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        AnyBus::subscribe(self)
    }
}

/// Creates the broadcast channel, rejecting capacities that would make
/// `tokio::sync::broadcast::channel` panic.
fn broadcast_channel(capacity: usize) -> Result<broadcast::Sender<Arc<Notification>>, BusError> {
    if capacity == 0 || capacity > usize::MAX / 2 {
        return Err(BusError::InvalidConfig(format!(
            "broadcast capacity must be between 1 and {}, got {capacity}",
            usize::MAX / 2
        )));
    }
    let (tx, _rx) = broadcast::channel(capacity);
    Ok(tx)
}
