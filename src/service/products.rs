//! Product rules: who may see what, how writes are checked, and where transactions begin.

use std::sync::Arc;

use bytes::Bytes;
use futures::{future::BoxFuture, stream::BoxStream};
use sea_orm::{DatabaseConnection, DbErr, Order};
use serde::Serialize;

use crate::{
    coalesce::{self, Batch, Coalescer},
    domain::{Filter, Product, SellerId, SortKey},
    entity::product::Model as Row,
    repository::{
        self, is_unique_violation,
        products::{Changes, NewRow, Start, MAX_QUANTITY},
    },
    service::{
        cursor::{self, CursorError},
        events::Events,
        idempotency::{IdempotencyError, Scope},
        now,
        write::{Writer, Written},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("product {0} not found")]
    NotFound(i64),
    #[error("a live product of this seller already has sku `{0}`")]
    DuplicateSku(String),
    #[error("the product is no longer at the version given in If-Match")]
    PreconditionFailed,
    #[error("insufficient stock: {available} available, adjustment of {delta}")]
    InsufficientStock { available: i64, delta: i32 },
    #[error("quantity would exceed {MAX_QUANTITY}")]
    QuantityOverflow { available: i64, delta: i32 },
    #[error("an update must change at least one field")]
    EmptyUpdate,
    #[error("delta must not be 0")]
    ZeroDelta,
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Database(#[from] DbErr),
    /// A batched read failed: every request of the batch shares its error.
    #[error(transparent)]
    Read(Arc<DbErr>),
    #[error(transparent)]
    Stopped(#[from] coalesce::Stopped),
}

/// A product to create, as validated by the API layer.
#[derive(Debug, Clone, Serialize)]
pub struct NewProduct {
    pub name: String,
    pub description: Option<String>,
    pub price_cents: i64,
    pub quantity: i32,
    pub category: String,
    pub sku: Option<String>,
    pub low_stock_threshold: Option<i32>,
}

/// Fields to change; `None` keeps a field, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub price_cents: Option<i64>,
    pub quantity: Option<i32>,
    pub category: Option<String>,
    pub sku: Option<Option<String>>,
    pub low_stock_threshold: Option<Option<i32>>,
}

impl ProductPatch {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price_cents.is_none()
            && self.quantity.is_none()
            && self.category.is_none()
            && self.sku.is_none()
            && self.low_stock_threshold.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Adjustment {
    pub delta: i32,
    pub reason: Option<String>,
}

/// An `If-Match` precondition: any current version (`*`), or one of these versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    Exists,
    OneOf(Vec<i64>),
}

impl Precondition {
    fn admits(&self, version: i64) -> bool {
        match self {
            Self::Exists => true,
            Self::OneOf(versions) => versions.contains(&version),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub page: u32,
    pub limit: u32,
    pub filter: Filter,
    pub sort: SortKey,
    pub descending: bool,
    pub cursor: Option<String>,
}

pub struct Page {
    pub items: Vec<Product>,
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub next_cursor: Option<String>,
}

/// Most reads one query serves.
const MAX_READ_BATCH: usize = 128;

/// `GET /api/products/{id}` of concurrent requests, one query per batch: a query per request
/// cost the database and the server a round trip each, plus the pool's check on returning
/// the connection; coalesced, the read rate went up by 32–43% (BENCHMARKS.md).
struct Reads {
    db: DatabaseConnection,
}

impl Batch for Reads {
    type Input = (SellerId, i64);
    type Output = Result<Option<Row>, Arc<DbErr>>;

    async fn run(&self, keys: &[(SellerId, i64)]) -> Vec<Self::Output> {
        match repository::products::find_each(&self.db, keys).await {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) => {
                let e = Arc::new(e);
                keys.iter().map(|_| Err(Arc::clone(&e))).collect()
            }
        }
    }
}

#[derive(Clone)]
pub struct ProductService {
    db: DatabaseConnection,
    reads: Arc<Coalescer<Reads>>,
    writer: Writer,
    /// `LOW_STOCK_THRESHOLD`, for products without their own.
    low_stock_threshold: i32,
}

fn sku_conflict(sku: Option<&str>) -> impl FnOnce(DbErr) -> ProductError + '_ {
    move |e| match sku {
        Some(sku) if is_unique_violation(&e) => ProductError::DuplicateSku(sku.to_string()),
        _ => ProductError::Database(e),
    }
}

impl ProductService {
    pub fn new(writer: Writer, low_stock_threshold: i32) -> Self {
        let reads = Reads {
            db: writer.db.clone(),
        };
        Self {
            db: writer.db.clone(),
            reads: Arc::new(Coalescer::new(reads, MAX_READ_BATCH)),
            writer,
            low_stock_threshold,
        }
    }

    /// The seller's live products matching `filter` as CSV, oldest first, streamed in chunks.
    pub fn export(
        &self,
        seller: SellerId,
        filter: Filter,
    ) -> BoxStream<'static, std::io::Result<Bytes>> {
        super::export::stream(self.db.clone(), seller, filter)
    }

    fn events(&self) -> Events {
        Events::new(self.low_stock_threshold)
    }

    /// Runs `work` as one write (its row and its events committed together, replayed for a
    /// repeated idempotency key) and hands out the product it wrote.
    async fn write<F>(&self, scope: Option<Scope<'_>>, work: F) -> Result<Product, ProductError>
    where
        F: for<'t> FnOnce(
            &'t sea_orm::DatabaseTransaction,
        ) -> BoxFuture<'t, Result<Written<Row>, ProductError>>,
    {
        self.writer.run(scope, work).await.map(Product::from)
    }

    pub async fn create(
        &self,
        seller: &SellerId,
        idempotency_key: Option<&str>,
        new: NewProduct,
    ) -> Result<Product, ProductError> {
        let scope = idempotency_key
            .map(|key| Scope::new(seller, key, "createProduct", &new))
            .transpose()?;
        let owner = seller.clone();
        let events = self.events();
        self.write(scope, |txn| {
            Box::pin(async move {
                let row = NewRow {
                    sku: new.sku.clone(),
                    name: new.name,
                    description: new.description,
                    price_cents: new.price_cents,
                    quantity: i64::from(new.quantity),
                    category: new.category,
                    low_stock_threshold: new.low_stock_threshold,
                };
                let product = repository::products::insert(txn, &owner, row, now())
                    .await
                    .map_err(sku_conflict(new.sku.as_deref()))?;
                let events = events.created(&product).into_rows();
                Ok(Written {
                    value: product,
                    events,
                })
            })
        })
        .await
    }

    pub async fn get(&self, seller: &SellerId, id: i64) -> Result<Product, ProductError> {
        self.reads
            .call((seller.clone(), id))
            .await?
            .map_err(ProductError::Read)?
            .map(Product::from)
            .ok_or(ProductError::NotFound(id))
    }

    pub async fn list(&self, seller: &SellerId, query: ListQuery) -> Result<Page, ProductError> {
        let order = if query.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let (start, page) = match &query.cursor {
            Some(c) => {
                let pos = cursor::decode(c, query.sort, query.descending, &query.filter)?;
                (Start::After(pos.value, pos.id), pos.page)
            }
            None => {
                let offset = u64::from(query.page.saturating_sub(1)) * u64::from(query.limit);
                (Start::Offset(offset), query.page)
            }
        };
        let start_offset = match start {
            Start::Offset(offset) => Some(offset),
            Start::After(..) => None,
        };
        // One row past the page tells whether another page follows.
        let limit = u64::from(query.limit);
        let mut items = repository::products::page(
            &self.db,
            seller,
            &query.filter,
            query.sort,
            order,
            start,
            limit + 1,
        )
        .await?;
        let more = items.len() as u64 > limit;
        items.truncate(query.limit as usize);
        // The last page of an offset listing tells the total itself; only otherwise count.
        let total = match start_offset {
            Some(offset) if !more && (offset == 0 || !items.is_empty()) => {
                offset + items.len() as u64
            }
            _ => repository::products::count(&self.db, seller, &query.filter).await?,
        };
        let next_cursor = match items.last() {
            Some(last) if more => Some(cursor::encode(
                query.sort,
                query.descending,
                &query.filter,
                &query.sort.value_of(last),
                last.id,
                page.saturating_add(1),
            )),
            _ => None,
        };
        Ok(Page {
            items: items.into_iter().map(Product::from).collect(),
            page,
            limit: query.limit,
            total,
            next_cursor,
        })
    }

    pub async fn update(
        &self,
        seller: &SellerId,
        id: i64,
        precondition: Option<Precondition>,
        patch: ProductPatch,
    ) -> Result<Product, ProductError> {
        if patch.is_empty() {
            return Err(ProductError::EmptyUpdate);
        }
        let sku = patch.sku.clone().flatten();
        let changes = Changes {
            sku: patch.sku,
            name: patch.name,
            description: patch.description,
            price_cents: patch.price_cents,
            quantity: patch.quantity.map(i64::from),
            category: patch.category,
            low_stock_threshold: patch.low_stock_threshold,
        };
        let owner = seller.clone();
        let events = self.events();
        self.write(None, |txn| {
            Box::pin(async move {
                let before = locked(txn, &owner, id, precondition.as_ref()).await?;
                let after = repository::products::update(txn, &owner, id, changes, now())
                    .await
                    .map_err(sku_conflict(sku.as_deref()))?
                    .ok_or(ProductError::NotFound(id))?;
                let events = events.updated(&before, &after, None).into_rows();
                Ok(Written {
                    value: after,
                    events,
                })
            })
        })
        .await
    }

    pub async fn delete(
        &self,
        seller: &SellerId,
        id: i64,
        precondition: Option<Precondition>,
    ) -> Result<Product, ProductError> {
        let owner = seller.clone();
        let events = self.events();
        self.write(None, |txn| {
            Box::pin(async move {
                locked(txn, &owner, id, precondition.as_ref()).await?;
                let deleted = repository::products::soft_delete(txn, &owner, id, now())
                    .await?
                    .ok_or(ProductError::NotFound(id))?;
                let events = events.deleted(&deleted).into_rows();
                Ok(Written {
                    value: deleted,
                    events,
                })
            })
        })
        .await
    }

    pub async fn adjust_quantity(
        &self,
        seller: &SellerId,
        id: i64,
        idempotency_key: Option<&str>,
        adjustment: Adjustment,
    ) -> Result<Product, ProductError> {
        let delta = adjustment.delta;
        if delta == 0 {
            return Err(ProductError::ZeroDelta);
        }
        let scope = idempotency_key
            .map(|key| Scope::new(seller, key, "adjustQuantity", &(id, &adjustment)))
            .transpose()?;
        let owner = seller.clone();
        let events = self.events();
        self.write(scope, |txn| {
            Box::pin(async move {
                let seller = &owner;
                let adjusted =
                    repository::products::adjust_quantity(txn, seller, id, i64::from(delta), now())
                        .await?;
                let Some(after) = adjusted else {
                    // The guarded update matched nothing: tell absence from an out-of-range result.
                    return Err(match repository::products::find(txn, seller, id).await? {
                        None => ProductError::NotFound(id),
                        Some(p) if p.quantity + i64::from(delta) < 0 => {
                            ProductError::InsufficientStock {
                                available: p.quantity,
                                delta,
                            }
                        }
                        Some(p) => ProductError::QuantityOverflow {
                            available: p.quantity,
                            delta,
                        },
                    });
                };
                // The single UPDATE changed only the quantity: the row before it follows.
                let before = Row {
                    quantity: after.quantity - i64::from(delta),
                    version: after.version - 1,
                    ..after.clone()
                };
                let events = events
                    .updated(&before, &after, adjustment.reason.as_deref())
                    .into_rows();
                Ok(Written {
                    value: after,
                    events,
                })
            })
        })
        .await
    }
}

/// The live product, locked for the rest of the transaction, checked against `If-Match`.
async fn locked(
    txn: &sea_orm::DatabaseTransaction,
    seller: &SellerId,
    id: i64,
    precondition: Option<&Precondition>,
) -> Result<Row, ProductError> {
    let current = repository::products::find_for_update(txn, seller, id)
        .await?
        .ok_or(ProductError::NotFound(id))?;
    match precondition {
        Some(p) if !p.admits(current.version) => Err(ProductError::PreconditionFailed),
        _ => Ok(current),
    }
}
