//! PostgreSQL keeps each seller's live-product count in `seller_product_counts` by triggers;
//! an unfiltered list reads its total from there. Every kind of write keeps it exact.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    helpers::{count, fresh_seller, id_of, product, Backend, TestApp},
    imports::import,
};

async fn kept(app: &TestApp, seller: &str) -> i64 {
    count(
        &app.db_url,
        &format!("SELECT COALESCE((SELECT live FROM seller_product_counts WHERE seller_id = '{seller}'), 0) AS n"),
    )
    .await
}

async fn counted(app: &TestApp, seller: &str) -> i64 {
    count(
        &app.db_url,
        &format!("SELECT COUNT(*) AS n FROM products WHERE seller_id = '{seller}' AND deleted_at IS NULL"),
    )
    .await
}

async fn listed_total(app: &TestApp, seller: &str) -> i64 {
    let list: Value = app
        .list(seller, "limit=1")
        .await
        .json()
        .await
        .expect("json");
    list["pagination"]["total"].as_i64().expect("total")
}

/// The kept count, the real count and the list's total agree, and equal `expected`.
async fn agree(app: &TestApp, seller: &str, expected: i64, after: &str) {
    assert_eq!(counted(app, seller).await, expected, "{after}: products");
    assert_eq!(kept(app, seller).await, expected, "{after}: kept count");
    assert_eq!(
        listed_total(app, seller).await,
        expected,
        "{after}: list total"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_keeps_the_sellers_count_exact() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let (seller, other) = (fresh_seller(), fresh_seller());
    agree(&app, &seller, 0, "nothing yet").await;

    // Concurrent creates, of two sellers.
    let bodies: Vec<(String, Value)> = (0..12)
        .map(|i| {
            let who = if i % 3 == 0 { &other } else { &seller };
            (who.clone(), product(json!({ "sku": format!("S-{i}") })))
        })
        .collect();
    let answers = join_all(bodies.iter().map(|(who, body)| app.create(who, body))).await;
    let mut created = Vec::new();
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::CREATED);
        created.push(resp.json::<Value>().await.expect("json"));
    }
    agree(&app, &seller, 8, "12 concurrent creates").await;
    agree(&app, &other, 4, "12 concurrent creates").await;

    // Updates and adjustments change no count; a soft delete does, once.
    let mine: Vec<i64> = created
        .iter()
        .filter(|p| p["seller_id"] == seller.as_str())
        .map(id_of)
        .collect();
    assert_eq!(
        app.update(&seller, mine[0], &json!({ "price": 1 }))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.adjust(&seller, mine[0], 5).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.delete(&seller, mine[1]).await.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&seller, mine[1]).await.status(),
        StatusCode::NOT_FOUND
    );
    agree(
        &app,
        &seller,
        7,
        "an update, an adjustment, a delete and a repeated delete",
    )
    .await;

    // An import that creates three and updates two existing skus.
    let done = import(&app, &seller, "", "name,price,quantity,category,sku\nA,1,1,C,S-1\nB,2,2,C,S-4\nN1,3,3,C,N-1\nN2,4,4,C,N-2\nN3,5,5,C,N-3\n").await;
    assert_eq!(
        (done["created"].as_i64(), done["updated"].as_i64()),
        (Some(3), Some(2))
    );
    agree(&app, &seller, 10, "an import of 3 new and 2 existing skus").await;

    // Rows removed for good (by hand: the service only soft-deletes).
    let db = sea_orm::Database::connect(&app.db_url).await.expect("db");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("DELETE FROM products WHERE seller_id = '{seller}' AND sku LIKE 'N-%'"),
    )
    .await
    .expect("delete");
    agree(&app, &seller, 7, "a hard delete of three").await;
    agree(&app, &other, 4, "the other seller, untouched").await;
    // Filtered totals are counted, not kept.
    let list: Value = app
        .list(&seller, "sku=S-1")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["pagination"]["total"], 1);
}
