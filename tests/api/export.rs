//! CSV export: the seller's products only, filters, awkward values exactly, formula cells
//! neutralised, and the bulk rate limit.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, id_of, product, Backend, TestApp, SELLER_A, SELLER_B};
use crate::on_both_databases;

async fn export(app: &TestApp, seller: &str, query: &str) -> reqwest::Response {
    app.request(
        Method::GET,
        &format!("/api/products/export?{query}"),
        Some(seller),
    )
    .send()
    .await
    .expect("sent")
}

fn parse(body: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV"))
        .collect()
}

on_both_databases!(exports_exactly_the_sellers_products);

async fn exports_exactly_the_sellers_products(app: TestApp) {
    let awkward = [
        ("Comma, \"quoted\"", "line one\nline two", "Tools"),
        ("Ünïcødé ✓", "tab\there", "Décor"),
        ("=SUM(A1)", "-minus", "@home"),
        ("Plain", "", "+plus"),
    ];
    let mut ids = Vec::new();
    for (name, description, category) in awkward {
        let body =
            product(json!({ "name": name, "description": description, "category": category }));
        ids.push(id_of(&app.create_ok(SELLER_A, &body).await));
    }
    app.create_ok(SELLER_B, &product(json!({ "name": "Not mine" })))
        .await;

    let resp = export(&app, SELLER_A, "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .starts_with("attachment"));
    let body = resp.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "sku",
            "name",
            "description",
            "price",
            "quantity",
            "category",
            "low_stock_threshold",
            "created_at",
            "updated_at"
        ]
    );
    let rows = parse(&body);
    assert_eq!(rows.len(), 4, "only the seller's products");
    let exported_ids: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("id")).collect();
    assert_eq!(exported_ids, ids, "oldest first");
    let cells = |i: usize| {
        (
            rows[i][2].to_string(),
            rows[i][3].to_string(),
            rows[i][6].to_string(),
        )
    };
    assert_eq!(
        cells(0),
        (
            "Comma, \"quoted\"".into(),
            "line one\nline two".into(),
            "Tools".into()
        )
    );
    assert_eq!(
        cells(1),
        ("Ünïcødé ✓".into(), "tab\there".into(), "Décor".into())
    );
    assert_eq!(
        cells(2),
        ("'=SUM(A1)".into(), "'-minus".into(), "'@home".into())
    );
    assert_eq!(cells(3), ("Plain".into(), String::new(), "'+plus".into()));
    assert_eq!(&rows[0][4], "29.99");

    let filtered = parse(
        &export(&app, SELLER_A, "category=Tools")
            .await
            .text()
            .await
            .expect("body"),
    );
    assert_eq!(filtered.len(), 1);
    let none = parse(
        &export(&app, SELLER_B, "q=comma")
            .await
            .text()
            .await
            .expect("body"),
    );
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_more_rows_than_one_chunk() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let db = sea_orm::Database::connect(&app.db_url).await.expect("db");
    // 2,500 rows straight into the table: more than two export chunks.
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "INSERT INTO products (seller_id, name, price_cents, quantity, category, version, created_at, updated_at) \
         SELECT 'seller-alice', 'Bulk ' || g, 100 + g, g, 'Bulk', 1, now() + g * interval '1 microsecond', now() \
         FROM generate_series(1, 2500) AS g",
    )
    .await
    .expect("seed");
    let rows = parse(&export(&app, SELLER_A, "").await.text().await.expect("body"));
    assert_eq!(rows.len(), 2500);
    let names: Vec<&str> = rows.iter().map(|r| r.get(2).expect("name")).collect();
    assert_eq!(names.first(), Some(&"Bulk 1"));
    assert_eq!(names.last(), Some(&"Bulk 2500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_counts_against_the_bulk_limit_only() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("RATE_LIMIT_STANDARD", "100"), ("RATE_LIMIT_BULK", "2")],
    )
    .await;
    let seller = format!("seller-{}", uuid::Uuid::new_v4().simple());
    for _ in 0..2 {
        let resp = export(&app, &seller, "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["ratelimit-policy"], "\"bulk\";q=2;w=60");
    }
    let body = assert_problem(
        export(&app, &seller, "").await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;
    assert_eq!(body["details"]["window"], "60s");
    // The standard allowance is untouched.
    let resp = app.list(&seller, "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "99");
}

/// PostgreSQL's export reads its rows by binary COPY, SQLite's by keyset chunks. Both must give
/// the same bytes, for every awkward value and every filter (whose values COPY takes inlined,
/// so quotes and backslashes in them must stay data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_export_is_byte_for_byte_the_encoded_one() {
    use futures::TryStreamExt;
    use product_api::{
        domain::{Filter, SellerId},
        service::export::{chunked, copied},
    };

    let app = TestApp::spawn(Backend::Postgres).await;
    let db = sea_orm::Database::connect(&app.db_url).await.expect("db");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        r#"INSERT INTO products (seller_id, sku, name, description, price_cents, quantity, category, low_stock_threshold, version, created_at, updated_at) VALUES
         ('seller-alice', 'A-1', '=SUM(A1)', 'has, comma', 500, 0, 'Tools', 3, 1, '2026-01-02 03:04:05+00', '2026-01-02 03:04:05.5+00'),
         ('seller-alice', NULL, '+1 "quoted"', E'two\nlines', 50, 7, 'it''s', NULL, 1, '2026-01-02 03:04:05.123+00', '2026-01-02 03:04:05.123456+00'),
         ('seller-alice', 'A''3', E'back\\slash', '', 2999, 2147483647, E'Cat\\%_"x', NULL, 2, '2026-01-02 03:04:05.000001+00', '2026-06-30 23:59:59.999+02'),
         ('seller-alice', '-dash', '@at', E'\ttab', 1, 1, 'Tools', 0, 1, '2026-01-02 03:04:06+00', '2026-01-02 03:04:06+00'),
         ('seller-alice', 'Z', 'Ünïcødé ☃', E'\rcr', 123456789, 5, 'Tools', NULL, 1, '2026-01-02 03:04:07.010+00', '2026-01-02 03:04:07.010+00'),
         ('seller-bob', 'B', 'Other seller', NULL, 100, 1, 'Tools', NULL, 1, '2026-01-02 03:04:05+00', '2026-01-02 03:04:05+00')"#,
    )
    .await
    .expect("seed");
    let seller = SellerId::parse(SELLER_A).expect("seller");
    let filters = [
        Filter::default(),
        Filter {
            category: Some("Tools".into()),
            ..Filter::default()
        },
        Filter {
            category: Some(r#"Cat\%_"x"#.into()),
            ..Filter::default()
        },
        Filter {
            category: Some("it's".into()),
            ..Filter::default()
        },
        Filter {
            search: Some(r"back\sl".into()),
            ..Filter::default()
        },
        Filter {
            search: Some("%".into()),
            ..Filter::default()
        },
        Filter {
            sku: Some("A'3".into()),
            ..Filter::default()
        },
        Filter {
            min_quantity: Some(1),
            max_quantity: Some(7),
            ..Filter::default()
        },
    ];
    for filter in filters {
        let by_copy: Vec<bytes::Bytes> = copied(&db, &seller, &filter)
            .await
            .expect("COPY starts")
            .expect("PostgreSQL has COPY")
            .try_collect()
            .await
            .expect("COPY completes");
        let encoded: Vec<bytes::Bytes> = chunked(db.clone(), seller.clone(), filter.clone())
            .try_collect()
            .await
            .expect("chunks");
        let (by_copy, encoded) = (by_copy.concat(), encoded.concat());
        assert_eq!(
            String::from_utf8_lossy(&by_copy),
            String::from_utf8_lossy(&encoded),
            "{filter:?}"
        );
        assert!(
            !encoded.is_empty() || filter.search.as_deref() == Some("%"),
            "{filter:?} matched rows"
        );
    }
}

/// A client that stops reading an export leaves the rest of its COPY unread: the connection
/// that ran it must never serve another query. With one pooled connection, every request
/// after an abandoned export still gets its own answer, and the next export is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_export_leaves_no_connection_behind() {
    use futures::StreamExt;

    let app = TestApp::spawn_with(Backend::Postgres, &[("DATABASE_MAX_CONNECTIONS", "1")]).await;
    let db = sea_orm::Database::connect(&app.db_url).await.expect("db");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "INSERT INTO products (seller_id, name, description, price_cents, quantity, category, version, created_at, updated_at) \
         SELECT 'seller-alice', 'Bulk ' || g, repeat('d', 200), 100 + g, g, 'Bulk', 1, now() + g * interval '1 microsecond', now() \
         FROM generate_series(1, 20000) AS g",
    )
    .await
    .expect("seed");
    let theirs = app
        .create_ok(SELLER_B, &product(json!({ "name": "Bob's" })))
        .await;

    for _ in 0..3 {
        let resp = export(&app, SELLER_A, "").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.bytes_stream();
        let first = body.next().await.expect("a chunk").expect("readable");
        assert!(!first.is_empty());
        drop(body);
        for _ in 0..10 {
            let got: serde_json::Value = app
                .get(SELLER_B, id_of(&theirs))
                .await
                .json()
                .await
                .expect("json");
            assert_eq!(
                got, theirs,
                "a GET after an abandoned export answers its own query"
            );
            let list: serde_json::Value = app.list(SELLER_B, "").await.json().await.expect("json");
            assert_eq!(list["pagination"]["total"], 1);
        }
    }
    let whole = parse(&export(&app, SELLER_A, "").await.text().await.expect("body"));
    assert_eq!(whole.len(), 20000);
}
