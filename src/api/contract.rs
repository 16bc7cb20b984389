//! The served contract: `api/openapi.yaml` itself, as JSON, at `/api/openapi.json`, and
//! Swagger UI at `/docs/` reading it from there.
//!
//! poem-openapi can render a document from the generated surface, but that rendering drops what
//! the generator enforces by hand (`links`, `not`, `anyOf`, `x-rate-limit-class`, parameter
//! descriptions) and respells header names and media types. Clients, SDK generators and
//! fuzzers must see the source of truth, so the file is served; a test keeps the generated
//! surface in agreement with it.

use std::sync::OnceLock;

use poem::{
    endpoint::make_sync,
    http::{header, uri::Authority},
    web::Html,
    Endpoint, Request, Response, Route,
};
use serde_json::{json, Value};

use crate::{
    api::{generated, Api},
    state::AppState,
};

/// Where Swagger UI finds the contract.
const CONTRACT_PATH: &str = "/api/openapi.json";

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // build.rs wrote it from a document it has just parsed.
        serde_json::from_str(generated::CONTRACT_JSON).unwrap_or(Value::Null)
    })
}

/// The URL the client reached this server at: `Host` (and `X-Forwarded-Proto` behind a TLS
/// proxy), when they are well formed.
fn server_url(req: &Request) -> Option<String> {
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    let host: Authority = host.parse().ok()?;
    let scheme = match req.headers().get("x-forwarded-proto").map(|v| v.to_str()) {
        Some(Ok("https")) => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{host}"))
}

/// The contract with `servers` naming this server.
pub fn served(req: &Request) -> Value {
    let mut doc = document().clone();
    if let Some(url) = server_url(req) {
        doc["servers"] = json!([{ "url": url }]);
    }
    doc
}

/// poem-openapi's Swagger UI page, loading the served contract by URL instead of the
/// rendering it embeds. `None` if the page no longer has the shape this relies on.
fn swagger_ui_page(embedded_spec: &str, page: &str) -> Option<String> {
    let declaration = format!("let spec = {embedded_spec};");
    let config = "spec: spec,";
    if !page.contains(&declaration) || !page.contains(config) {
        return None;
    }
    let url = format!("url: {},", json!(CONTRACT_PATH));
    Some(page.replacen(&declaration, "", 1).replacen(config, &url, 1))
}

/// poem-openapi's rendering of the generated surface, for the test that holds it to the file.
pub fn as_generated(state: AppState) -> String {
    generated::service(Api { state }).spec()
}

/// `/api/openapi.json` and `/docs/`.
pub fn endpoints(state: AppState) -> (impl Endpoint, impl Endpoint) {
    let service = generated::service(Api { state });
    let page = swagger_ui_page(&service.spec(), &service.swagger_ui_html()).unwrap_or_else(|| {
        tracing::error!(
            "poem-openapi's Swagger UI page changed shape; /docs/ embeds its own rendering"
        );
        service.swagger_ui_html()
    });
    let contract = make_sync(|req: Request| {
        Response::builder()
            .content_type("application/json")
            .body(served(&req).to_string())
    });
    let docs = Route::new().at("/", make_sync(move |_| Html(page.clone())));
    (contract, docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swagger_ui_loads_the_contract_by_url() {
        let page = "<script>let spec = {\"a\":1};\nSwaggerUIBundle({ spec: spec, x: 1 })</script>";
        let got = swagger_ui_page("{\"a\":1}", page).expect("rewritten");
        assert_eq!(
            got,
            "<script>\nSwaggerUIBundle({ url: \"/api/openapi.json\", x: 1 })</script>"
        );
        assert_eq!(swagger_ui_page("{\"b\":2}", page), None);
    }
}
