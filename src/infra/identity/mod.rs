//! Bearer tokens (JWT) checked against the identity provider's keys: a JWK set fetched from
//! `AUTH_JWKS_URL` (RS256, ES256, EdDSA) or one HS256 secret, never both. Every token names
//! the algorithm of exactly one key, so a token cannot pick a weaker family (no `alg: none`,
//! no HS256 signed with an RSA public key).

mod claims;
mod jwks;

use std::time::Duration;

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};

use crate::domain::{Identity, SellerIdError};
pub use jwks::JwksError;

/// Where the verifying keys come from.
pub enum Keys {
    /// `AUTH_JWT_SECRET`: HS256 only.
    Secret(Vec<u8>),
    /// `AUTH_JWKS_URL`, cached.
    Jwks {
        url: String,
        /// An unknown `kid` refetches the set at most this often.
        min_refetch: Duration,
        /// Known keys are refetched after this long.
        max_age: Duration,
    },
}

pub struct Settings {
    pub keys: Keys,
    pub issuer: String,
    pub audience: String,
    pub seller_claim: String,
    pub leeway: Duration,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted here")]
    Algorithm,
    #[error("the token's header has no `kid`")]
    MissingKeyId,
    #[error("no key with the token's `kid`")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    #[error("the token's `{claim}` claim is not a valid seller id: {error}")]
    InvalidSeller { claim: String, error: SellerIdError },
    /// The keys could not be fetched: not the caller's fault.
    #[error("the identity provider's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => Self::Algorithm,
            _ => Self::Malformed,
        }
    }
}

/// Checks bearer tokens and turns them into an [`Identity`].
pub struct Verifier {
    keys: KeySource,
    /// The claim checks for each algorithm a key can verify, built once: cloning one per
    /// request would allocate its issuer and audience sets on every call.
    validations: Vec<(Algorithm, Validation)>,
    seller_claim: String,
}

enum KeySource {
    Secret(DecodingKey),
    Jwks(jwks::Cache),
}

impl Verifier {
    pub fn new(settings: Settings) -> Result<Self, JwksError> {
        let keys = match settings.keys {
            Keys::Secret(secret) => KeySource::Secret(DecodingKey::from_secret(&secret)),
            Keys::Jwks {
                url,
                min_refetch,
                max_age,
            } => KeySource::Jwks(jwks::Cache::new(url, min_refetch, max_age)?),
        };
        let validation = |algorithm| {
            let mut v = Validation::new(algorithm);
            v.set_issuer(&[&settings.issuer]);
            v.set_audience(&[&settings.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.leeway = settings.leeway.as_secs();
            v.validate_nbf = true;
            (algorithm, v)
        };
        let validations = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(validation)
        .collect();
        Ok(Self {
            keys,
            validations,
            seller_claim: settings.seller_claim,
        })
    }

    /// Fetches the JWK set now, so the first requests do not wait for it. A failure is
    /// reported, not fatal: the set is fetched again when a token needs it.
    pub async fn warm_up(&self) -> Result<(), TokenError> {
        match &self.keys {
            KeySource::Secret(_) => Ok(()),
            KeySource::Jwks(cache) => cache.refresh().await,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
            _ => TokenError::Malformed,
        })?;
        let (key, algorithm) = match &self.keys {
            KeySource::Secret(key) => (key.clone(), Algorithm::HS256),
            KeySource::Jwks(cache) => {
                let kid = header.kid.as_deref().ok_or(TokenError::MissingKeyId)?;
                cache.key(kid).await?
            }
        };
        if header.alg != algorithm {
            return Err(TokenError::Algorithm);
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(a, v)| (*a == algorithm).then_some(v))
            .ok_or(TokenError::Algorithm)?;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token, &key, validation,
        )?;
        claims::identity(&data.claims, &self.seller_claim)
    }
}
