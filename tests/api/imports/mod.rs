//! CSV import: the sample file, dry runs, both error policies, upsert by sku, every 4xx,
//! malformed CSV, cancel, kill-and-resume, the export round trip, tenant isolation, the
//! import events, and the bulk rate limit. Database-backed tests run on both databases.
//! This module holds the helpers the four files below share.

mod lifecycle;
mod round_trip;
mod rows;
mod uploads;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::{multipart, Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{json, Value};

use crate::event_stream::Sse;
use crate::helpers::{
    assert_problem, count, free_port, fresh_database, id_of, product, spool_dir, wait_until_live,
    Backend, TestApp, SELLER_A, SELLER_B,
};
use crate::on_both_databases;

/// The existing service's seed file (a copy of `shared/fixtures/original-seed-products.csv`).
const SAMPLE: &str = "tests/fixtures/original-seed-products.csv";
const HEADER: &str = "name,description,price,quantity,category,sku";

async fn send_csv(
    app: &TestApp,
    seller: &str,
    query: &str,
    csv: impl Into<reqwest::Body>,
) -> Response {
    app.request(
        Method::POST,
        &format!("/api/products/import?{query}"),
        Some(seller),
    )
    .header("content-type", "text/csv")
    .body(csv)
    .send()
    .await
    .expect("sent")
}

async fn send_form(app: &TestApp, seller: &str, query: &str, part: multipart::Part) -> Response {
    let form = multipart::Form::new().part("file", part);
    app.request(
        Method::POST,
        &format!("/api/products/import?{query}"),
        Some(seller),
    )
    .multipart(form)
    .send()
    .await
    .expect("sent")
}

fn csv_part(bytes: Vec<u8>) -> multipart::Part {
    multipart::Part::bytes(bytes)
        .file_name("products.csv")
        .mime_str("text/csv")
        .expect("mime")
}

/// Starts an import and returns its id, checking the 202 the existing clients expect.
async fn start(app: &TestApp, seller: &str, query: &str, csv: &str) -> String {
    let resp = send_csv(app, seller, query, csv.to_string()).await;
    accepted(resp).await
}

async fn accepted(resp: Response) -> String {
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "processing");
    assert_eq!(body["message"], "Import processing started");
    let id = body["import_id"].as_str().expect("import_id").to_string();
    assert_eq!(location, format!("/api/products/import/{id}"));
    id
}

async fn status(app: &TestApp, seller: &str, id: &str) -> Response {
    app.send(
        Method::GET,
        &format!("/api/products/import/{id}"),
        Some(seller),
    )
    .await
}

/// Polls until the import ends; returns its final status.
async fn finished(app: &TestApp, seller: &str, id: &str) -> Value {
    finished_within(app, seller, id, Duration::from_secs(60)).await
}

/// Polls every 20 ms until the import ends or `limit` passes; returns its final status.
async fn finished_within(app: &TestApp, seller: &str, id: &str, limit: Duration) -> Value {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let body: Value = status(app, seller, id).await.json().await.expect("json");
        if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("import {id} did not finish within {limit:?}");
}

/// Imports `csv` as a raw `text/csv` body and waits for the end; the final status.
pub(crate) async fn import(app: &TestApp, seller: &str, query: &str, csv: &str) -> Value {
    let id = start(app, seller, query, csv).await;
    finished(app, seller, &id).await
}

async fn all_products(app: &TestApp, seller: &str) -> Vec<Value> {
    let body: Value = app
        .list(seller, "limit=100&sort_by=created_at&sort_order=asc")
        .await
        .json()
        .await
        .expect("json");
    body["data"].as_array().expect("data").clone()
}

fn counters(status: &Value) -> [i64; 5] {
    ["processed", "created", "updated", "unchanged", "failed"].map(|k| status[k].as_i64().expect(k))
}
