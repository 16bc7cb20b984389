//! Who a request acts for once its credentials were checked, and what it may do.

use chrono::{DateTime, Utc};

use super::SellerId;

/// What a caller may do. A trusted gateway's `X-Seller-Id` grants everything; a bearer token
/// grants the scopes it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    All,
    Scopes(Vec<String>),
}

impl Grant {
    pub fn allows(&self, scope: &str) -> bool {
        match self {
            Self::All => true,
            Self::Scopes(scopes) => scopes.iter().any(|s| s == scope),
        }
    }
}

/// An authenticated seller and its grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub seller: SellerId,
    pub grant: Grant,
    /// When the credentials stop being valid (a token's `exp`); `None` for a trusted header.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Identity {
    /// The seller a trusted `X-Seller-Id` names.
    pub fn trusted(seller: SellerId) -> Self {
        Self {
            seller,
            grant: Grant::All,
            expires_at: None,
        }
    }
}
