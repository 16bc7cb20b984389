//! `AUTH_MODE=jwt`: no request without a valid bearer token reaches a handler, scopes gate
//! each operation class, the token's seller is the tenant, keys rotate, and the event stream
//! takes its token from the query without leaking it.

mod support;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::{
    event_stream::Sse,
    helpers::{assert_problem, count, fresh_seller, id_of, product, Backend, TestApp},
};
use support::*;

/// Runs each named `async fn(Backend)` on SQLite and on PostgreSQL.
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test(crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

on_both_databases!(
    every_bad_token_is_refused_before_anything_runs,
    each_operation_class_needs_its_scope,
    the_token_names_the_tenant_and_the_header_must_agree,
    the_stream_takes_the_token_from_the_query,
);

fn with_token(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", format!("Bearer {token}"))
}

async fn create(app: &TestApp, token: &str) -> Response {
    with_token(app.request(Method::POST, "/api/products", None), token)
        .json(&product(json!({})))
        .send()
        .await
        .expect("sent")
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> Response {
    with_token(app.request(method, path, None), token)
        .send()
        .await
        .expect("sent")
}

/// A 401 `INVALID_TOKEN` (or `code`) with its RFC 6750 challenge; the body.
async fn refused(resp: Response, code: &str, challenge: &str) -> Value {
    let header = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        header.starts_with("Bearer realm=\"product-api\""),
        "{header}"
    );
    assert!(header.contains(challenge), "{header} has {challenge}");
    assert_problem(resp, StatusCode::UNAUTHORIZED, code).await
}

async fn every_bad_token_is_refused_before_anything_runs(backend: Backend) {
    let jwks = Jwks::serve(&["rsa-1", "ec-1", "ed-1"]).await;
    let app = app_with_jwks(backend, &jwks, &[]).await;
    let seller = fresh_seller();
    let valid = claims(&seller, ALL_SCOPES);
    let with = |change: Value| {
        let mut c = valid.clone();
        if let (Some(c), Some(change)) = (c.as_object_mut(), change.as_object()) {
            for (k, v) in change {
                match v {
                    Value::Null => c.remove(k),
                    v => c.insert(k.clone(), v.clone()),
                };
            }
        }
        c
    };
    let forged = {
        let token = sign("rsa-1", &valid);
        let (head, _) = token.rsplit_once('.').expect("three parts");
        let other = sign("rsa-2", &valid);
        let (_, signature) = other.rsplit_once('.').expect("three parts");
        format!("{head}.{signature}")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            sign("rsa-1", &with(json!({"exp": now() - 120}))),
            "expired",
        ),
        (
            "not yet valid",
            sign("rsa-1", &with(json!({"nbf": now() + 120}))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            sign("rsa-1", &with(json!({"iss": "https://evil.test/"}))),
            "issuer",
        ),
        (
            "wrong audience",
            sign("rsa-1", &with(json!({"aud": "another-api"}))),
            "audience",
        ),
        (
            "no expiry",
            sign("rsa-1", &with(json!({"exp": null}))),
            "`exp`",
        ),
        ("bad signature", forged, "signature"),
        ("alg none", unsigned("rsa-1", &valid), "not"),
        (
            "HS256 signed with the RSA public key",
            sign_hs256(&rsa_public_pem(), Some("rsa-1"), &valid),
            "algorithm",
        ),
        ("unknown kid", sign("rsa-2", &valid), "no key"),
        ("no kid", sign_hs256(b"whatever", None, &valid), "`kid`"),
        (
            "no seller claim",
            sign("rsa-1", &with(json!({"seller_id": null}))),
            "`seller_id`",
        ),
        (
            "malformed seller",
            sign("ec-1", &with(json!({"seller_id": "alice"}))),
            "not a valid seller id",
        ),
        ("not a JWT", "abc.def".to_string(), "well-formed"),
    ];
    for (case, token, says) in &cases {
        let body = refused(create(&app, token).await, "INVALID_TOKEN", "invalid_token").await;
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{case}: {message}");
        assert!(
            !message.contains(token.as_str()),
            "{case}: the token is not echoed"
        );
    }
    // No token at all, or only the header a gateway would set, or another scheme.
    let bare = app.request(Method::POST, "/api/products", Some(&seller));
    let resp = bare.json(&product(json!({}))).send().await.expect("sent");
    let body = refused(resp, "MISSING_TOKEN", "realm").await;
    assert_eq!(body["message"], "Authorization: Bearer <token> required");
    let basic = app
        .request(Method::GET, "/api/products", None)
        .header("Authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .expect("sent");
    refused(basic, "MISSING_TOKEN", "realm").await;

    // Nothing was stored; the same claims signed properly, by each key type, work.
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM products").await,
        0
    );
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM outbox").await,
        0
    );
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let resp = create(&app, &sign(kid, &valid)).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{kid}");
    }
    // Clock skew within the leeway is tolerated.
    let skewed = sign("rsa-1", &with(json!({"exp": now() - 5, "nbf": now() + 5})));
    assert_eq!(create(&app, &skewed).await.status(), StatusCode::CREATED);
}

async fn each_operation_class_needs_its_scope(backend: Backend) {
    let jwks = Jwks::serve(&["rsa-1"]).await;
    let app = app_with_jwks(backend, &jwks, &[]).await;
    let seller = fresh_seller();
    let token = |scope: &str| sign("rsa-1", &claims(&seller, scope));
    let mine = create(&app, &token(ALL_SCOPES)).await;
    assert_eq!(mine.status(), StatusCode::CREATED);
    let id = id_of(&mine.json().await.expect("json"));
    let product_path = format!("/api/products/{id}");
    let import_path = "/api/products/import/00000000-0000-4000-8000-000000000000";
    // (operation, method, path, the scope it needs)
    let operations = [
        (
            "list",
            Method::GET,
            "/api/products".to_string(),
            "products:read",
        ),
        ("get", Method::GET, product_path.clone(), "products:read"),
        (
            "export",
            Method::GET,
            "/api/products/export".to_string(),
            "products:read",
        ),
        (
            "import status",
            Method::GET,
            import_path.to_string(),
            "products:read",
        ),
        (
            "delete",
            Method::DELETE,
            product_path.clone(),
            "products:write",
        ),
        (
            "cancel import",
            Method::POST,
            format!("{import_path}/cancel"),
            "imports:write",
        ),
        (
            "delete import",
            Method::DELETE,
            import_path.to_string(),
            "imports:write",
        ),
    ];
    for (name, method, path, needs) in &operations {
        let others: Vec<&str> = ["products:read", "products:write", "imports:write"]
            .into_iter()
            .filter(|s| s != needs)
            .collect();
        let resp = call(&app, method.clone(), path, &token(&others.join(" "))).await;
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = assert_problem(resp, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
        assert_eq!(body["details"]["required_scope"], *needs, "{name}");
        assert_eq!(
            challenge,
            format!(r#"Bearer realm="product-api", error="insufficient_scope", scope="{needs}""#),
            "{name}"
        );
        let allowed = call(&app, method.clone(), path, &token(needs)).await;
        assert_ne!(
            allowed.status(),
            StatusCode::FORBIDDEN,
            "{name} with {needs}"
        );
        assert_ne!(
            allowed.status(),
            StatusCode::UNAUTHORIZED,
            "{name} with {needs}"
        );
    }
    // Writes: create, update, adjust; the import upload.
    let read_only = token("products:read");
    let resp = create(&app, &read_only).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
    let update = with_token(
        app.request(Method::PUT, "/api/products/1", None),
        &read_only,
    )
    .json(&json!({"price": 1}))
    .send()
    .await
    .expect("sent");
    assert_problem(update, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
    let upload = |token: &str| {
        with_token(
            app.request(Method::POST, "/api/products/import", None),
            token,
        )
        .header("content-type", "text/csv")
        .body("name,price,quantity,category\nLamp,9.99,3,Home\n")
    };
    let resp = upload(&token("products:read products:write"))
        .send()
        .await
        .expect("sent");
    assert_problem(resp, StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE").await;
    // The refused writes changed nothing: one product, the one created first (and deleted).
    let products = "SELECT COUNT(*) AS n FROM products";
    assert_eq!(count(&app.db_url, products).await, 1);
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM imports").await,
        0
    );
    // `scp` as a list works as `scope` does.
    let mut scp = claims(&seller, "");
    scp["scp"] = json!(["imports:write"]);
    let accepted = upload(&sign("rsa-1", &scp)).send().await.expect("sent");
    let status = accepted.status();
    let body = accepted.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

async fn the_token_names_the_tenant_and_the_header_must_agree(backend: Backend) {
    let jwks = Jwks::serve(&["ed-1"]).await;
    let app = app_with_jwks(backend, &jwks, &[]).await;
    let (alice, bob) = (fresh_seller(), fresh_seller());
    let alice_token = sign("ed-1", &claims(&alice, ALL_SCOPES));
    let bob_token = sign("ed-1", &claims(&bob, ALL_SCOPES));

    // An X-Seller-Id naming someone else is refused, even one that is not a seller id.
    for header in [bob.as_str(), "not-a-seller"] {
        let resp = with_token(
            app.request(Method::POST, "/api/products", Some(header)),
            &alice_token,
        )
        .json(&product(json!({})))
        .send()
        .await
        .expect("sent");
        assert_problem(resp, StatusCode::FORBIDDEN, "SELLER_MISMATCH").await;
    }
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM products").await,
        0
    );

    // The same seller in both is fine; the product is the token's seller's.
    let resp = with_token(
        app.request(Method::POST, "/api/products", Some(&alice)),
        &alice_token,
    )
    .json(&product(json!({})))
    .send()
    .await
    .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.expect("json");
    assert_eq!(created["seller_id"], alice.as_str());
    let path = format!("/api/products/{}", id_of(&created));

    // Bob's token does not reach Alice's product, whatever header he adds.
    let resp = call(&app, Method::GET, &path, &bob_token).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
    let resp = call(&app, Method::DELETE, &path, &bob_token).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND").await;
    let list: Value = call(&app, Method::GET, "/api/products", &bob_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["pagination"]["total"], 0);
    let mine = call(&app, Method::GET, &path, &alice_token).await;
    assert_eq!(mine.status(), StatusCode::OK);
}

async fn the_stream_takes_the_token_from_the_query(backend: Backend) {
    let jwks = Jwks::serve(&["rsa-1"]).await;
    let app = app_with_jwks(backend, &jwks, &[]).await;
    let seller = fresh_seller();
    let token = sign("rsa-1", &claims(&seller, "products:read"));
    let open = |query: String| {
        app.client
            .get(format!("{}/api/events/stream?{query}", app.base))
            .send()
    };

    let mut sse = Sse::accept(
        open(format!("access_token={token}")).await.expect("sent"),
        &seller,
    )
    .await;
    // A write by the same seller (another token, with the write scope) reaches the stream.
    let writer = sign("rsa-1", &claims(&seller, "products:write"));
    assert_eq!(create(&app, &writer).await.status(), StatusCode::CREATED);
    let event = sse.next_event().await;
    assert_eq!(event.event.as_deref(), Some("ProductCreated"));

    // As EventSource clients of the Node.js service send it: the seller in the query too.
    let both = format!("sellerId={seller}&access_token={token}");
    Sse::accept(open(both).await.expect("sent"), &seller).await;
    let other = format!("sellerId={}&access_token={token}", fresh_seller());
    assert_problem(
        open(other).await.expect("sent"),
        StatusCode::FORBIDDEN,
        "SELLER_MISMATCH",
    )
    .await;

    // A bad or missing token: 401, and the token appears nowhere in the answer.
    let mut stale = claims(&seller, "products:read");
    stale["exp"] = json!(now() - 600);
    let stale = sign("rsa-1", &stale);
    let resp = open(format!("access_token={stale}")).await.expect("sent");
    let text = format!("{:?}", resp.headers());
    let body = refused(resp, "INVALID_TOKEN", "invalid_token").await;
    assert!(!body.to_string().contains(&stale) && !text.contains(&stale));
    let body = refused(
        open(String::new()).await.expect("sent"),
        "MISSING_TOKEN",
        "realm",
    )
    .await;
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("access_token"));
    // Without the read scope.
    let writer_only = format!("access_token={writer}");
    assert_problem(
        open(writer_only).await.expect("sent"),
        StatusCode::FORBIDDEN,
        "INSUFFICIENT_SCOPE",
    )
    .await;
    // Given twice, the 400 names the parameter but shows neither value.
    let twice = open(format!("access_token={token}&access_token={stale}"))
        .await
        .expect("sent");
    let body = assert_problem(twice, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert!(
        !body.to_string().contains(&token) && !body.to_string().contains(&stale),
        "{body}"
    );
    // Only the stream reads the query: elsewhere it is no credential.
    let resp = app
        .client
        .get(format!("{}/api/products?access_token={token}", app.base))
        .send()
        .await
        .expect("sent");
    refused(resp, "MISSING_TOKEN", "realm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_and_unknown_kids_cannot_hammer_the_provider() {
    let jwks = Jwks::serve(&["rsa-1"]).await;
    let app = app_with_jwks(
        Backend::Sqlite,
        &jwks,
        &[("AUTH_JWKS_MIN_REFETCH_SECS", "2")],
    )
    .await;
    let seller = fresh_seller();
    let list = |kid: &'static str| {
        let token = sign(kid, &claims(&seller, ALL_SCOPES));
        let app = &app;
        async move { call(app, Method::GET, "/api/products", &token).await }
    };
    assert_eq!(list("rsa-1").await.status(), StatusCode::OK);
    let settled = jwks.fetches();
    assert!(
        (1..=2).contains(&settled),
        "fetched at start or on first use: {settled}"
    );

    // A flood of tokens naming unknown keys: at most one more fetch per interval.
    let flood: Vec<_> = (0..40)
        .map(|i| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.kid = Some(format!("made-up-{i}"));
            let pem = std::fs::read(format!(
                "{}/tests/fixtures/jwt/rsa-1.pem",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("fixture");
            let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("key");
            jsonwebtoken::encode(&header, &claims(&seller, ALL_SCOPES), &key).expect("signed")
        })
        .collect();
    let answers = futures::future::join_all(
        flood
            .iter()
            .map(|token| call(&app, Method::GET, "/api/products", token)),
    )
    .await;
    for resp in answers {
        refused(resp, "INVALID_TOKEN", "invalid_token").await;
    }
    assert!(jwks.fetches() <= settled + 1, "{} fetches", jwks.fetches());

    // The provider rotates to a new key: within the interval of the last fetch its tokens are
    // refused, after it the set is fetched again and they work; the dropped key's do not.
    jwks.publish(&["rsa-2"]);
    refused(list("rsa-2").await, "INVALID_TOKEN", "invalid_token").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(list("rsa-2").await.status(), StatusCode::OK);
    refused(list("rsa-1").await, "INVALID_TOKEN", "invalid_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hs256_secret_accepts_only_its_own_tokens() {
    let app = app_with_secret(Backend::Sqlite).await;
    let seller = fresh_seller();
    let valid = claims(&seller, ALL_SCOPES);
    let resp = create(&app, &sign_hs256(SECRET.as_bytes(), None, &valid)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    for (case, token) in [
        (
            "another secret",
            sign_hs256(b"another-secret-another-secret-another", None, &valid),
        ),
        ("an RS256 token", sign("rsa-1", &valid)),
        ("alg none", unsigned("x", &valid)),
    ] {
        let body = refused(create(&app, &token).await, "INVALID_TOKEN", "invalid_token").await;
        assert!(body["message"].is_string(), "{case}");
    }
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM products").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_identity_provider_is_a_503_not_a_bad_token() {
    let port = crate::helpers::free_port();
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("AUTH_MODE", "jwt"),
            ("AUTH_JWKS_URL", url.as_str()),
            ("AUTH_ISSUER", ISSUER),
            ("AUTH_AUDIENCE", AUDIENCE),
        ],
    )
    .await;
    let token = sign("rsa-1", &claims(&fresh_seller(), ALL_SCOPES));
    let resp = call(&app, Method::GET, "/api/products", &token).await;
    assert_problem(
        resp,
        StatusCode::SERVICE_UNAVAILABLE,
        "IDENTITY_PROVIDER_UNAVAILABLE",
    )
    .await;
}

/// The token in `access_token` appears in no log line, at any level, whether it verifies or
/// not; the seller it names does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_token_is_never_logged() {
    use std::process::{Command, Stdio};

    use crate::cli::{Running, BIN};

    let dir = std::env::temp_dir().join(format!("product-api-tests/logs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("server.log");
    let port = crate::helpers::free_port();
    let mut server = Running(
        Command::new(BIN)
            .current_dir(&dir)
            .env_clear()
            .envs([
                ("PORT", port.to_string()),
                ("LOG_FORMAT", "json".into()),
                ("RUST_LOG", "trace".into()),
                ("AUTH_MODE", "jwt".into()),
                ("AUTH_JWT_SECRET", SECRET.into()),
                ("AUTH_ISSUER", ISSUER.into()),
                ("AUTH_AUDIENCE", AUDIENCE.into()),
            ])
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::helpers::wait_until_live(&client, &base).await;
    let seller = fresh_seller();
    let good = sign_hs256(SECRET.as_bytes(), None, &claims(&seller, ALL_SCOPES));
    let mut expired = claims(&seller, ALL_SCOPES);
    expired["exp"] = json!(now() - 600);
    let bad = sign_hs256(SECRET.as_bytes(), None, &expired);
    let stream = client
        .get(format!("{base}/api/events/stream?access_token={good}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(stream.status(), StatusCode::OK);
    drop(stream);
    for token in [&bad, &good] {
        let resp = client
            .get(format!(
                "{base}/api/events/stream?types=Nope&access_token={token}"
            ))
            .send()
            .await
            .expect("sent");
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = server.0.kill();
    let _ = server.0.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains(&seller), "the requests were logged: {text}");
    for (name, token) in [("valid", &good), ("expired", &bad)] {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(!text.contains(signature), "the {name} token is in the log");
    }
}

/// A stream opened with a token ends when the token expires, so it cannot outlive its
/// credentials; the client reconnects with a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_expires() {
    use futures::StreamExt;

    let app = app_with_secret(Backend::Sqlite).await;
    let seller = fresh_seller();
    let mut short = claims(&seller, "products:read");
    short["exp"] = json!(now() + 2);
    let token = sign_hs256(SECRET.as_bytes(), None, &short);
    let resp = app
        .client
        .get(format!(
            "{}/api/events/stream?access_token={token}",
            app.base
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let mut body = resp.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the token expired: {:?}",
        started.elapsed()
    );
}
