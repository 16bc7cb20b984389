//! What the framework rejects is problem+json too, and identity is checked first.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, product, Backend, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(seller_header_rules, framework_errors_are_problems);

async fn seller_header_rules(app: TestApp) {
    let resp = app
        .request(Method::GET, "/api/products", None)
        .send()
        .await
        .expect("sent");
    let problem = assert_problem(resp, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;
    assert_eq!(problem["message"], "X-Seller-Id header required");
    let bad = [
        "seller",
        "seller-",
        "seller-a b",
        "SELLER-1",
        "seller-ü",
        "seller_1",
        &format!("seller-{}", "a".repeat(44)),
    ];
    for value in bad {
        let resp = app
            .request(Method::GET, "/api/products", Some(value))
            .send()
            .await
            .expect("sent");
        assert_problem(resp, StatusCode::UNAUTHORIZED, "INVALID_SELLER_ID").await;
    }
    let longest = format!("seller-{}", "a".repeat(43));
    let resp = app
        .request(Method::GET, "/api/products", Some(&longest))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    // Identity is checked on writes before anything else.
    let resp = app
        .request(Method::POST, "/api/products", None)
        .json(&product(json!({})))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;
}

async fn framework_errors_are_problems(app: TestApp) {
    let resp = app
        .request(Method::GET, "/api/nothing-here", Some(SELLER_A))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let resp = app
        .request(Method::PATCH, "/api/products/1", Some(SELLER_A))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;

    let cases: [(&str, &str, StatusCode, &str); 5] = [
        (
            "application/json",
            "{\"name\": ",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "application/json",
            "",
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
        ),
        (
            "application/json",
            "[1, 2]",
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        ),
        (
            "text/plain",
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "application/xml",
            "<a/>",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let resp = app
            .request(Method::POST, "/api/products", Some(SELLER_A))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("sent");
        assert_problem(resp, status, code).await;
    }
    let list: serde_json::Value = app.list(SELLER_A, "").await.json().await.expect("json");
    assert_eq!(list["pagination"]["total"], 0, "nothing was written");
}

/// The limit is set low here so each request fits in one socket write: the server can answer
/// 413 without the client still writing, which keeps the test deterministic.
#[tokio::test]
async fn bodies_are_bounded() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("JSON_BODY_LIMIT_BYTES", "4096")]).await;
    let huge = product(json!({ "description": "x".repeat(8 * 1024) }));
    let problem = assert_problem(
        app.create(SELLER_A, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(problem["details"]["limit"], 4096);
    // Without a Content-Length the limit still holds while streaming.
    let chunks = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let resp = app
        .request(Method::POST, "/api/products", Some(SELLER_A))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    // Just under the limit is accepted.
    let fits = product(json!({ "description": "x".repeat(1900) }));
    assert_eq!(
        app.create(SELLER_A, &fits).await.status(),
        StatusCode::CREATED
    );
}
