use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum Products {
    Table,
    Id,
    SellerId,
    Sku,
    Name,
    Description,
    PriceCents,
    Quantity,
    Category,
    LowStockThreshold,
    Version,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

/// Partial indexes over live rows: one per sort the list endpoint offers, each ending in `id`
/// so keyset pagination walks the index; and the sku rule "unique per seller among live
/// products", which a soft delete releases.
const INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX products_seller_sku_live ON products (seller_id, sku) WHERE deleted_at IS NULL AND sku IS NOT NULL",
    "CREATE INDEX products_seller_created_live ON products (seller_id, created_at, id) WHERE deleted_at IS NULL",
    "CREATE INDEX products_seller_updated_live ON products (seller_id, updated_at, id) WHERE deleted_at IS NULL",
    "CREATE INDEX products_seller_name_live ON products (seller_id, name, id) WHERE deleted_at IS NULL",
    "CREATE INDEX products_seller_price_live ON products (seller_id, price_cents, id) WHERE deleted_at IS NULL",
    "CREATE INDEX products_seller_quantity_live ON products (seller_id, quantity, id) WHERE deleted_at IS NULL",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(
                        ColumnDef::new(Products::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Products::SellerId).string_len(50).not_null())
                    .col(ColumnDef::new(Products::Sku).string_len(64).null())
                    .col(ColumnDef::new(Products::Name).string_len(255).not_null())
                    .col(ColumnDef::new(Products::Description).text().null())
                    // Exact money: integer cents, never a float.
                    .col(
                        ColumnDef::new(Products::PriceCents)
                            .big_integer()
                            .not_null(),
                    )
                    // BIGINT so `quantity + delta` cannot overflow before the range check.
                    .col(ColumnDef::new(Products::Quantity).big_integer().not_null())
                    .col(
                        ColumnDef::new(Products::Category)
                            .string_len(100)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Products::LowStockThreshold).integer().null())
                    .col(ColumnDef::new(Products::Version).big_integer().not_null())
                    .col(
                        ColumnDef::new(Products::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Products::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Products::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in INDEXES {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Products::Table).to_owned())
            .await
    }
}
