use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::{broadcast_channel, BusError, EventBus, Notification};

/// Single-process bus: `publish` sends straight into a broadcast channel.
#[derive(Clone, Debug)]
pub struct MemoryBus {
    tx: broadcast::Sender<Arc<Notification>>,
    // Kept alive so `subscription_epoch()` receivers never see a closed
    // channel; the value never changes.
    epoch: Arc<watch::Sender<u64>>,
}

impl MemoryBus {
    /// `capacity`: per-receiver backlog before a receiver observes `Lagged`
    /// (e.g. [`super::DEFAULT_CAPACITY`]). Must be at least 1.
    pub fn new(capacity: usize) -> Result<Self, BusError> {
        let (epoch, _rx) = watch::channel(0);
        Ok(Self {
            tx: broadcast_channel(capacity)?,
            epoch: Arc::new(epoch),
        })
    }

    /// Synchronous publish; never fails.
    pub fn send(&self, batch: Vec<Notification>) {
        for notification in batch {
            // Err only means "no receivers right now", which is fine.
            let _ = self.tx.send(Arc::new(notification));
        }
    }

    pub async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        self.send(batch);
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.tx.subscribe()
    }

    /// Never changes (nothing can be missed in-process except through
    /// `Lagged`).
    pub fn subscription_epoch(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }
}

impl EventBus for MemoryBus {
    async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        MemoryBus::publish(self, batch).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        MemoryBus::subscribe(self)
    }
}
