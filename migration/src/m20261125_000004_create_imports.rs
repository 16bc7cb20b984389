use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Imports {
    Table,
    Id,
    SellerId,
    Status,
    Mode,
    DryRun,
    ErrorPolicy,
    SpoolPath,
    SizeBytes,
    TotalRows,
    Processed,
    Created,
    Updated,
    Unchanged,
    Failed,
    Warnings,
    Failure,
    ResumeOffset,
    ResumeLine,
    CancelRequested,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ImportErrors {
    Table,
    Id,
    ImportId,
    Row,
    Column,
    Value,
    Message,
}

/// The worker looks for unfinished imports; status pages list one import's errors by row.
const INDEXES: &[&str] = &[
    "CREATE INDEX imports_unfinished ON imports (created_at) WHERE status IN ('queued', 'processing')",
    "CREATE INDEX import_errors_by_row ON import_errors (import_id, row, id)",
];

fn counter(name: Imports) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Imports::Table)
                    .col(
                        ColumnDef::new(Imports::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Imports::SellerId).string_len(50).not_null())
                    .col(ColumnDef::new(Imports::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Imports::Mode).string_len(16).not_null())
                    .col(ColumnDef::new(Imports::DryRun).boolean().not_null())
                    .col(
                        ColumnDef::new(Imports::ErrorPolicy)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Imports::SpoolPath).text().not_null())
                    .col(ColumnDef::new(Imports::SizeBytes).big_integer().not_null())
                    .col(counter(Imports::TotalRows))
                    .col(counter(Imports::Processed))
                    .col(counter(Imports::Created))
                    .col(counter(Imports::Updated))
                    .col(counter(Imports::Unchanged))
                    .col(counter(Imports::Failed))
                    // A JSON array of strings.
                    .col(ColumnDef::new(Imports::Warnings).text().not_null())
                    .col(ColumnDef::new(Imports::Failure).text().null())
                    // Where the next unprocessed record starts: a byte offset into the spool
                    // file and its line number, advanced with each committed batch.
                    .col(counter(Imports::ResumeOffset))
                    .col(counter(Imports::ResumeLine))
                    .col(
                        ColumnDef::new(Imports::CancelRequested)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Imports::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Imports::StartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Imports::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Imports::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportErrors::Table)
                    .col(
                        ColumnDef::new(ImportErrors::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ImportErrors::ImportId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ImportErrors::Row).big_integer().not_null())
                    .col(ColumnDef::new(ImportErrors::Column).string_len(64).null())
                    .col(ColumnDef::new(ImportErrors::Value).text().null())
                    .col(ColumnDef::new(ImportErrors::Message).text().not_null())
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
            .drop_table(Table::drop().table(ImportErrors::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Imports::Table).to_owned())
            .await
    }
}
