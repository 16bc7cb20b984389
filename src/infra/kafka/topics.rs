//! The event contract's topics: one per event type, each name a suffix after the configured
//! prefix.

use std::fmt;

/// The product event topics of the event contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProductTopic {
    Created,
    Updated,
    Deleted,
    LowStock,
}

impl ProductTopic {
    /// Every product topic; the publisher creates all of them.
    pub const ALL: [ProductTopic; 4] = [
        ProductTopic::Created,
        ProductTopic::Updated,
        ProductTopic::Deleted,
        ProductTopic::LowStock,
    ];

    /// The topic name without the configured prefix, e.g. `product.created`.
    pub fn suffix(self) -> &'static str {
        match self {
            ProductTopic::Created => "product.created",
            ProductTopic::Updated => "product.updated",
            ProductTopic::Deleted => "product.deleted",
            ProductTopic::LowStock => "product.lowstock",
        }
    }
}

impl fmt::Display for ProductTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}
