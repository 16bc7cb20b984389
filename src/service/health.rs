//! Health: liveness, readiness and a report of every dependency.
//!
//! Checks run in parallel, each bounded by a short timeout, so the endpoints answer promptly
//! whatever hangs. Only the database decides readiness; Redis and Kafka outages degrade the
//! service (the rate limiter's failure mode and the outbox cover them) but do not stop it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use sea_orm::ColumnTrait;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use tokio_util::sync::CancellationToken;

use crate::{
    entity::outbox,
    infra::{event_bus::AnyBus, kafka::KafkaPublisher, rate_limit::AnyLimiter},
};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub state: State,
    pub latency: Duration,
    pub detail: Option<String>,
    pub backlog: Option<i64>,
    pub oldest_age_secs: Option<i64>,
}

impl Component {
    fn new(state: State, latency: Duration, detail: Option<String>) -> Self {
        Self {
            state,
            latency,
            detail,
            backlog: None,
            oldest_age_secs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub overall: Overall,
    pub reason: Option<String>,
    pub uptime: Duration,
    pub database: Component,
    pub redis: Component,
    pub kafka: Component,
    pub outbox: Component,
}

#[derive(Clone)]
pub struct Health {
    pub db: DatabaseConnection,
    pub kafka: Option<Arc<KafkaPublisher>>,
    pub bus: Arc<AnyBus>,
    pub limiter: Option<Arc<AnyLimiter>>,
    /// Whether Redis is configured at all.
    pub redis_configured: bool,
    pub started: Instant,
    pub shutdown: CancellationToken,
}

/// Runs `check` within the timeout and times it.
async fn timed<F, T>(check: F) -> (Duration, Option<T>)
where
    F: std::future::Future<Output = T>,
{
    let start = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, check).await.ok();
    (start.elapsed(), result)
}

impl Health {
    async fn database(&self) -> Component {
        match timed(self.db.ping()).await {
            (t, Some(Ok(()))) => Component::new(State::Up, t, None),
            (t, Some(Err(e))) => Component::new(State::Down, t, Some(e.to_string())),
            (t, None) => Component::new(State::Down, t, Some("timed out".into())),
        }
    }

    /// Redis is watched, not polled: the event bus pings its subscription and the limiter
    /// reports whether its last call failed.
    async fn redis(&self) -> Component {
        if !self.redis_configured {
            return Component::new(State::Disabled, Duration::ZERO, None);
        }
        let start = Instant::now();
        let limiter_down = self.limiter.as_ref().is_some_and(|l| l.is_degraded());
        let detail = match (self.bus.is_connected(), limiter_down) {
            (true, false) => None,
            (false, _) => Some("event subscriber disconnected".to_string()),
            (true, true) => Some("rate limiter cannot reach Redis".to_string()),
        };
        let state = if detail.is_none() {
            State::Up
        } else {
            State::Down
        };
        Component::new(state, start.elapsed(), detail)
    }

    async fn kafka(&self) -> Component {
        let Some(kafka) = &self.kafka else {
            return Component::new(State::Disabled, Duration::ZERO, None);
        };
        match timed(kafka.check()).await {
            (t, Some(Ok(()))) => Component::new(State::Up, t, None),
            (t, Some(Err(e))) => Component::new(State::Down, t, Some(e.to_string())),
            (t, None) => Component::new(State::Down, t, Some("timed out".into())),
        }
    }

    async fn outbox(&self) -> Component {
        let pending = || outbox::Entity::find().filter(outbox::Column::PublishedAt.is_null());
        let check = async {
            let backlog = pending().count(&self.db).await?;
            let oldest = pending()
                .order_by_asc(outbox::Column::Id)
                .one(&self.db)
                .await?;
            Ok::<_, sea_orm::DbErr>((backlog, oldest))
        };
        match timed(check).await {
            (t, Some(Ok((backlog, oldest)))) => {
                let mut c = Component::new(State::Up, t, None);
                // Without Kafka nothing is published: the backlog is the whole outbox.
                if self.kafka.is_some() {
                    c.backlog = Some(i64::try_from(backlog).unwrap_or(i64::MAX));
                    c.oldest_age_secs = oldest.map(|o| (Utc::now() - o.created_at).num_seconds());
                }
                c
            }
            (t, Some(Err(e))) => Component::new(State::Down, t, Some(e.to_string())),
            (t, None) => Component::new(State::Down, t, Some("timed out".into())),
        }
    }

    pub async fn report(&self) -> Report {
        let (database, redis, kafka, outbox) =
            tokio::join!(self.database(), self.redis(), self.kafka(), self.outbox());
        let (overall, reason) = if self.shutdown.is_cancelled() {
            (Overall::Unavailable, Some("shutting down".to_string()))
        } else if database.state != State::Up {
            let why = database.detail.clone().unwrap_or_default();
            (
                Overall::Unavailable,
                Some(format!("database unavailable: {why}")),
            )
        } else if redis.state == State::Down || kafka.state == State::Down {
            (Overall::Degraded, None)
        } else {
            (Overall::Ok, None)
        };
        Report {
            overall,
            reason,
            uptime: self.started.elapsed(),
            database,
            redis,
            kafka,
            outbox,
        }
    }
}
