//! An import whose instance is killed mid-way is finished by another: every row once, every
//! product's event once, one `ImportCompleted`: the file is in PostgreSQL, not on the killed
//! instance's disk.

use std::time::{Duration, Instant};

use reqwest::{multipart, StatusCode};
use serde_json::Value;

use crate::cluster::{fresh_seller, Cluster, Settings, NAMES};

const ROWS: usize = 200_000;

fn csv() -> Vec<u8> {
    let mut file = String::from("name,price,quantity,category\n");
    for i in 0..ROWS {
        file.push_str(&format!(
            "Imported {i},{}.99,{},Bulk\n",
            i % 500 + 1,
            i % 90 + 20
        ));
    }
    file.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_survives_the_sigkill_of_its_instance() {
    let mut cluster = Cluster::start(
        "import",
        Settings {
            extra: vec![("IMPORT_BATCH_SIZE", "500".into())],
            ..Settings::default()
        },
    )
    .await;
    let seller = fresh_seller();
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(csv())
            .file_name("products.csv")
            .mime_str("text/csv")
            .expect("MIME type"),
    );
    let accepted = cluster
        .client
        .post(cluster.lb_url("/api/products/import"))
        .header("X-Seller-Id", &seller)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let location = accepted.headers()["location"]
        .to_str()
        .expect("Location")
        .to_string();
    let import_id = accepted.json::<Value>().await.expect("JSON")["import_id"]
        .as_str()
        .expect("import_id")
        .to_string();
    let status_url = if location.starts_with("http") {
        location
    } else {
        cluster.lb_url(&location)
    };
    let status = |cluster: &Cluster| {
        let request = cluster
            .client
            .get(&status_url)
            .header("X-Seller-Id", &seller)
            .timeout(Duration::from_secs(10))
            .send();
        async move {
            let response = request.await.ok()?;
            if response.status() != StatusCode::OK {
                return None;
            }
            response.json::<Value>().await.ok()
        }
    };

    // The instance running it: `product_api_imports_running 1`, once rows are written.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runner = loop {
        let mut running = None;
        for name in NAMES {
            if cluster.metric(name, "product_api_imports_running").await == Some(1.0) {
                running = Some(name);
            }
        }
        let processed = status(&cluster)
            .await
            .and_then(|s| s["processed"].as_i64())
            .unwrap_or(0);
        if let (Some(name), true) = (running, processed > 0) {
            break name;
        }
        assert!(
            Instant::now() < deadline,
            "no instance ran the import within a minute (processed {processed})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let before = status(&cluster).await.expect("status before the kill");
    assert!(
        before["processed"].as_i64() < Some(ROWS as i64),
        "the import was under way, not done: {before}"
    );
    cluster.kill(runner);
    // Its local disk goes with it, as a container's or a machine's would (the instances share
    // one file system here): nothing of the import may be there.
    let spool = cluster.spool_dir(runner);
    let spooled = std::fs::read_dir(&spool).map_or(0, |dir| dir.count());
    assert_eq!(
        spooled, 0,
        "the file is in the database, not on {runner}'s disk"
    );
    if spool.exists() {
        std::fs::remove_dir_all(&spool)
            .unwrap_or_else(|e| panic!("remove {}: {e}", spool.display()));
    }

    // Another instance takes it over and completes it; no progress for 60 s is a failure.
    let mut last_progress = (Instant::now(), -1);
    let done = loop {
        if let Some(s) = status(&cluster).await {
            if s["status"] == "completed" || s["status"] == "failed" {
                break s;
            }
            let processed = s["processed"].as_i64().unwrap_or(-1);
            if processed != last_progress.1 {
                last_progress = (Instant::now(), processed);
            }
        }
        assert!(
            last_progress.0.elapsed() < Duration::from_secs(60),
            "the import made no progress for 60 s after {runner} was killed: {:?}",
            status(&cluster).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["created"], ROWS, "{done}");
    assert_eq!(done["failed"], 0, "{done}");

    let db = cluster.db().await;
    let products = format!("FROM products WHERE seller_id = '{seller}' AND deleted_at IS NULL");
    assert_eq!(
        cluster
            .count(&db, &format!("SELECT COUNT(*) AS n {products}"))
            .await,
        ROWS as i64,
        "one product per row"
    );
    assert_eq!(
        cluster
            .count(&db, &format!("SELECT COUNT(DISTINCT name) AS n {products}"))
            .await,
        ROWS as i64,
        "every row once"
    );
    let created =
        format!("FROM outbox WHERE seller_id = '{seller}' AND event_type = 'ProductCreated'");
    assert_eq!(
        cluster
            .count(&db, &format!("SELECT COUNT(*) AS n {created}"))
            .await,
        ROWS as i64,
        "one ProductCreated per product"
    );
    assert_eq!(
        cluster
            .count(
                &db,
                &format!("SELECT COUNT(DISTINCT product_id) AS n {created}")
            )
            .await,
        ROWS as i64,
        "for every product"
    );
    assert_eq!(
        cluster
            .count(
                &db,
                &format!(
                    "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'ImportCompleted' \
                     AND payload::jsonb -> 'data' ->> 'importId' = '{import_id}'"
                ),
            )
            .await,
        1,
        "one ImportCompleted"
    );
}
