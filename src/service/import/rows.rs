//! One data row of an import: its cells read into a product, or the reason they cannot be.
//!
//! Cells become the JSON a `createProduct` body would carry and are checked by the same
//! generated rules (`validation::explain` over `rules::PRODUCT_CREATE_REQUEST`): one validation
//! code path for the API and for imports. Numbers are read strictly (`12abc` is not 12) and
//! an empty cell is no value.

use csv_async::ByteRecord;
use serde_json::{Map, Value};

use crate::{
    domain::Money,
    validation::{explain, rules::PRODUCT_CREATE_REQUEST},
};

use super::columns::Columns;

/// Longest rejected value kept in an error report, in characters.
const MAX_REPORTED_VALUE: usize = 1000;

/// A valid row. `None` in an optional field means the file has no such column, so an update
/// keeps the product's value; `Some(None)` is an empty cell, which clears it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: i64,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<Option<String>>,
    pub price_cents: i64,
    pub quantity: i32,
    pub category: String,
    pub low_stock_threshold: Option<Option<i32>>,
}

/// A row as read: valid, or why not.
pub type Parsed = Result<Row, RowError>;

/// Why a row was rejected; `line` is where it starts in the uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: i64,
    pub column: Option<String>,
    pub value: Option<String>,
    pub message: String,
}

impl RowError {
    pub fn new(line: i64, column: Option<&str>, value: Option<&str>, message: String) -> Self {
        let value = value.map(|v| match v.char_indices().nth(MAX_REPORTED_VALUE) {
            Some((cut, _)) => v[..cut].to_string(),
            None => v.to_string(),
        });
        Self {
            line,
            column: column.map(str::to_string),
            value,
            message,
        }
    }
}

/// Reverses the export's formula escaping: `'` before `=`, `+`, `-`, `@`, tab, carriage
/// return or another `'` is removed.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) => rest,
        _ => cell,
    }
}

/// A numeric cell as JSON: a number only if the whole trimmed cell is one, else the text, so
/// the rules reject it by name and value.
fn number(cell: &str) -> Value {
    match serde_json::from_str::<Value>(cell.trim()) {
        Ok(n @ Value::Number(_)) => n,
        _ => Value::String(cell.to_string()),
    }
}

struct Cells<'a> {
    record: &'a ByteRecord,
    line: i64,
}

impl<'a> Cells<'a> {
    fn text(&self, index: usize, column: &str) -> Result<&'a str, RowError> {
        let raw = self.record.get(index).unwrap_or_default();
        std::str::from_utf8(raw).map_err(|_| {
            let shown = String::from_utf8_lossy(raw);
            RowError::new(
                self.line,
                Some(column),
                Some(&shown),
                format!("{column} is not valid UTF-8"),
            )
        })
    }
}

/// Reads record `record`, which starts on `line`, with the header's `columns`.
pub fn parse(record: &ByteRecord, columns: &Columns, line: i64) -> Result<Row, RowError> {
    if record.len() != columns.width {
        // A quoted cell that never closes runs to the file's end, taking the rows after it.
        let unclosed = record.len() < columns.width
            && record
                .iter()
                .next_back()
                .is_some_and(|cell| cell.contains(&b'\n'));
        let hint = if unclosed {
            "; a quoted cell may lack its closing quote"
        } else {
            ""
        };
        return Err(RowError::new(
            line,
            None,
            None,
            format!(
                "the row has {} cells, the header {}{hint}",
                record.len(),
                columns.width
            ),
        ));
    }
    let cells = Cells { record, line };
    let mut body = Map::new();
    let mut raw: Vec<(&str, &str)> = Vec::with_capacity(7);
    let text_fields = [
        ("name", Some(columns.name)),
        ("category", Some(columns.category)),
        ("description", columns.description),
        ("sku", columns.sku),
    ];
    for (field, index) in text_fields {
        let Some(index) = index else { continue };
        let cell = unescape(cells.text(index, field)?);
        raw.push((field, cell));
        if !cell.is_empty() {
            body.insert(field.to_string(), Value::String(cell.to_string()));
        }
    }
    let number_fields = [
        ("price", Some(columns.price)),
        ("quantity", Some(columns.quantity)),
        ("low_stock_threshold", columns.low_stock_threshold),
    ];
    for (field, index) in number_fields {
        let Some(index) = index else { continue };
        let cell = cells.text(index, field)?;
        raw.push((field, cell));
        if !cell.trim().is_empty() {
            body.insert(field.to_string(), number(cell));
        }
    }
    let body = Value::Object(body);
    if let Some(v) = explain(PRODUCT_CREATE_REQUEST, &body) {
        let column = v.field.unwrap_or_default();
        let value = raw.iter().find(|(f, _)| *f == column).map(|(_, c)| *c);
        return Err(RowError::new(line, Some(column), value, v.message));
    }
    let text = |field: &str| body[field].as_str().map(str::to_string);
    let int = |field: &str| body[field].as_i64().and_then(|n| i32::try_from(n).ok());
    // The rules passed: a positive number with at most two decimals.
    let price = body["price"]
        .as_f64()
        .and_then(Money::from_units)
        .ok_or_else(|| {
            let message = "price must be a number with at most two decimals".to_string();
            RowError::new(line, Some("price"), None, message)
        })?;
    Ok(Row {
        line,
        sku: text("sku"),
        name: text("name").unwrap_or_default(),
        description: columns.description.map(|_| text("description")),
        price_cents: price.cents(),
        quantity: int("quantity").unwrap_or_default(),
        category: text("category").unwrap_or_default(),
        low_stock_threshold: columns
            .low_stock_threshold
            .map(|_| int("low_stock_threshold")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Columns {
        Columns::from_header(
            [
                "name",
                "price",
                "quantity",
                "category",
                "sku",
                "description",
            ]
            .map(str::as_bytes),
        )
        .expect("header")
    }

    fn row(cells: &[&str]) -> Result<Row, RowError> {
        parse(&ByteRecord::from(cells.to_vec()), &columns(), 7)
    }

    #[test]
    fn valid_rows() {
        let r = row(&["'=Mouse", "29.99", "150", "Tools", "WM-01", ""]).expect("valid");
        assert_eq!(r.name, "=Mouse");
        assert_eq!(r.price_cents, 2999);
        assert_eq!(r.quantity, 150);
        assert_eq!(r.sku.as_deref(), Some("WM-01"));
        assert_eq!(r.description, Some(None));
        assert_eq!(r.low_stock_threshold, None);
        assert_eq!(
            row(&["A", " 5 ", "0", "C", "", "'hi"]).expect("valid").sku,
            None
        );
    }

    #[test]
    fn invalid_rows_name_column_value_and_rule() {
        type Case<'a> = (&'a [&'a str], Option<&'a str>, Option<&'a str>, &'a str);
        let cases: [Case; 8] = [
            (
                &["A", "12abc", "1", "C", "", ""],
                Some("price"),
                Some("12abc"),
                "price must be a number",
            ),
            (
                &["A", "1", "1.5", "C", "", ""],
                Some("quantity"),
                Some("1.5"),
                "quantity must be an integer",
            ),
            (
                &["A", "1", "-1", "C", "", ""],
                Some("quantity"),
                Some("-1"),
                "quantity must be at least 0",
            ),
            (
                &["A", "0", "1", "C", "", ""],
                Some("price"),
                Some("0"),
                "price must be greater than 0",
            ),
            (
                &["A", "1.234", "1", "C", "", ""],
                Some("price"),
                Some("1.234"),
                "price must be a multiple of 0.01",
            ),
            (
                &["", "1", "1", "C", "", ""],
                Some("name"),
                Some(""),
                "name is required",
            ),
            (
                &["A", "1", "1", "C", "a b", ""],
                Some("sku"),
                Some("a b"),
                "sku must match the pattern ^[A-Za-z0-9._-]+$",
            ),
            (
                &["A", "1", "1"],
                None,
                None,
                "the row has 3 cells, the header 6",
            ),
        ];
        for (cells, column, value, message) in cases {
            let e = row(cells).expect_err(message);
            assert_eq!(e.line, 7);
            assert_eq!(e.column.as_deref(), column, "{message}");
            assert_eq!(e.value.as_deref(), value, "{message}");
            assert_eq!(e.message, message);
        }
        let record = ByteRecord::from(vec![&b"A\xff"[..], b"1", b"1", b"C", b"", b""]);
        let e = parse(&record, &columns(), 3).expect_err("not UTF-8");
        assert_eq!(e.message, "name is not valid UTF-8");
    }

    #[test]
    fn unescape_reverses_the_export() {
        use crate::service::export::neutralise;
        for cell in [
            "=SUM(A1)", "+1", "-2", "@x", "\tt", "'quoted", "''", "'=x", "plain", "",
        ] {
            assert_eq!(unescape(&neutralise(cell)), cell, "{cell:?}");
        }
        assert_eq!(unescape("'hello"), "'hello");
    }
}
