//! Handlers of the `Products` operations: extract, call one service method, map the result.

use poem_openapi::{payload::Json, types::MaybeUndefined};

use crate::{
    api::{
        csv_body::CsvBody,
        decimal::Decimal,
        error::Problem,
        etag,
        generated::{
            AdjustQuantityResponse, CreateProductResponse, DeleteProductResponse, DeleteResult,
            ExportProductsResponse, GetProductResponse, ListProductsResponse, ListProductsSortBy,
            ListProductsSortOrder, Pagination, Product, ProductCreateRequest, ProductList,
            ProductUpdateRequest, ProductsHandlers, QuantityAdjustmentRequest,
            UpdateProductResponse,
        },
        nullable,
        security::Seller,
        Api,
    },
    domain::{self, Filter, SortKey},
    service::products::{Adjustment, ListQuery, NewProduct, ProductPatch},
};

/// Absent keeps a field, `null` clears it.
fn patch<T, U: From<T>>(value: MaybeUndefined<T>) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v.into())),
    }
}

fn to_api(p: domain::Product) -> Product {
    Product {
        id: p.id,
        seller_id: p.seller_id,
        sku: nullable(p.sku),
        name: p.name,
        description: nullable(p.description),
        price: Decimal::from_units(p.price.cents()),
        // Writes keep quantities within int32.
        quantity: i32::try_from(p.quantity).unwrap_or(i32::MAX),
        category: p.category,
        low_stock_threshold: nullable(p.low_stock_threshold),
        created_at: p.created_at,
        updated_at: p.updated_at,
        version: p.version,
    }
}

fn sort_key(sort: ListProductsSortBy) -> SortKey {
    match sort {
        ListProductsSortBy::Name => SortKey::Name,
        ListProductsSortBy::Price => SortKey::Price,
        ListProductsSortBy::Quantity => SortKey::Quantity,
        ListProductsSortBy::CreatedAt => SortKey::CreatedAt,
        ListProductsSortBy::UpdatedAt => SortKey::UpdatedAt,
    }
}

fn filter(
    category: Option<String>,
    min_quantity: Option<i32>,
    max_quantity: Option<i32>,
    q: Option<String>,
    sku: Option<String>,
) -> Filter {
    Filter {
        category,
        min_quantity: min_quantity.map(i64::from),
        max_quantity: max_quantity.map(i64::from),
        search: q.map(|q| q.to_lowercase()),
        sku,
    }
}

impl ProductsHandlers for Api {
    async fn export_products(
        &self,
        seller: Seller,
        category: Option<String>,
        min_quantity: Option<i32>,
        max_quantity: Option<i32>,
        q: Option<String>,
        sku: Option<String>,
    ) -> Result<ExportProductsResponse, Problem> {
        let disposition = format!("attachment; filename=\"products-{seller}.csv\"");
        let filter = filter(category, min_quantity, max_quantity, q, sku);
        let rows = self.state.products.export(seller, filter);
        Ok(ExportProductsResponse::Ok(CsvBody::new(rows), disposition))
    }

    async fn create_product(
        &self,
        seller: Seller,
        idempotency_key: Option<String>,
        body: ProductCreateRequest,
    ) -> Result<CreateProductResponse, Problem> {
        let new = NewProduct {
            name: body.name.into(),
            description: body.description.take().map(String::from),
            price_cents: body.price.units(),
            quantity: body.quantity,
            category: body.category.into(),
            sku: body.sku.take().map(String::from),
            low_stock_threshold: body.low_stock_threshold.take(),
        };
        let product = self
            .state
            .products
            .create(&seller, idempotency_key.as_deref(), new)
            .await?;
        let location = format!("/api/products/{}", product.id);
        let tag = etag::of(product.version);
        Ok(CreateProductResponse::Created(
            Json(to_api(product)),
            location,
            tag,
        ))
    }

    async fn list_products(
        &self,
        seller: Seller,
        page: i32,
        limit: i32,
        category: Option<String>,
        min_quantity: Option<i32>,
        max_quantity: Option<i32>,
        sort_by: ListProductsSortBy,
        sort_order: ListProductsSortOrder,
        q: Option<String>,
        sku: Option<String>,
        cursor: Option<String>,
    ) -> Result<ListProductsResponse, Problem> {
        let query = ListQuery {
            // The spec bounds both to positive values.
            page: u32::try_from(page).unwrap_or(1),
            limit: u32::try_from(limit).unwrap_or(20),
            filter: filter(category, min_quantity, max_quantity, q, sku),
            sort: sort_key(sort_by),
            descending: sort_order == ListProductsSortOrder::Desc,
            cursor,
        };
        let page = self.state.products.list(&seller, query).await?;
        let total = i64::try_from(page.total).unwrap_or(i64::MAX);
        let limit = i64::from(page.limit);
        Ok(ListProductsResponse::Ok(Json(ProductList {
            data: page.items.into_iter().map(to_api).collect(),
            pagination: Pagination {
                page: i32::try_from(page.page).unwrap_or(i32::MAX),
                limit: i32::try_from(page.limit).unwrap_or(i32::MAX),
                total,
                total_pages: (total + limit - 1) / limit,
                next_cursor: page.next_cursor,
            },
        })))
    }

    async fn get_product(
        &self,
        seller: Seller,
        id: i64,
        if_none_match: Option<String>,
    ) -> Result<GetProductResponse, Problem> {
        let product = self.state.products.get(&seller, id).await?;
        let tag = etag::of(product.version);
        if etag::none_match_hits(if_none_match.as_deref(), product.version) {
            return Ok(GetProductResponse::NotModified(tag));
        }
        Ok(GetProductResponse::Ok(Json(to_api(product)), tag))
    }

    async fn update_product(
        &self,
        seller: Seller,
        id: i64,
        if_match: Option<String>,
        body: ProductUpdateRequest,
    ) -> Result<UpdateProductResponse, Problem> {
        let changes = ProductPatch {
            name: body.name.map(String::from),
            description: patch(body.description),
            price_cents: body.price.map(Decimal::units),
            quantity: body.quantity,
            category: body.category.map(String::from),
            sku: patch(body.sku),
            low_stock_threshold: patch(body.low_stock_threshold),
        };
        let precondition = etag::if_match(if_match.as_deref());
        let product = self
            .state
            .products
            .update(&seller, id, precondition, changes)
            .await?;
        let tag = etag::of(product.version);
        Ok(UpdateProductResponse::Ok(Json(to_api(product)), tag))
    }

    async fn delete_product(
        &self,
        seller: Seller,
        id: i64,
        if_match: Option<String>,
    ) -> Result<DeleteProductResponse, Problem> {
        let precondition = etag::if_match(if_match.as_deref());
        let product = self
            .state
            .products
            .delete(&seller, id, precondition)
            .await?;
        Ok(DeleteProductResponse::Ok(Json(DeleteResult {
            message: "Product deleted successfully".to_string(),
            deleted_id: product.id,
        })))
    }

    async fn adjust_quantity(
        &self,
        seller: Seller,
        id: i64,
        idempotency_key: Option<String>,
        body: QuantityAdjustmentRequest,
    ) -> Result<AdjustQuantityResponse, Problem> {
        let adjustment = Adjustment {
            delta: body.delta,
            reason: body.reason.map(String::from),
        };
        let product = self
            .state
            .products
            .adjust_quantity(&seller, id, idempotency_key.as_deref(), adjustment)
            .await?;
        let tag = etag::of(product.version);
        Ok(AdjustQuantityResponse::Ok(Json(to_api(product)), tag))
    }
}
