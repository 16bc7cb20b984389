//! CSV import: the sample file, dry runs, both error policies, upsert by sku, every 4xx,
//! malformed CSV, cancel, kill-and-resume, the export round trip, tenant isolation, the
//! import events, and the bulk rate limit. Database-backed tests run on both databases.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::{multipart, Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};

use crate::event_stream::Sse;
use crate::helpers::{
    assert_problem, count, free_port, fresh_database, id_of, product, spool_dir, wait_until_live,
    Backend, TestApp, SELLER_A, SELLER_B,
};
use crate::on_both_databases;

/// The existing service's seed file (a copy of `shared/fixtures/original-seed-products.csv`).
const SAMPLE: &str = "tests/fixtures/original-seed-products.csv";
const HEADER: &str = "name,description,price,quantity,category,sku";

async fn send_csv(
    app: &TestApp,
    seller: &str,
    query: &str,
    csv: impl Into<reqwest::Body>,
) -> Response {
    app.request(
        Method::POST,
        &format!("/api/products/import?{query}"),
        Some(seller),
    )
    .header("content-type", "text/csv")
    .body(csv)
    .send()
    .await
    .expect("sent")
}

async fn send_form(app: &TestApp, seller: &str, query: &str, part: multipart::Part) -> Response {
    let form = multipart::Form::new().part("file", part);
    app.request(
        Method::POST,
        &format!("/api/products/import?{query}"),
        Some(seller),
    )
    .multipart(form)
    .send()
    .await
    .expect("sent")
}

fn csv_part(bytes: Vec<u8>) -> multipart::Part {
    multipart::Part::bytes(bytes)
        .file_name("products.csv")
        .mime_str("text/csv")
        .expect("mime")
}

/// Starts an import and returns its id, checking the 202 the existing clients expect.
async fn start(app: &TestApp, seller: &str, query: &str, csv: &str) -> String {
    let resp = send_csv(app, seller, query, csv.to_string()).await;
    accepted(resp).await
}

async fn accepted(resp: Response) -> String {
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "processing");
    assert_eq!(body["message"], "Import processing started");
    let id = body["import_id"].as_str().expect("import_id").to_string();
    assert_eq!(location, format!("/api/products/import/{id}"));
    id
}

async fn status(app: &TestApp, seller: &str, id: &str) -> Response {
    app.send(
        Method::GET,
        &format!("/api/products/import/{id}"),
        Some(seller),
    )
    .await
}

/// Polls until the import ends; returns its final status.
async fn finished(app: &TestApp, seller: &str, id: &str) -> Value {
    for _ in 0..1500 {
        let body: Value = status(app, seller, id).await.json().await.expect("json");
        if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("import {id} did not finish");
}

async fn import(app: &TestApp, seller: &str, query: &str, csv: &str) -> Value {
    let id = start(app, seller, query, csv).await;
    finished(app, seller, &id).await
}

async fn all_products(app: &TestApp, seller: &str) -> Vec<Value> {
    let body: Value = app
        .list(seller, "limit=100&sort_by=created_at&sort_order=asc")
        .await
        .json()
        .await
        .expect("json");
    body["data"].as_array().expect("data").clone()
}

fn counters(status: &Value) -> [i64; 5] {
    ["processed", "created", "updated", "unchanged", "failed"].map(|k| status[k].as_i64().expect(k))
}

on_both_databases!(
    imports_the_sample_file_with_its_events,
    a_dry_run_counts_and_writes_nothing,
    skip_invalid_imports_the_valid_rows_and_reports_the_others,
    abort_writes_nothing_when_a_row_is_invalid,
    upserts_by_sku_and_counts_unchanged_rows,
    upsert_without_a_sku_column_creates_every_row,
    malformed_csv_is_reported_by_line,
    an_export_imports_back_exactly,
    imports_are_private_to_their_seller,
    cancel_stops_an_import_after_its_batch,
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

async fn an_export_imports_back_exactly(app: TestApp) {
    let awkward = [
        (
            "Comma, \"quoted\"",
            Some("line one\nline two\r\nthree"),
            "Tools",
            Some("AW-1"),
            Some(4),
        ),
        (
            "Ünïcødé ✓ 日本",
            Some("tab\there"),
            "Décor",
            Some("AW-2"),
            None,
        ),
        ("=SUM(A1)", Some("-minus"), "@home", Some("AW-3"), Some(0)),
        ("'quoted", Some("'=x"), "+plus", None, None),
        ("Plain", None, "\tTabbed", None, Some(100)),
    ];
    for (name, description, category, sku, threshold) in awkward {
        let body = product(
            json!({ "name": name, "description": description, "category": category, "sku": sku, "low_stock_threshold": threshold, "price": 12.34, "quantity": 7 }),
        );
        app.create_ok(SELLER_A, &body).await;
    }
    let exported = app
        .send(Method::GET, "/api/products/export", Some(SELLER_A))
        .await
        .text()
        .await
        .expect("csv");

    let done = import(&app, SELLER_B, "", &exported).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counters(&done), [5, 5, 0, 0, 0], "{done}");
    let fields = [
        "name",
        "description",
        "price",
        "quantity",
        "category",
        "sku",
        "low_stock_threshold",
    ];
    let pick = |p: &Value| fields.map(|f| p[f].clone());
    let original: Vec<_> = all_products(&app, SELLER_A)
        .await
        .iter()
        .map(pick)
        .collect();
    let copied: Vec<_> = all_products(&app, SELLER_B)
        .await
        .iter()
        .map(pick)
        .collect();
    assert_eq!(copied, original);
    // Imported again onto itself, every row is unchanged.
    let again = import(&app, SELLER_B, "", &exported).await;
    assert_eq!(
        counters(&again),
        [5, 2, 0, 3, 0],
        "rows with a sku are unchanged: {again}"
    );
}

async fn imports_are_private_to_their_seller(app: TestApp) {
    let theirs = app
        .create_ok(
            SELLER_B,
            &product(json!({ "name": "B's", "sku": "SHARED" })),
        )
        .await;
    let done = import(
        &app,
        SELLER_A,
        "",
        "name,price,quantity,category,sku\nA's,1,1,C,SHARED\n",
    )
    .await;
    assert_eq!(
        counters(&done),
        [1, 1, 0, 0, 0],
        "B's sku is no match for A"
    );
    let untouched: Value = app
        .get(SELLER_B, id_of(&theirs))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(untouched, theirs);

    let id = done["import_id"].as_str().expect("id");
    for (method, path) in [
        (Method::GET, format!("/api/products/import/{id}")),
        (Method::GET, format!("/api/products/import/{id}/errors")),
        (Method::POST, format!("/api/products/import/{id}/cancel")),
        (Method::DELETE, format!("/api/products/import/{id}")),
    ] {
        let resp = app.send(method.clone(), &path, Some(SELLER_B)).await;
        assert_problem(resp, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;
    }
    let exported = app
        .send(Method::GET, "/api/products/export", Some(SELLER_B))
        .await
        .text()
        .await
        .expect("csv");
    assert!(!exported.contains("A's"));
}

async fn cancel_stops_an_import_after_its_batch(app: TestApp) {
    let mut csv = String::from("name,price,quantity,category\n");
    for i in 0..20_000 {
        csv.push_str(&format!("P{i},1,1,C\n"));
    }
    let id = start(&app, SELLER_A, "", &csv).await;
    for _ in 0..2000 {
        let now: Value = status(&app, SELLER_A, &id)
            .await
            .json()
            .await
            .expect("json");
        if now["processed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let resp = app
        .send(
            Method::POST,
            &format!("/api/products/import/{id}/cancel"),
            Some(SELLER_A),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["cancel_requested"], true);
    let done = finished(&app, SELLER_A, &id).await;

    assert_eq!(done["status"], "cancelled", "{done}");
    let processed = done["processed"].as_i64().expect("processed");
    assert!(processed < 20_000, "stopped early: {done}");
    assert_eq!(done["created"], processed);
    assert_eq!(
        all_products_count(&app).await,
        processed,
        "what the batches wrote stays"
    );
    let again = app
        .send(
            Method::POST,
            &format!("/api/products/import/{id}/cancel"),
            Some(SELLER_A),
        )
        .await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "cancelling twice is harmless"
    );

    let finished_import = import(
        &app,
        SELLER_A,
        "",
        "name,price,quantity,category\nA,1,1,C\n",
    )
    .await;
    let fid = finished_import["import_id"].as_str().expect("id");
    let resp = app
        .send(
            Method::POST,
            &format!("/api/products/import/{fid}/cancel"),
            Some(SELLER_A),
        )
        .await;
    assert_problem(resp, StatusCode::CONFLICT, "IMPORT_FINISHED").await;

    // DELETE forgets an import (cancelling it first if it still runs).
    let path = format!("/api/products/import/{fid}");
    let deleted = app.send(Method::DELETE, &path, Some(SELLER_A)).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app.send(Method::GET, &path, Some(SELLER_A)).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;
    let errors = app
        .send(Method::GET, &format!("{path}/errors"), Some(SELLER_A))
        .await;
    assert_problem(errors, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;
    let running = start(&app, SELLER_A, "", &csv).await;
    let path = format!("/api/products/import/{running}");
    let deleted = app.send(Method::DELETE, &path, Some(SELLER_A)).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let before = all_products_count(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        all_products_count(&app).await,
        before,
        "a deleted import stops"
    );
    let gone = app.send(Method::GET, &path, Some(SELLER_A)).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;
}

async fn all_products_count(app: &TestApp) -> i64 {
    count(
        &app.db_url,
        &format!("SELECT COUNT(*) AS n FROM products WHERE seller_id = '{SELLER_A}'"),
    )
    .await
}

#[tokio::test]
async fn bad_uploads_get_precise_errors_and_store_nothing() {
    let spool = spool_dir();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("IMPORT_MAX_BYTES", "4096"),
            ("IMPORT_MAX_ROWS", "3"),
            ("IMPORT_SPOOL_DIR", &spool),
        ],
    )
    .await;
    let rows = |n: usize| {
        let mut csv = String::from("name,price,quantity,category\n");
        for i in 0..n {
            csv.push_str(&format!("P{i},1,1,C\n"));
        }
        csv
    };

    let too_big = send_csv(&app, SELLER_A, "", "x".repeat(5000)).await;
    let body = assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE").await;
    assert_eq!(body["details"]["limit"], 4096);
    let too_big = send_form(&app, SELLER_A, "", csv_part(vec![b'x'; 5000])).await;
    assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE").await;
    let too_many = send_csv(&app, SELLER_A, "", rows(4)).await;
    assert_problem(too_many, StatusCode::PAYLOAD_TOO_LARGE, "TOO_MANY_ROWS").await;

    let json_body = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .expect("sent");
    assert_problem(
        json_body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;
    let png = multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
        .file_name("photo.png")
        .mime_str("image/png")
        .expect("mime");
    assert_problem(
        send_form(&app, SELLER_A, "", png).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;
    let binary = send_csv(&app, SELLER_A, "", vec![0x89, b'P', b'N', b'G', 0, 0, 1]).await;
    assert_problem(
        binary,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;

    let no_file = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .multipart(multipart::Form::new().text("other", "x"))
        .send()
        .await
        .expect("sent");
    assert_problem(no_file, StatusCode::BAD_REQUEST, "MISSING_FILE").await;
    let extra = multipart::Form::new()
        .part("file", csv_part(rows(1).into_bytes()))
        .text("note", "x");
    let extra = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .multipart(extra)
        .send()
        .await
        .expect("sent");
    let body = assert_problem(extra, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(body["details"]["field"], "note");
    let no_body = app
        .send(Method::POST, "/api/products/import", Some(SELLER_A))
        .await;
    assert_problem(no_body, StatusCode::BAD_REQUEST, "MISSING_FILE").await;

    let empty = send_csv(&app, SELLER_A, "", "").await;
    assert_problem(empty, StatusCode::BAD_REQUEST, "INVALID_CSV").await;
    let missing = send_csv(&app, SELLER_A, "", "Name,Price\nA,1\n").await;
    let body = assert_problem(missing, StatusCode::BAD_REQUEST, "INVALID_CSV").await;
    assert_eq!(
        body["message"],
        "Invalid CSV: the header row lacks the required columns `quantity`, `category`"
    );
    assert_eq!(
        body["details"]["missing_columns"],
        json!(["quantity", "category"])
    );
    let bad_mode = send_csv(&app, SELLER_A, "mode=merge", rows(1)).await;
    assert_problem(bad_mode, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let anonymous = app
        .request(Method::POST, "/api/products/import", None)
        .header("content-type", "text/csv")
        .body(rows(1))
        .send()
        .await
        .expect("sent");
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;
    let unknown = status(&app, SELLER_A, "import-nope").await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;

    // Nothing was queued and no spool file is left behind.
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM imports").await,
        0
    );
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "spool files left in {spool}");
}

#[tokio::test]
async fn import_and_export_count_against_the_bulk_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("RATE_LIMIT_BULK", "1")]).await;
    start(
        &app,
        SELLER_A,
        "",
        "name,price,quantity,category\nA,1,1,C\n",
    )
    .await;
    let second = send_csv(
        &app,
        SELLER_A,
        "",
        "name,price,quantity,category\nB,1,1,C\n",
    )
    .await;
    let body = assert_problem(second, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED").await;
    assert_eq!(body["details"]["window"], "60s");
    // Status polling is a standard request.
    let listed = app.list(SELLER_A, "").await;
    assert_eq!(listed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_killed_server_resumes_its_import_with_exact_counts_sqlite() {
    let db_url = fresh_database(Backend::Sqlite).await;
    killed_and_resumed(&db_url).await;
}

#[tokio::test]
async fn a_killed_server_resumes_its_import_with_exact_counts_postgres() {
    let db_url = fresh_database(Backend::Postgres).await;
    killed_and_resumed(&db_url).await;
}

/// SIGKILLs the server while an import runs, starts it again, and checks that every row was
/// imported exactly once, with exactly one event each.
async fn killed_and_resumed(db_url: &str) {
    let spool = spool_dir();
    let port = free_port();
    let start_server = || {
        Command::new(env!("CARGO_BIN_EXE_product-api"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATABASE_URL", db_url)
            .env("IMPORT_SPOOL_DIR", &spool)
            .env("IMPORT_BATCH_SIZE", "100")
            .env("RATE_LIMIT_ENABLED", "false")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts")
    };
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let wait_up = || wait_until_live(&client, &base);
    let get_status = |id: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/api/products/import/{id}"))
                .header("X-Seller-Id", SELLER_A)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let total = 30_000;
    let mut csv = String::from("name,price,quantity,category,sku\n");
    for i in 0..total {
        csv.push_str(&format!("Item {i},1.25,{},C,SKU-{i}\n", i % 20));
    }

    let mut server = start_server();
    wait_up().await;
    let resp = client
        .post(format!("{base}/api/products/import"))
        .header("X-Seller-Id", SELLER_A)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("sent");
    let id = accepted(resp).await;
    let mut midway = Value::Null;
    for _ in 0..2000 {
        midway = get_status(id.clone()).await;
        if midway["processed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    let processed = midway["processed"].as_i64().expect("processed");
    assert!(
        processed > 0 && processed < total,
        "killed midway: {midway}"
    );

    let mut server = start_server();
    wait_up().await;
    let mut done = Value::Null;
    for _ in 0..3000 {
        done = get_status(id.clone()).await;
        if done["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(counters(&done), [total, total, 0, 0, 0], "{done}");
    let products =
        format!("SELECT COUNT(DISTINCT sku) AS n FROM products WHERE seller_id = '{SELLER_A}'");
    assert_eq!(count(db_url, &products).await, total);
    let rows = format!("SELECT COUNT(*) AS n FROM products WHERE seller_id = '{SELLER_A}'");
    assert_eq!(count(db_url, &rows).await, total, "no row imported twice");
    let events = "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'ProductCreated'";
    assert_eq!(count(db_url, events).await, total, "one event per product");
    let completed = "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'ImportCompleted'";
    assert_eq!(count(db_url, completed).await, 1, "the import ended once");
}
