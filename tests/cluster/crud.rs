//! One seller's flow through the balancer, its requests landing on different instances:
//! CRUD, idempotent retries and conditional updates behave as on one instance.

use std::collections::BTreeSet;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::cluster::{fresh_seller, product, served_by, Cluster, Settings, NAMES};

/// Records who served each response of the flow.
#[derive(Default)]
struct Servers(BTreeSet<String>);

impl Servers {
    /// Sends `request` and notes who served it.
    async fn send(&mut self, request: RequestBuilder, what: &str) -> Response {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let by = served_by(&response);
        assert!(
            NAMES.contains(&by.as_str()),
            "X-Served-By names an instance: {by:?}"
        );
        self.0.insert(by);
        response
    }
}

fn etag(response: &Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("ASCII ETag")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_idempotency_and_conditional_updates_hold_across_instances() {
    let cluster = Cluster::start("crud", Settings::default()).await;
    let client = &cluster.client;
    let seller = fresh_seller();
    let products = cluster.lb_url("/api/products");
    let mut servers = Servers::default();

    // The same POST twice, with one Idempotency-Key: the second replays the first.
    let body = product("Idempotent lamp");
    let post = |key: &'static str| {
        client
            .post(&products)
            .header("X-Seller-Id", &seller)
            .header("Idempotency-Key", key)
            .json(&body)
    };
    let first = servers.send(post("lamp-1"), "first POST").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("JSON product");
    let again = servers.send(post("lamp-1"), "retried POST").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.json::<Value>().await.expect("JSON"), first);
    let id = first["id"].as_i64().expect("integer id");

    // Concurrent retries of another key, one straight to each instance: still one product.
    let body = product("Concurrent lamp");
    let retries = NAMES.map(|name| {
        client
            .post(cluster.direct_url(name, "/api/products"))
            .header("X-Seller-Id", &seller)
            .header("Idempotency-Key", "lamp-2")
            .json(&body)
            .send()
    });
    let mut ids = BTreeSet::new();
    for response in futures::future::join_all(retries).await {
        let response = response.expect("concurrent POST");
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.expect("JSON");
        ids.insert(created["id"].as_i64().expect("integer id"));
    }
    assert_eq!(ids.len(), 1, "one product for one key: {ids:?}");

    let db = cluster.db().await;
    let rows = cluster
        .count(
            &db,
            &format!("SELECT COUNT(*) AS n FROM products WHERE seller_id = '{seller}'"),
        )
        .await;
    assert_eq!(rows, 2, "one row per Idempotency-Key");

    // Read, update with the current version, then with the stale one.
    let url = cluster.lb_url(&format!("/api/products/{id}"));
    let read = servers
        .send(client.get(&url).header("X-Seller-Id", &seller), "GET")
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let v1 = etag(&read);
    let updated = servers
        .send(
            client
                .put(&url)
                .header("X-Seller-Id", &seller)
                .header("If-Match", &v1)
                .json(&serde_json::json!({ "price": 9.99 })),
            "PUT",
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let v2 = etag(&updated);
    assert_ne!(v1, v2, "the version moved");
    let stale = servers
        .send(
            client
                .put(&url)
                .header("X-Seller-Id", &seller)
                .header("If-Match", &v1)
                .json(&serde_json::json!({ "price": 1.0 })),
            "stale PUT",
        )
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let problem: Value = stale.json().await.expect("problem+json");
    assert_eq!(problem["error_code"], "PRECONDITION_FAILED");

    let unchanged = servers
        .send(
            client
                .get(&url)
                .header("X-Seller-Id", &seller)
                .header("If-None-Match", &v2),
            "conditional GET",
        )
        .await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    let current = servers
        .send(client.get(&url).header("X-Seller-Id", &seller), "GET")
        .await;
    let current: Value = current.json().await.expect("JSON");
    assert_eq!(current["price"], 9.99, "the stale update changed nothing");

    // Delete guarded by the version; then it is gone everywhere.
    let deleted = servers
        .send(
            client
                .delete(&url)
                .header("X-Seller-Id", &seller)
                .header("If-Match", &v1),
            "stale DELETE",
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::PRECONDITION_FAILED);
    let deleted = servers
        .send(
            client
                .delete(&url)
                .header("X-Seller-Id", &seller)
                .header("If-Match", &v2),
            "DELETE",
        )
        .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    for name in NAMES {
        let gone = client
            .get(cluster.direct_url(name, &format!("/api/products/{id}")))
            .header("X-Seller-Id", &seller)
            .send()
            .await
            .expect("GET after delete");
        assert_eq!(gone.status(), StatusCode::NOT_FOUND, "on {name}");
    }
    let list = servers
        .send(client.get(&products).header("X-Seller-Id", &seller), "list")
        .await;
    let list: Value = list.json().await.expect("JSON list");
    assert_eq!(list["pagination"]["total"], 1, "{list}");

    assert!(
        servers.0.len() >= 2,
        "the flow went through several instances: {:?}",
        servers.0
    );
}
