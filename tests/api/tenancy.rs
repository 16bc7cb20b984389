//! A seller never sees, changes or learns of another seller's product: 404, exactly as for an
//! id that does not exist.

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A, SELLER_B};
use crate::on_both_databases;

on_both_databases!(
    other_sellers_products_are_invisible,
    skus_are_per_seller,
    concurrent_reads_of_many_sellers_each_get_only_their_own
);

async fn other_sellers_products_are_invisible(app: TestApp) {
    let mine = app
        .create_ok(SELLER_A, &product(json!({ "quantity": 10 })))
        .await;
    let id = id_of(&mine);
    let missing = id + 1000;

    for target in [id, missing] {
        let not_found = |resp| assert_problem(resp, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
        let (a, b, c, d) = (
            app.get(SELLER_B, target).await,
            app.update(SELLER_B, target, &json!({ "price": 1 })).await,
            app.adjust(SELLER_B, target, -1).await,
            app.delete(SELLER_B, target).await,
        );
        let bodies = [
            not_found(a).await,
            not_found(b).await,
            not_found(c).await,
            not_found(d).await,
        ];
        for body in &bodies {
            // Same message whether the product is someone else's or does not exist.
            assert_eq!(
                body["message"],
                format!("Product with ID {target} not found or does not belong to seller")
            );
        }
    }
    let list: serde_json::Value = app.list(SELLER_B, "").await.json().await.expect("json");
    assert_eq!(list["data"], json!([]));
    assert_eq!(list["pagination"]["total"], 0);

    let still: serde_json::Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(still, mine, "nothing B did changed A's product");

    // Conditional requests do not leak existence either.
    let resp = app
        .request(Method::GET, &format!("/api/products/{id}"), Some(SELLER_B))
        .header("If-None-Match", "*")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn skus_are_per_seller(app: TestApp) {
    app.create_ok(SELLER_A, &product(json!({ "sku": "SAME" })))
        .await;
    app.create_ok(SELLER_B, &product(json!({ "sku": "SAME" })))
        .await;
    let list: serde_json::Value = app
        .list(SELLER_B, "sku=SAME")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["pagination"]["total"], 1);
    assert_eq!(list["data"][0]["seller_id"], SELLER_B);
}

/// Reads by id are answered in batches (one query for many requests): under concurrency every
/// request still gets its own seller's product, and another seller's id is still a 404.
async fn concurrent_reads_of_many_sellers_each_get_only_their_own(app: TestApp) {
    let sellers: Vec<String> = (0..8).map(|i| format!("seller-reads{i}")).collect();
    let mut owned = Vec::new();
    for seller in &sellers {
        let body = product(json!({ "name": format!("Of {seller}") }));
        owned.push((seller.clone(), app.create_ok(seller, &body).await));
    }
    let deleted = id_of(&owned[0].1);
    app.delete(&sellers[0], deleted).await;

    // Every seller asks for every product, many times over, all at once.
    let asks: Vec<(usize, usize)> = (0..20)
        .flat_map(|_| (0..sellers.len()).flat_map(|s| (0..owned.len()).map(move |p| (s, p))))
        .collect();
    let app = &app;
    let (sellers, owned) = (&sellers, &owned);
    let answers: Vec<(usize, usize, StatusCode, Value)> = futures::stream::iter(asks)
        .map(|(s, p)| async move {
            let resp = app.get(&sellers[s], id_of(&owned[p].1)).await;
            let status = resp.status();
            (s, p, status, resp.json().await.expect("json"))
        })
        .buffer_unordered(64)
        .collect()
        .await;

    for (s, p, status, body) in answers {
        let id = id_of(&owned[p].1);
        if s == p && id != deleted {
            assert_eq!(status, StatusCode::OK, "seller {s} reads its product {id}");
            assert_eq!(body, owned[p].1, "seller {s} gets its own product {id}");
        } else {
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "seller {s} asks for product {id}"
            );
            assert_eq!(body["error_code"], "PRODUCT_NOT_FOUND");
        }
    }
}
