//! PostgreSQL: an uploaded import file is kept in the database, in chunks, so any instance's
//! worker can run an import (or resume one whose instance died), not only the instance that
//! received the file. SQLite keeps the file in the spool directory: one process owns it.
//!
//! Chunks are written as the upload arrives, before its import row exists, so there is no
//! foreign key: the worker deletes chunks whose import never came (an upload cut off by a
//! crash) once they are older than any upload can take.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE import_chunks (
        import_id text NOT NULL,
        seq integer NOT NULL,
        data bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (import_id, seq)
    )",
    // Read back by offset, written once: no compression to pay for on every upload.
    "ALTER TABLE import_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
];

const DOWN: &[&str] = &["DROP TABLE import_chunks"];

postgres_only!();
