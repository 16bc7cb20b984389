//! Query strings as existing clients send them, read by one rule for every operation.
//!
//! The Node.js service's web app sends every filter it holds, cleared ones included, the way
//! axios serialises them: `?page=1&limit=20&category=&sort_by=created_at&sort_order=desc`. That
//! service skipped an empty filter, so here an empty value (`category=`, or a bare `category`)
//! is the same as leaving the parameter out, for every query parameter (the spec declares
//! `allowEmptyValue: true` on each, and the generator refuses one without it). A declared
//! parameter given two values is ambiguous and answers 400 rather than one silently winning.
//!
//! The rule rewrites the request's query before anything else reads it, so the rate limiter,
//! the problem renderer and the generated extractors all see the same parameters.

use std::sync::Arc;

use poem::{
    http::{uri::PathAndQuery, Uri},
    Endpoint, IntoResponse, Request, Response,
};
use serde_json::{json, Value};

use crate::api::{error::Problem, generated, request_context, route_of};

/// Applies the query rule to `req`, then passes it on (`EndpointExt::around`).
pub async fn apply<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if let Some(query) = req.uri().query() {
        let declared = declared(req.method().as_str(), req.uri().path());
        match without_empty_values(query, &declared) {
            Ok(Some(kept)) => {
                let uri = with_query(req.uri(), &kept);
                *req.uri_mut() = uri;
            }
            Ok(None) => {}
            Err(problem) => return Ok(request_context::answer(&req, problem)),
        }
    }
    Ok(next.call(req).await?.into_response())
}

/// The query parameters the spec declares for `method` on `path`.
fn declared(method: &str, path: &str) -> Vec<&'static str> {
    let Some((template, _)) = route_of(path) else {
        return Vec::new();
    };
    generated::QUERY_PARAMETERS
        .iter()
        .filter(|(m, p, _)| *m == method && *p == template)
        .map(|(_, _, name)| *name)
        .collect()
}

/// `query` without its empty-valued pairs (`None` when there were none to drop), or a 400
/// when a parameter of `declared` has more than one value. Kept pairs stay as the client
/// encoded them.
fn without_empty_values(query: &str, declared: &[&str]) -> Result<Option<String>, Problem> {
    let mut kept: Vec<&str> = Vec::new();
    let mut dropped = false;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((_, "")) | None => dropped = true,
            Some(_) => kept.push(pair),
        }
    }
    for name in declared {
        let values: Vec<String> = kept
            .iter()
            .filter_map(|pair| decoded(pair))
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value)
            .collect();
        if values.len() > 1 {
            return Err(Problem::validation(
                name,
                "single value",
                shown(name, json!(values)),
                format!(
                    "Invalid parameter `{name}`: given {} times; give it once",
                    values.len()
                ),
            ));
        }
    }
    Ok(dropped.then(|| kept.join("&")))
}

/// Query parameters that carry credentials (the stream's `access_token`): a problem never
/// shows their values.
const SECRET: &[&str] = &["access_token"];

/// `value` as a problem may show it for parameter `name`: `null` for a credential.
pub(crate) fn shown(name: &str, value: Value) -> Value {
    match SECRET.contains(&name) {
        true => Value::Null,
        false => value,
    }
}

/// One `key=value` pair, form-decoded as the extractors decode it.
fn decoded(pair: &str) -> Option<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(pair)
        .ok()?
        .into_iter()
        .next()
}

fn with_query(uri: &Uri, query: &str) -> Uri {
    let path_and_query = if query.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{query}", uri.path())
    };
    let mut parts = uri.clone().into_parts();
    // Every part came from a valid URI, so the rebuilt one is valid too.
    if let Ok(pq) = path_and_query.parse::<PathAndQuery>() {
        parts.path_and_query = Some(pq);
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::without_empty_values;

    #[test]
    fn empty_values_are_dropped_and_the_rest_kept_as_sent() {
        let cases = [
            (
                "page=1&limit=20&category=&sort_by=created_at",
                Some("page=1&limit=20&sort_by=created_at"),
            ),
            ("category", Some("")),
            ("category=&min_quantity=", Some("")),
            ("q=a%20b&category=", Some("q=a%20b")),
            ("category=Books", None),
            ("category=Books&category=", Some("category=Books")),
            ("utm=a&utm=b", None),
        ];
        for (query, expected) in cases {
            let got = without_empty_values(query, &["category", "q", "page", "limit"])
                .unwrap_or_else(|p| panic!("{query}: {p}"));
            assert_eq!(got.as_deref(), expected, "{query}");
        }
    }

    #[test]
    fn a_declared_parameter_with_two_values_is_refused() {
        for query in [
            "category=a&category=b",
            "category=a&category=a",
            "category=a&category=%62",
        ] {
            let problem = without_empty_values(query, &["category"]).expect_err(query);
            assert_eq!(problem.status, 400, "{query}");
            assert_eq!(problem.error_code, "VALIDATION_ERROR", "{query}");
            assert!(
                problem.message.contains("`category`"),
                "{query}: {}",
                problem.message
            );
        }
    }
}
