//! Schema migrations, applied by `product-api migrate` or at server start.
//!
//! Each migration is one file; `Migrator` lists them in order. They run on PostgreSQL and on
//! SQLite, so SQL that differs between the two is chosen by backend inside the migration.

pub use sea_orm_migration::prelude::*;

/// The `MigrationTrait` of a PostgreSQL-only migration: its module's `UP` and `DOWN`
/// statement lists, run by [`on_postgres`].
macro_rules! postgres_only {
    () => {
        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::on_postgres(manager, UP).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                crate::on_postgres(manager, DOWN).await
            }
        }
    };
}

mod m20261125_000001_create_products;
mod m20261125_000002_create_idempotency_keys;
mod m20261125_000003_create_outbox;
mod m20261125_000004_create_imports;
mod m20261126_000005_order_outbox_ids_per_seller;
mod m20261201_000006_count_live_products_per_seller;
mod m20261201_000007_outbox_ids_drawn_by_batch_writers;
mod m20261201_000008_keep_import_files_in_the_database;

/// Runs `statements` in order on PostgreSQL; nothing on SQLite, which needs none of them.
pub(crate) async fn on_postgres(
    manager: &SchemaManager<'_>,
    statements: &[&str],
) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_products::Migration),
            Box::new(m20261125_000002_create_idempotency_keys::Migration),
            Box::new(m20261125_000003_create_outbox::Migration),
            Box::new(m20261125_000004_create_imports::Migration),
            Box::new(m20261126_000005_order_outbox_ids_per_seller::Migration),
            Box::new(m20261201_000006_count_live_products_per_seller::Migration),
            Box::new(m20261201_000007_outbox_ids_drawn_by_batch_writers::Migration),
            Box::new(m20261201_000008_keep_import_files_in_the_database::Migration),
        ]
    }
}
