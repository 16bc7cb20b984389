//! Bad uploads get precise errors and store nothing.

use super::*;

#[tokio::test]
async fn bad_uploads_get_precise_errors_and_store_nothing() {
    let spool = spool_dir();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("IMPORT_MAX_BYTES", "4096"),
            ("IMPORT_MAX_ROWS", "3"),
            ("IMPORT_SPOOL_DIR", &spool),
        ],
    )
    .await;
    let rows = |n: usize| {
        let mut csv = String::from("name,price,quantity,category\n");
        for i in 0..n {
            csv.push_str(&format!("P{i},1,1,C\n"));
        }
        csv
    };

    let too_big = send_csv(&app, SELLER_A, "", "x".repeat(5000)).await;
    let body = assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE").await;
    assert_eq!(body["details"]["limit"], 4096);
    let too_big = send_form(&app, SELLER_A, "", csv_part(vec![b'x'; 5000])).await;
    assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE").await;
    let too_many = send_csv(&app, SELLER_A, "", rows(4)).await;
    assert_problem(too_many, StatusCode::PAYLOAD_TOO_LARGE, "TOO_MANY_ROWS").await;

    let json_body = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .expect("sent");
    assert_problem(
        json_body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;
    let png = multipart::Part::bytes(vec![0x89, b'P', b'N', b'G'])
        .file_name("photo.png")
        .mime_str("image/png")
        .expect("mime");
    assert_problem(
        send_form(&app, SELLER_A, "", png).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;
    let binary = send_csv(&app, SELLER_A, "", vec![0x89, b'P', b'N', b'G', 0, 0, 1]).await;
    assert_problem(
        binary,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "INVALID_FILE_TYPE",
    )
    .await;

    let no_file = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .multipart(multipart::Form::new().text("other", "x"))
        .send()
        .await
        .expect("sent");
    assert_problem(no_file, StatusCode::BAD_REQUEST, "MISSING_FILE").await;
    let extra = multipart::Form::new()
        .part("file", csv_part(rows(1).into_bytes()))
        .text("note", "x");
    let extra = app
        .request(Method::POST, "/api/products/import", Some(SELLER_A))
        .multipart(extra)
        .send()
        .await
        .expect("sent");
    let body = assert_problem(extra, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(body["details"]["field"], "note");
    let no_body = app
        .send(Method::POST, "/api/products/import", Some(SELLER_A))
        .await;
    assert_problem(no_body, StatusCode::BAD_REQUEST, "MISSING_FILE").await;

    let empty = send_csv(&app, SELLER_A, "", "").await;
    assert_problem(empty, StatusCode::BAD_REQUEST, "INVALID_CSV").await;
    let missing = send_csv(&app, SELLER_A, "", "Name,Price\nA,1\n").await;
    let body = assert_problem(missing, StatusCode::BAD_REQUEST, "INVALID_CSV").await;
    assert_eq!(
        body["message"],
        "Invalid CSV: the header row lacks the required columns `quantity`, `category`"
    );
    assert_eq!(
        body["details"]["missing_columns"],
        json!(["quantity", "category"])
    );
    let bad_mode = send_csv(&app, SELLER_A, "mode=merge", rows(1)).await;
    assert_problem(bad_mode, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let anonymous = app
        .request(Method::POST, "/api/products/import", None)
        .header("content-type", "text/csv")
        .body(rows(1))
        .send()
        .await
        .expect("sent");
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "MISSING_SELLER_ID").await;
    let unknown = status(&app, SELLER_A, "import-nope").await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "IMPORT_NOT_FOUND").await;

    // Nothing was queued and no spool file is left behind.
    assert_eq!(
        count(&app.db_url, "SELECT COUNT(*) AS n FROM imports").await,
        0
    );
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "spool files left in {spool}");
}
