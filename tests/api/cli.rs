//! The binary itself: zero-setup start, `healthcheck`, `migrate`, and configuration errors.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, Statement};

use crate::helpers::{free_port, postgres_admin_url, SELLER_A};

pub const BIN: &str = env!("CARGO_BIN_EXE_product-api");

/// Kills the child when the test ends, however it ends.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn starts_with_no_configuration_on_an_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("product-api-tests/cwd-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let _server = Running(
        Command::new(BIN)
            .current_dir(&dir)
            .env_clear()
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/products");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(resp) = client
            .get(&url)
            .header("X-Seller-Id", SELLER_A)
            .send()
            .await
        {
            answered = Some(resp.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Some(StatusCode::OK));
    assert!(
        dir.join("data/product-api.db").exists(),
        "the SQLite file is under ./data/"
    );

    // What the container's HEALTHCHECK runs: 0 for the ready server on $PORT, 1 for none.
    let healthcheck = |port: u16| {
        Command::new(BIN)
            .arg("healthcheck")
            .env_clear()
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("healthcheck runs")
    };
    assert!(healthcheck(port).success(), "the ready server is healthy");
    let closed = free_port();
    assert_eq!(healthcheck(closed).code(), Some(1), "no server on {closed}");
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let admin_url = postgres_admin_url();
    let admin = Database::connect(&admin_url)
        .await
        .expect("PostgreSQL reachable");
    let name = format!("pa_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create");
    let url = format!("{}/{name}", admin_url.rsplit_once('/').expect("path").0);

    let status = Command::new(BIN)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .status()
        .expect("runs");
    assert!(status.success());

    let db = Database::connect(&url).await.expect("connect");
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        ))
        .await
        .expect("query");
    let tables: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index(0).expect("name"))
        .collect();
    assert_eq!(
        tables,
        [
            "idempotency_keys",
            "import_chunks",
            "import_errors",
            "imports",
            "outbox",
            "products",
            "seaql_migrations",
            "seller_product_counts"
        ],
        "every table the migrations create, and nothing else"
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let cases = [
        ("PORT", "http"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("LOG_FORMAT", "xml"),
    ];
    for (var, value) in cases {
        let out = Command::new(BIN).env(var, value).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
    let out = Command::new(BIN).arg("frobnicate").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
