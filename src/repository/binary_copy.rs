//! PostgreSQL's binary COPY format, written: a signature and header, then per row a 16-bit
//! field count and each field as a 32-bit length (-1 for NULL) and its bytes, then a field
//! count of -1. Values go as PostgreSQL stores them, so the server parses no text.

use chrono::{DateTime, Utc};

pub const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows for `COPY … FROM STDIN (FORMAT binary)`, each with the same `fields` columns.
pub struct Rows {
    out: Vec<u8>,
    fields: i16,
}

impl Rows {
    pub fn new(fields: i16, capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + SIGNATURE.len() + 10);
        out.extend_from_slice(SIGNATURE);
        // No flags, no header extension.
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        Self { out, fields }
    }

    /// Starts a row: its fields follow, in the COPY's column order.
    pub fn row(&mut self) -> &mut Self {
        self.out.extend_from_slice(&self.fields.to_be_bytes());
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // Fields come from validated rows, far under 2 GiB.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.extend_from_slice(bytes);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.out.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.field(v.as_bytes())
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn opt_int4(&mut self, v: Option<i32>) -> &mut Self {
        match v {
            Some(v) => self.int4(v),
            None => self.null(),
        }
    }

    /// A `timestamptz`, to the microsecond PostgreSQL keeps.
    pub fn timestamp(&mut self, v: DateTime<Utc>) -> &mut Self {
        self.int8(v.timestamp_micros() - PG_EPOCH_MICROS)
    }

    /// The stream, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&(-1i16).to_be_bytes());
        self.out
    }
}
