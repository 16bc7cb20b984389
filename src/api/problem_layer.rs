//! Makes every error an `application/problem+json` response, including those poem and
//! poem-openapi produce before a handler runs: unknown route, wrong method, bad parameter,
//! malformed or invalid JSON, wrong content type, missing credentials, oversized body.
//!
//! It also owns JSON bodies: they are read here up to the limit (413 beyond it) and checked
//! against the spec's rules for the operation (`generated::REQUEST_BODIES`) before poem-openapi
//! parses them. That check is strict where poem-openapi is lenient (it turns `5` into `"5"` for
//! a string) and names the field, the constraint and the rejected value.

use poem::{
    error::{MethodNotAllowedError, NotFoundError},
    http::{header, HeaderValue, Method, StatusCode},
    Body, Endpoint, IntoResponse, Middleware, Request, Response,
};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use serde_json::{json, Value};

use crate::{
    api::{
        caller::Caller,
        error::{self, codes, Problem, PROBLEM_JSON},
        generated, query, query_param, request_context, route_of,
    },
    validation,
};

pub struct ProblemLayer {
    json_limit: usize,
}

impl ProblemLayer {
    pub fn new(json_limit: usize) -> Self {
        Self { json_limit }
    }
}

impl<E: Endpoint> Middleware<E> for ProblemLayer {
    type Output = ProblemEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProblemEndpoint {
            inner,
            json_limit: self.json_limit,
        }
    }
}

pub struct ProblemEndpoint<E> {
    inner: E,
    json_limit: usize,
}

/// What is kept of a request to explain its rejection after it was handed on.
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    body: Option<bytes::Bytes>,
    /// The problem+json `instance` of this request.
    instance: String,
    /// Whether `X-Seller-Id` was sent at all (poem-openapi reports an unreadable one as missing).
    /// Who the request acts for, as resolved once for it.
    caller: Caller,
}

/// The seller header, when it is present and well-formed.
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::PAYLOAD_TOO_LARGE,
        format!("The request body exceeds the limit of {limit} bytes"),
    )
    .with_details(json!({ "limit": limit }))
}

impl<E: Endpoint> ProblemEndpoint<E> {
    /// Reads a JSON body up to the limit and puts it back for the parser.
    async fn buffer(&self, req: &mut Request) -> Result<Option<bytes::Bytes>, Problem> {
        if !is_json(req) {
            return Ok(None);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.json_limit) {
            return Err(too_large(self.json_limit));
        }
        let bytes = req
            .take_body()
            .into_bytes_limit(self.json_limit)
            .await
            .map_err(|e| match e {
                poem::error::ReadBodyError::PayloadTooLarge => too_large(self.json_limit),
                other => Problem::new(
                    StatusCode::BAD_REQUEST,
                    codes::MALFORMED_JSON,
                    format!("The request body could not be read: {other}"),
                ),
            })?;
        req.set_body(Body::from_bytes(bytes.clone()));
        Ok(Some(bytes))
    }
}

impl<E: Endpoint> Endpoint for ProblemEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let mut seen = Seen {
            method: req.method().clone(),
            path: req.uri().path().to_string(),
            query: req.uri().query().map(str::to_string),
            body: None,
            instance: request_context::instance(&req),
            caller: Caller::of_request(&req).clone(),
        };
        match self.buffer(&mut req).await {
            Ok(body) => seen.body = body,
            Err(problem) => return Ok(render(problem, &seen.instance)),
        }
        // Identity comes first: an unauthenticated request gets its 401 from the routing.
        if seen.caller.seller().is_some() {
            if let Some(problem) = seen.body.as_deref().and_then(|b| precheck(&seen, b)) {
                return Ok(render(problem, &seen.instance));
            }
        }
        match self.inner.call(req).await {
            Ok(resp) => Ok(with_instance(resp.into_response(), &seen.instance).await),
            // A handler's declared error response, carried as an error by poem-openapi.
            Err(err) if err.is_from_response() => {
                Ok(with_instance(err.into_response(), &seen.instance).await)
            }
            Err(err) => {
                let allow = err
                    .is::<MethodNotAllowedError>()
                    .then(|| allowed_methods(&seen.path))
                    .flatten();
                let mut resp = render(to_problem(err, &seen), &seen.instance);
                // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
                if let Some(methods) = allow {
                    resp.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static(methods));
                }
                Ok(resp)
            }
        }
    }
}

/// The `Allow` value of the spec path that `path` falls under.
fn allowed_methods(path: &str) -> Option<&'static str> {
    let (template, _) = route_of(path)?;
    generated::ALLOWED_METHODS
        .iter()
        .find(|(p, _)| *p == template)
        .map(|(_, methods)| *methods)
}

fn render(mut problem: Problem, instance: &str) -> Response {
    if problem.instance.is_none() {
        problem.instance = Some(instance.to_string());
    }
    poem::error::ResponseError::as_response(&problem)
}

/// Handlers build `Problem`s without knowing the request; name it here, and give a token
/// problem its `WWW-Authenticate` challenge.
async fn with_instance(resp: Response, instance: &str) -> Response {
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !is_problem {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.into_bytes().await.unwrap_or_default();
    let bytes = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut map)) => {
            map.entry("instance").or_insert_with(|| json!(instance));
            let code = map.get("error_code").and_then(Value::as_str);
            let scope = map
                .get("details")
                .and_then(|d| d.get("required_scope"))
                .and_then(Value::as_str);
            if let Some(challenge) = code.and_then(|c| error::www_authenticate(c, scope)) {
                parts.headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            serde_json::to_vec(&map)
                .unwrap_or_else(|_| bytes.to_vec())
                .into()
        }
        _ => bytes,
    };
    Response::from_parts(parts, Body::from_bytes(bytes))
}

fn to_problem(err: poem::Error, seen: &Seen) -> Problem {
    if let Some(problem) = err.downcast_ref::<Problem>() {
        return problem.clone();
    }
    if err.is::<NotFoundError>() {
        return Problem::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("No route for {} {}", seen.method, seen.path),
        );
    }
    if err.is::<MethodNotAllowedError>() {
        return Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {}", seen.method, seen.path),
        );
    }
    if err.is::<AuthorizationError>() {
        // poem-openapi found no usable X-Seller-Id: the caller says whether it was missing or
        // malformed.
        return match seen.caller.require() {
            Err(problem) => problem,
            Ok(_) => Problem::internal(),
        };
    }
    if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        if is_upload(seen) {
            return upload_content_type_problem(e);
        }
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            format!("{e}; send application/json"),
        );
    }
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        let value = query_value(seen.query.as_deref(), e.name);
        return param_problem(e.name, &e.reason, value);
    }
    if let Some(e) = err.downcast_ref::<ParsePathError>() {
        let (name, value) = path_variable(&seen.path, e.name);
        return param_problem(name, &e.reason, value);
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return payload_problem(&e.reason, seen.body.as_deref());
    }
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = %err, "unhandled error");
        return Problem::internal();
    }
    let code = status
        .canonical_reason()
        .unwrap_or("ERROR")
        .to_ascii_uppercase()
        .replace(' ', "_");
    Problem::new(status, &code, err.to_string())
}

/// Whether the request is for an operation that takes a file upload.
fn is_upload(seen: &Seen) -> bool {
    route_of(&seen.path).is_some_and(|(template, _)| {
        generated::UPLOADS
            .iter()
            .any(|(m, p)| *m == seen.method.as_str() && *p == template)
    })
}

fn upload_content_type_problem(e: &ContentTypeError) -> Problem {
    match e {
        ContentTypeError::ExpectContentType => Problem::new(
            StatusCode::BAD_REQUEST,
            codes::MISSING_FILE,
            "No file uploaded: send the CSV as the `file` field of multipart/form-data, or as a text/csv body",
        ),
        ContentTypeError::NotSupported { content_type } => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::INVALID_FILE_TYPE,
            format!(
                "Upload a CSV file: send multipart/form-data with a `file` field or a text/csv body, not {content_type}"
            ),
        ),
    }
}

fn param_problem(name: &str, reason: &str, value: Value) -> Problem {
    let constraint = match reason.strip_prefix("verification failed. ") {
        Some(rule) => rule.to_string(),
        None => match schema_named_in(reason) {
            Some(ty) => format!("type({ty})"),
            None => "type".to_string(),
        },
    };
    Problem::validation(
        name,
        &constraint,
        query::shown(name, value),
        format!("Invalid parameter `{name}`: {reason}"),
    )
}

fn query_value(query: Option<&str>, name: &str) -> Value {
    query_param(query, name).map_or(Value::Null, Value::String)
}

/// poem-openapi names path variables `param0`, `param1`, … in its errors; this returns the
/// variable's real name and raw value.
fn path_variable<'a>(path: &'a str, internal: &'a str) -> (&'a str, Value) {
    let index: Option<usize> = internal.strip_prefix("param").and_then(|n| n.parse().ok());
    let found = route_of(path)
        .zip(index)
        .and_then(|((_, vars), i)| vars.get(i).copied());
    match found {
        Some((name, raw)) => (name, Value::String(raw.to_string())),
        None => (internal, Value::Null),
    }
}

/// Checks a JSON body against the rules of the operation it is sent to.
fn precheck(seen: &Seen, body: &[u8]) -> Option<Problem> {
    let (template, _) = route_of(&seen.path)?;
    let schema = generated::REQUEST_BODIES
        .iter()
        .find(|(m, p, _)| *m == seen.method.as_str() && *p == template)
        .map(|(_, _, schema)| *schema)?;
    body_problem(body, generated::rules_of(schema))
}

fn malformed(e: &serde_json::Error) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        codes::MALFORMED_JSON,
        format!("The request body is not valid JSON: {e}"),
    )
    .with_details(json!({ "line": e.line(), "column": e.column() }))
}

/// The problem with `body` under `rules`, if any: not JSON, or the first rule it breaks.
fn body_problem(body: &[u8], rules: Option<&[validation::FieldRule]>) -> Option<Problem> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(e) => return Some(malformed(&e)),
    };
    let v = validation::explain(rules?, &value)?;
    Some(Problem::validation(
        v.field.unwrap_or_default(),
        &v.constraint,
        v.value,
        format!("Invalid request body: {}", v.message),
    ))
}

/// The schema poem-openapi was parsing: the outermost `occurred while parsing "X"`, else the
/// `failed to parse "X"` it starts with.
fn schema_named_in(reason: &str) -> Option<&str> {
    let quoted_after = |marker: &str| {
        reason
            .rfind(marker)
            .and_then(|i| reason[i + marker.len()..].split('"').next())
    };
    quoted_after("occurred while parsing \"").or_else(|| quoted_after("failed to parse \""))
}

/// poem-openapi rejected a body the precheck let through (or one it could not see).
fn payload_problem(reason: &str, body: Option<&[u8]>) -> Problem {
    let rules = schema_named_in(reason).and_then(generated::rules_of);
    body.and_then(|b| body_problem(b, rules))
        .unwrap_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                codes::VALIDATION_ERROR,
                format!("Invalid request body: {reason}"),
            )
        })
}
