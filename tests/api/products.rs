//! Happy paths of every product operation, and the contract fields existing clients read.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, id_of, product, TestApp, SELLER_A};
use crate::on_both_databases;

on_both_databases!(
    create_returns_the_product_with_location_and_etag,
    get_update_delete_round_trip,
    prices_are_exact,
    filters_and_search,
    deleted_sku_is_free_again,
    duplicate_sku_is_409,
);

async fn create_returns_the_product_with_location_and_etag(app: TestApp) {
    let body = product(json!({ "sku": "WM-01", "low_stock_threshold": 5 }));
    let resp = app.create(SELLER_A, &body).await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let etag = resp.headers()["etag"].to_str().expect("ascii").to_string();
    let p: serde_json::Value = resp.json().await.expect("json");
    let id = id_of(&p);
    assert_eq!(location, format!("/api/products/{id}"));
    assert_eq!(etag, "\"v1\"");
    assert_eq!(p["seller_id"], SELLER_A);
    assert_eq!(p["name"], "Wireless Mouse");
    assert_eq!(p["description"], "Ergonomic");
    assert_eq!(p["price"], 29.99);
    assert_eq!(p["quantity"], 150);
    assert_eq!(p["category"], "Electronics");
    assert_eq!(p["sku"], "WM-01");
    assert_eq!(p["low_stock_threshold"], 5);
    assert_eq!(p["version"], 1);
    for field in ["created_at", "updated_at"] {
        let ts = p[field].as_str().expect("timestamp string");
        assert!(
            chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
            "{field}: {ts}"
        );
    }
}

async fn get_update_delete_round_trip(app: TestApp) {
    let created = app.create_ok(SELLER_A, &product(json!({}))).await;
    let id = id_of(&created);

    let got: serde_json::Value = app.get(SELLER_A, id).await.json().await.expect("json");
    assert_eq!(
        got, created,
        "a read returns exactly what the write returned"
    );

    let resp = app
        .update(
            SELLER_A,
            id,
            &json!({ "price": 24.99, "description": null }),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["etag"], "\"v2\"");
    let updated: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(updated["price"], 24.99);
    assert_eq!(updated["description"], serde_json::Value::Null);
    assert_eq!(
        updated["name"], created["name"],
        "untouched fields keep their values"
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_ne!(updated["updated_at"], created["updated_at"]);

    let resp = app.delete(SELLER_A, id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "message": "Product deleted successfully", "deleted_id": id })
    );

    assert_problem(
        app.get(SELLER_A, id).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    assert_problem(
        app.delete(SELLER_A, id).await,
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
    )
    .await;
    let list: serde_json::Value = app.list(SELLER_A, "").await.json().await.expect("json");
    assert_eq!(list["pagination"]["total"], 0);
}

async fn prices_are_exact(app: TestApp) {
    for price in [0.01, 0.1, 0.3, 19.99, 1234567.89, 999999999.99] {
        let p = app
            .create_ok(SELLER_A, &product(json!({ "price": price })))
            .await;
        assert_eq!(p["price"], price, "create {price}");
        let got: serde_json::Value = app
            .get(SELLER_A, id_of(&p))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(got["price"], price, "read back {price}");
    }
}

async fn filters_and_search(app: TestApp) {
    let specs = [
        ("Red Chair", "Furniture", 3, Some("CH-RED")),
        ("Blue chair", "Furniture", 30, None),
        ("Desk Lamp", "Lighting", 12, Some("lamp-chair-01")),
        ("100% Cotton_Shirt", "Clothing", 0, None),
    ];
    for (name, category, quantity, sku) in specs {
        let mut body = product(json!({ "name": name, "category": category, "quantity": quantity }));
        if let Some(sku) = sku {
            body["sku"] = json!(sku);
        }
        app.create_ok(SELLER_A, &body).await;
    }
    let cases = [
        ("category=Furniture", vec!["Blue chair", "Red Chair"]),
        ("min_quantity=10", vec!["Blue chair", "Desk Lamp"]),
        ("max_quantity=3", vec!["100% Cotton_Shirt", "Red Chair"]),
        ("min_quantity=4&max_quantity=20", vec!["Desk Lamp"]),
        ("q=CHAIR", vec!["Blue chair", "Desk Lamp", "Red Chair"]),
        ("q=ch-red", vec!["Red Chair"]),
        ("q=100%25", vec!["100% Cotton_Shirt"]),
        ("q=n_s", vec!["100% Cotton_Shirt"]),
        ("q=%25", vec!["100% Cotton_Shirt"]),
        ("sku=lamp-chair-01", vec!["Desk Lamp"]),
        ("sku=LAMP-CHAIR-01", vec![]),
        ("category=Nothing", vec![]),
    ];
    for (query, expected) in cases {
        let list: serde_json::Value = app
            .list(SELLER_A, &format!("{query}&sort_by=name&sort_order=asc"))
            .await
            .json()
            .await
            .expect("json");
        let names: Vec<&str> = list["data"]
            .as_array()
            .expect("data array")
            .iter()
            .map(|p| p["name"].as_str().expect("name"))
            .collect();
        let mut expected = expected.clone();
        expected.sort();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "query {query}");
        assert_eq!(
            list["pagination"]["total"],
            expected.len(),
            "total for {query}"
        );
    }
}

async fn deleted_sku_is_free_again(app: TestApp) {
    let first = app
        .create_ok(SELLER_A, &product(json!({ "sku": "REUSE-1" })))
        .await;
    assert_eq!(
        app.delete(SELLER_A, id_of(&first)).await.status(),
        StatusCode::OK
    );
    let second = app
        .create_ok(SELLER_A, &product(json!({ "sku": "REUSE-1" })))
        .await;
    assert_ne!(id_of(&first), id_of(&second));
}

async fn duplicate_sku_is_409(app: TestApp) {
    app.create_ok(SELLER_A, &product(json!({ "sku": "DUP-1" })))
        .await;
    let resp = app
        .create(SELLER_A, &product(json!({ "sku": "DUP-1" })))
        .await;
    let body = assert_problem(resp, StatusCode::CONFLICT, "DUPLICATE_RESOURCE").await;
    assert_eq!(body["details"]["field"], "sku");

    // An update onto a taken sku is refused the same way and changes nothing.
    let other = app
        .create_ok(SELLER_A, &product(json!({ "sku": "DUP-2" })))
        .await;
    let resp = app
        .update(
            SELLER_A,
            id_of(&other),
            &json!({ "sku": "DUP-1", "price": 5 }),
        )
        .await;
    assert_problem(resp, StatusCode::CONFLICT, "DUPLICATE_RESOURCE").await;
    let unchanged: serde_json::Value = app
        .get(SELLER_A, id_of(&other))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unchanged, other);

    // Clearing a sku frees it.
    let resp = app
        .request(
            Method::PUT,
            &format!("/api/products/{}", id_of(&other)),
            Some(SELLER_A),
        )
        .json(&json!({ "sku": null }))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let cleared: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(cleared["sku"], serde_json::Value::Null);
}
