//! A seller's outbox ids follow its commit order on PostgreSQL, for batch appends too: they
//! take the seller's lock before drawing ids, as the per-row trigger does for other writers.

use std::time::Duration;

use product_api::repository::outbox::{append, NewRow};
use sea_orm::{Database, TransactionTrait};

use crate::helpers::{fresh_seller, Backend, TestApp};

fn events(seller: &str, n: i64) -> Vec<NewRow> {
    (0..n)
        .map(|i| NewRow {
            seller_id: seller.to_string(),
            event_type: "ProductCreated",
            product_id: i,
            payload: format!("{{\"n\":{i}}}"),
            created_at: chrono::Utc::now(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waits_for_the_sellers_open_transaction_before_drawing_ids() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let db = Database::connect(&app.db_url).await.expect("db");
    let (seller, other) = (fresh_seller(), fresh_seller());

    let first = db.begin().await.expect("begin");
    let first_ids: Vec<i64> = append(&first, events(&seller, 3))
        .await
        .expect("append")
        .iter()
        .map(|r| r.id)
        .collect();
    assert!(
        first_ids.windows(2).all(|w| w[0] < w[1]),
        "in order: {first_ids:?}"
    );

    // Another seller's batch and single event do not wait.
    let unrelated = tokio::time::timeout(Duration::from_secs(2), async {
        let t = db.begin().await.expect("begin");
        append(&t, events(&other, 3)).await.expect("append");
        append(&t, events(&other, 1)).await.expect("append");
        t.commit().await.expect("commit");
    });
    unrelated
        .await
        .expect("another seller's appends do not wait");

    // The same seller's batch waits until the first transaction commits, then draws later ids.
    let second_db = db.clone();
    let seller2 = seller.clone();
    let second = tokio::spawn(async move {
        let t = second_db.begin().await.expect("begin");
        let ids: Vec<i64> = append(&t, events(&seller2, 3))
            .await
            .expect("append")
            .iter()
            .map(|r| r.id)
            .collect();
        t.commit().await.expect("commit");
        ids
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !second.is_finished(),
        "the second batch waits for the seller's open transaction"
    );
    first.commit().await.expect("commit");
    let second_ids = second.await.expect("joined");
    assert!(
        second_ids.iter().min() > first_ids.iter().max(),
        "{first_ids:?} then {second_ids:?}"
    );
}
