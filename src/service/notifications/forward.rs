//! Committed outbox rows on their way to the bus: one task keeps their order and sends, per
//! batch of waiting commits, one doorbell per seller (its newest id), and a resync marker after
//! rows were dropped or a publish failed.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{
    entity::outbox::Model as OutboxRow,
    infra::event_bus::{AnyBus, Notification},
};

/// Commits (batches of rows) the forwarder's queue holds before rows are dropped.
const LIVE_QUEUE: usize = 1024;

/// Commits one bus message carries at most.
const MAX_FORWARD: usize = 256;

/// How often the forwarder looks for a resync it owes while no commit arrives.
const RESYNC_CHECK: Duration = Duration::from_secs(1);

/// Committed rows on their way to the bus.
#[derive(Clone)]
pub struct Committed {
    queue: mpsc::Sender<Vec<OutboxRow>>,
    /// Rows were dropped (the queue was full): the forwarder owes every stream a resync.
    dropped: Arc<AtomicBool>,
}

impl Committed {
    /// Hands committed rows to the forwarder without waiting: a write never waits for
    /// live subscribers. Rows that find the queue full are dropped and every stream is told
    /// to read the outbox instead.
    pub fn send(&self, rows: Vec<OutboxRow>) {
        if self.queue.try_send(rows).is_err() {
            self.dropped.store(true, Ordering::Release);
            tracing::warn!("live notification queue full; streams will resync from the outbox");
        }
    }
}

/// Starts the task that publishes committed rows to the bus, in the order they were handed
/// over, until every [`Committed`] is dropped.
pub fn forwarder(bus: Arc<AnyBus>) -> Committed {
    let (queue, committed) = mpsc::channel(LIVE_QUEUE);
    let dropped = Arc::new(AtomicBool::new(false));
    tokio::spawn(forward(bus, committed, Arc::clone(&dropped)));
    Committed { queue, dropped }
}

/// Publishes whatever commits are waiting as one bus message: a doorbell per seller. After
/// rows were dropped or a
/// publish failed, the next message carries a resync marker (sent on its own within
/// `RESYNC_CHECK` if no commit comes), so no stream waits for its seller's next write to
/// notice what it missed.
async fn forward(
    bus: Arc<AnyBus>,
    mut committed: mpsc::Receiver<Vec<OutboxRow>>,
    dropped: Arc<AtomicBool>,
) {
    let mut waiting = Vec::with_capacity(MAX_FORWARD);
    let mut owed = false;
    loop {
        let wait = committed.recv_many(&mut waiting, MAX_FORWARD);
        if let Ok(0) = tokio::time::timeout(RESYNC_CHECK, wait).await {
            return;
        }
        let resync = dropped.swap(false, Ordering::AcqRel) || owed;
        if waiting.is_empty() && !resync {
            continue;
        }
        // Streams read the events themselves from the outbox: the bus only needs each
        // seller's newest id (a bulk import's batch of a thousand rows is one doorbell).
        let mut newest: HashMap<String, i64> = HashMap::new();
        for row in waiting.drain(..).flatten() {
            let id = newest.entry(row.seller_id).or_insert(row.id);
            *id = (*id).max(row.id);
        }
        let mut batch: Vec<Notification> = newest
            .into_iter()
            .map(|(seller_id, id)| Notification::doorbell(seller_id, id))
            .collect();
        if resync {
            batch.push(Notification::resync());
        }
        owed = match bus.publish(batch).await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "live notifications not delivered to the bus");
                true
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tokio::sync::broadcast;

    use super::*;
    use crate::infra::event_bus::MemoryBus;

    fn row(id: i64, seller: &str) -> OutboxRow {
        OutboxRow {
            id,
            seller_id: seller.to_string(),
            event_type: "ProductCreated".to_string(),
            product_id: 1,
            payload: "{}".to_string(),
            created_at: Utc::now(),
            published_at: None,
        }
    }

    async fn next(live: &mut broadcast::Receiver<Arc<Notification>>) -> Arc<Notification> {
        tokio::time::timeout(RESYNC_CHECK * 3, live.recv())
            .await
            .expect("a notification in time")
            .expect("the bus is open")
    }

    #[tokio::test]
    async fn the_bus_gets_one_doorbell_per_seller_with_its_newest_id() {
        let bus = Arc::new(AnyBus::Memory(MemoryBus::new(64).expect("bus")));
        let mut live = bus.subscribe();
        let committed = forwarder(bus);
        committed.send(vec![
            row(5, "seller-a"),
            row(6, "seller-b"),
            row(7, "seller-a"),
        ]);

        let mut got = [next(&mut live).await, next(&mut live).await];
        got.sort_by_key(|n| n.id);
        assert_eq!(*got[0], Notification::doorbell("seller-b".to_string(), 6));
        assert_eq!(*got[1], Notification::doorbell("seller-a".to_string(), 7));
        assert!(live.try_recv().is_err(), "nothing more");
    }

    #[tokio::test]
    async fn dropped_rows_make_the_forwarder_send_a_resync_marker_unprompted() {
        let bus = Arc::new(AnyBus::Memory(MemoryBus::new(64).expect("bus")));
        let mut live = bus.subscribe();
        let committed = forwarder(bus);
        // As `send` does when the queue is full; no commit follows to carry the marker.
        committed.dropped.store(true, Ordering::Release);

        assert!(next(&mut live).await.is_resync());
        assert!(!committed.dropped.load(Ordering::Acquire));
    }
}
