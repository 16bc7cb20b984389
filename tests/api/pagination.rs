//! Offset pages and keyset cursors over the same ordering.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, product, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(pages_and_cursors_agree, cursor_is_bound_to_its_query);

async fn ids(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect()
}

async fn pages_and_cursors_agree(app: TestApp) {
    // Prices repeat so the id tie-break is exercised.
    for i in 0..25 {
        let body =
            product(json!({ "name": format!("Item {i:02}"), "price": 1 + (i % 4), "quantity": i }));
        app.create_ok(SELLER_A, &body).await;
    }
    for (sort, order) in [
        ("created_at", "desc"),
        ("price", "asc"),
        ("price", "desc"),
        ("name", "asc"),
        ("quantity", "desc"),
    ] {
        let base = format!("limit=10&sort_by={sort}&sort_order={order}");
        let mut by_page = Vec::new();
        for page in 1..=3 {
            let list: Value = app
                .list(SELLER_A, &format!("{base}&page={page}"))
                .await
                .json()
                .await
                .expect("json");
            assert_eq!(list["pagination"]["total"], 25);
            assert_eq!(list["pagination"]["total_pages"], 3);
            assert_eq!(list["pagination"]["page"], page);
            assert_eq!(
                list["pagination"]["next_cursor"].is_string(),
                page < 3,
                "{base} page {page}"
            );
            by_page.extend(ids(&list).await);
        }
        let mut by_cursor = Vec::new();
        let mut query = base.clone();
        let mut pages = 0;
        loop {
            let list: Value = app.list(SELLER_A, &query).await.json().await.expect("json");
            pages += 1;
            assert_eq!(list["pagination"]["page"], pages, "{base}");
            by_cursor.extend(ids(&list).await);
            match list["pagination"]["next_cursor"].as_str() {
                Some(c) => query = format!("{base}&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{base}");
        assert_eq!(
            by_cursor, by_page,
            "cursor walk equals page walk for {base}"
        );
        assert_eq!(
            by_cursor.iter().collect::<HashSet<_>>().len(),
            25,
            "no duplicates for {base}"
        );
    }
    // The sort itself is right: prices ascending, ids ascending within a price.
    let list: Value = app
        .list(SELLER_A, "limit=100&sort_by=price&sort_order=asc")
        .await
        .json()
        .await
        .expect("json");
    let keys: Vec<(f64, i64)> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| {
            (
                p["price"].as_f64().expect("price"),
                p["id"].as_i64().expect("id"),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    assert_eq!(keys, sorted);
}

async fn cursor_is_bound_to_its_query(app: TestApp) {
    for i in 0..3 {
        app.create_ok(SELLER_A, &product(json!({ "quantity": i })))
            .await;
    }
    let list: Value = app
        .list(SELLER_A, "limit=1")
        .await
        .json()
        .await
        .expect("json");
    let cursor = list["pagination"]["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let cases = [
        format!("limit=1&cursor={cursor}&sort_by=name"),
        format!("limit=1&cursor={cursor}&sort_order=asc"),
        format!("limit=1&cursor={cursor}&min_quantity=1"),
        "cursor=bm90LWEtY3Vyc29y".to_string(),
        "cursor=%%%".to_string(),
    ];
    for query in cases {
        let resp = app.list(SELLER_A, &query).await;
        if resp.status() == StatusCode::BAD_REQUEST {
            let body: Value = resp.json().await.expect("json");
            assert!(
                body["error_code"] == "INVALID_CURSOR" || body["error_code"] == "VALIDATION_ERROR",
                "{query}: {body}"
            );
        } else {
            panic!("{query}: expected 400, got {}", resp.status());
        }
    }
    let resp = app
        .list(SELLER_A, &format!("limit=1&cursor={cursor}&sort_by=price"))
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "INVALID_CURSOR").await;
}
