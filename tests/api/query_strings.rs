//! List and export queries as existing clients send them: the Node.js service's web app
//! (axios: cleared filters as `category=`, undefined ones left out, defaults spelled out),
//! hand-written URLs (a bare `category`), and the ambiguous (a parameter given twice).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A};
use crate::on_both_databases;

/// What a query must answer: these products (by name, in order), or a 400 naming a parameter.
enum Expect {
    Names(&'static [&'static str]),
    Invalid(&'static str),
}
use Expect::{Invalid, Names};

/// Three products, created oldest first: A (Books, 5), B (Electronics, 50), C (Books, 100).
async fn three_products(app: &TestApp) {
    for (name, category, quantity, price) in [
        ("A", "Books", 5, 10.0),
        ("B", "Electronics", 50, 20.0),
        ("C", "Books", 100, 30.0),
    ] {
        let body =
            json!({ "name": name, "category": category, "quantity": quantity, "price": price });
        id_of(&app.create_ok(SELLER_A, &product(body)).await);
        // created_at has millisecond resolution: keep the default order deterministic.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn check(
    app: &TestApp,
    path: &str,
    query: &str,
    expect: &Expect,
    names: impl AsyncFnOnce(reqwest::Response) -> Vec<String>,
) {
    let resp = app
        .request(Method::GET, &format!("{path}?{query}"), Some(SELLER_A))
        .send()
        .await
        .expect("sent");
    match expect {
        Names(expected) => {
            assert_eq!(resp.status(), StatusCode::OK, "{path}?{query}");
            assert_eq!(names(resp).await, *expected, "{path}?{query}");
        }
        Invalid(parameter) => {
            let body = assert_problem(resp, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(parameter)),
                "{path}?{query}: {body}"
            );
        }
    }
}

on_both_databases!(list_queries_as_old_clients_send_them);

async fn list_queries_as_old_clients_send_them(app: TestApp) {
    three_products(&app).await;
    let cases = [
        // What the web app sends on load and after clearing the category box.
        (
            "page=1&limit=20&category=&sort_by=created_at&sort_order=desc",
            Names(&["C", "B", "A"]),
        ),
        ("", Names(&["C", "B", "A"])),
        ("category=", Names(&["C", "B", "A"])),
        ("category", Names(&["C", "B", "A"])),
        ("category=Books", Names(&["C", "A"])),
        ("category=%20", Names(&[])),
        ("category=Books&category=", Names(&["C", "A"])),
        ("category=&category=Books", Names(&["C", "A"])),
        ("min_quantity=&max_quantity=", Names(&["C", "B", "A"])),
        ("min_quantity=10&max_quantity=", Names(&["C", "B"])),
        ("page=&limit=", Names(&["C", "B", "A"])),
        ("sort_by=&sort_order=", Names(&["C", "B", "A"])),
        (
            "sort_by=price&sort_order=asc&category=",
            Names(&["A", "B", "C"]),
        ),
        ("q=&sku=&cursor=", Names(&["C", "B", "A"])),
        ("limit=2&category=", Names(&["C", "B"])),
        ("page=2&limit=2&category=", Names(&["A"])),
        ("category=Books&category=Electronics", Invalid("category")),
        ("limit=2&limit=3", Invalid("limit")),
        ("min_quantity=abc", Invalid("min_quantity")),
        ("limit=0", Invalid("limit")),
        ("sort_by=colour", Invalid("sort_by")),
    ];
    for (query, expect) in &cases {
        check(&app, "/api/products", query, expect, async |resp| {
            let list: Value = resp.json().await.expect("list JSON");
            list["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|p| p["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .await;
    }

    // Defaults spelled out by an empty value are the defaults.
    let resp = app.list(SELLER_A, "page=&limit=").await;
    let list: Value = resp.json().await.expect("list JSON");
    assert_eq!(list["pagination"]["page"], 1);
    assert_eq!(list["pagination"]["limit"], 20);
    assert_eq!(list["pagination"]["total"], 3);
}

on_both_databases!(export_queries_as_old_clients_send_them);

async fn export_queries_as_old_clients_send_them(app: TestApp) {
    three_products(&app).await;
    let cases = [
        ("category=", Names(&["A", "B", "C"])),
        ("category", Names(&["A", "B", "C"])),
        ("category=Books&category=", Names(&["A", "C"])),
        (
            "min_quantity=&max_quantity=&q=&sku=",
            Names(&["A", "B", "C"]),
        ),
        ("min_quantity=10&max_quantity=", Names(&["B", "C"])),
        ("category=Books&category=Electronics", Invalid("category")),
        ("max_quantity=x", Invalid("max_quantity")),
    ];
    for (query, expect) in &cases {
        check(&app, "/api/products/export", query, expect, async |resp| {
            let body = resp.text().await.expect("CSV");
            csv::Reader::from_reader(body.as_bytes())
                .deserialize::<std::collections::HashMap<String, String>>()
                .map(|row| row.expect("CSV row")["name"].clone())
                .collect()
        })
        .await;
    }
}

on_both_databases!(the_stream_reads_an_empty_seller_id_as_none);

async fn the_stream_reads_an_empty_seller_id_as_none(app: TestApp) {
    let resp = app
        .request(Method::GET, "/api/events/stream?sellerId=", None)
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;

    // The header still names the seller when the query value is empty.
    let resp = app
        .request(
            Method::GET,
            "/api/events/stream?sellerId=&types=",
            Some(SELLER_A),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
}
