//! The identity provider's JWK set, fetched on demand and cached.
//!
//! A known `kid` is served from memory. An unknown one (the provider rotated its keys) fetches
//! the set again, but at most once per `min_refetch` whatever the tokens say, so a flood of
//! made-up `kid`s cannot hammer the provider; concurrent misses share one fetch.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use super::TokenError;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the JWKS client: {0}")]
pub struct JwksError(#[from] reqwest::Error);

type Key = (DecodingKey, Algorithm);

pub(super) struct Cache {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    max_age: Duration,
    keys: RwLock<Fetched>,
    /// When the last fetch started; held while fetching, so misses queue behind one fetch.
    last_attempt: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Fetched {
    keys: HashMap<String, Key>,
    at: Option<Instant>,
}

impl Cache {
    pub(super) fn new(
        url: String,
        min_refetch: Duration,
        max_age: Duration,
    ) -> Result<Self, JwksError> {
        // No redirects: a redirect could lead the fetch off https.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            url,
            client,
            min_refetch,
            max_age,
            keys: RwLock::default(),
            last_attempt: Mutex::new(None),
        })
    }

    pub(super) async fn key(&self, kid: &str) -> Result<Key, TokenError> {
        let stale = {
            let fetched = self.keys.read().await;
            let fresh = fetched.at.is_some_and(|at| at.elapsed() < self.max_age);
            match fetched.keys.get(kid) {
                Some(key) if fresh => return Ok(key.clone()),
                known => known.cloned(),
            }
        };
        if let Some(stale) = stale {
            // A known key past the set's age: one request refreshes the set while the others
            // go on with the key they have, so a slow provider stalls nobody else.
            if let Ok(mut last) = self.last_attempt.try_lock() {
                if !last.is_some_and(|at| at.elapsed() < self.min_refetch) {
                    *last = Some(Instant::now());
                    if let Err(e) = self.fetch().await {
                        tracing::warn!(error = %e, "cannot refresh the JWK set; using the cached keys");
                    }
                }
            }
            let fetched = self.keys.read().await;
            return match fetched.keys.get(kid) {
                Some(key) => Ok(key.clone()),
                // Refreshed without it: the provider has withdrawn the key.
                None if fetched.at.is_some_and(|at| at.elapsed() < self.min_refetch) => {
                    Err(TokenError::UnknownKey)
                }
                None => Ok(stale),
            };
        }
        let failure = self.refetch(false).await.err();
        let fetched = self.keys.read().await;
        match fetched.keys.get(kid) {
            // A stale set that cannot be refreshed still verifies the keys it holds.
            Some(key) => Ok(key.clone()),
            None if fetched.at.is_some() => Err(TokenError::UnknownKey),
            None => Err(failure.unwrap_or_else(|| {
                TokenError::KeysUnavailable("the last fetch failed; retrying shortly".into())
            })),
        }
    }

    /// Fetches the set, unless (`force` aside) a fetch started less than `min_refetch` ago.
    /// The lock is held across the fetch, so concurrent misses wait for it and then find
    /// its keys instead of fetching again.
    async fn refetch(&self, force: bool) -> Result<(), TokenError> {
        let mut last = self.last_attempt.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetch().await
    }

    pub(super) async fn refresh(&self) -> Result<(), TokenError> {
        self.refetch(true).await
    }

    async fn fetch(&self) -> Result<(), TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::KeysUnavailable(e.to_string());
        let set: Value = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let keys = parse(&set);
        tracing::info!(url = %self.url, keys = keys.len(), "fetched the JWK set");
        *self.keys.write().await = Fetched {
            keys,
            at: Some(Instant::now()),
        };
        Ok(())
    }
}

/// The set's signing keys by `kid`; keys without a `kid`, for encryption, symmetric or of an
/// unsupported type are left out, one by one, so one odd key does not hide the others.
fn parse(set: &Value) -> HashMap<String, Key> {
    let entries = set.get("keys").and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                return None;
            }
            let algorithm = algorithm(&jwk)?;
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, (key, algorithm)))
        })
        .collect()
}

/// The one algorithm a key verifies: RS256, ES256 (P-256) or EdDSA (Ed25519). A key's `alg`,
/// when given, must agree with its type.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let declared = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    (declared == by_type).then_some(by_type)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_supported_signing_keys_with_a_kid_are_kept() {
        let set = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "mislabelled", "alg": "ES256", "n": "sXch", "e": "AQAB"},
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "future", "kid": "odd"}
        ]});
        let keys = parse(&set);
        let mut kids: Vec<_> = keys.iter().map(|(k, (_, a))| (k.as_str(), *a)).collect();
        kids.sort_by_key(|(k, _)| *k);
        assert_eq!(kids, [("ed", Algorithm::EdDSA), ("rsa", Algorithm::RS256)]);
    }
}
