//! An import as the services report it: where it stands, how it was asked to run, its counters
//! and its first row errors.

use chrono::{DateTime, Utc};

use super::ImportStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Upsert,
    Insert,
}

impl Mode {
    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Upsert, Self::Insert]
            .into_iter()
            .find(|m| m.as_str() == stored)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Insert => "insert",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    SkipInvalid,
    Abort,
}

impl ErrorPolicy {
    pub fn parse(stored: &str) -> Option<Self> {
        [Self::SkipInvalid, Self::Abort]
            .into_iter()
            .find(|p| p.as_str() == stored)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SkipInvalid => "skip_invalid",
            Self::Abort => "abort",
        }
    }
}

/// One rejected row: the line in the uploaded file, the column and value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowErrorReport {
    pub row: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImportReport {
    pub id: String,
    pub status: ImportStatus,
    pub mode: Mode,
    pub dry_run: bool,
    pub error_policy: ErrorPolicy,
    pub total_rows: i64,
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub warnings: Vec<String>,
    /// The first row errors (all of them are in the errors CSV).
    pub errors: Vec<RowErrorReport>,
    pub failure: Option<String>,
    pub cancel_requested: bool,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}
