//! Spawns the application for a test and offers one helper per endpoint.
//!
//! PostgreSQL tests create a fresh database each, on the server named by
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`, the one
//! `scripts/test` makes sure is running). An unreachable server fails the test: it never skips.

use product_api::{config::Config, startup::Application};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(TestApp)` as two tests, `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                super::$test(app).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await;
                super::$test(app).await
            }
        }
    )*};
}

pub const SELLER_A: &str = "seller-alice";

/// A seller no other test (or earlier run against the same Redis or broker) uses.
pub fn fresh_seller() -> String {
    format!("seller-{}", uuid::Uuid::new_v4().simple())
}

/// The shared Redis every Redis test uses (`TEST_REDIS_URL`; `scripts/test` makes sure it runs).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
pub const SELLER_B: &str = "seller-bob";

pub struct TestApp {
    pub base: String,
    /// The application's database, for tests that inspect what was stored.
    pub db_url: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh, empty database for one test; its URL.
pub async fn fresh_database(backend: Backend) -> String {
    let name = format!("pa_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("product-api-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            )
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url();
            let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} is unreachable ({e}); run scripts/test")
            });
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let _ = admin.close().await;
            let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
            format!("{base}/{name}")
        }
    }
}

/// A free loopback port, for tests that run the server binary.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits up to ten seconds for the server at `base` to answer `/health/live`.
pub async fn wait_until_live(client: &reqwest::Client, base: &str) {
    for _ in 0..100 {
        if client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server at {base} did not come up");
}

/// An empty directory for one server's import spool.
pub fn spool_dir() -> String {
    let dir = std::env::temp_dir()
        .join("product-api-tests")
        .join(format!("spool-{}", uuid::Uuid::new_v4().simple()));
    dir.display().to_string()
}

impl TestApp {
    /// Starts the graceful shutdown, as SIGTERM would.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let url = fresh_database(backend).await;
        let spool = spool_dir();
        // Tests that are not about rate limiting must not trip it; theirs set it back.
        let defaults = [
            ("IMPORT_SPOOL_DIR", spool.as_str()),
            ("PORT", "0"),
            ("HOST", "127.0.0.1"),
            ("DATABASE_URL", url.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "10"),
            ("LOG_FORMAT", "pretty"),
            ("RATE_LIMIT_STANDARD", "1000000"),
            ("RATE_LIMIT_BULK", "1000000"),
            ("SHUTDOWN_DELAY_SECS", "0"),
        ];
        let overridden = |k: &str| extra.iter().any(|(e, _)| *e == k);
        let vars: Vec<(String, String)> = defaults
            .iter()
            .filter(|(k, _)| !overridden(k))
            .chain(extra.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = Config::from_vars(vars).expect("valid test configuration");
        let db_url = config.database_url();
        let app = Application::build(config)
            .await
            .expect("application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let shutdown = app.shutdown_token();
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            db_url,
            client: reqwest::Client::new(),
            shutdown,
        }
    }

    /// Sends a request without a body.
    pub async fn send(&self, method: Method, path: &str, seller: Option<&str>) -> Response {
        self.request(method, path, seller)
            .send()
            .await
            .expect("sent")
    }

    pub fn request(&self, method: Method, path: &str, seller: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.base));
        match seller {
            Some(s) => builder.header("X-Seller-Id", s),
            None => builder,
        }
    }

    pub async fn create(&self, seller: &str, body: &Value) -> Response {
        self.request(Method::POST, "/api/products", Some(seller))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a product that must succeed and returns its JSON.
    pub async fn create_ok(&self, seller: &str, body: &Value) -> Value {
        let resp = self.create(seller, body).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "create {body}");
        resp.json().await.expect("product JSON")
    }

    pub async fn get(&self, seller: &str, id: i64) -> Response {
        self.request(Method::GET, &format!("/api/products/{id}"), Some(seller))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn list(&self, seller: &str, query: &str) -> Response {
        self.request(Method::GET, &format!("/api/products?{query}"), Some(seller))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn update(&self, seller: &str, id: i64, body: &Value) -> Response {
        self.request(Method::PUT, &format!("/api/products/{id}"), Some(seller))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, seller: &str, id: i64) -> Response {
        self.request(Method::DELETE, &format!("/api/products/{id}"), Some(seller))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn adjust(&self, seller: &str, id: i64, delta: i64) -> Response {
        self.request(
            Method::POST,
            &format!("/api/products/{id}/quantity-adjustments"),
            Some(seller),
        )
        .json(&json!({ "delta": delta }))
        .send()
        .await
        .expect("request sent")
    }
}

/// A valid create body with `overrides` merged in.
pub fn product(overrides: Value) -> Value {
    let mut body = json!({
        "name": "Wireless Mouse",
        "description": "Ergonomic",
        "price": 29.99,
        "quantity": 150,
        "category": "Electronics"
    });
    if let (Some(b), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

pub fn id_of(product: &Value) -> i64 {
    product["id"].as_i64().expect("product has an integer id")
}

/// Asserts a problem+json response with `status` and `code`; returns its body.
pub async fn assert_problem(resp: Response, status: StatusCode, code: &str) -> Value {
    let got = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(got, status, "status; body {body}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    assert_eq!(body["error_code"], code, "error_code; body {body}");
    assert_eq!(body["status"], status.as_u16(), "status field; body {body}");
    for field in ["type", "title", "error", "message", "instance"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    body
}

/// The `n` column of the one row `sql` returns, read from the database at `db_url`.
pub async fn count(db_url: &str, sql: &str) -> i64 {
    let db = Database::connect(db_url).await.expect("database");
    let backend = db.get_database_backend();
    let row = db
        .query_one(sea_orm::Statement::from_string(backend, sql.to_string()))
        .await
        .expect("query")
        .expect("a row");
    let n: i64 = row.try_get("", "n").expect("n");
    let _ = db.close().await;
    n
}
