//! Value types shared by every layer: who the seller is and what it may do, money, a product, how products are
//! listed, and where an import stands.

mod identity;
mod import;
mod import_status;
mod money;
mod product;
mod product_query;
mod seller;

pub use identity::{Grant, Identity};
pub use import::{ErrorPolicy, ImportReport, Mode, RowErrorReport};
pub use import_status::ImportStatus;
pub use money::Money;
pub use product::Product;
pub use product_query::{Filter, SortKey};
pub use seller::{SellerId, SellerIdError};
