//! Browser apps on other origins: any origin by default (no credentials), a listed set when
//! `CORS_ALLOWED_ORIGINS` is given, and the server's own pages always. The real-browser side of
//! this is `tests/browser/` (scripts/browser-tests).

use reqwest::{Method, Response, StatusCode};

use crate::helpers::{assert_problem, product, Backend, TestApp, SELLER_A};

const APP: &str = "https://shop.example";

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> Response {
    app.request(Method::OPTIONS, "/api/products/1", None)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .expect("sent")
}

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{name} in {:?}", resp.headers()))
}

fn listed(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_origin_may_call_by_default() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    let resp = preflight(
        &app,
        APP,
        "PUT",
        "x-seller-id,content-type,if-match,if-none-match,idempotency-key,last-event-id,x-request-id",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert!(resp
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let methods = listed(header(&resp, "access-control-allow-methods"));
    for m in ["get", "post", "put", "delete"] {
        assert!(methods.contains(&m.to_string()), "{m} in {methods:?}");
    }
    let allowed = listed(header(&resp, "access-control-allow-headers"));
    for h in [
        "x-seller-id",
        "content-type",
        "if-match",
        "if-none-match",
        "idempotency-key",
        "last-event-id",
        "x-request-id",
    ] {
        assert!(allowed.contains(&h.to_string()), "{h} in {allowed:?}");
    }
    assert!(header(&resp, "access-control-max-age")
        .parse::<u32>()
        .is_ok_and(|s| s >= 600));

    // A real request: created, with the headers a client reads exposed.
    let resp = app
        .request(Method::POST, "/api/products", Some(SELLER_A))
        .header("Origin", APP)
        .json(&product(serde_json::json!({})))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    let exposed = listed(header(&resp, "access-control-expose-headers"));
    for h in [
        "etag",
        "location",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "x-request-id",
    ] {
        assert!(exposed.contains(&h.to_string()), "{h} in {exposed:?}");
    }

    // Errors are readable cross-origin too.
    let resp = app
        .request(Method::GET, "/api/products", None)
        .header("Origin", APP)
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
    assert_problem(resp, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;

    // The event stream, as an EventSource opens it (no custom headers).
    let resp = app
        .request(
            Method::GET,
            "/api/events/stream?sellerId=seller-alice",
            None,
        )
        .header("Origin", APP)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_list_admits_only_its_origins_and_the_servers_own() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[(
            "CORS_ALLOWED_ORIGINS",
            "https://shop.example, https://admin.example",
        )],
    )
    .await;

    let resp = preflight(&app, APP, "POST", "x-seller-id,content-type").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "access-control-allow-origin"), APP);
    assert!(listed(header(&resp, "vary")).contains(&"origin".to_string()));

    for origin in ["https://evil.example", "https://shop.example.evil", "null"] {
        let resp = preflight(&app, origin, "POST", "x-seller-id,content-type").await;
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert_problem(resp, StatusCode::FORBIDDEN, "ORIGIN_NOT_ALLOWED").await;

        // A request that skips the preflight is refused before it runs.
        let resp = app
            .request(Method::POST, "/api/products", Some(SELLER_A))
            .header("Origin", origin)
            .json(&product(serde_json::json!({})))
            .send()
            .await
            .expect("sent");
        assert_problem(resp, StatusCode::FORBIDDEN, "ORIGIN_NOT_ALLOWED").await;
    }
    let list: serde_json::Value = app.list(SELLER_A, "").await.json().await.expect("JSON");
    assert_eq!(
        list["pagination"]["total"], 0,
        "nothing was created: {list}"
    );

    // The server's own pages (Swagger UI's "Try it out") are same-origin.
    let resp = app
        .request(Method::POST, "/api/products", Some(SELLER_A))
        .header("Origin", &app.base)
        .json(&product(serde_json::json!({})))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
}
