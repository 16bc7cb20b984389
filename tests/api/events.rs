//! Every committed write's events reach Kafka (keyed by seller, on the Java partition, with
//! CloudEvents headers, in sequence order), survive a broker outage and a server SIGKILL, and
//! LowStockWarning fires once per crossing.

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use product_api::infra::kafka::{partition_for, ProductTopic};
use reqwest::{Method, StatusCode};
use rskafka::record::RecordAndOffset;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};

use crate::{
    helpers::{fresh_database, fresh_seller, id_of, product, Backend, TestApp},
    kafka_support::{brokers_from_env, consume_partition, raw_client, unique_prefix, Broker},
    on_both_databases,
};

/// One consumed event: where it was and what it said.
#[derive(Debug)]
struct Consumed {
    topic: ProductTopic,
    partition: i32,
    key: String,
    value: Value,
    headers: BTreeMap<String, String>,
}

impl Consumed {
    fn ce_id(&self) -> i64 {
        self.headers["ce_id"]
            .parse()
            .expect("ce_id is the outbox sequence")
    }

    fn event_type(&self) -> &str {
        self.value["eventType"].as_str().expect("eventType")
    }
}

fn decode(topic: ProductTopic, partition: i32, r: RecordAndOffset) -> Consumed {
    let record = r.record;
    Consumed {
        topic,
        partition,
        key: String::from_utf8(record.key.unwrap_or_default()).expect("utf-8 key"),
        value: serde_json::from_slice(&record.value.unwrap_or_default()).expect("JSON value"),
        headers: record
            .headers
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).expect("utf-8 header")))
            .collect(),
    }
}

/// Everything on the four product topics under `prefix`, in partition order.
async fn consume_all(brokers: &str, prefix: &str) -> Vec<Consumed> {
    let client = raw_client(brokers).await;
    let existing: BTreeSet<String> = client
        .list_topics()
        .await
        .map(|topics| topics.into_iter().map(|t| t.name).collect())
        .unwrap_or_default();
    let mut all = Vec::new();
    for topic in ProductTopic::ALL {
        let name = format!("{prefix}{}", topic.suffix());
        if !existing.contains(&name) {
            continue;
        }
        for partition in 0..4 {
            for record in consume_partition(&client, &name, partition).await {
                all.push(decode(topic, partition, record));
            }
        }
    }
    all
}

/// Polls until `done` holds for what Kafka has, or fails after a minute.
async fn wait_for(
    brokers: &str,
    prefix: &str,
    what: &str,
    done: impl Fn(&[Consumed]) -> bool,
) -> Vec<Consumed> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let consumed = consume_all(brokers, prefix).await;
        if done(&consumed) {
            return consumed;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {} events arrived: {consumed:#?}",
            consumed.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn spawn_with_kafka(brokers: &str, prefix: &str) -> TestApp {
    TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("KAFKA_BROKERS", brokers),
            ("KAFKA_TOPIC_PREFIX", prefix),
            ("OUTBOX_SWEEP_MS", "200"),
        ],
    )
    .await
}

/// Creates (quantity 12), sells 3 (into low stock), reprices, deletes; then creates a product
/// already low on stock. Returns the event types in the order they must arrive.
async fn scripted_writes(app: &TestApp, seller: &str) -> Vec<&'static str> {
    let id = id_of(
        &app.create_ok(seller, &product(json!({ "quantity": 12 })))
            .await,
    );
    assert_eq!(app.adjust(seller, id, -3).await.status(), StatusCode::OK);
    assert_eq!(
        app.update(seller, id, &json!({ "price": 5.5 }))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.delete(seller, id).await.status(), StatusCode::OK);
    app.create_ok(seller, &product(json!({ "quantity": 2 })))
        .await;
    vec![
        "ProductCreated",
        "ProductUpdated",
        "LowStockWarning",
        "ProductUpdated",
        "ProductDeleted",
        "ProductCreated",
        "LowStockWarning",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_reaches_kafka_in_order_with_its_key_partition_and_headers() {
    let brokers = brokers_from_env();
    let prefix = unique_prefix("events");
    let app = spawn_with_kafka(&brokers, &prefix).await;
    let sellers = [fresh_seller(), fresh_seller(), fresh_seller()];
    let mut expected = BTreeMap::new();
    for seller in &sellers {
        expected.insert(seller.clone(), scripted_writes(&app, seller).await);
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let consumed = wait_for(&brokers, &prefix, "scripted writes", |c| c.len() >= total).await;
    assert_eq!(consumed.len(), total, "nothing published twice");

    let mut last_in_partition: BTreeMap<(ProductTopic, i32), i64> = BTreeMap::new();
    for event in &consumed {
        assert_eq!(
            event.partition,
            partition_for(event.key.as_bytes(), 4),
            "{event:?}"
        );
        let expected_topic = match event.event_type() {
            "ProductCreated" => ProductTopic::Created,
            "ProductUpdated" => ProductTopic::Updated,
            "ProductDeleted" => ProductTopic::Deleted,
            _ => ProductTopic::LowStock,
        };
        assert_eq!(event.topic, expected_topic, "{event:?}");
        assert_eq!(event.value["data"]["sellerId"], event.key.as_str());
        assert!(event.value["timestamp"].is_i64());
        assert!(event.value["eventId"]
            .as_str()
            .is_some_and(|id| id.starts_with(&event.key)));
        assert_eq!(event.headers["ce_specversion"], "1.0");
        assert_eq!(event.headers["ce_type"], event.event_type());
        assert_eq!(event.headers["ce_source"], "product-api");
        assert_eq!(
            event.headers["ce_subject"],
            event.value["data"]["productId"].to_string()
        );
        assert_eq!(event.headers["content-type"], "application/json");
        assert!(chrono::DateTime::parse_from_rfc3339(&event.headers["ce_time"]).is_ok());
        // Within a partition the sequence only grows.
        let last = last_in_partition
            .entry((event.topic, event.partition))
            .or_insert(0);
        assert!(event.ce_id() > *last, "{event:?} after {last}");
        *last = event.ce_id();
    }
    for (seller, types) in expected {
        let mut mine: Vec<&Consumed> = consumed.iter().filter(|e| e.key == seller).collect();
        mine.sort_by_key(|e| e.ce_id());
        let got: Vec<&str> = mine.iter().map(|e| e.event_type()).collect();
        assert_eq!(got, types, "{seller}'s events in sequence order");
    }
    let low = consumed
        .iter()
        .find(|e| e.event_type() == "LowStockWarning")
        .expect("low stock");
    assert_eq!(low.value["data"]["threshold"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_while_the_broker_is_down_arrive_when_it_returns() {
    let (broker, brokers) = Broker::start();
    let prefix = unique_prefix("outage");
    let app = spawn_with_kafka(&brokers, &prefix).await;
    let seller = fresh_seller();
    broker.run("stop");

    let mut ids = Vec::new();
    for i in 0..5 {
        let p = app
            .create_ok(&seller, &product(json!({ "name": format!("Offline {i}") })))
            .await;
        ids.push(id_of(&p));
    }
    // The writes were accepted and wait in the outbox while the broker is away.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let db = Database::connect(&app.db_url).await.expect("database");
    let pending = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL",
        ))
        .await
        .expect("query")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("count");
    assert_eq!(
        pending, 5,
        "nothing could be published while the broker was down"
    );
    broker.run("start");
    let consumed = wait_for(&brokers, &prefix, "writes made during the outage", |c| {
        c.len() >= 5
    })
    .await;
    let got: Vec<i64> = consumed
        .iter()
        .map(|e| e.value["data"]["productId"].as_i64().expect("productId"))
        .collect();
    assert_eq!(got, ids, "every write, in order, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_no_committed_write_without_its_event() {
    let brokers = brokers_from_env();
    let prefix = unique_prefix("sigkill");
    let db_url = fresh_database(Backend::Postgres).await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_product-api"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATABASE_URL", &db_url)
            .env("KAFKA_BROKERS", &brokers)
            .env("KAFKA_TOPIC_PREFIX", &prefix)
            .env("RATE_LIMIT_ENABLED", "false")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts")
    };
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/products");
    let seller = fresh_seller();
    let wait_up = || async {
        for _ in 0..100 {
            let sent = client.get(&url).header("X-Seller-Id", &seller).send().await;
            if sent.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server did not come up");
    };

    let mut server = start();
    wait_up().await;
    // Writes in flight while the process dies: only acknowledged ones are known committed.
    let writer = {
        let (client, url, seller) = (client.clone(), url.clone(), seller.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let resp = client
                    .post(&url)
                    .header("X-Seller-Id", &seller)
                    .json(&product(json!({ "name": format!("Crash {i}") })))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        acknowledged.push(id_of(&r.json::<Value>().await.expect("json")));
                    }
                    _ => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    let acknowledged = writer.await.expect("writer");
    assert!(
        acknowledged.len() > 10,
        "writes were under way: {}",
        acknowledged.len()
    );

    let mut server = start();
    wait_up().await;
    let consumed = wait_for(&brokers, &prefix, "events of acknowledged writes", |c| {
        let published: BTreeSet<i64> = c
            .iter()
            .filter_map(|e| e.value["data"]["productId"].as_i64())
            .collect();
        acknowledged.iter().all(|id| published.contains(id))
    })
    .await;
    let _ = server.kill();
    let _ = server.wait();
    // At-least-once: a batch acknowledged but not yet marked may repeat; consumers de-duplicate
    // by ce_id, after which every event is there exactly once.
    let unique: BTreeSet<i64> = consumed.iter().map(Consumed::ce_id).collect();
    assert!(unique.len() >= acknowledged.len());
}

on_both_databases!(low_stock_fires_once_under_concurrent_adjustments);

async fn low_stock_fires_once_under_concurrent_adjustments(app: TestApp) {
    let seller = fresh_seller();
    let id = id_of(
        &app.create_ok(&seller, &product(json!({ "quantity": 30 })))
            .await,
    );
    let sales = futures::future::join_all((0..30).map(|_| app.adjust(&seller, id, -1))).await;
    assert!(sales.iter().all(|r| r.status() == StatusCode::OK));
    let restock = app
        .request(
            Method::POST,
            &format!("/api/products/{id}/quantity-adjustments"),
            Some(&seller),
        )
        .json(&json!({ "delta": 50 }))
        .send()
        .await
        .expect("sent");
    assert_eq!(restock.status(), StatusCode::OK);
    let again = futures::future::join_all((0..45).map(|_| app.adjust(&seller, id, -1))).await;
    assert!(again.iter().all(|r| r.status() == StatusCode::OK));

    let db = Database::connect(&app.db_url).await.expect("database");
    let count = |kind: &'static str| {
        let db = &db;
        async move {
            let sql = format!("SELECT COUNT(*) AS n FROM outbox WHERE product_id = {id} AND event_type = '{kind}'");
            let row = db
                .query_one(Statement::from_string(db.get_database_backend(), sql))
                .await
                .expect("query")
                .expect("a row");
            row.try_get::<i64>("", "n").expect("count")
        }
    };
    assert_eq!(
        count("LowStockWarning").await,
        2,
        "once per crossing: 30→9 and 80→9"
    );
    assert_eq!(count("ProductUpdated").await, 76);
    assert_eq!(count("ProductCreated").await, 1);
}

/// Creates a product at `url`; its id once acknowledged (201), `None` otherwise.
async fn create_product(
    client: reqwest::Client,
    url: String,
    seller: String,
    i: usize,
) -> Option<i64> {
    let resp = client
        .post(&url)
        .header("X-Seller-Id", &seller)
        .json(&product(json!({ "name": format!("Relay {i}") })))
        .send()
        .await
        .ok()?;
    if resp.status() != StatusCode::CREATED {
        return None;
    }
    Some(id_of(&resp.json::<Value>().await.ok()?))
}

/// A spawned server, continued and killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-CONT", &pid]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`STOP`, `CONT`) to a spawned server.
fn signal(server: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal}");
}

/// Whether a session holds the relay's advisory lock (key 0x6f7574626f78) in this database.
async fn relay_lock_held(db: &sea_orm::DatabaseConnection) -> bool {
    let sql = "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
               AND classid = 28533 AND objid = 1952608120 AND objsubid = 1 \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("pg_locks")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("count") > 0
}

/// An instance frozen (SIGSTOP) while it relays keeps the relay only until PostgreSQL ends its
/// idle transaction; the other instance then publishes every acknowledged write, its own and
/// the frozen one's, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_relaying_instance_hands_the_relay_over() {
    let brokers = brokers_from_env();
    let prefix = unique_prefix("frozen");
    let db_url = fresh_database(Backend::Postgres).await;
    let start = || {
        let port = crate::helpers::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_product-api"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATABASE_URL", &db_url)
            .env("KAFKA_BROKERS", &brokers)
            .env("KAFKA_TOPIC_PREFIX", &prefix)
            .env("OUTBOX_SWEEP_MS", "100")
            .env("DATABASE_IDLE_TRANSACTION_TIMEOUT_MS", "1000")
            .env("OUTBOX_BATCH_SIZE", "5")
            .env("RATE_LIMIT_ENABLED", "false")
            .env("IMPORT_SPOOL_DIR", crate::helpers::spool_dir())
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts");
        (child, format!("http://127.0.0.1:{port}/api/products"))
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let (a, a_url) = start();
    let (b, b_url) = start();
    // Killed (and continued first) however the test ends, so no frozen server outlives it.
    let (a, b) = (Server(a), Server(b));
    for url in [&a_url, &b_url] {
        crate::helpers::wait_until_live(&client, url.trim_end_matches("/api/products")).await;
    }
    let seller = fresh_seller();
    let create = {
        let (client, seller) = (client.clone(), seller.clone());
        move |url: String, i: usize| create_product(client.clone(), url, seller.clone(), i)
    };

    // A writes continuously, so its relay holds the lock most of the time; freeze A while it
    // does (a hold that outlasts B's brief sweeps is A's).
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let a_url = a_url.clone();
            let create = create.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..100_000 {
                    match create(a_url.clone(), w * 100_000 + i).await {
                        Some(id) => acknowledged.push(id),
                        None => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    let db = Database::connect(&db_url).await.expect("database");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut frozen_holding = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !frozen_holding && Instant::now() < deadline {
        if relay_lock_held(&db).await {
            signal(&a.0, "STOP");
            tokio::time::sleep(Duration::from_millis(300)).await;
            frozen_holding = relay_lock_held(&db).await;
            if !frozen_holding {
                signal(&a.0, "CONT");
            }
        }
    }
    assert!(frozen_holding, "A was frozen holding the relay lock");
    let mut from_a = Vec::new();
    for writer in writers {
        from_a.extend(writer.await.expect("writer"));
    }
    assert!(!from_a.is_empty(), "A acknowledged writes before it froze");

    // A's frozen transactions hold the seller's lock each in turn, for up to the idle limit
    // each, so B's first writes may wait that long; none fails.
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut from_b = Vec::new();
    for i in 0..20 {
        let id = create_product(
            patient.clone(),
            b_url.clone(),
            seller.clone(),
            1_000_000 + i,
        );
        from_b.push(id.await.expect("B writes"));
    }
    let expected: BTreeSet<i64> = from_a.iter().chain(&from_b).copied().collect();
    let consumed = wait_for(&brokers, &prefix, "events while A is frozen", |c| {
        let published: BTreeSet<i64> = c
            .iter()
            .filter_map(|e| e.value["data"]["productId"].as_i64())
            .collect();
        expected.is_subset(&published)
    })
    .await;
    drop((a, b));

    // De-duplicated by ce_id, the seller's events are in sequence order on their partition.
    let mut seen = BTreeSet::new();
    let order: Vec<i64> = consumed
        .iter()
        .filter(|e| e.key == seller && seen.insert(e.ce_id()))
        .map(Consumed::ce_id)
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order: {order:?}");
}
