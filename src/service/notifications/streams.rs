//! One seller's event streams: each subscribes to the bus, then reads the outbox after the last
//! id it sent whenever a doorbell for its seller (or a resync) arrives, so events go out once
//! each, in id order.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use prometheus::IntGauge;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::{
    broadcast::error::{RecvError, TryRecvError},
    mpsc,
};
use tokio_util::sync::CancellationToken;

use super::{message::notification, Frame, StreamError};
use crate::{
    domain::SellerId,
    infra::event_bus::{AnyBus, Notification},
    repository,
};

/// Rows read per replay query.
const REPLAY_PAGE: u64 = 500;

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
