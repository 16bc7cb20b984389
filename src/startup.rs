//! Builds the application: database, migrations, state, listener (port 0 works), background
//! tasks; and runs it until a shutdown signal.

use std::{future::Future, time::Duration};

use migration::{Migrator, MigratorTrait};
use poem::{
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    Server,
};
use sea_orm::{DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;

use crate::{api, config::Config, connection_limit::Limited, repository, state::AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error(transparent)]
    Wiring(#[from] crate::state::WiringError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

pub struct Application {
    acceptor: Limited<TcpAcceptor>,
    port: u16,
    state: AppState,
}

/// Applies pending migrations; what `product-api migrate` runs.
pub async fn migrate(config: &Config) -> Result<(), DbErr> {
    let db = crate::state::connect(config).await?;
    apply_migrations(&db).await
}

/// Applies pending migrations, one instance at a time: instances started together on a new
/// database would otherwise create the same tables at once, and all but one fail.
async fn apply_migrations(db: &DatabaseConnection) -> Result<(), DbErr> {
    repository::locks::exclusively(
        db,
        repository::locks::MIGRATION_LOCK,
        Migrator::up(db, None),
    )
    .await
}

/// Asks the local server for `/health/ready` with a bare HTTP/1.1 request, so the image needs
/// no curl; what `product-api healthcheck` runs.
pub async fn healthcheck(port: u16) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(
                b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .await?;
        let mut head = vec![0; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .map_err(|_| "no answer within 3 s".to_string())?
        .map_err(|e| e.to_string())?;
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        other => Err(format!("status {}", other.unwrap_or("unknown"))),
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let db = crate::state::connect(&config).await?;
        if config.run_migrations {
            apply_migrations(&db).await?;
        }
        let addr = format!("{}:{}", config.host, config.port);
        let acceptor = TcpListener::bind(addr.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|a| a.port()))
            .unwrap_or_default();
        Ok(Self {
            acceptor: Limited::new(
                acceptor,
                config.max_connections,
                Duration::from_secs(config.idle_timeout_secs),
            ),
            port,
            state: AppState::new(config, db)?,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A token that stops the server and its background tasks when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until `signal` completes or the shutdown token is cancelled, then lets
    /// in-flight requests finish within `SHUTDOWN_TIMEOUT_SECS`.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let token = self.state.shutdown.clone();
        let pruner = tokio::spawn(prune(self.state.clone(), token.clone()));
        let importer = tokio::spawn(self.state.imports.worker().run(token.clone()));
        if let Some(verifier) = self.state.verifier.clone() {
            // The first requests need not wait for the key set; a failure here is retried
            // when a token needs the keys.
            tokio::spawn(async move {
                if let Err(e) = verifier.warm_up().await {
                    tracing::warn!(error = %e, "cannot fetch the identity provider's keys yet");
                }
            });
        }
        let relay = self
            .state
            .relay()
            .map(|relay| tokio::spawn(relay.run(token.clone())));
        let timeout = self.state.config.shutdown_timeout();
        let app = api::app(self.state.clone());
        let delay = Duration::from_secs(self.state.config.shutdown_delay_secs);
        let stop = async move {
            tokio::select! {
                () = signal => {}
                () = token.cancelled() => {}
            }
            // Readiness turns 503 and streams say goodbye now; new connections are still
            // accepted for `delay`, while load balancers notice, then in-flight requests finish.
            token.cancel();
            tracing::info!(delay = ?delay, "shutting down");
            tokio::time::sleep(delay).await;
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .idle_timeout(Duration::from_secs(self.state.config.idle_timeout_secs))
            .run_with_graceful_shutdown(app, stop, Some(timeout))
            .await;
        self.state.shutdown.cancel();
        let _ = pruner.await;
        // An import stops after its current batch and resumes at the next start.
        let _ = importer.await;
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        let _ = self.state.db.close().await;
        served
    }
}

/// Hourly: forgets idempotency keys past their time to live and outbox events past retention
/// (only published ones while Kafka is configured; all of them without Kafka).
async fn prune(state: AppState, shutdown: CancellationToken) {
    let ttl = state.config.idempotency_ttl();
    let retention = state.config.outbox_retention();
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let cutoff = chrono::Utc::now() - ttl;
        match repository::idempotency::prune_before(&state.db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "expired idempotency keys removed"),
            Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
        }
        let cutoff = chrono::Utc::now() - retention;
        let published_only = state.kafka.is_some();
        match repository::outbox::prune(&state.db, cutoff, published_only).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "outbox events past retention removed"),
            Err(e) => tracing::warn!(error = %e, "pruning the outbox failed"),
        }
    }
}
