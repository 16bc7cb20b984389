//! A rolling restart under load: each instance in turn gets SIGTERM, stops gracefully and
//! comes back on its port, while clients keep reading and writing through the balancer.
//! Not one of their requests may fail.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cluster::{fresh_seller, product, Cluster, Settings, NAMES};

const CLIENTS: usize = 4;

/// One client's loop: create, read, update, list, until told to stop; what went wrong.
async fn client_loop(
    client: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
) -> (u64, Vec<String>) {
    let seller = fresh_seller();
    let (mut sent, mut failures) = (0, Vec::new());
    let mut check = |what: &str, result: reqwest::Result<reqwest::Response>, want: StatusCode| {
        sent += 1;
        match result {
            Ok(r) if r.status() == want => Some(r),
            Ok(r) => {
                failures.push(format!(
                    "{what}: {} (by {:?})",
                    r.status(),
                    r.headers().get("x-served-by")
                ));
                None
            }
            Err(e) => {
                failures.push(format!("{what}: {e}"));
                None
            }
        }
    };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let created = client
            .post(format!("{base}/api/products"))
            .header("X-Seller-Id", &seller)
            .json(&product(&format!("Rolling {i}")))
            .send()
            .await;
        let Some(created) = check("POST", created, StatusCode::CREATED) else {
            continue;
        };
        let id = created.json::<Value>().await.expect("JSON")["id"]
            .as_i64()
            .expect("id");
        let url = format!("{base}/api/products/{id}");
        let read = client.get(&url).header("X-Seller-Id", &seller).send().await;
        check("GET", read, StatusCode::OK);
        let updated = client
            .put(&url)
            .header("X-Seller-Id", &seller)
            .json(&json!({ "quantity": 100 + i }))
            .send()
            .await;
        check("PUT", updated, StatusCode::OK);
        let listed = client
            .get(format!("{base}/api/products?limit=5"))
            .header("X-Seller-Id", &seller)
            .send()
            .await;
        check("list", listed, StatusCode::OK);
    }
    (sent, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request() {
    // Three seconds of draining: well over the two failed checks (2 x 500 ms) that take an
    // instance out of the balancer.
    let mut cluster = Cluster::start(
        "rolling",
        Settings {
            shutdown_delay_secs: 3,
            ..Settings::default()
        },
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(client_loop(
                cluster.client.clone(),
                cluster.lb.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    for name in NAMES {
        let status = cluster.terminate(name).await;
        assert!(status.success(), "{name} stopped cleanly: {status}");
        cluster.restart(name).await;
        cluster.wait_routed(name).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);

    let (mut sent, mut failures) = (0, Vec::new());
    for client in clients {
        let (s, f) = client.await.expect("client");
        sent += s;
        failures.extend(f);
    }
    assert!(sent > 100, "the clients kept busy: {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed during the rolling restart: {failures:#?}",
        failures.len()
    );
}
