//! Every limit × every sending style: the same status and `error_code` whether the body comes
//! at once or chunked, slowly, raw or as a form, over by one byte or by a gigabyte; the client
//! reads the answer (no reset), and nothing is stored. The limits are set small here; the
//! README's table lists their defaults.

use std::time::Duration;

use bytes::Bytes;
use futures::{stream, StreamExt};
use reqwest::{Body, Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_problem, count, spool_dir, Backend, TestApp, SELLER_A};

const JSON_LIMIT: usize = 1024;
const FILE_LIMIT: usize = 4096;
const FIELD_LIMIT: usize = 100;
const RECORD_LIMIT: usize = 300;
const ROW_LIMIT: usize = 20;

async fn spawn(backend: Backend, spool: &str) -> TestApp {
    let (json, file, field, record, rows) = (
        JSON_LIMIT.to_string(),
        FILE_LIMIT.to_string(),
        FIELD_LIMIT.to_string(),
        RECORD_LIMIT.to_string(),
        ROW_LIMIT.to_string(),
    );
    TestApp::spawn_with(
        backend,
        &[
            ("JSON_BODY_LIMIT_BYTES", json.as_str()),
            ("IMPORT_MAX_BYTES", file.as_str()),
            ("IMPORT_MAX_FIELD_BYTES", field.as_str()),
            ("IMPORT_MAX_RECORD_BYTES", record.as_str()),
            ("IMPORT_MAX_ROWS", rows.as_str()),
            ("IMPORT_SPOOL_DIR", spool),
            ("MAX_URL_BYTES", "512"),
            ("MAX_HEADER_BYTES", "2048"),
            ("MAX_HEADERS", "16"),
        ],
    )
    .await
}

/// How a client sends a body.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// One buffer with `Content-Length`.
    AtOnce,
    /// Chunked, without `Content-Length`.
    Chunked,
    /// Chunked, 512 bytes every 20 ms.
    Slowly,
}

/// How the CSV travels.
#[derive(Clone, Copy, Debug)]
enum Wrap {
    Raw,
    Form,
}

const BOUNDARY: &str = "limits-test-boundary";

fn wrapped(csv: &[u8], wrap: Wrap) -> (Vec<u8>, String) {
    match wrap {
        Wrap::Raw => (csv.to_vec(), "text/csv".to_string()),
        Wrap::Form => {
            let mut body = format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(csv);
            body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            (body, format!("multipart/form-data; boundary={BOUNDARY}"))
        }
    }
}

fn body(bytes: Vec<u8>, style: Style) -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(512)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    match style {
        Style::AtOnce => Body::from(bytes),
        Style::Chunked => Body::wrap_stream(stream::iter(chunks)),
        Style::Slowly => Body::wrap_stream(stream::iter(chunks).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c
        })),
    }
}

const HEADER: &str = "name,price,quantity,category\n";

/// A CSV of valid rows, `extra` bytes over `limit` in size.
fn csv_over(limit: usize, extra: usize) -> Vec<u8> {
    let mut csv = HEADER.as_bytes().to_vec();
    let mut i = 0;
    while csv.len() < limit + extra {
        csv.extend_from_slice(format!("Item {i},1.5,3,Tools\n").as_bytes());
        i += 1;
    }
    csv.truncate(limit + extra);
    csv
}

/// A CSV whose second record has one field of `len` bytes (quoted, so it may hold commas).
fn csv_with_field(len: usize) -> Vec<u8> {
    let mut csv = format!("{HEADER}Fine,1,1,Tools\n").into_bytes();
    csv.extend_from_slice(format!("\"{}\",1,1,Tools\n", "x".repeat(len - 2)).as_bytes());
    csv
}

/// A CSV whose second record is `len` bytes long, every field within the field limit.
fn csv_with_record(len: usize) -> Vec<u8> {
    let mut record = String::new();
    while record.len() + 60 < len {
        record.push_str(&"y".repeat(50));
        record.push(',');
    }
    record.push_str(&"z".repeat(len - record.len()));
    format!("{HEADER}Fine,1,1,Tools\n{record}\n").into_bytes()
}

fn csv_with_rows(rows: usize) -> Vec<u8> {
    let mut csv = HEADER.to_string();
    for i in 0..rows {
        csv.push_str(&format!("R{i},1,1,T\n"));
    }
    csv.into_bytes()
}

/// A create body of exactly `len` bytes.
fn json_of(len: usize) -> Vec<u8> {
    let head = r#"{"name":"x","price":1,"quantity":1,"category":"c","description":""#;
    let mut body = head.to_string();
    body.push_str(&"d".repeat(len - head.len() - 2));
    body.push_str("\"}");
    body.into_bytes()
}

/// Nothing of a refused request is stored: no product, no import, no spool file.
async fn nothing_stored(app: &TestApp, spool: &str, case: &str) {
    let list: Value = app.list(SELLER_A, "").await.json().await.expect("list");
    assert_eq!(list["pagination"]["total"], 0, "{case}: no product");
    let imports = count(&app.db_url, "SELECT COUNT(*) AS n FROM imports").await;
    assert_eq!(imports, 0, "{case}: no import");
    let files = std::fs::read_dir(spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "{case}: no spool file");
}

async fn bodies_over_their_limits(backend: Backend) {
    let spool = spool_dir();
    let app = spawn(backend, &spool).await;
    let csv_cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("file +1 byte", csv_over(FILE_LIMIT, 1), "FILE_TOO_LARGE"),
        (
            "file 10x",
            csv_over(FILE_LIMIT, 9 * FILE_LIMIT),
            "FILE_TOO_LARGE",
        ),
        ("rows +1", csv_with_rows(ROW_LIMIT + 1), "TOO_MANY_ROWS"),
        (
            "field +1 byte",
            csv_with_field(FIELD_LIMIT + 1),
            "FIELD_TOO_LARGE",
        ),
        (
            "field 30x",
            csv_with_field(30 * FIELD_LIMIT),
            "FIELD_TOO_LARGE",
        ),
        (
            "record +1 byte",
            csv_with_record(RECORD_LIMIT + 1),
            "RECORD_TOO_LARGE",
        ),
        (
            "record 10x",
            csv_with_record(10 * RECORD_LIMIT),
            "RECORD_TOO_LARGE",
        ),
    ];
    for style in [Style::AtOnce, Style::Chunked, Style::Slowly] {
        let resp = app
            .request(Method::POST, "/api/products", Some(SELLER_A))
            .header("content-type", "application/json")
            .body(body(json_of(JSON_LIMIT + 1), style))
            .send()
            .await
            .unwrap_or_else(|e| panic!("json {style:?}: the client got no answer: {e}"));
        assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
        for (name, csv, code) in &csv_cases {
            for wrap in [Wrap::Raw, Wrap::Form] {
                let case = format!("{name}, {wrap:?}, {style:?}");
                let (bytes, content_type) = wrapped(csv, wrap);
                let resp = app
                    .request(Method::POST, "/api/products/import", Some(SELLER_A))
                    .header("content-type", content_type)
                    .body(body(bytes, style))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{case}: the client got no answer: {e:?}"));
                let problem = assert_problem(resp, StatusCode::PAYLOAD_TOO_LARGE, code).await;
                assert!(problem["details"]["limit"].is_u64(), "{case}: {problem}");
                if code.ends_with("_TOO_LARGE") && *code != "FILE_TOO_LARGE" {
                    assert_eq!(problem["details"]["line"], 3, "{case}: {problem}");
                }
            }
        }
    }
    nothing_stored(&app, &spool, "bodies over their limits").await;

    // At the limits exactly, everything passes.
    let resp = app
        .request(Method::POST, "/api/products", Some(SELLER_A))
        .header("content-type", "application/json")
        .body(json_of(JSON_LIMIT))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::CREATED);
    for csv in [
        csv_with_field(FIELD_LIMIT),
        csv_with_record(RECORD_LIMIT),
        csv_with_rows(ROW_LIMIT),
    ] {
        let resp = app
            .request(
                Method::POST,
                "/api/products/import?dry_run=true",
                Some(SELLER_A),
            )
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
}

/// A raw client that declares (or streams) a gigabyte and only reads once it can send no more:
/// it reads the whole answer, not a reset.
async fn a_gigabyte(app: &TestApp, path: &str, content_type: &str, chunked: bool) -> (u16, Value) {
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let length = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", 1u64 << 30)
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nX-Seller-Id: {SELLER_A}\r\nContent-Type: {content_type}\r\n{length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    let filler = "Item,1,1,Tools\n".repeat(4096);
    let chunk = if chunked {
        format!("{:x}\r\n{filler}\r\n", filler.len())
    } else {
        filler
    };
    let mut sent: u64 = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // The server stops reading at the limit; writes fail or stall once it closes.
    while sent < 1 << 30 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(3), socket.write_all(chunk.as_bytes())).await
        {
            Ok(Ok(())) => sent += chunk.len() as u64,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(
        matches!(read, Ok(Ok(_))) || text.contains("\r\n\r\n{"),
        "{path} ({content_type}, chunked {chunked}): the answer was lost: {read:?} after {text:?}"
    );
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {text:?}"));
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .and_then(|b| b.find('{').map(|i| &b[i..]))
        .and_then(|b| serde_json::from_str(b.trim_end_matches(|c| c != '}')).ok())
        .unwrap_or_else(|| panic!("a JSON problem in {text:?}"));
    (status, json)
}

async fn a_gigabyte_over_gets_the_same_answer(backend: Backend) {
    let spool = spool_dir();
    let app = spawn(backend, &spool).await;
    let form = format!("multipart/form-data; boundary={BOUNDARY}");
    let cases = [
        ("/api/products", "application/json", "PAYLOAD_TOO_LARGE"),
        ("/api/products/import", "text/csv", "FILE_TOO_LARGE"),
        ("/api/products/import", form.as_str(), "FILE_TOO_LARGE"),
    ];
    for (path, content_type, code) in cases {
        for chunked in [false, true] {
            let (status, problem) = a_gigabyte(&app, path, content_type, chunked).await;
            assert_eq!(
                status, 413,
                "{path} {content_type} chunked {chunked}: {problem}"
            );
            assert_eq!(
                problem["error_code"], code,
                "{path} {content_type} chunked {chunked}"
            );
        }
    }
    nothing_stored(&app, &spool, "a gigabyte").await;
}

async fn heads_over_their_limits(backend: Backend) {
    let spool = spool_dir();
    let app = spawn(backend, &spool).await;
    let long = |n: usize| {
        format!(
            "/api/products?q={}",
            "a".repeat(n - "/api/products?q=".len())
        )
    };
    for url in [long(513), long(50_000)] {
        let resp = app
            .request(Method::GET, &url, Some(SELLER_A))
            .send()
            .await
            .expect("sent");
        assert_problem(resp, StatusCode::URI_TOO_LONG, "URI_TOO_LONG").await;
    }
    let resp = app
        .request(Method::GET, &long(512), Some(SELLER_A))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "at the URL limit, the q rules apply"
    );

    // 16 extra header lines (over MAX_HEADERS with reqwest's own), then one header over
    // MAX_HEADER_BYTES by a byte and by far (under hyper's own cap).
    let many: Vec<(String, String)> = (0..16)
        .map(|i| (format!("x-extra-{i}"), "1".into()))
        .collect();
    let cases = [
        many,
        vec![("x-padding".to_string(), "p".repeat(2049))],
        vec![("x-padding".to_string(), "p".repeat(200_000))],
    ];
    for headers in cases {
        let mut req = app.request(Method::POST, "/api/products", Some(SELLER_A));
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let resp = req
            .json(&crate::helpers::product(serde_json::json!({})))
            .send()
            .await
            .expect("sent");
        assert_problem(
            resp,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
        )
        .await;
    }
    nothing_stored(&app, &spool, "heads").await;
}

/// curl, as people use it: `-F file=@…` and `--data-binary @…` chunked, a file 100× the limit.
async fn curl_reads_the_answer(backend: Backend) {
    let spool = spool_dir();
    let app = spawn(backend, &spool).await;
    let file = std::env::temp_dir().join(format!("limits-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, csv_over(FILE_LIMIT, 100 * FILE_LIMIT)).expect("file");
    let url = format!("{}/api/products/import", app.base);
    let seller = format!("X-Seller-Id: {SELLER_A}");
    let at_file = format!("@{}", file.display());
    let form_file = format!("file=@{};type=text/csv", file.display());
    let styles: [Vec<&str>; 2] = [
        vec!["-F", &form_file],
        vec![
            "-H",
            "Content-Type: text/csv",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at_file,
        ],
    ];
    for args in styles {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "-H", &seller, &url])
            .args(&args)
            .output()
            .await
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let problem: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        assert_eq!(problem["error_code"], "FILE_TOO_LARGE", "curl {args:?}");
    }
    let _ = std::fs::remove_file(&file);
    nothing_stored(&app, &spool, "curl").await;
}

macro_rules! on_both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

on_both!(
    bodies_over_their_limits,
    a_gigabyte_over_gets_the_same_answer,
    heads_over_their_limits,
    curl_reads_the_answer
);
