//! Every validation rule at its boundary, table-driven. Each rejection is a 400 naming the
//! field, the constraint and the rejected value, and writes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(create_rules, update_rules, query_and_path_rules);

fn long(n: usize) -> String {
    "x".repeat(n)
}

/// (case, field, value, accepted?)
fn field_cases() -> Vec<(&'static str, &'static str, Value, bool)> {
    vec![
        ("name empty", "name", json!(""), false),
        ("name 1 char", "name", json!("a"), true),
        ("name 255 chars", "name", json!(long(255)), true),
        ("name 256 chars", "name", json!(long(256)), false),
        (
            "name 255 multibyte chars",
            "name",
            json!("é".repeat(255)),
            true,
        ),
        ("name only spaces", "name", json!("   "), false),
        ("name number", "name", json!(5), false),
        ("description 2000", "description", json!(long(2000)), true),
        ("description 2001", "description", json!(long(2001)), false),
        ("description null", "description", json!(null), true),
        ("price 0", "price", json!(0), false),
        ("price negative", "price", json!(-5), false),
        ("price 0.01", "price", json!(0.01), true),
        ("price three decimals", "price", json!(1.001), false),
        ("price max", "price", json!(999999999.99), true),
        ("price over max", "price", json!(1000000000), false),
        ("price string", "price", json!("12"), false),
        ("quantity -1", "quantity", json!(-1), false),
        ("quantity 0", "quantity", json!(0), true),
        ("quantity int32 max", "quantity", json!(2147483647), true),
        (
            "quantity over int32",
            "quantity",
            json!(2147483648_i64),
            false,
        ),
        ("quantity fraction", "quantity", json!(1.5), false),
        ("quantity string", "quantity", json!("12abc"), false),
        ("category empty", "category", json!(""), false),
        ("category 100", "category", json!(long(100)), true),
        ("category 101", "category", json!(long(101)), false),
        ("sku empty", "sku", json!(""), false),
        ("sku 64", "sku", json!("S".repeat(64)), true),
        ("sku 65", "sku", json!("S".repeat(65)), false),
        ("sku with space", "sku", json!("A B"), false),
        ("sku punctuation", "sku", json!("a.B_c-9"), true),
        ("sku unicode", "sku", json!("ÄBC"), false),
        ("threshold -1", "low_stock_threshold", json!(-1), false),
        ("threshold 0", "low_stock_threshold", json!(0), true),
    ]
}

async fn create_rules(app: TestApp) {
    let mut accepted = 0;
    for (case, field, value, ok) in field_cases() {
        let mut body = product(json!({}));
        body[field] = value.clone();
        let resp = app.create(SELLER_A, &body).await;
        if ok {
            assert_eq!(resp.status(), StatusCode::CREATED, "{case}");
            accepted += 1;
            continue;
        }
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(problem["details"]["field"], field, "{case}: {problem}");
        assert_eq!(problem["details"]["value"], value, "{case}: {problem}");
        assert!(
            problem["details"]["constraint"].is_string(),
            "{case}: {problem}"
        );
    }
    for field in ["name", "price", "quantity", "category"] {
        let mut body = product(json!({}));
        body.as_object_mut().expect("object").remove(field);
        let problem = assert_problem(
            app.create(SELLER_A, &body).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(problem["details"]["field"], field, "missing {field}");
        assert_eq!(
            problem["details"]["constraint"], "required",
            "missing {field}"
        );
    }
    // Unknown fields are ignored, as the Node.js service did.
    let resp = app
        .create(SELLER_A, &product(json!({ "id": 999, "colour": "red" })))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    accepted += 1;
    let list: Value = app
        .list(SELLER_A, "limit=100")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["pagination"]["total"], accepted,
        "rejected requests wrote nothing"
    );
}

async fn update_rules(app: TestApp) {
    let original = app.create_ok(SELLER_A, &product(json!({}))).await;
    let id = id_of(&original);
    for (case, field, value, ok) in field_cases() {
        let resp = app.update(SELLER_A, id, &json!({ field: value })).await;
        if ok {
            assert_eq!(resp.status(), StatusCode::OK, "{case}");
            continue;
        }
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(problem["details"]["field"], field, "{case}: {problem}");
    }
    let problem = assert_problem(
        app.update(SELLER_A, id, &json!({})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(problem["message"]
        .as_str()
        .expect("message")
        .contains("at least one field"));
}

async fn query_and_path_rules(app: TestApp) {
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("sort_by=colour", "sort_by"),
        ("sort_order=up", "sort_order"),
        ("min_quantity=-1", "min_quantity"),
        ("max_quantity=1.5", "max_quantity"),
    ];
    for (query, field) in cases {
        let problem = assert_problem(
            app.list(SELLER_A, query).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(problem["details"]["field"], field, "{query}: {problem}");
        let raw = query.split_once('=').map(|(_, v)| v).expect("value");
        assert_eq!(problem["details"]["value"], raw, "{query}: {problem}");
    }
    for (limit, ok) in [("1", true), ("100", true)] {
        assert_eq!(
            app.list(SELLER_A, &format!("limit={limit}"))
                .await
                .status()
                .is_success(),
            ok
        );
    }
    for path in [
        "/api/products/abc",
        "/api/products/0",
        "/api/products/99999999999999999999",
        "/api/products/-3",
    ] {
        let resp = app
            .request(Method::GET, path, Some(SELLER_A))
            .send()
            .await
            .expect("sent");
        let problem = assert_problem(resp, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(problem["details"]["field"], "id", "{path}: {problem}");
    }
}
