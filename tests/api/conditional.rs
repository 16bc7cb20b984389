//! ETag, If-None-Match and If-Match.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(if_none_match_gives_304, if_match_guards_updates_and_deletes);

async fn if_none_match_gives_304(app: TestApp) {
    let id = id_of(&app.create_ok(SELLER_A, &product(json!({}))).await);
    let get = |tag: &'static str| {
        app.request(Method::GET, &format!("/api/products/{id}"), Some(SELLER_A))
            .header("If-None-Match", tag)
            .send()
    };
    let cases = [
        ("\"v1\"", StatusCode::NOT_MODIFIED),
        ("W/\"v1\"", StatusCode::NOT_MODIFIED),
        ("\"v0\", \"v1\"", StatusCode::NOT_MODIFIED),
        ("*", StatusCode::NOT_MODIFIED),
        ("\"v2\"", StatusCode::OK),
        ("garbage", StatusCode::OK),
    ];
    for (tag, status) in cases {
        let resp = get(tag).await.expect("sent");
        assert_eq!(resp.status(), status, "If-None-Match: {tag}");
        assert_eq!(resp.headers()["etag"], "\"v1\"", "If-None-Match: {tag}");
        if status == StatusCode::NOT_MODIFIED {
            assert!(
                resp.bytes().await.expect("body").is_empty(),
                "304 has no body"
            );
        }
    }
    app.update(SELLER_A, id, &json!({ "quantity": 1 })).await;
    assert_eq!(get("\"v1\"").await.expect("sent").status(), StatusCode::OK);
}

async fn if_match_guards_updates_and_deletes(app: TestApp) {
    let id = id_of(&app.create_ok(SELLER_A, &product(json!({}))).await);
    let put = |tag: &'static str, price: f64| {
        app.request(Method::PUT, &format!("/api/products/{id}"), Some(SELLER_A))
            .header("If-Match", tag)
            .json(&json!({ "price": price }))
            .send()
    };
    let resp = put("\"v1\"", 10.0).await.expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["etag"], "\"v2\"");

    // Stale and weak tags fail; nothing changes.
    for stale in ["\"v1\"", "W/\"v2\"", "nonsense"] {
        let resp = put(stale, 99.0).await.expect("sent");
        assert_problem(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED").await;
    }
    let now: serde_json::Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(now["price"], 10.0);
    assert_eq!(now["version"], 2);

    assert_eq!(put("*", 11.0).await.expect("sent").status(), StatusCode::OK);

    let delete = |tag: &'static str| {
        app.request(
            Method::DELETE,
            &format!("/api/products/{id}"),
            Some(SELLER_A),
        )
        .header("If-Match", tag)
        .send()
    };
    let resp = delete("\"v2\"").await.expect("sent");
    assert_problem(resp, StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED").await;
    assert_eq!(
        delete("\"v3\"").await.expect("sent").status(),
        StatusCode::OK
    );
    let resp = delete("*").await.expect("sent");
    assert_problem(resp, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
}
