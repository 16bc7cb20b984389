//! Quantity adjustments are atomic: concurrent ones never lose an update and never go below 0.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(
    hundred_concurrent_decrements_end_at_zero,
    bounds_are_enforced
);

async fn hundred_concurrent_decrements_end_at_zero(app: TestApp) {
    let id = id_of(
        &app.create_ok(SELLER_A, &product(json!({ "quantity": 100 })))
            .await,
    );
    let attempts = (0..100).map(|_| app.adjust(SELLER_A, id, -1));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let now: Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(now["quantity"], 0);
    assert_eq!(now["version"], 101);

    let body = assert_problem(
        app.adjust(SELLER_A, id, -1).await,
        StatusCode::CONFLICT,
        "INSUFFICIENT_STOCK",
    )
    .await;
    assert_eq!(body["details"], json!({ "available": 0, "delta": -1 }));
    let now: Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(now["quantity"], 0, "a refused adjustment changes nothing");
    assert_eq!(now["version"], 101);
}

async fn bounds_are_enforced(app: TestApp) {
    let id = id_of(
        &app.create_ok(SELLER_A, &product(json!({ "quantity": 2147483000 })))
            .await,
    );
    let resp = app.adjust(SELLER_A, id, 647).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let p: Value = resp.json().await.expect("json");
    assert_eq!(p["quantity"], 2147483647);
    assert_problem(
        app.adjust(SELLER_A, id, 1).await,
        StatusCode::CONFLICT,
        "QUANTITY_OUT_OF_RANGE",
    )
    .await;
    let body = assert_problem(
        app.adjust(SELLER_A, id, 0).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    assert_eq!(body["details"]["field"], "delta");
    assert_problem(
        app.adjust(SELLER_A, id + 99, 1).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
}
