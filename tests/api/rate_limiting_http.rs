//! Rate limiting over HTTP, on the in-process limiter and on Redis: exact admission, headers,
//! 429 problems, the anonymous class, what is not limited, instances sharing one Redis, and
//! Redis failing under both failure modes.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::{
    helpers::{assert_problem, fresh_seller, redis_url, Backend, TestApp},
    redis_support::{now_epoch_secs, TempRedis},
};

async fn spawn(redis: Option<&str>, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(&str, &str)> = vec![("RATE_LIMIT_STANDARD", "100")];
    vars.extend_from_slice(extra);
    if let Some(url) = redis {
        vars.push(("REDIS_URL", url));
    }
    TestApp::spawn_with(Backend::Sqlite, &vars).await
}

async fn list(app: &TestApp, seller: Option<&str>) -> Response {
    app.request(Method::GET, "/api/products", seller)
        .send()
        .await
        .expect("sent")
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// 150 concurrent requests against a limit of 100: loopback answers them well within the
/// one-second window, so exactly 100 are admitted.
async fn exact_admission(app: TestApp) {
    let seller = fresh_seller();
    let responses = futures::future::join_all((0..150).map(|_| list(&app, Some(&seller)))).await;
    let ok = responses
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let limited = responses
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, limited), (100, 50));
}

async fn headers_and_rejections(app: TestApp) {
    let seller = fresh_seller();
    let mut last_remaining = 100;
    for _ in 0..3 {
        let resp = list(&app, Some(&seller)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-limit").as_deref(), Some("100"));
        let remaining: u32 = header(&resp, "x-ratelimit-remaining")
            .and_then(|v| v.parse().ok())
            .expect("remaining");
        assert!(
            remaining < last_remaining,
            "remaining decreases: {remaining}"
        );
        last_remaining = remaining;
        let reset: u64 = header(&resp, "x-ratelimit-reset")
            .and_then(|v| v.parse().ok())
            .expect("reset");
        let now = now_epoch_secs();
        assert!(
            (now..=now + 2).contains(&reset),
            "reset {reset} is the next free slot, now {now}"
        );
        assert_eq!(
            header(&resp, "ratelimit-policy").as_deref(),
            Some("\"standard\";q=100;w=1")
        );
        assert!(header(&resp, "ratelimit").is_some_and(|v| v.starts_with("\"standard\";r=")));
    }
    let burst = futures::future::join_all((0..100).map(|_| list(&app, Some(&seller)))).await;
    let rejected = burst
        .into_iter()
        .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .expect("the burst goes over the limit");
    let retry_after: u64 = header(&rejected, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert_eq!(retry_after, 1, "the window is one second");
    assert_eq!(
        header(&rejected, "x-ratelimit-remaining").as_deref(),
        Some("0")
    );
    let body = assert_problem(
        rejected,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;
    assert_eq!(body["details"]["limit"], 100);
    assert_eq!(body["details"]["window"], "1s");
    assert_eq!(body["details"]["retry_after"], 1);

    // After the window has passed, the seller is admitted again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(list(&app, Some(&seller)).await.status(), StatusCode::OK);
}

async fn anonymous_and_unlimited_paths(app: TestApp) {
    let resp = list(&app, None).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&resp, "ratelimit-policy").as_deref(),
        Some("\"anonymous\";q=20;w=1")
    );
    let more = futures::future::join_all((0..30).map(|_| list(&app, Some("not-a-seller")))).await;
    let limited = more
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(limited, 11, "20 per second per address, one already used");

    for path in ["/api/openapi.json", "/docs/"] {
        for _ in 0..25 {
            let resp = app
                .request(Method::GET, path, None)
                .send()
                .await
                .expect("sent");
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert!(
                header(&resp, "x-ratelimit-limit").is_none(),
                "{path} is not limited"
            );
        }
    }
}

mod in_process {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_admission() {
        super::exact_admission(spawn(None, &[]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn headers_and_rejections() {
        super::headers_and_rejections(spawn(None, &[]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anonymous_and_unlimited_paths() {
        super::anonymous_and_unlimited_paths(spawn(None, &[]).await).await
    }
}

mod redis {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exact_admission() {
        super::exact_admission(spawn(Some(&redis_url()), &[]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn headers_and_rejections() {
        super::headers_and_rejections(spawn(Some(&redis_url()), &[]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn anonymous_and_unlimited_paths() {
        // The anonymous key is the client address, shared by every test on this machine:
        // a private Redis keeps the count to this test.
        let redis = TempRedis::start();
        super::anonymous_and_unlimited_paths(spawn(Some(&redis.url()), &[]).await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_share_one_limit() {
        let (a, b) = (
            spawn(Some(&redis_url()), &[]).await,
            spawn(Some(&redis_url()), &[]).await,
        );
        let seller = fresh_seller();
        let requests = (0..150).map(|i| list(if i % 2 == 0 { &a } else { &b }, Some(&seller)));
        let responses = futures::future::join_all(requests).await;
        let ok = responses
            .iter()
            .filter(|r| r.status() == StatusCode::OK)
            .count();
        assert_eq!(ok, 100, "two instances admit what one admits");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_outage_fails_open_then_recovers() {
        let mut redis = TempRedis::start();
        let app = spawn(Some(&redis.url()), &[("RATE_LIMIT_FAILURE_MODE", "open")]).await;
        let seller = fresh_seller();
        assert!(header(&list(&app, Some(&seller)).await, "x-ratelimit-limit").is_some());

        redis.stop();
        for _ in 0..3 {
            let resp = list(&app, Some(&seller)).await;
            assert_eq!(
                resp.status(),
                StatusCode::OK,
                "open: admitted without Redis"
            );
            assert!(
                header(&resp, "x-ratelimit-limit").is_none(),
                "no made-up numbers"
            );
        }
        redis.restart();
        let resp = list(&app, Some(&seller)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            header(&resp, "x-ratelimit-limit").is_some(),
            "limits again after recovery"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_outage_fails_closed_then_recovers() {
        let mut redis = TempRedis::start();
        let app = spawn(Some(&redis.url()), &[("RATE_LIMIT_FAILURE_MODE", "closed")]).await;
        let seller = fresh_seller();
        assert_eq!(list(&app, Some(&seller)).await.status(), StatusCode::OK);

        redis.stop();
        let resp = list(&app, Some(&seller)).await;
        let body: Value =
            assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED").await;
        assert_eq!(body["status"], 429, "closed: rejected, never a 500");

        redis.restart();
        assert_eq!(list(&app, Some(&seller)).await.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_means_no_limit_and_no_headers() {
    let app = spawn(None, &[("RATE_LIMIT_ENABLED", "false")]).await;
    let seller = fresh_seller();
    let responses = futures::future::join_all((0..150).map(|_| list(&app, Some(&seller)))).await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    assert!(header(&responses[0], "x-ratelimit-limit").is_none());
}
