//! The per-seller limit is one limit for the cluster: requests spread over every instance
//! (through the balancer and directly) are admitted no more than the limit allows.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::cluster::{fresh_seller, Cluster, Settings, NAMES};

const LIMIT: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_of_a_seller_holds_across_instances() {
    let cluster = Cluster::start(
        "ratelimit",
        Settings {
            rate_limit_standard: LIMIT,
            ..Settings::default()
        },
    )
    .await;
    let seller = fresh_seller();
    // 30 through the balancer, 20 straight to each instance.
    let mut urls = vec![cluster.lb_url("/api/products?limit=1"); 30];
    for name in NAMES {
        urls.extend(vec![cluster.direct_url(name, "/api/products?limit=1"); 20]);
    }

    let started = Instant::now();
    let responses = futures::future::join_all(urls.iter().map(|url| {
        cluster
            .client
            .get(url)
            .header("X-Seller-Id", &seller)
            .timeout(Duration::from_secs(10))
            .send()
    }))
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(900),
        "all {} requests within one window of the limit: {elapsed:?}",
        urls.len()
    );

    let (mut admitted, mut rejected) = (0, 0);
    for response in responses {
        let response = response.expect("answered");
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("{status} carries {name}"))
        };
        assert_eq!(header("x-ratelimit-limit"), LIMIT.to_string());
        header("x-ratelimit-remaining");
        header("x-ratelimit-reset");
        if status == StatusCode::TOO_MANY_REQUESTS {
            rejected += 1;
            assert_eq!(header("x-ratelimit-remaining"), "0");
            let retry_after: u64 = header("retry-after").parse().expect("Retry-After seconds");
            assert!(retry_after <= 1, "Retry-After {retry_after}");
            let problem: Value = response.json().await.expect("problem+json");
            assert_eq!(problem["error_code"], "RATE_LIMIT_EXCEEDED", "{problem}");
            assert_eq!(problem["details"]["limit"], LIMIT, "{problem}");
        } else {
            assert_eq!(status, StatusCode::OK);
            admitted += 1;
        }
    }
    assert!(admitted > 0, "some requests are admitted");
    assert!(
        admitted <= LIMIT,
        "at most {LIMIT} admitted across three instances, got {admitted} ({rejected} rejected)"
    );
    assert_eq!(admitted + rejected, urls.len() as u32);
}
