//! The served contract is the committed contract. `/api/openapi.json` serves
//! `api/openapi.yaml` itself (with this server's URL), and the surface generated from the file
//! (poem-openapi's rendering of the generated routing and models) agrees with it semantically:
//! paths, operations, parameters, request bodies, responses, headers, schemas and their
//! validation.
//!
//! For the second comparison both documents are put in one canonical form first: `$ref`s
//! inlined, defaults made explicit and keys without meaning for clients dropped. Per-parameter
//! descriptions and examples are not compared: poem-openapi cannot render them from a
//! generated signature.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::helpers::{Backend, TestApp};

fn resolve(value: &Value, root: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let pointer = r.trim_start_matches('#');
                let target = root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {r}"));
                return resolve(target, root);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(v, root)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, root)).collect()),
        other => other.clone(),
    }
}

fn text(v: &Value) -> Value {
    v.as_str().map_or(Value::Null, |s| json!(s.trim()))
}

fn number(v: &Value) -> Value {
    v.as_f64().map_or(Value::Null, |n| json!(n))
}

fn flag(v: &Value) -> Value {
    json!(v.as_bool().unwrap_or(false))
}

fn schema(s: &Value) -> Value {
    // poem-openapi renders a $ref with extra keywords (a default, a description) as
    // `allOf: [target, {extra}]` next to the extras; that means the parts merged.
    if let (Some(parts), Some(outer)) = (s["allOf"].as_array(), s.as_object()) {
        let mut merged = Map::new();
        for part in parts.iter().filter_map(Value::as_object) {
            merged.extend(part.clone());
        }
        merged.extend(
            outer
                .iter()
                .filter(|(k, _)| *k != "allOf")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        return schema(&Value::Object(merged));
    }
    let mut out = Map::new();
    for key in ["type", "format", "pattern", "enum", "default", "example"] {
        if let Some(v) = s.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for key in [
        "minimum",
        "maximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    ] {
        if s.get(key).is_some() {
            out.insert(key.into(), number(&s[key]));
        }
    }
    for key in [
        "exclusiveMinimum",
        "exclusiveMaximum",
        "nullable",
        "readOnly",
        "writeOnly",
        "uniqueItems",
    ] {
        out.insert(key.into(), flag(&s[key]));
    }
    out.insert("description".into(), text(&s["description"]));
    if let Some(items) = s.get("items") {
        out.insert("items".into(), schema(items));
    }
    if let Some(props) = s["properties"].as_object() {
        let props = props.iter().map(|(k, v)| (k.clone(), schema(v))).collect();
        out.insert("properties".into(), Value::Object(props));
    }
    let mut required: Vec<String> = s["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    required.sort();
    out.insert("required".into(), json!(required));
    match s.get("additionalProperties") {
        Some(Value::Bool(true)) => {
            out.insert("additionalProperties".into(), json!("any"));
        }
        Some(Value::Object(m)) if m.is_empty() => {
            out.insert("additionalProperties".into(), json!("any"));
        }
        Some(other) => {
            out.insert("additionalProperties".into(), schema(other));
        }
        None => {}
    }
    Value::Object(out)
}

/// Media types without parameters: poem-openapi adds `; charset=utf-8` to JSON ones.
fn content(c: &Value) -> Value {
    let map = c.as_object().cloned().unwrap_or_default();
    let bare = |mime: &str| {
        mime.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    Value::Object(
        map.iter()
            .map(|(mime, m)| (bare(mime), schema(&m["schema"])))
            .collect(),
    )
}

fn operation(op: &Value, global_security: &Value) -> Value {
    let mut params = Map::new();
    for p in op["parameters"].as_array().cloned().unwrap_or_default() {
        let key = format!(
            "{}:{}",
            p["in"].as_str().unwrap_or_default(),
            p["name"].as_str().unwrap_or_default()
        );
        let mut schema = schema(&p["schema"]);
        // Parameter-level descriptions are not rendered by poem-openapi; compare the rest.
        schema["description"] = Value::Null;
        params.insert(key, json!({ "required": flag(&p["required"]), "deprecated": flag(&p["deprecated"]), "schema": schema }));
    }
    let mut responses = Map::new();
    for (status, r) in op["responses"].as_object().cloned().unwrap_or_default() {
        let mut headers = Map::new();
        for (name, h) in r["headers"].as_object().cloned().unwrap_or_default() {
            headers.insert(name.to_ascii_lowercase(), json!({ "required": flag(&h["required"]), "schema": schema(&h["schema"]), "description": text(&h["description"]) }));
        }
        responses.insert(status, json!({ "description": text(&r["description"]), "content": content(&r["content"]), "headers": headers }));
    }
    // An empty requirement list and none at all both mean "no authentication".
    let security = match op.get("security").unwrap_or(global_security) {
        Value::Array(list) if list.is_empty() => Value::Null,
        other => other.clone(),
    };
    let body = match op.get("requestBody") {
        Some(b) => json!({ "required": flag(&b["required"]), "content": content(&b["content"]) }),
        None => Value::Null,
    };
    json!({
        "operationId": op["operationId"],
        "tags": op["tags"],
        "summary": text(&op["summary"]),
        "description": text(&op["description"]),
        "deprecated": flag(&op["deprecated"]),
        "security": security,
        "parameters": params,
        "requestBody": body,
        "responses": responses,
    })
}

fn canonical(raw: &Value) -> Value {
    let doc = resolve(raw, raw);
    let mut paths = Map::new();
    for (path, item) in doc["paths"].as_object().cloned().unwrap_or_default() {
        let mut ops = Map::new();
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if let Some(op) = item.get(method) {
                ops.insert(method.into(), operation(op, &doc["security"]));
            }
        }
        paths.insert(path, Value::Object(ops));
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, s)| (k, json!({ "type": s["type"], "in": s["in"], "name": s["name"], "description": text(&s["description"]) })))
        .collect::<Map<_, _>>();
    // poem-openapi lists tags by name; their order carries no meaning.
    let mut tags: Vec<Value> = doc["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| json!({ "name": t["name"], "description": text(&t["description"]) }))
        .collect();
    tags.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_string());
    let servers: Vec<Value> = doc["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["url"].clone())
        .collect();
    json!({
        "info": { "title": doc["info"]["title"], "version": doc["info"]["version"], "description": text(&doc["info"]["description"]) },
        "servers": servers,
        "tags": tags,
        "securitySchemes": schemes,
        "paths": paths,
    })
}

/// Every place the two documents differ, as `pointer: file=… served=…`.
fn differences(path: &str, file: &Value, served: &Value, out: &mut Vec<String>) {
    match (file, served) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                differences(&format!("{path}/{k}"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: file={a} served={b}")),
        _ => {}
    }
}

fn committed_file() -> Value {
    serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/api/openapi.yaml"))
            .expect("spec file"),
    )
    .expect("spec is YAML")
}

#[tokio::test]
async fn the_served_contract_is_the_committed_file_with_this_servers_url() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served: Value = resp.json().await.expect("spec is JSON");

    let mut expected = committed_file();
    expected["servers"] = json!([{ "url": app.base }]);
    assert_eq!(served, expected);
    // What poem-openapi's rendering dropped is there.
    for pointer in [
        "/paths/~1api~1products/post/responses/201/links",
        "/components/schemas/QuantityAdjustmentRequest/properties/delta/not",
        "/components/schemas/ProductUpdateRequest/allOf/0/anyOf",
        "/paths/~1api~1products~1import/post/x-rate-limit-class",
    ] {
        assert!(served.pointer(pointer).is_some(), "{pointer} is served");
    }
}

#[tokio::test]
async fn the_generated_surface_agrees_with_the_committed_file() {
    let config = product_api::config::Config::from_vars([(
        "DATABASE_URL".to_string(),
        "sqlite::memory:".to_string(),
    )])
    .expect("config");
    let db = product_api::state::connect(&config)
        .await
        .expect("database");
    let state = product_api::state::AppState::new(config, db).expect("state");
    let generated: Value =
        serde_json::from_str(&product_api::api::contract::as_generated(state)).expect("JSON");

    let (file, generated) = (canonical(&committed_file()), canonical(&generated));
    assert!(
        file["paths"].as_object().is_some_and(|p| p.len() > 10),
        "the file has paths"
    );
    let mut diffs = Vec::new();
    differences("", &file, &generated, &mut diffs);
    assert!(
        diffs.is_empty(),
        "the generated surface differs from api/openapi.yaml:\n{}",
        diffs.join("\n")
    );
}

#[tokio::test]
async fn swagger_ui_loads_the_served_contract() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let resp = app
        .request(Method::GET, "/docs/", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("SwaggerUIBundle("),
        "the Swagger UI bundle is on the page"
    );
    assert!(
        html.contains(r#"url: "/api/openapi.json","#),
        "it loads the served contract"
    );
    assert!(
        !html.contains("let spec ="),
        "no rendering of its own is embedded"
    );
}

#[test]
fn the_comparison_sees_a_dropped_constraint() {
    let file = committed_file();
    let mut altered = file.clone();
    let name = altered
        .pointer_mut("/components/schemas/ProductCreateRequest/properties/name")
        .and_then(Value::as_object_mut)
        .expect("name property");
    name.remove("maxLength");
    let mut diffs = Vec::new();
    differences("", &canonical(&file), &canonical(&altered), &mut diffs);
    assert_eq!(
        diffs,
        vec!["/paths//api/products/post/requestBody/content/application/json/properties/name/maxLength: file=255.0 served=null"]
    );
}
