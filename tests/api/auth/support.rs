//! An identity provider for the tests: the fixture keys, a JWK set served over HTTP (its
//! contents changeable, its fetches counted) and tokens minted with those keys.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::helpers::{Backend, TestApp};

pub const ISSUER: &str = "https://id.test/";
pub const AUDIENCE: &str = "product-api";
pub const ALL_SCOPES: &str = "products:read products:write imports:write";
pub const SECRET: &str = "an-hs256-secret-for-tests-only-0123456789";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Valid claims for `seller` with `scope`; tests change them one at a time.
pub fn claims(seller: &str, scope: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "seller_id": seller,
        "scope": scope,
        "iat": now(),
        "exp": now() + 300,
    })
}

/// `claims` signed with the fixture key `kid` (`rsa-*`, `ec-*`, `ed-*`), its `kid` in the header.
pub fn sign(kid: &str, claims: &Value) -> String {
    let pem = fixture(&format!("{kid}.pem"));
    let (algorithm, key) = match kid.split('-').next() {
        Some("rsa") => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)),
        Some("ec") => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem)),
        Some("ed") => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem)),
        _ => panic!("no fixture key {kid}"),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key.expect("fixture key")).expect("signed")
}

/// `claims` signed with an HS256 `secret`, under `kid` when given.
pub fn sign_hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("signed")
}

/// The RSA public key as PEM: what an algorithm-confusion attack signs HS256 with.
pub fn rsa_public_pem() -> Vec<u8> {
    fixture("rsa-1.pub.pem")
}

/// An unsigned token (`alg: none`) for `claims`.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(claims)
    )
}

/// A JWK set served at `url`, holding the fixture keys named, counting its fetches.
pub struct Jwks {
    pub url: String,
    keys: Arc<Mutex<Vec<String>>>,
    fetches: Arc<AtomicUsize>,
}

impl Jwks {
    pub async fn serve(kids: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let keys = Arc::new(Mutex::new(
            kids.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        ));
        let fetches = Arc::new(AtomicUsize::new(0));
        let public: Value = serde_json::from_slice(&fixture("public.json")).expect("public.json");
        let (served, counted) = (keys.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                counted.fetch_add(1, Ordering::SeqCst);
                let kids = served.lock().map(|k| k.clone()).unwrap_or_default();
                let set =
                    json!({ "keys": kids.iter().map(|k| public[k].clone()).collect::<Vec<_>>() });
                let body = set.to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(format!("{head}{body}").as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        Self { url, keys, fetches }
    }

    /// The provider rotates: the set now holds `kids`.
    pub fn publish(&self, kids: &[&str]) {
        if let Ok(mut keys) = self.keys.lock() {
            *keys = kids.iter().map(|k| k.to_string()).collect();
        }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// An app that requires bearer tokens verified against `jwks`.
pub async fn app_with_jwks(backend: Backend, jwks: &Jwks, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("AUTH_MODE", "jwt"),
        ("AUTH_JWKS_URL", jwks.url.as_str()),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("RATE_LIMIT_ANONYMOUS", "1000000"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(backend, &vars).await
}

/// An app that requires HS256 bearer tokens signed with [`SECRET`].
pub async fn app_with_secret(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("AUTH_MODE", "jwt"),
            ("AUTH_JWT_SECRET", SECRET),
            ("AUTH_ISSUER", ISSUER),
            ("AUTH_AUDIENCE", AUDIENCE),
        ],
    )
    .await
}
