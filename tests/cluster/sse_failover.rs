//! An event stream held by one instance carries the writes made on the others, exactly once
//! and in order; when its instance is killed, resuming through the balancer with
//! `Last-Event-ID` loses and repeats nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    cluster::{fresh_seller, product, served_by, Cluster, Settings, NAMES},
    sse::{Event, Next, Sse},
};

/// Creates a product at `url` for `seller`; its id.
async fn create(cluster: &Cluster, url: &str, seller: &str, name: &str) -> i64 {
    let response = cluster
        .client
        .post(url)
        .header("X-Seller-Id", seller)
        .json(&product(name))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), StatusCode::CREATED, "POST {url}");
    response.json::<Value>().await.expect("JSON")["id"]
        .as_i64()
        .expect("integer id")
}

/// Reads `n` events (each within ten seconds).
async fn read(sse: &mut Sse, n: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events.len() < n {
        match sse.next(Duration::from_secs(10)).await {
            Next::Event(e) => events.push(e),
            other => panic!("after {} of {n} events: {other:?}", events.len()),
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_gets_every_instances_writes_once_in_order_and_survives_its_instance() {
    let mut cluster = Cluster::start("sse", Settings::default()).await;
    let seller = fresh_seller();
    let stream_url = cluster.lb_url("/api/events/stream");
    let mut sse = Sse::open(&cluster.client, &stream_url, &seller, None).await;
    let holder = sse.served_by.clone();
    assert!(NAMES.contains(&holder.as_str()), "held by {holder:?}");
    let others: Vec<&str> = NAMES.into_iter().filter(|n| *n != holder).collect();

    // Writes straight to the two instances that do not hold the stream, alternately.
    let mut written = Vec::new();
    for i in 0..10 {
        let url = cluster.direct_url(others[i % 2], "/api/products");
        written.push(create(&cluster, &url, &seller, &format!("Before {i}")).await);
    }
    let seen = read(&mut sse, written.len()).await;
    let seen_ids: Vec<i64> = seen.iter().map(Event::product_id).collect();
    assert_eq!(seen_ids, written, "each write once, in order");
    assert!(seen.iter().all(|e| e.event == "ProductCreated"), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].id < w[1].id),
        "event ids increase: {seen:?}"
    );
    match sse.next(Duration::from_millis(500)).await {
        Next::Quiet => {}
        other => panic!("nothing more before the kill: {other:?}"),
    }

    cluster.kill(&holder);
    let mut all = seen;
    // Whatever was already on its way before the kill still counts; then the stream ends.
    loop {
        match sse.next(Duration::from_secs(5)).await {
            Next::Event(e) => all.push(e),
            Next::Ended => break,
            Next::Quiet => panic!("the stream of a killed instance did not end"),
        }
    }

    // Writes go on through the balancer, which must route around the dead instance.
    for i in 0..10 {
        let url = cluster.lb_url("/api/products");
        written.push(create(&cluster, &url, &seller, &format!("After {i}")).await);
    }
    let last = all.last().map(|e| e.id);
    let mut resumed = Sse::open(&cluster.client, &stream_url, &seller, last).await;
    assert_ne!(
        resumed.served_by, holder,
        "not routed to the killed instance"
    );
    let missing = written.len() - all.len();
    all.extend(read(&mut resumed, missing).await);
    match resumed.next(Duration::from_millis(500)).await {
        Next::Quiet => {}
        other => panic!("nothing beyond the writes: {other:?}"),
    }

    let ids: Vec<i64> = all.iter().map(Event::product_id).collect();
    assert_eq!(ids, written, "the union is every write once, in order");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "event ids increase across the resume: {all:?}"
    );
    // The balancer answered every write although one instance was gone.
    let health = cluster
        .client
        .get(cluster.lb_url("/health/ready"))
        .send()
        .await
        .expect("health through the balancer");
    assert_ne!(served_by(&health), holder);
}
