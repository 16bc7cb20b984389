//! A CSV import: its options, where its spooled file is, how far the worker got, and what it
//! counted. The counters and the resume point advance in each batch's transaction.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "imports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub seller_id: String,
    /// `queued`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// `upsert` or `insert`.
    pub mode: String,
    pub dry_run: bool,
    /// `skip_invalid` or `abort`.
    pub error_policy: String,
    pub spool_path: String,
    pub size_bytes: i64,
    pub total_rows: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    /// A JSON array of strings.
    pub warnings: String,
    pub failure: Option<String>,
    /// Byte offset in the spool file of the next record to process.
    pub resume_offset: i64,
    /// Line number (1-based) where that record starts.
    pub resume_line: i64,
    pub cancel_requested: bool,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
