//! The seller's Server-Sent Events stream: frames, order, resume, filters, limits, fan-out
//! across instances through Redis, reset and shutdown.

use std::time::Duration;

use futures::{stream::BoxStream, StreamExt};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};

use crate::{
    helpers::{assert_problem, fresh_seller, id_of, product, redis_url, Backend, TestApp},
    on_both_databases,
};

/// One SSE frame as a client parses it.
#[derive(Debug, Default, Clone)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    retry: Option<u64>,
    comment: bool,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("data of {self:?} is JSON: {e}"))
    }
}

pub struct Sse {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Sse {
    async fn open(
        app: &TestApp,
        seller: Option<&str>,
        query: &str,
        last: Option<&str>,
    ) -> reqwest::Response {
        let mut req = app.request(Method::GET, &format!("/api/events/stream?{query}"), seller);
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        req.send().await.expect("sent")
    }

    pub async fn connect(app: &TestApp, seller: &str, query: &str, last: Option<&str>) -> Self {
        Self::accept(Self::open(app, Some(seller), query, last).await, seller).await
    }

    /// The stream `resp` opened for `seller`, past its greeting frames.
    pub async fn accept(resp: reqwest::Response, seller: &str) -> Self {
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        let mut sse = Self {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
        };
        let retry = sse.next_raw().await;
        assert!(retry.retry.is_some(), "a retry hint first: {retry:?}");
        // As the Node.js service sent it (unnamed: `onmessage` fires), then named.
        let unnamed = sse.next_raw().await;
        assert_eq!(unnamed.event, None, "{unnamed:?}");
        let hello = unnamed.json();
        assert_eq!(hello["type"], "connected");
        assert_eq!(hello["sellerId"], seller);
        assert_eq!(hello["message"], "SSE connection established");
        assert!(
            hello["timestamp"].as_i64().is_some_and(|t| t > 0),
            "{hello}"
        );
        let named = sse.next_raw().await;
        assert_eq!(named.event.as_deref(), Some("connected"));
        assert_eq!(named.json(), hello);
        sse
    }

    /// The next frame of any kind, within five seconds.
    async fn next_raw(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in block.lines() {
                    match line.split_once(':') {
                        Some(("", _)) => frame.comment = true,
                        Some(("id", v)) => frame.id = Some(v.trim_start().to_string()),
                        Some(("event", v)) => frame.event = Some(v.trim_start().to_string()),
                        Some(("data", v)) => frame.data.push_str(v.trim_start()),
                        Some(("retry", v)) => frame.retry = v.trim().parse().ok(),
                        _ => {}
                    }
                }
                return frame;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("a frame within five seconds")
                .expect("the stream is open")
                .expect("readable");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next event frame (comments and retry hints skipped).
    pub async fn next_event(&mut self) -> Frame {
        loop {
            let frame = self.next_raw().await;
            if frame.event.is_some() {
                return frame;
            }
        }
    }

    /// Asserts nothing but heartbeats arrives for `wait`.
    async fn quiet_for(&mut self, wait: Duration) {
        if let Ok(frame) = tokio::time::timeout(wait, self.next_event()).await {
            panic!("unexpected frame {frame:?}");
        }
    }
}

on_both_databases!(
    events_arrive_in_order_with_ids,
    resume_replays_exactly_what_was_missed,
    concurrent_writes_of_one_seller_reach_its_stream_once_each_in_order
);

async fn events_arrive_in_order_with_ids(app: TestApp) {
    let (seller, other) = (fresh_seller(), fresh_seller());
    let mut sse = Sse::connect(&app, &seller, "", None).await;

    let id = id_of(
        &app.create_ok(
            &seller,
            &product(json!({ "name": "Widget A", "quantity": 5 })),
        )
        .await,
    );
    app.create_ok(&other, &product(json!({}))).await;
    app.update(&seller, id, &json!({ "price": 3.5 })).await;
    app.delete(&seller, id).await;

    let mut last = 0;
    for (kind, message) in [
        ("ProductCreated", "New product: Widget A"),
        ("LowStockWarning", "Low stock: Widget A (5 left)"),
        ("ProductUpdated", "Product updated: Widget A"),
        ("ProductDeleted", "Product deleted: Widget A"),
    ] {
        let frame = sse.next_event().await;
        assert_eq!(frame.event.as_deref(), Some(kind), "{frame:?}");
        let seq: i64 = frame
            .id
            .as_deref()
            .expect("id")
            .parse()
            .expect("numeric id");
        assert!(seq > last, "ids increase");
        last = seq;
        let data = frame.json();
        assert_eq!(data["id"], seq.to_string());
        assert_eq!(data["type"], kind);
        assert_eq!(data["message"], message);
        assert_eq!(data["data"]["productId"], id);
        assert_eq!(data["data"]["sellerId"], seller.as_str());
        assert!(data["timestamp"].is_i64());
    }
    sse.quiet_for(Duration::from_millis(300)).await;
}

/// Concurrent transactions commit (and announce) in any order; the stream must still send
/// every event once, ids rising, and a resume from any id it sent must miss nothing.
async fn concurrent_writes_of_one_seller_reach_its_stream_once_each_in_order(app: TestApp) {
    const WRITES: usize = 300;
    let seller = fresh_seller();
    let mut sse = Sse::connect(&app, &seller, "types=ProductCreated", None).await;
    let app = std::sync::Arc::new(app);
    let created: Vec<i64> = futures::stream::iter(0..WRITES)
        .map(|i| {
            let (app, seller) = (app.clone(), seller.clone());
            async move {
                let body = product(json!({ "name": format!("Race {i}") }));
                id_of(&app.create_ok(&seller, &body).await)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    let mut events = Vec::new();
    let mut products = Vec::new();
    for _ in 0..WRITES {
        let frame = sse.next_event().await;
        let seq: i64 = frame.id.as_deref().expect("id").parse().expect("numeric");
        events.push(seq);
        products.push(frame.json()["data"]["productId"].as_i64().expect("id"));
    }
    sse.quiet_for(Duration::from_millis(300)).await;
    assert!(
        events.windows(2).all(|w| w[0] < w[1]),
        "ids rise: {events:?}"
    );
    products.sort_unstable();
    let mut expected = created;
    expected.sort_unstable();
    assert_eq!(products, expected, "every created product once");

    // Resuming from the middle replays exactly the rest.
    let middle = events[WRITES / 2].to_string();
    let mut resumed = Sse::connect(&app, &seller, "types=ProductCreated", Some(&middle)).await;
    for expected in &events[WRITES / 2 + 1..] {
        let frame = resumed.next_event().await;
        assert_eq!(frame.id.as_deref(), Some(expected.to_string().as_str()));
    }
    resumed.quiet_for(Duration::from_millis(300)).await;
}

async fn resume_replays_exactly_what_was_missed(app: TestApp) {
    let seller = fresh_seller();
    let mut sse = Sse::connect(&app, &seller, "", None).await;
    app.create_ok(&seller, &product(json!({ "name": "One" })))
        .await;
    let seen = sse.next_event().await.id.expect("id");
    drop(sse);

    let mut missed = Vec::new();
    for name in ["Two", "Three", "Four"] {
        missed.push(id_of(
            &app.create_ok(&seller, &product(json!({ "name": name })))
                .await,
        ));
    }
    // Header form.
    let mut sse = Sse::connect(&app, &seller, "", Some(&seen)).await;
    for id in &missed {
        let frame = sse.next_event().await;
        assert_eq!(frame.json()["data"]["productId"], *id, "replayed in order");
    }
    let live = id_of(
        &app.create_ok(&seller, &product(json!({ "name": "Five" })))
            .await,
    );
    assert_eq!(
        sse.next_event().await.json()["data"]["productId"],
        live,
        "then live, no duplicate"
    );
    sse.quiet_for(Duration::from_millis(300)).await;

    // Query form, for EventSource: seller and resume point as parameters.
    let resp = Sse::open(
        &app,
        None,
        &format!("sellerId={seller}&lastEventId={seen}&types=ProductCreated"),
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut sse = Sse {
        body: resp.bytes_stream().boxed(),
        buffer: String::new(),
    };
    let mut replayed = Vec::new();
    loop {
        let frame = sse.next_event().await;
        if frame.event.as_deref() == Some("ProductCreated") {
            replayed.push(frame.json()["data"]["productId"].as_i64().expect("id"));
            if replayed.len() == 4 {
                break;
            }
        }
    }
    missed.push(live);
    assert_eq!(replayed, missed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_limits_and_errors() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("SSE_MAX_STREAMS_PER_SELLER", "2")]).await;
    let seller = fresh_seller();
    let mut only_low = Sse::connect(&app, &seller, "types=LowStockWarning", None).await;
    let _second = Sse::connect(&app, &seller, "", None).await;
    let third = Sse::open(&app, Some(&seller), "", None).await;
    assert_problem(third, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_STREAMS").await;

    app.create_ok(&seller, &product(json!({ "quantity": 50 })))
        .await;
    app.create_ok(&seller, &product(json!({ "quantity": 1 })))
        .await;
    assert_eq!(
        only_low.next_event().await.event.as_deref(),
        Some("LowStockWarning")
    );

    let cases = [
        (None, "", StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID"),
        (
            Some("nobody"),
            "",
            StatusCode::UNAUTHORIZED,
            "INVALID_SELLER_ID",
        ),
        (
            Some(seller.as_str()),
            "types=Nonsense",
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        ),
        (
            Some(seller.as_str()),
            "lastEventId=abc",
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        ),
    ];
    for (who, query, status, code) in cases {
        let other = fresh_seller();
        let who = who.map(|w| if w == seller { other.as_str() } else { w });
        assert_problem(Sse::open(&app, who, query, None).await, status, code).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_instance_reaches_a_stream_on_another_through_redis() {
    let channel = format!("test-events-{}", uuid::Uuid::new_v4().simple());
    let redis = redis_url();
    let vars = [
        ("REDIS_URL", redis.as_str()),
        ("EVENTS_CHANNEL", channel.as_str()),
    ];
    let a = TestApp::spawn_with(Backend::Postgres, &vars).await;
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("EVENTS_CHANNEL", channel.as_str()),
        ("DATABASE_URL", a.db_url.as_str()),
    ];
    let b = TestApp::spawn_with(Backend::Postgres, &shared).await;
    let (seller, other) = (fresh_seller(), fresh_seller());
    // Give both subscribers a moment to be subscribed to the channel.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut on_b = Sse::connect(&b, &seller, "", None).await;
    let mut other_on_b = Sse::connect(&b, &other, "", None).await;

    let id = id_of(&a.create_ok(&seller, &product(json!({}))).await);
    let frame = on_b.next_event().await;
    assert_eq!(frame.event.as_deref(), Some("ProductCreated"));
    assert_eq!(frame.json()["data"]["productId"], id);
    other_on_b.quiet_for(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_resume_point_gets_reset_and_shutdown_says_goodbye() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let seller = fresh_seller();
    let first = id_of(
        &app.create_ok(&seller, &product(json!({ "name": "Old" })))
            .await,
    );
    let kept = id_of(
        &app.create_ok(&seller, &product(json!({ "name": "Kept" })))
            .await,
    );
    // What the retention pruner does to old events.
    let db = Database::connect(&app.db_url).await.expect("database");
    db.execute_unprepared(&format!("DELETE FROM outbox WHERE product_id = {first}"))
        .await
        .expect("prune");

    let mut sse = Sse::connect(&app, &seller, "", Some("0")).await;
    let reset = sse.next_event().await;
    assert_eq!(reset.event.as_deref(), Some("reset"));
    assert_eq!(reset.json()["lastEventId"], "0");
    assert_eq!(sse.next_event().await.json()["data"]["productId"], kept);

    app.shut_down();
    let retry = sse.next_raw().await;
    assert!(retry.retry.is_some(), "{retry:?}");
    assert_eq!(sse.next_event().await.event.as_deref(), Some("shutdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_quiet_stream_open_past_the_idle_timeout() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("IDLE_TIMEOUT_SECS", "2"), ("SSE_HEARTBEAT_SECS", "1")],
    )
    .await;
    let seller = fresh_seller();
    let mut sse = Sse::connect(&app, &seller, "", None).await;
    let beat = sse.next_raw().await;
    assert!(beat.comment, "a heartbeat comment: {beat:?}");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let id = id_of(&app.create_ok(&seller, &product(json!({}))).await);
    assert_eq!(sse.next_event().await.json()["data"]["productId"], id);
}
