//! The one HTTP error type: the spec's `Problem` (RFC 9457 plus the fields existing clients
//! read). This module decides status codes, error codes and what text is safe to show; a 5xx
//! logs its cause and shows nothing internal.

use std::collections::BTreeMap;

use poem::{
    http::{header, HeaderValue, StatusCode},
    IntoResponse, Response,
};
use serde_json::{json, Value};

pub use crate::api::generated::Problem;
use crate::service::{
    idempotency::IdempotencyError,
    import::{record_size::Oversized, ImportError},
    products::ProductError,
};

/// The machine-readable `error_code`s.
pub mod codes {
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const MALFORMED_JSON: &str = "MALFORMED_JSON";
    pub const INVALID_CURSOR: &str = "INVALID_CURSOR";
    pub const MISSING_SELLER_ID: &str = "MISSING_SELLER_ID";
    pub const INVALID_SELLER_ID: &str = "INVALID_SELLER_ID";
    pub const MISSING_TOKEN: &str = "MISSING_TOKEN";
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    pub const SELLER_MISMATCH: &str = "SELLER_MISMATCH";
    pub const INSUFFICIENT_SCOPE: &str = "INSUFFICIENT_SCOPE";
    pub const IDENTITY_PROVIDER_UNAVAILABLE: &str = "IDENTITY_PROVIDER_UNAVAILABLE";
    pub const PRODUCT_NOT_FOUND: &str = "PRODUCT_NOT_FOUND";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const DUPLICATE_RESOURCE: &str = "DUPLICATE_RESOURCE";
    pub const INSUFFICIENT_STOCK: &str = "INSUFFICIENT_STOCK";
    pub const QUANTITY_OUT_OF_RANGE: &str = "QUANTITY_OUT_OF_RANGE";
    pub const PRECONDITION_FAILED: &str = "PRECONDITION_FAILED";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const TOO_MANY_STREAMS: &str = "TOO_MANY_STREAMS";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const FILE_TOO_LARGE: &str = "FILE_TOO_LARGE";
    pub const TOO_MANY_ROWS: &str = "TOO_MANY_ROWS";
    pub const FIELD_TOO_LARGE: &str = "FIELD_TOO_LARGE";
    pub const RECORD_TOO_LARGE: &str = "RECORD_TOO_LARGE";
    pub const INVALID_FILE_TYPE: &str = "INVALID_FILE_TYPE";
    pub const MISSING_FILE: &str = "MISSING_FILE";
    pub const INVALID_CSV: &str = "INVALID_CSV";
    pub const IMPORT_NOT_FOUND: &str = "IMPORT_NOT_FOUND";
    pub const IMPORT_FINISHED: &str = "IMPORT_FINISHED";
    pub const ORIGIN_NOT_ALLOWED: &str = "ORIGIN_NOT_ALLOWED";
    pub const URI_TOO_LONG: &str = "URI_TOO_LONG";
    pub const HEADERS_TOO_LARGE: &str = "HEADERS_TOO_LARGE";
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error").to_string();
        let message = message.into();
        Self {
            type_: "about:blank".to_string(),
            title: reason.clone(),
            status: i32::from(status.as_u16()),
            detail: Some(message.clone()),
            instance: None,
            error: reason,
            message,
            error_code: code.to_string(),
            details: None,
        }
    }

    /// Adds `details`; `value` should be a JSON object.
    pub fn with_details(mut self, value: Value) -> Self {
        if let Value::Object(map) = value {
            self.details = Some(map.into_iter().collect::<BTreeMap<_, _>>());
        }
        self
    }

    pub fn validation(field: &str, constraint: &str, value: Value, message: String) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR, message)
            .with_details(json!({ "field": field, "constraint": constraint, "value": value }))
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            "An unexpected error occurred. Please try again later.",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        u16::try_from(self.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error_code, self.message)
    }
}

impl std::error::Error for Problem {}

/// Lets a `Problem` travel as a `poem::Error` (from the security checker and the problem
/// layer) and still render as problem+json.
impl poem::error::ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status_code()
    }

    fn as_response(&self) -> Response {
        let mut resp = poem_openapi::payload::Json(self.clone())
            .with_content_type(PROBLEM_JSON)
            .with_status(self.status_code())
            .into_response();
        let scope = self
            .details
            .as_ref()
            .and_then(|d| d.get("required_scope"))
            .and_then(Value::as_str);
        if let Some(challenge) = www_authenticate(&self.error_code, scope) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        resp
    }
}

/// RFC 6750 §3: the challenge that tells a client to get a (better) bearer token.
pub fn www_authenticate(code: &str, required_scope: Option<&str>) -> Option<HeaderValue> {
    let challenge = match code {
        codes::MISSING_TOKEN => r#"Bearer realm="product-api""#.to_string(),
        codes::INVALID_TOKEN => r#"Bearer realm="product-api", error="invalid_token""#.to_string(),
        codes::INSUFFICIENT_SCOPE => format!(
            r#"Bearer realm="product-api", error="insufficient_scope", scope="{}""#,
            required_scope?
        ),
        _ => return None,
    };
    HeaderValue::from_str(&challenge).ok()
}

/// A handler produced a status its operation does not declare: a bug, logged, shown as 500.
pub fn undeclared_status(problem: Problem, operation: &str) -> Problem {
    tracing::error!(%problem, operation, "handler returned a status the spec does not declare");
    Problem::internal()
}

fn is_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e {
                sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed => true,
                // SQLSTATE class 08 (connection exception) and 57P (the server ended the
                // session: administrator command, crash, restart).
                sea_orm::sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    }
}

fn unavailable(message: &str) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::SERVICE_UNAVAILABLE,
        message,
    )
}

fn database(e: &sea_orm::DbErr) -> Problem {
    if is_unavailable(e) {
        tracing::warn!(error = %e, "database unavailable");
        unavailable("The database is unavailable. Please retry shortly.")
    } else {
        tracing::error!(error = %e, "database error");
        Problem::internal()
    }
}

impl From<IdempotencyError> for Problem {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::KeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::IDEMPOTENCY_KEY_REUSED,
                "This Idempotency-Key was already used with a different request",
            ),
            IdempotencyError::Database(e) => database(&e),
            IdempotencyError::Corrupt(e) => {
                tracing::error!(error = %e, "stored idempotent response is unreadable");
                Problem::internal()
            }
        }
    }
}

impl From<ProductError> for Problem {
    fn from(e: ProductError) -> Self {
        let message = e.to_string();
        match e {
            ProductError::NotFound(id) => Problem::new(
                StatusCode::NOT_FOUND,
                codes::PRODUCT_NOT_FOUND,
                format!("Product with ID {id} not found or does not belong to seller"),
            ),
            ProductError::DuplicateSku(sku) => {
                Problem::new(StatusCode::CONFLICT, codes::DUPLICATE_RESOURCE, message)
                    .with_details(json!({ "field": "sku", "value": sku }))
            }
            ProductError::PreconditionFailed => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                codes::PRECONDITION_FAILED,
                message,
            ),
            ProductError::InsufficientStock { available, delta } => {
                Problem::new(StatusCode::CONFLICT, codes::INSUFFICIENT_STOCK, message)
                    .with_details(json!({ "available": available, "delta": delta }))
            }
            ProductError::QuantityOverflow { available, delta } => {
                Problem::new(StatusCode::CONFLICT, codes::QUANTITY_OUT_OF_RANGE, message)
                    .with_details(json!({ "available": available, "delta": delta }))
            }
            ProductError::EmptyUpdate => Problem::new(
                StatusCode::BAD_REQUEST,
                codes::VALIDATION_ERROR,
                "Invalid product data: an update must change at least one field",
            )
            .with_details(json!({ "field": null, "constraint": "minProperties(1)", "value": {} })),
            ProductError::ZeroDelta => Problem::validation(
                "delta",
                "not(0)",
                json!(0),
                "Invalid adjustment: delta must not be 0".to_string(),
            ),
            ProductError::Cursor(e) => Problem::new(
                StatusCode::BAD_REQUEST,
                codes::INVALID_CURSOR,
                format!("Invalid cursor: {e}"),
            )
            .with_details(json!({ "field": "cursor" })),
            ProductError::Idempotency(e) => e.into(),
            ProductError::Database(e) => database(&e),
            ProductError::Read(e) => database(&e),
            ProductError::Stopped(_) => unavailable("The server is shutting down. Please retry."),
        }
    }
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Self {
        let message = e.to_string();
        match e {
            ImportError::FileTooLarge(limit) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, codes::FILE_TOO_LARGE, message)
                    .with_details(json!({ "limit": limit }))
            }
            ImportError::TooManyRows(limit) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, codes::TOO_MANY_ROWS, message)
                    .with_details(json!({ "limit": limit }))
            }
            ImportError::Oversized(Oversized::Field { limit, line }) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, codes::FIELD_TOO_LARGE, message)
                    .with_details(json!({ "limit": limit, "line": line }))
            }
            ImportError::Oversized(Oversized::Record { limit, line }) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, codes::RECORD_TOO_LARGE, message)
                    .with_details(json!({ "limit": limit, "line": line }))
            }
            ImportError::InvalidFileType(why) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::INVALID_FILE_TYPE,
                format!("Upload a CSV file: {why}"),
            ),
            ImportError::MissingFile => Problem::new(
                StatusCode::BAD_REQUEST,
                codes::MISSING_FILE,
                "No file uploaded: send the CSV as the `file` field of multipart/form-data, or as a text/csv body",
            ),
            ImportError::UnexpectedField(name) => Problem::validation(
                &name,
                "maxProperties(1)",
                Value::Null,
                format!("Invalid form: {message}"),
            ),
            ImportError::Upload(_) => {
                Problem::new(StatusCode::BAD_REQUEST, codes::INVALID_CSV, message)
            }
            ImportError::Header(header) => {
                let missing = match &header {
                    crate::service::import::columns::HeaderError::Missing(columns) => json!(columns),
                    _ => json!([]),
                };
                Problem::new(StatusCode::BAD_REQUEST, codes::INVALID_CSV, format!("Invalid CSV: {header}"))
                    .with_details(json!({ "missing_columns": missing }))
            }
            ImportError::NotFound(id) => Problem::new(
                StatusCode::NOT_FOUND,
                codes::IMPORT_NOT_FOUND,
                format!("Import {id} not found or does not belong to seller"),
            ),
            ImportError::Finished { status, .. } => {
                Problem::new(StatusCode::CONFLICT, codes::IMPORT_FINISHED, message)
                    .with_details(json!({ "status": status }))
            }
            ImportError::Io(e) => {
                tracing::error!(error = %e, "import file failed");
                Problem::internal()
            }
            // Only the worker meets it; no request does.
            ImportError::Overtaken => Problem::internal(),
            ImportError::Database(e) => database(&e),
        }
    }
}
