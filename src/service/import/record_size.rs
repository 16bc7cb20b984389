//! The size of every CSV field and record, watched while the upload streams to the spool.
//!
//! The CSV parser holds a record whole, and an import holds a batch of them; without a cap one
//! 100 MiB field (or an unclosed quote, which makes the rest of the file one field) would be
//! held in memory per import. A file with a field or record over its limit is refused before
//! it is accepted, naming the line, so what an import holds is bounded by its batch size times
//! the record limit. The state machine follows the parser's quoting (RFC 4180 as the `csv`
//! crate reads it) closely enough to count bytes: a quote opens a quoted field only at the
//! start of a field, and `""` inside one is a quote.

/// A limit the file passed, and the line its record starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    Field { limit: u64, line: u64 },
    Record { limit: u64, line: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it ends the field or, doubled, is a quote.
    QuoteInQuoted,
}

#[derive(Debug)]
pub struct RecordSize {
    max_field: u64,
    max_record: u64,
    state: State,
    field: u64,
    record: u64,
    /// 1-based line of the current byte and of the current record's start.
    line: u64,
    record_line: u64,
}

impl RecordSize {
    pub fn new(max_field: u64, max_record: u64) -> Self {
        Self {
            max_field,
            max_record,
            state: State::FieldStart,
            field: 0,
            record: 0,
            line: 1,
            record_line: 1,
        }
    }

    /// Watches the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Oversized> {
        for &b in bytes {
            if b == b'\n' {
                self.line += 1;
            }
            let (next, ends) = match (self.state, b) {
                (State::Quoted, b'"') => (State::QuoteInQuoted, None),
                (State::Quoted, _) => (State::Quoted, None),
                (State::QuoteInQuoted, b'"') => (State::Quoted, None),
                (State::FieldStart, b'"') => (State::Quoted, None),
                (_, b',') => (State::FieldStart, Some(false)),
                (_, b'\n') => (State::FieldStart, Some(true)),
                _ => (State::Unquoted, None),
            };
            self.state = next;
            self.record += 1;
            match ends {
                Some(true) => {
                    self.field = 0;
                    self.record = 0;
                    self.record_line = self.line;
                }
                Some(false) => self.field = 0,
                None => self.field += 1,
            }
            if self.field > self.max_field {
                return Err(Oversized::Field {
                    limit: self.max_field,
                    line: self.record_line,
                });
            }
            if self.record > self.max_record {
                return Err(Oversized::Record {
                    limit: self.max_record,
                    line: self.record_line,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, max_field: u64, max_record: u64) -> Result<(), Oversized> {
        let mut watch = RecordSize::new(max_field, max_record);
        // Byte by byte too: a chunk boundary anywhere gives the same answer.
        let whole = RecordSize::new(max_field, max_record).feed(text.as_bytes());
        let split = text.as_bytes().chunks(1).try_for_each(|c| watch.feed(c));
        assert_eq!(whole, split, "{text:?}");
        whole
    }

    #[test]
    fn fields_and_records_within_their_limits_pass() {
        let cases = [
            "name,cost\nabcd,1\n",
            "name\n\"ab,\ncd\"\n",
            "name\n\"a\"\"b\"\n",
            "a\r\nb\r\n",
            "abcd",
        ];
        for text in cases {
            // Quotes count towards a field's bytes: `"ab,\ncd"` is 8.
            assert_eq!(check(text, 8, 12), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn the_first_field_or_record_over_its_limit_is_named_with_its_line() {
        let cases = [
            ("name\nabcde\n", Oversized::Field { limit: 4, line: 2 }),
            (
                "a\nb\n\"x\ny,zzzz\"\n",
                Oversized::Field { limit: 4, line: 3 },
            ),
            (
                "name\n\"never closed\n",
                Oversized::Field { limit: 4, line: 2 },
            ),
            ("ab,cd,ef,gh\n", Oversized::Record { limit: 10, line: 1 }),
            ("a\nab,cd,ef,gh\n", Oversized::Record { limit: 10, line: 2 }),
        ];
        for (text, expected) in cases {
            assert_eq!(check(text, 4, 10), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_a_byte() {
        assert_eq!(check("ab\"c,d\nef\n", 4, 10), Ok(()));
    }
}
