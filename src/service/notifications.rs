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

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Duration,
};

use prometheus::IntGauge;
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{
    broadcast::error::{RecvError, TryRecvError},
    mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::SellerId,
    entity::outbox::Model as OutboxRow,
    infra::event_bus::{AnyBus, Notification},
    repository,
};

/// Rows read per replay query.
const REPLAY_PAGE: u64 = 500;

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

fn sentence(event_type: &str, data: &Named) -> String {
    let name = data.name.as_deref().unwrap_or("product");
    let n = |v: Option<i64>| v.unwrap_or_default();
    let import = data.import_id.as_deref().unwrap_or_default();
    match event_type {
        "ProductCreated" => format!("New product: {name}"),
        "ProductDeleted" => format!("Product deleted: {name}"),
        "LowStockWarning" => format!("Low stock: {name} ({} left)", n(data.quantity)),
        "ImportProgress" => format!(
            "Import {import}: {} of {} rows processed",
            n(data.processed),
            n(data.total_rows)
        ),
        "ImportCompleted" => format!(
            "Import {import} {}: {} created, {} updated, {} unchanged, {} failed",
            data.status.as_deref().unwrap_or_default(),
            n(data.created),
            n(data.updated),
            n(data.unchanged),
            n(data.failed)
        ),
        _ => format!("Product updated: {name}"),
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
        message: sentence(&row.event_type, &named),
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

/// Opens streams and keeps count of them per seller.
#[derive(Clone)]
pub struct Streams {
    db: DatabaseConnection,
    bus: Arc<AnyBus>,
    max_per_seller: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
    shutdown: CancellationToken,
    gauge: IntGauge,
}

/// Releases a seller's stream slot when the stream ends, however it ends.
struct Slot {
    seller: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
    gauge: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.seller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.seller);
            }
        }
    }
}

impl Streams {
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<AnyBus>,
        max_per_seller: usize,
        shutdown: CancellationToken,
        gauge: IntGauge,
    ) -> Self {
        Self {
            db,
            bus,
            max_per_seller,
            open: Arc::new(Mutex::new(HashMap::new())),
            shutdown,
            gauge,
        }
    }

    fn claim(&self, seller: &SellerId) -> Result<Slot, StreamError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(seller.as_str().to_string()).or_insert(0);
        if *n >= self.max_per_seller {
            return Err(StreamError::TooManyStreams(self.max_per_seller));
        }
        *n += 1;
        self.gauge.inc();
        Ok(Slot {
            seller: seller.as_str().to_string(),
            open: self.open.clone(),
            gauge: self.gauge.clone(),
        })
    }

    /// A stream of `seller`'s frames, resuming after `last_event_id` when given, keeping only
    /// `types` when given. It ends when the client goes away or the server shuts down.
    pub fn open(
        &self,
        seller: SellerId,
        last_event_id: Option<i64>,
        types: Option<HashSet<String>>,
    ) -> Result<mpsc::Receiver<Frame>, StreamError> {
        let slot = self.claim(&seller)?;
        // Subscribe before reading the outbox: what commits meanwhile waits in the receiver.
        let live = self.bus.subscribe();
        let epoch = self.bus.subscription_epoch();
        let (tx, rx) = mpsc::channel(256);
        let task = StreamTask {
            db: self.db.clone(),
            seller,
            types,
            tx,
            last: last_event_id.unwrap_or(0),
        };
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = task.run(last_event_id, live, epoch, shutdown).await {
                tracing::warn!(error = %e, "event stream ended early");
            }
        });
        Ok(rx)
    }
}

struct StreamTask {
    db: DatabaseConnection,
    seller: SellerId,
    types: Option<HashSet<String>>,
    tx: mpsc::Sender<Frame>,
    /// The last event id sent (or the client's resume point).
    last: i64,
}

/// The client went away: stop quietly.
struct Gone;

impl StreamTask {
    async fn send(&mut self, frame: Frame) -> Result<(), Gone> {
        self.tx.send(frame).await.map_err(|_| Gone)
    }

    fn wanted(&self, n: &Notification) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.contains(&n.event_type))
    }

    /// Whether `n` may announce an event this stream has not sent.
    fn rings(&self, n: &Notification) -> bool {
        n.is_resync() || (n.seller_id == self.seller.as_str() && n.id > self.last)
    }

    /// A notification is a doorbell: the events are read from the outbox, in id order.
    /// Writers announce after their own commits, so two announcements can arrive in either
    /// order; sending them as they come could send a seller's event N+1 first, and N would
    /// then never be sent. The outbox has both (a seller's ids follow its commit order).
    async fn ring(
        &mut self,
        live: &mut tokio::sync::broadcast::Receiver<Arc<Notification>>,
    ) -> Result<Result<(), Gone>, DbErr> {
        // Whatever else is already waiting is covered by the same read.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = live.try_recv() {}
        self.replay().await
    }

    /// Sends the seller's stored events after the last one sent.
    async fn replay(&mut self) -> Result<Result<(), Gone>, DbErr> {
        loop {
            let rows =
                repository::outbox::after(&self.db, &self.seller, self.last, REPLAY_PAGE).await?;
            let done = (rows.len() as u64) < REPLAY_PAGE;
            for row in rows {
                let n = Arc::new(notification(&row));
                // Filtered-out types still move the resume point on.
                let wanted = self.wanted(&n);
                self.last = row.id;
                if wanted && self.send(Frame::Event(n)).await.is_err() {
                    return Ok(Err(Gone));
                }
            }
            if done {
                return Ok(Ok(()));
            }
        }
    }

    /// Sends what followed `after`, with a reset frame first if some of it was pruned.
    async fn resume(&mut self, after: i64) -> Result<Result<(), Gone>, DbErr> {
        let first = repository::outbox::first_id(&self.db).await?;
        if first.is_some_and(|first| after + 1 < first) {
            let frame = Frame::Reset {
                last_event_id: after,
            };
            if self.send(frame).await.is_err() {
                return Ok(Err(Gone));
            }
        }
        self.replay().await
    }

    async fn run(
        mut self,
        resume: Option<i64>,
        mut live: tokio::sync::broadcast::Receiver<Arc<Notification>>,
        mut epoch: tokio::sync::watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) -> Result<(), DbErr> {
        if resume.is_none() {
            // Live from now on: the seller's events so far are not this stream's. Read before
            // `connected` goes out, so a write the client makes after seeing it is.
            let head = repository::outbox::last_of(&self.db, &self.seller).await?;
            self.last = head.unwrap_or(0);
        }
        if self.send(Frame::Connected).await.is_err() {
            return Ok(());
        }
        if let Some(after) = resume {
            if self.resume(after).await?.is_err() {
                return Ok(());
            }
        }
        let mut epoch_alive = true;
        loop {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => {
                    let _ = self.send(Frame::Shutdown).await;
                    return Ok(());
                }
                () = self.tx.closed() => return Ok(()),
                changed = epoch.changed(), if epoch_alive => match changed {
                    Ok(()) => self.replay().await?,
                    Err(_) => {
                        epoch_alive = false;
                        Ok(())
                    }
                },
                received = live.recv() => match received {
                    Ok(n) if self.rings(&n) => self.ring(&mut live).await?,
                    Ok(_) => Ok(()),
                    Err(RecvError::Lagged(_)) => self.replay().await?,
                    Err(RecvError::Closed) => return Ok(()),
                },
            };
            if outcome.is_err() {
                return Ok(());
            }
        }
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
