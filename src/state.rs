//! The one place concrete adapters are chosen and wired: which database, which services.

use std::sync::Arc;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::{config::Config, service::products::ProductService};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub products: ProductService,
}

/// Opens the configured database: a PostgreSQL pool, or the embedded SQLite file (created
/// with its directory on first start) behind a single connection.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            DbErr::Custom(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
    }
    let mut options = ConnectOptions::new(config.database_url());
    let max = if config.is_sqlite() {
        1
    } else {
        config.database_max_connections
    };
    options
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await
}

impl AppState {
    pub fn new(config: Config, db: DatabaseConnection) -> Self {
        let products = ProductService::new(db.clone(), config.idempotency_ttl());
        Self {
            config: Arc::new(config),
            db,
            products,
        }
    }
}
