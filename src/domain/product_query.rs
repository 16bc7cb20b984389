//! How a seller's products are listed and exported: the filters and the sort key.

/// What the list and the export filter on; `None` is no filter.
#[derive(Default, Clone, Debug)]
pub struct Filter {
    pub category: Option<String>,
    pub min_quantity: Option<i64>,
    pub max_quantity: Option<i64>,
    /// Lower-cased substring of name or sku.
    pub search: Option<String>,
    pub sku: Option<String>,
}

impl Filter {
    /// No filter at all: every live product of the seller.
    pub fn is_empty(&self) -> bool {
        self.category.is_none()
            && self.min_quantity.is_none()
            && self.max_quantity.is_none()
            && self.search.is_none()
            && self.sku.is_none()
    }
}

/// The field a list is sorted by; ties are broken by id in the same direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Price,
    Quantity,
    CreatedAt,
    UpdatedAt,
}
