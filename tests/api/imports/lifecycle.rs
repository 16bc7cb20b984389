//! An import's life: private to its seller, cancelled after its batch, resumed exactly after
//! its server is killed, and counted against the bulk rate limit.

use super::*;

on_both_databases!(
    imports_are_private_to_their_seller,
    cancel_stops_an_import_after_its_batch,
);

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
    // Twelve batches of the default 5,000 rows: the cancel lands with most of them left.
    for i in 0..60_000 {
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
    assert!(processed < 60_000, "stopped early: {done}");
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
    killed_and_resumed(&db_url, Restart::SameInstance).await;
}

/// On PostgreSQL the file is in the database: an instance with nothing of the first one's,
/// not even its spool directory, finishes the import.
#[tokio::test]
async fn another_instance_finishes_the_import_of_a_killed_one_postgres() {
    let db_url = fresh_database(Backend::Postgres).await;
    killed_and_resumed(&db_url, Restart::AnotherInstance).await;
    let chunks = "SELECT COUNT(*) AS n FROM import_chunks";
    assert_eq!(
        count(&db_url, chunks).await,
        0,
        "the file is deleted at the end"
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Restart {
    SameInstance,
    AnotherInstance,
}

/// SIGKILLs the server while an import runs, starts a server again, and checks that every row
/// was imported exactly once, with exactly one event each. The file spans several of the
/// database's chunks, so the import resumes inside a later one.
async fn killed_and_resumed(db_url: &str, restart: Restart) {
    let first_spool = spool_dir();
    let port = free_port();
    let start_server = |spool: &str| {
        Command::new(env!("CARGO_BIN_EXE_product-api"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATABASE_URL", db_url)
            .env("IMPORT_SPOOL_DIR", spool)
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
    let total = 80_000;
    let mut csv = String::from("name,price,quantity,category,sku\n");
    for i in 0..total {
        csv.push_str(&format!("Item {i},1.25,{},C,SKU-{i}\n", i % 20));
    }

    assert!(csv.len() > 2 << 20, "the file spans three chunks");

    let mut server = start_server(&first_spool);
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
        // Past the first chunk (about 34,000 rows of this file).
        if midway["processed"].as_i64().unwrap_or(0) > total / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    let processed = midway["processed"].as_i64().expect("processed");
    assert!(
        processed > total / 2 && processed < total,
        "killed midway: {midway}"
    );
    if restart == Restart::AnotherInstance {
        let spooled = std::fs::read_dir(&first_spool).map_or(0, |dir| dir.count());
        assert_eq!(
            spooled, 0,
            "nothing of the import is on the instance's disk"
        );
    }

    let second_spool = match restart {
        Restart::SameInstance => first_spool.clone(),
        Restart::AnotherInstance => spool_dir(),
    };
    let mut server = start_server(&second_spool);
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

/// Chunks a crash left behind (an upload cut off before its import was queued, the file of an
/// import that ended) are deleted by a worker once older than any upload takes; a recent
/// upload's are left alone.
#[tokio::test]
async fn chunks_of_an_upload_that_never_became_an_import_are_deleted_postgres() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let ended = import(
        &app,
        SELLER_A,
        "",
        "name,price,quantity,category\nA,1,1,C\n",
    )
    .await;
    let ended = ended["import_id"].as_str().expect("id").to_string();
    let db = Database::connect(&app.db_url).await.expect("database");
    db.execute(Statement::from_string(
        db.get_database_backend(),
        format!(
            "INSERT INTO import_chunks (import_id, seq, data, created_at) VALUES \
             ('import-abandoned', 0, 'name', now() - interval '25 hours'), \
             ('{ended}', 0, 'name', now() - interval '25 hours'), \
             ('import-uploading', 0, 'name', now())"
        ),
    ))
    .await
    .expect("chunks");
    let left = |id: &'static str| {
        let url = app.db_url.clone();
        async move {
            let sql = format!("SELECT COUNT(*) AS n FROM import_chunks WHERE import_id = '{id}'");
            count(&url, &sql).await
        }
    };
    for _ in 0..150 {
        if left("import-abandoned").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left("import-abandoned").await, 0, "deleted at a sweep");
    let sql = format!("SELECT COUNT(*) AS n FROM import_chunks WHERE import_id = '{ended}'");
    assert_eq!(
        count(&app.db_url, &sql).await,
        0,
        "an ended import's file goes too"
    );
    assert_eq!(
        left("import-uploading").await,
        1,
        "an upload under way keeps its chunks"
    );
}

/// Two instances on one database: while one runs a seller's long import, the other leaves that
/// seller's next import waiting and runs another seller's; so different imports run at once
/// and each seller's run in the order they came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_run_different_sellers_imports_at_once_and_each_sellers_in_order_postgres() {
    const LONG: Duration = Duration::from_secs(120);
    let slow = [("IMPORT_BATCH_SIZE", "100")];
    let x = TestApp::spawn_with(Backend::Postgres, &slow).await;
    let y = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("IMPORT_BATCH_SIZE", "100"),
            ("DATABASE_URL", x.db_url.as_str()),
        ],
    )
    .await;
    let long = |prefix: &str| {
        let mut csv = String::from("name,price,quantity,category\n");
        for i in 0..60_000 {
            csv.push_str(&format!("{prefix} {i},1,1,C\n"));
        }
        csv
    };
    // All three reach X; Y finds them at its next sweep.
    let a1 = start(&x, SELLER_A, "", &long("A1")).await;
    let a2 = start(&x, SELLER_A, "", "name,price,quantity,category\nA2,1,1,C\n").await;
    let b1 = start(&x, SELLER_B, "", &long("B1")).await;

    let a1 = finished_within(&x, SELLER_A, &a1, LONG).await;
    let a2 = finished_within(&y, SELLER_A, &a2, LONG).await;
    let b1 = finished_within(&y, SELLER_B, &b1, LONG).await;
    for done in [&a1, &a2, &b1] {
        assert_eq!(done["status"], "completed", "{done}");
    }
    let at = |import: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(import[field].as_str().expect(field))
            .expect("RFC 3339")
    };
    assert!(
        at(&a2, "started_at") >= at(&a1, "finished_at"),
        "A's second import waited for its first: {a1} {a2}"
    );
    assert!(
        at(&b1, "started_at") < at(&a1, "finished_at")
            && at(&a1, "started_at") < at(&b1, "finished_at"),
        "B's import ran while A's did: {a1} {b1}"
    );
}
