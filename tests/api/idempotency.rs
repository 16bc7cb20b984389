//! `Idempotency-Key` on POST: the same key and body replay the first response.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A, SELLER_B};
use crate::on_both_databases;

on_both_databases!(
    create_replays_and_refuses_other_bodies,
    concurrent_retries_create_one_product,
    adjustment_is_applied_once,
);

async fn create_with_key(
    app: &TestApp,
    seller: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.request(Method::POST, "/api/products", Some(seller))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("sent")
}

async fn create_replays_and_refuses_other_bodies(app: TestApp) {
    let body = product(json!({ "sku": "IDEM-1" }));
    let first = create_with_key(&app, SELLER_A, "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.expect("json");

    // Even after the product changed, the replay is the first response.
    app.update(SELLER_A, id_of(&first), &json!({ "price": 1 }))
        .await;
    let again = create_with_key(&app, SELLER_A, "key-1", &body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["etag"], "\"v1\"");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again, first);

    let other = product(json!({ "sku": "IDEM-2" }));
    let resp = create_with_key(&app, SELLER_A, "key-1", &other).await;
    assert_problem(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;

    // Keys are per seller.
    let resp = create_with_key(&app, SELLER_B, "key-1", &other).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let list: Value = app.list(SELLER_A, "").await.json().await.expect("json");
    assert_eq!(
        list["pagination"]["total"], 1,
        "only one product was created"
    );
}

async fn concurrent_retries_create_one_product(app: TestApp) {
    let body = product(json!({ "name": "Raced" }));
    let attempts = (0..8).map(|_| create_with_key(&app, SELLER_A, "race", &body));
    let responses = futures::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for resp in responses {
        assert_eq!(resp.status(), StatusCode::CREATED);
        ids.push(id_of(&resp.json::<Value>().await.expect("json")));
    }
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every retry answers with the same product: {ids:?}"
    );
    let list: Value = app.list(SELLER_A, "").await.json().await.expect("json");
    assert_eq!(list["pagination"]["total"], 1);
}

async fn adjustment_is_applied_once(app: TestApp) {
    let id = id_of(
        &app.create_ok(SELLER_A, &product(json!({ "quantity": 10 })))
            .await,
    );
    let path = format!("/api/products/{id}/quantity-adjustments");
    for _ in 0..3 {
        let resp = app
            .request(Method::POST, &path, Some(SELLER_A))
            .header("Idempotency-Key", "sale-77")
            .json(&json!({ "delta": -4, "reason": "sale" }))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let p: Value = resp.json().await.expect("json");
        assert_eq!(p["quantity"], 6);
    }
    let now: Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(now["quantity"], 6);
    assert_eq!(now["version"], 2);
}
