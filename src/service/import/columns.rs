//! The header row of an import: which column holds which field.
//!
//! Names match case-insensitively after trimming spaces, and a UTF-8 byte-order mark before
//! the first one is ignored. The export's read-only columns are accepted and skipped, so an
//! export re-imports as it is; unknown columns are skipped with a warning.

/// Columns every file must have.
pub const REQUIRED: [&str; 4] = ["name", "price", "quantity", "category"];
/// Columns a file may have.
pub const OPTIONAL: [&str; 3] = ["description", "sku", "low_stock_threshold"];
/// The export's columns that describe a stored product rather than a new one.
pub const IGNORED: [&str; 3] = ["id", "created_at", "updated_at"];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the file is empty: it needs a header row ({})", REQUIRED.join(", "))]
    Empty,
    #[error("the header row lacks the required column{} {}", plural(.0), quoted(.0))]
    Missing(Vec<&'static str>),
    #[error("the header row names column `{0}` twice")]
    Duplicate(String),
    #[error("the header row is not valid UTF-8")]
    NotUtf8,
}

fn plural(list: &[&str]) -> &'static str {
    if list.len() == 1 {
        ""
    } else {
        "s"
    }
}

fn quoted(list: &[&str]) -> String {
    list.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where each field is in a record: indexes into the row's cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub name: usize,
    pub price: usize,
    pub quantity: usize,
    pub category: usize,
    pub description: Option<usize>,
    pub sku: Option<usize>,
    pub low_stock_threshold: Option<usize>,
    /// Cells a row must have: the header's.
    pub width: usize,
    /// One line per unknown column.
    pub warnings: Vec<String>,
}

impl Columns {
    /// Reads a header row given as raw cells.
    pub fn from_header<'a>(cells: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, HeaderError> {
        let mut names: Vec<String> = Vec::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let text = std::str::from_utf8(cell).map_err(|_| HeaderError::NotUtf8)?;
            let text = if i == 0 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            names.push(text.trim().to_lowercase());
        }
        if names.is_empty() || names.iter().all(String::is_empty) {
            return Err(HeaderError::Empty);
        }
        for (i, name) in names.iter().enumerate() {
            if !name.is_empty() && names[..i].contains(name) {
                return Err(HeaderError::Duplicate(name.clone()));
            }
        }
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        let missing: Vec<&'static str> =
            REQUIRED.into_iter().filter(|c| find(c).is_none()).collect();
        let (Some(name), Some(price), Some(quantity), Some(category)) = (
            find("name"),
            find("price"),
            find("quantity"),
            find("category"),
        ) else {
            return Err(HeaderError::Missing(missing));
        };
        let warnings = names
            .iter()
            .filter(|n| {
                let n = n.as_str();
                !REQUIRED.contains(&n) && !OPTIONAL.contains(&n) && !IGNORED.contains(&n)
            })
            .map(|n| match n.is_empty() {
                true => "a column without a name is ignored".to_string(),
                false => format!("unknown column `{n}` ignored"),
            })
            .collect();
        Ok(Self {
            name,
            price,
            quantity,
            category,
            description: find("description"),
            sku: find("sku"),
            low_stock_threshold: find("low_stock_threshold"),
            width: names.len(),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Result<Columns, HeaderError> {
        Columns::from_header(line.split(',').map(str::as_bytes))
    }

    #[test]
    fn header_rows() {
        let c = header("\u{feff} Name ,PRICE,quantity,Category,Colour").expect("valid");
        assert_eq!((c.name, c.price, c.quantity, c.category), (0, 1, 2, 3));
        assert_eq!(c.sku, None);
        assert_eq!(c.warnings, vec!["unknown column `colour` ignored"]);
        let export = "id,sku,name,description,price,quantity,category,low_stock_threshold,created_at,updated_at";
        let c = header(export).expect("an export re-imports");
        assert_eq!((c.sku, c.width), (Some(1), 10));
        assert!(c.warnings.is_empty());
        assert_eq!(
            header("name,price").unwrap_err(),
            HeaderError::Missing(vec!["quantity", "category"])
        );
        assert_eq!(
            header("name,price,quantity,category,Name").unwrap_err(),
            HeaderError::Duplicate("name".into())
        );
        assert_eq!(header("").unwrap_err(), HeaderError::Empty);
        assert_eq!(
            HeaderError::Missing(vec!["price"]).to_string(),
            "the header row lacks the required column `price`"
        );
    }
}
