//! Operations: health endpoints against real dependencies, and a graceful SIGTERM under load.

use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use serde_json::{json, Value};

use crate::helpers::{
    fresh_database, id_of, postgres_admin_url, product, wait_until_live, Backend, TestApp,
};

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let resp = app
        .request(Method::GET, path, None)
        .send()
        .await
        .expect("sent");
    let status = resp.status();
    (status, resp.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_every_component() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let (status, live) = get(&app, "/health/live").await;
    assert_eq!((status, live), (StatusCode::OK, json!({ "status": "ok" })));

    let (status, report) = get(&app, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["components"]["database"]["status"], "up");
    assert_eq!(report["components"]["redis"]["status"], "disabled");
    assert_eq!(report["components"]["kafka"]["status"], "disabled");
    assert_eq!(report["components"]["outbox"]["status"], "up");
    assert!(report["components"]["database"]["latency_ms"].is_i64());
    assert_eq!(get(&app, "/health/ready").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_and_kafka_degrade_but_stay_ready() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let (redis, kafka) = (
        format!("redis://127.0.0.1:{closed}"),
        format!("127.0.0.1:{closed}"),
    );
    let app = TestApp::spawn_with(
        Backend::Postgres,
        &[("REDIS_URL", &redis), ("KAFKA_BROKERS", &kafka)],
    )
    .await;
    let started = Instant::now();
    let (status, report) = get(&app, "/health/ready").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "checks are bounded"
    );
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["components"]["redis"]["status"], "down");
    assert_eq!(report["components"]["kafka"]["status"], "down");
    assert!(report["components"]["kafka"]["detail"].is_string());
    // Writes still succeed: the outbox keeps the events for later.
    let p = app.create_ok("seller-ops", &product(json!({}))).await;
    let (_, report) = get(&app, "/health").await;
    assert!(
        report["components"]["outbox"]["backlog"]
            .as_i64()
            .is_some_and(|b| b >= 1),
        "{report}"
    );
    assert!(id_of(&p) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_makes_the_server_unready() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let name = app.db_url.rsplit('/').next().expect("db name").to_string();
    let admin = Database::connect(postgres_admin_url())
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop");
    let (status, report) = get(&app, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "unavailable");
    assert!(report["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("database unavailable")));
    assert_eq!(
        get(&app, "/health/live").await.0,
        StatusCode::OK,
        "still alive"
    );
}

/// SIGTERM under a steady stream of writes: readiness turns 503 at once, every request that
/// was answered got a complete response, the process exits 0 in time, and every acknowledged
/// write is stored with its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_what_it_accepted() {
    let db_url = fresh_database(Backend::Postgres).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let mut server = Command::new(env!("CARGO_BIN_EXE_product-api"))
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DATABASE_URL", &db_url)
        .env("RATE_LIMIT_ENABLED", "false")
        .env("SHUTDOWN_DELAY_SECS", "1")
        .env("SHUTDOWN_TIMEOUT_SECS", "10")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let base = format!("http://127.0.0.1:{port}");
    // A new connection per request: after the listener closes, refusals are clean.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    wait_until_live(&client, &base).await;

    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Requests that failed after connecting: the kernel had queued the connection, but was it
    // handled? If the server processed one, its product exists and its response was lost.
    let unanswered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            let (acknowledged, unanswered) = (acknowledged.clone(), unanswered.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("W{w}-{i}");
                    let sent = client
                        .post(format!("{base}/api/products"))
                        .header("X-Seller-Id", "seller-term")
                        .json(&product(json!({ "name": name })))
                        .send()
                        .await;
                    match sent {
                        Ok(resp) => {
                            assert_eq!(resp.status(), StatusCode::CREATED);
                            let body: Value = resp.json().await.expect("a complete response");
                            acknowledged.lock().expect("lock").push(id_of(&body));
                        }
                        Err(e) if e.is_connect() => return,
                        Err(_) => {
                            unanswered.lock().expect("lock").push(name);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .expect("still accepting");
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness turns 503 at once"
    );

    for writer in writers {
        writer.await.expect("writer finished cleanly");
    }
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "exits within the timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");

    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 10,
        "load was running: {}",
        acknowledged.len()
    );
    let db = Database::connect(&db_url).await.expect("database");
    let ids = |sql: &str| {
        let db = &db;
        let sql = sql.to_string();
        async move {
            db.query_all(Statement::from_string(db.get_database_backend(), sql))
                .await
                .expect("query")
                .iter()
                .map(|r| r.try_get_by_index::<i64>(0).expect("id"))
                .collect::<BTreeSet<i64>>()
        }
    };
    let stored = ids("SELECT id FROM products").await;
    let with_event = ids("SELECT product_id FROM outbox WHERE event_type = 'ProductCreated'").await;
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged product {id} is stored");
        assert!(
            with_event.contains(id),
            "acknowledged product {id} has its event"
        );
    }
    let unanswered = unanswered.lock().expect("lock").clone();
    for name in unanswered {
        let sql = format!("SELECT id FROM products WHERE name = '{name}'");
        assert!(
            ids(&sql).await.is_empty(),
            "{name} was processed but its response was lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_security_headers_and_metrics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app
        .request(Method::GET, "/api/products/999", Some("seller-ctx"))
        .header("X-Request-Id", "trace-abc-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["x-request-id"], "trace-abc-123");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let problem: Value = resp.json().await.expect("json");
    assert_eq!(problem["instance"], "urn:request:trace-abc-123");

    let resp = app
        .request(Method::GET, "/health/live", None)
        .send()
        .await
        .expect("sent");
    let generated = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        uuid::Uuid::parse_str(&generated).is_ok(),
        "generated id {generated}"
    );

    let metrics = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let expected = r#"product_api_http_requests_total{method="GET",route="/api/products/{id}",status="404"} 1"#;
    assert!(metrics.contains(expected), "{metrics}");
    for name in [
        "product_api_http_request_duration_seconds_bucket",
        "product_api_sse_connections",
        "product_api_outbox_backlog",
        "product_api_db_pool_connections",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("MAX_CONNECTIONS", "2")]).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let first = tokio::net::TcpStream::connect(&addr).await.expect("first");
    let second = tokio::net::TcpStream::connect(&addr).await.expect("second");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    let url = format!("{}/health/live", app.base);
    assert!(
        client.get(&url).send().await.is_err(),
        "a third connection is not served"
    );
    drop(first);
    drop(second);
    let client = reqwest::Client::new();
    let resp = client
        .get(&url)
        .send()
        .await
        .expect("served once one closed");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_mid_request_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("IDLE_TIMEOUT_SECS", "2"), ("SSE_HEARTBEAT_SECS", "1")],
    )
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Half a request, then silence.
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    // The server may answer (408) before closing; either way the connection must end.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a stalled connection open past its idle timeout"
    );
}

/// PostgreSQL connections killed under load (`pg_terminate_backend`): requests that hit a
/// dead connection fail with 503 problem+json, never 500; the pool replaces the connections
/// without a restart; and every acknowledged create is stored with its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_database_connections_give_503_and_the_pool_recovers() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let db_name = app.db_url.rsplit('/').next().expect("db name").to_string();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..150 {
                    let resp = client
                        .post(format!("{base}/api/products"))
                        .header("X-Seller-Id", SELLER_FAULTS)
                        .json(&product(json!({ "name": format!("W{w}-{i}") })))
                        .send()
                        .await
                        .expect("the server answers");
                    let status = resp.status();
                    let body: Value = resp.json().await.expect("a JSON body");
                    outcomes.push((status, body));
                }
                outcomes
            })
        })
        .collect();
    let admin = Database::connect(postgres_admin_url())
        .await
        .expect("admin connection");
    let mut killed = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let sql = format!(
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
        );
        let row = admin
            .query_one(Statement::from_string(DatabaseBackend::Postgres, sql))
            .await
            .expect("terminate")
            .expect("a row");
        killed += row.try_get::<i64>("", "n").expect("n");
    }
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for writer in writers {
        for (status, body) in writer.await.expect("writer") {
            match status {
                StatusCode::CREATED => acknowledged.push(id_of(&body)),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(body["error_code"], "SERVICE_UNAVAILABLE", "{body}");
                    unavailable += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
    }
    assert!(killed > 0, "connections were killed");
    assert!(!acknowledged.is_empty());

    // The pool recovers by itself: a fresh write succeeds.
    let after = app
        .create(SELLER_FAULTS, &product(json!({ "name": "after" })))
        .await;
    assert_eq!(after.status(), StatusCode::CREATED);
    let db = Database::connect(&app.db_url).await.expect("db");
    for id in &acknowledged {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM products WHERE id = {id}) + \
             (SELECT COUNT(*) FROM outbox WHERE product_id = {id} AND event_type = 'ProductCreated') AS n"
        );
        let row = db
            .query_one(Statement::from_string(DatabaseBackend::Postgres, sql))
            .await
            .expect("query")
            .expect("row");
        assert_eq!(
            row.try_get::<i64>("", "n").expect("n"),
            2,
            "product {id} and its event"
        );
    }
    eprintln!(
        "killed {killed} connections; {} created, {unavailable} answered 503",
        acknowledged.len()
    );
}

const SELLER_FAULTS: &str = "seller-faults";
