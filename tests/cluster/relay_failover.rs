//! When the instance relaying the outbox to Kafka is killed, another takes over: every
//! acknowledged write's event is published, each seller's still in order.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    cluster::{fresh_seller, product, Cluster, Settings, NAMES},
    kafka::{created_records, Created},
};

const WRITERS: usize = 4;

/// `events_published_total` of each of `names` that answers.
async fn published(cluster: &Cluster, names: &[&str]) -> BTreeMap<String, f64> {
    let mut counts = BTreeMap::new();
    for name in names {
        if let Some(v) = cluster
            .metric(name, "product_api_events_published_total")
            .await
        {
            counts.insert(name.to_string(), v);
        }
    }
    counts
}

/// The instance whose `events_published_total` grows, and where every instance stood.
async fn relaying(cluster: &Cluster, names: &[&str]) -> Option<(String, BTreeMap<String, f64>)> {
    let first = published(cluster, names).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = published(cluster, names).await;
    let grew = second
        .iter()
        .find(|(name, v)| first.get(*name).is_some_and(|f| *v > f))?;
    Some((grew.0.clone(), second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_relaying_instance_loses_no_acknowledged_event() {
    let mut cluster = Cluster::start("relay", Settings::default()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (client, url, stop) = (
                cluster.client.clone(),
                cluster.lb_url("/api/products"),
                stop.clone(),
            );
            let seller = fresh_seller();
            tokio::spawn(async move {
                let (mut acknowledged, mut failed) = (Vec::new(), 0);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = client
                        .post(&url)
                        .header("X-Seller-Id", &seller)
                        .json(&product(&format!("Relay {i}")))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::CREATED => {
                            let body: Value = r.json().await.expect("JSON");
                            acknowledged.push(body["id"].as_i64().expect("id"));
                        }
                        // Unacknowledged: it may or may not exist; nothing is promised.
                        _ => failed += 1,
                    }
                }
                (seller, acknowledged, failed)
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (relay, before) = loop {
        if let Some(found) = relaying(&cluster, &NAMES).await {
            break found;
        }
        assert!(Instant::now() < deadline, "no instance relays the outbox");
    };
    cluster.kill(&relay);
    let survivors: Vec<&str> = NAMES.into_iter().filter(|n| *n != relay).collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = BTreeMap::new();
    let mut failed = 0;
    for writer in writers {
        let (seller, ids, f) = writer.await.expect("writer");
        acknowledged.insert(seller, ids);
        failed += f;
    }
    let total: usize = acknowledged.values().map(Vec::len).sum();
    assert!(total > 50, "writes were under way: {total} acknowledged");

    // Everything acknowledged reaches Kafka, relayed by a survivor.
    let wanted: BTreeSet<i64> = acknowledged.values().flatten().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let records: Vec<Created> = loop {
        let records = created_records(&cluster.brokers, &cluster.topic_prefix).await;
        let published: BTreeSet<i64> = records.iter().map(|r| r.product_id).collect();
        let missing = wanted.difference(&published).count();
        if missing == 0 {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {total} acknowledged products never reached Kafka after {relay} was \
             killed ({failed} writes unacknowledged)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut took_over = false;
    for name in &survivors {
        let now = cluster
            .metric(name, "product_api_events_published_total")
            .await;
        took_over |= now > before.get(*name).copied();
    }
    assert!(took_over, "a survivor of {relay} published: {before:?}");

    // Per seller, in partition order: increasing ids; a repeat is the same outbox row again.
    let mut ce_of_product = BTreeMap::new();
    for seller in acknowledged.keys() {
        let mut mine: Vec<&Created> = records.iter().filter(|r| &r.seller == seller).collect();
        mine.sort_by_key(|r| (r.partition, r.offset));
        assert!(
            mine.windows(2).all(|w| w[0].partition == w[1].partition),
            "one seller, one partition"
        );
        let mut last = (0, 0);
        for record in mine {
            let ce = *ce_of_product
                .entry(record.product_id)
                .or_insert(record.ce_id);
            assert_eq!(
                ce, record.ce_id,
                "a product published twice carries one ce_id: {record:?}"
            );
            if record.ce_id <= last.0 {
                // A redelivery of what the killed relay sent but had not marked.
                continue;
            }
            assert!(
                record.product_id > last.1,
                "{seller}'s products in order: {record:?} after product {}",
                last.1
            );
            last = (record.ce_id, record.product_id);
        }
    }
}
