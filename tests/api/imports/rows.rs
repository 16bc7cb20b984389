//! Importing rows: the sample file with its events, dry runs, both error policies, upsert
//! by sku (also across batches), and malformed CSV reported by line.

use super::*;
use crate::helpers::Backend;

on_both_databases!(
    imports_the_sample_file_with_its_events,
    a_dry_run_counts_and_writes_nothing,
    skip_invalid_imports_the_valid_rows_and_reports_the_others,
    abort_writes_nothing_when_a_row_is_invalid,
    upserts_by_sku_and_counts_unchanged_rows,
    upsert_without_a_sku_column_creates_every_row,
    malformed_csv_is_reported_by_line,
);

async fn imports_the_sample_file_with_its_events(app: TestApp) {
    let sample = std::fs::read(SAMPLE).expect("sample file");
    let expected: Vec<csv::StringRecord> = csv::Reader::from_reader(sample.as_slice())
        .records()
        .map(|r| r.expect("sample is valid CSV"))
        .collect();
    let mut sse = Sse::connect(&app, SELLER_A, "types=ImportCompleted", None).await;

    let id = accepted(send_form(&app, SELLER_A, "", csv_part(sample)).await).await;
    let done = finished(&app, SELLER_A, &id).await;

    assert_eq!(done["status"], "completed", "{done}");
    let rows = expected.len() as i64;
    assert_eq!(done["total_rows"], rows);
    assert_eq!(counters(&done), [rows, rows, 0, 0, 0]);
    assert_eq!(done["mode"], "insert", "no sku column: insert");
    assert_eq!(done["errors"], json!([]));
    for field in ["started_at", "finished_at"] {
        assert!(done[field].is_string(), "{field} in {done}");
    }
    let stored = all_products(&app, SELLER_A).await;
    assert_eq!(stored.len(), expected.len());
    let first = &stored[0];
    assert_eq!(first["name"], expected[0][0].to_string());
    assert_eq!(first["description"], expected[0][1].to_string());
    assert_eq!(first["price"].as_f64(), expected[0][2].parse::<f64>().ok());
    assert_eq!(
        first["quantity"].as_i64(),
        expected[0][3].parse::<i64>().ok()
    );
    assert_eq!(first["category"], expected[0][4].to_string());

    // The same events as single writes: one ProductCreated each, LowStockWarning below 10.
    let low = expected
        .iter()
        .filter(|r| r[3].parse::<i64>().expect("qty") < 10)
        .count() as i64;
    let events = |kind: &str| {
        format!("SELECT COUNT(*) AS n FROM outbox WHERE seller_id = '{SELLER_A}' AND event_type = '{kind}'")
    };
    assert_eq!(count(&app.db_url, &events("ProductCreated")).await, rows);
    assert_eq!(count(&app.db_url, &events("LowStockWarning")).await, low);
    let metrics = [
        format!("product_api_import_rows_total{{outcome=\"created\"}} {rows}"),
        "product_api_imports_finished_total{status=\"completed\"} 1".to_string(),
        "product_api_imports_running 0".to_string(),
    ];
    let mut scraped = String::new();
    for _ in 0..50 {
        scraped = app
            .send(Method::GET, "/metrics", None)
            .await
            .text()
            .await
            .expect("text");
        if metrics.iter().all(|m| scraped.contains(m.as_str())) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for m in &metrics {
        assert!(scraped.contains(m.as_str()), "{m} in\n{scraped}");
    }
    let frame = sse.next_event().await;
    assert_eq!(frame.event.as_deref(), Some("ImportCompleted"));
    let data = frame.json();
    assert_eq!(data["data"]["importId"], id.as_str());
    assert_eq!(data["data"]["status"], "completed");
    assert_eq!(data["data"]["created"], rows);
}

async fn a_dry_run_counts_and_writes_nothing(app: TestApp) {
    let existing = app
        .create_ok(SELLER_A, &product(json!({ "sku": "KEEP-1", "price": 5.0 })))
        .await;
    let csv =
        format!("{HEADER}\nNew,,1.00,1,C,NEW-1\nChanged,,2.00,2,C,KEEP-1\nBad,,12abc,1,C,BAD-1\n");

    let done = import(&app, SELLER_A, "dry_run=true", &csv).await;

    assert_eq!(done["status"], "completed");
    assert_eq!(done["dry_run"], true);
    assert_eq!(counters(&done), [3, 1, 1, 0, 1]);
    assert_eq!(done["errors"][0]["row"], 4);
    let stored = all_products(&app, SELLER_A).await;
    assert_eq!(
        stored,
        vec![app
            .get(SELLER_A, id_of(&existing))
            .await
            .json::<Value>()
            .await
            .expect("json")]
    );
    assert_eq!(stored[0]["version"], 1, "nothing written");
    let product_events = "SELECT COUNT(*) AS n FROM outbox WHERE event_type LIKE 'Product%'";
    assert_eq!(
        count(&app.db_url, product_events).await,
        1,
        "only the create's event"
    );
}

async fn skip_invalid_imports_the_valid_rows_and_reports_the_others(app: TestApp) {
    let csv =
        format!("{HEADER}\nGood 1,,1.50,3,C,G1\nBad,,12abc,1,C,B1\nGood 2,,2,4,C,G2\n,,1,1,C,B2\n");

    let done = import(&app, SELLER_A, "", &csv).await;

    assert_eq!(done["status"], "completed");
    assert_eq!(counters(&done), [4, 2, 0, 0, 2]);
    assert_eq!(
        done["errors"],
        json!([
            { "row": 3, "column": "price", "value": "12abc", "message": "price must be a number" },
            { "row": 5, "column": "name", "value": "", "message": "name is required" },
        ])
    );
    let names: Vec<Value> = all_products(&app, SELLER_A)
        .await
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Good 1"), json!("Good 2")]);

    let id = done["import_id"].as_str().expect("id");
    let resp = app
        .send(
            Method::GET,
            &format!("/api/products/import/{id}/errors"),
            Some(SELLER_A),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    assert_eq!(
        resp.text().await.expect("body"),
        "row,column,value,message\n3,price,12abc,price must be a number\n5,name,,name is required\n"
    );
}

async fn abort_writes_nothing_when_a_row_is_invalid(app: TestApp) {
    let mut csv = format!("{HEADER}\n");
    for i in 0..2500 {
        csv.push_str(&format!("Row {i},,1.00,1,C,R{i}\n"));
    }
    csv.push_str("Last,,1.00,-1,C,LAST\n");

    let done = import(&app, SELLER_A, "error_policy=abort&mode=insert", &csv).await;

    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["failure"],
        "1 row is invalid; nothing was written (error_policy=abort)"
    );
    assert_eq!(done["errors"][0]["row"], 2502);
    assert_eq!(done["errors"][0]["column"], "quantity");
    assert_eq!(done["created"], 0);
    assert!(all_products(&app, SELLER_A).await.is_empty());
    let events = "SELECT COUNT(*) AS n FROM outbox WHERE event_type LIKE 'Product%'";
    assert_eq!(count(&app.db_url, events).await, 0);

    // The same file without the bad row goes through in several batches.
    let good = csv.lines().take(2501).collect::<Vec<_>>().join("\n");
    let done = import(&app, SELLER_A, "error_policy=abort", &good).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counters(&done), [2500, 2500, 0, 0, 0]);
}

async fn upserts_by_sku_and_counts_unchanged_rows(app: TestApp) {
    let kept = app
        .create_ok(SELLER_A, &product(json!({ "name": "Same", "description": "d", "price": 1.0, "quantity": 5, "category": "C", "sku": "SAME" })))
        .await;
    let changed = app
        .create_ok(SELLER_A, &product(json!({ "name": "Old", "description": "d", "price": 9.0, "quantity": 50, "category": "C", "sku": "CHG", "low_stock_threshold": 3 })))
        .await;
    // Same sku twice in one file: the later row wins, applied after the first.
    let csv = "name,description,price,quantity,category,sku\n\
               Same,d,1.00,5,C,SAME\n\
               New,,3,3,C,NEW\n\
               Mid,d,8,40,C,CHG\n\
               Newer,d,7.5,2,C,CHG\n";

    let done = import(&app, SELLER_A, "", csv).await;

    assert_eq!(done["mode"], "upsert");
    assert_eq!(counters(&done), [4, 1, 2, 1, 0], "{done}");
    let same: Value = app
        .get(SELLER_A, id_of(&kept))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(same["version"], 1, "an unchanged row writes nothing");
    let after: Value = app
        .get(SELLER_A, id_of(&changed))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            after["name"].clone(),
            after["price"].clone(),
            after["quantity"].clone()
        ),
        (json!("Newer"), json!(7.5), json!(2))
    );
    assert_eq!(after["version"], 3);
    assert_eq!(
        after["low_stock_threshold"], 3,
        "a column the file lacks is kept"
    );
    assert_eq!(after["created_at"], changed["created_at"]);
    // One ProductUpdated per change, with the change itself, and the low-stock crossing once.
    let db = Database::connect(&app.db_url).await.expect("database");
    let backend = db.get_database_backend();
    let rows = db
        .query_all(Statement::from_string(
            backend,
            format!(
                "SELECT event_type, payload FROM outbox WHERE product_id = {} ORDER BY id",
                id_of(&changed)
            ),
        ))
        .await
        .expect("query");
    let kinds: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "event_type").expect("type"))
        .collect();
    assert_eq!(
        kinds,
        [
            "ProductCreated",
            "ProductUpdated",
            "ProductUpdated",
            "LowStockWarning"
        ]
    );
    let last: Value =
        serde_json::from_str(&rows[2].try_get::<String>("", "payload").expect("payload"))
            .expect("json");
    assert_eq!(
        last["data"]["changes"]["quantity"],
        json!({ "old": 40, "new": 2 })
    );

    // insert mode refuses skus in use, row by row.
    let done = import(
        &app,
        SELLER_A,
        "mode=insert",
        "name,price,quantity,category,sku\nX,1,1,C,SAME\nY,1,1,C,FRESH\n",
    )
    .await;
    assert_eq!(counters(&done), [2, 1, 0, 0, 1]);
    assert_eq!(done["errors"][0]["column"], "sku");
    assert_eq!(
        done["errors"][0]["message"],
        format!("sku is already used by product {}", id_of(&kept))
    );
}

/// On PostgreSQL a batch is written while the one before it commits; a batch that repeats a
/// sku the batch before created must still find that product, wherever the repeat falls.
mod skus_repeated_across_batches {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::skus_repeated_across_batches(super::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::skus_repeated_across_batches(super::Backend::Postgres).await
    }
}

async fn skus_repeated_across_batches(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("IMPORT_BATCH_SIZE", "2")]).await;
    // Batches of two: [S1 S2] [S3 S1] [S2 S4]. The second batch repeats S1 in its second row
    // (it was cut by count, not by the repeat); the third starts with a repeat of S2.
    let csv = "name,price,quantity,category,sku\n\
               A1,1,20,C,S1\nA2,1,20,C,S2\n\
               B3,1,20,C,S3\nB1,2,20,C,S1\n\
               C2,3,20,C,S2\nC4,1,20,C,S4\n";

    let done = import(&app, SELLER_A, "mode=upsert", csv).await;

    assert_eq!(counters(&done), [6, 4, 2, 0, 0], "{done}");
    let names: Vec<(Value, Value)> = all_products(&app, SELLER_A)
        .await
        .iter()
        .map(|p| (p["sku"].clone(), p["name"].clone()))
        .collect();
    assert_eq!(
        names,
        [("S1", "B1"), ("S2", "C2"), ("S3", "B3"), ("S4", "C4")].map(|(s, n)| (json!(s), json!(n)))
    );

    // insert mode refuses the repeats, whichever batch created the sku.
    let csv = csv.replace('S', "T");
    let done = import(&app, SELLER_A, "mode=insert", &csv).await;

    assert_eq!(counters(&done), [6, 4, 0, 0, 2], "{done}");
    let lines: Vec<&Value> = done["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["row"])
        .collect();
    assert_eq!(lines, [&json!(5), &json!(6)], "{done}");
    // Not by a failed batch retried: each batch found what it needed the first time.
    let metrics = app
        .send(Method::GET, "/metrics", None)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("product_api_import_batch_retries_total 0"),
        "{metrics}"
    );
}

async fn upsert_without_a_sku_column_creates_every_row(app: TestApp) {
    let csv = "name,price,quantity,category\nA,1,20,C\nB,2,20,C\n";

    let done = import(&app, SELLER_A, "mode=upsert", csv).await;

    assert_eq!(done["mode"], "upsert");
    assert_eq!(counters(&done), [2, 2, 0, 0, 0], "{done}");
    assert_eq!(all_products(&app, SELLER_A).await.len(), 2);
}

async fn malformed_csv_is_reported_by_line(app: TestApp) {
    // Just under IMPORT_MAX_FIELD_BYTES (16 KiB): a row error, not a refused file.
    let big = "x".repeat(16_000);
    // (case, file, counters, first row error)
    type Case = (&'static str, Vec<u8>, [i64; 5], Option<Value>);
    let cases: Vec<Case> = vec![
        (
            "CRLF line ends",
            b"name,price,quantity,category\r\nA,1,1,C\r\nB,2,2,C\r\n".to_vec(),
            [2, 2, 0, 0, 0],
            None,
        ),
        (
            "LF without a final newline",
            b"name,price,quantity,category\nA,1,1,C\nB,2,2,C".to_vec(),
            [2, 2, 0, 0, 0],
            None,
        ),
        (
            "quoted newlines, commas and quotes",
            b"name,price,quantity,category\n\"A, \"\"the\"\"\nbest\",1,1,C\nB,2,2,C\n".to_vec(),
            [2, 2, 0, 0, 0],
            None,
        ),
        (
            "a ragged row",
            b"name,price,quantity,category\nA,1,1\nB,2,2,C\n".to_vec(),
            [2, 1, 0, 0, 1],
            Some(
                json!({ "row": 2, "column": null, "value": null, "message": "the row has 3 cells, the header 4" }),
            ),
        ),
        (
            "an unbalanced quote swallows the rest of the file",
            b"name,price,quantity,category\nA,1,1,C\n\"B,2,2,C\nC,3,3,C\n".to_vec(),
            [2, 1, 0, 0, 1],
            Some(
                json!({ "row": 3, "column": null, "value": null, "message": "the row has 1 cells, the header 4; a quoted cell may lack its closing quote" }),
            ),
        ),
        (
            "invalid UTF-8",
            b"name,price,quantity,category\nA\xff,1,1,C\nB,2,2,C\n".to_vec(),
            [2, 1, 0, 0, 1],
            Some(
                json!({ "row": 2, "column": "name", "value": "A\u{fffd}", "message": "name is not valid UTF-8" }),
            ),
        ),
        (
            "a 16,000-byte field",
            format!("name,description,price,quantity,category\nA,{big},1,1,C\nB,,2,2,C\n")
                .into_bytes(),
            [2, 1, 0, 0, 1],
            Some(
                json!({ "row": 2, "column": "description", "value": "x".repeat(1000), "message": "description must be at most 2000 characters long" }),
            ),
        ),
        (
            "a header only",
            b"name,price,quantity,category\n".to_vec(),
            [0, 0, 0, 0, 0],
            None,
        ),
    ];
    for (case, csv, expected, error) in cases {
        let id = accepted(send_csv(&app, SELLER_A, "", csv).await).await;
        let done = finished(&app, SELLER_A, &id).await;
        assert_eq!(done["status"], "completed", "{case}: {done}");
        assert_eq!(counters(&done), expected, "{case}: {done}");
        assert_eq!(done["errors"].get(0).cloned(), error, "{case}");
    }
    let names: Vec<String> = all_products(&app, SELLER_A)
        .await
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    assert!(names.contains(&"A, \"the\"\nbest".to_string()), "{names:?}");
}
