//! Where an import stands, as stored and as shown.

/// An import's state: queued until a worker claims it, then processing until it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportStatus {
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl ImportStatus {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Processing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored (and shown) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == stored)
    }
}

#[cfg(test)]
mod tests {
    use super::ImportStatus;

    #[test]
    fn names_round_trip() {
        for status in ImportStatus::ALL {
            assert_eq!(ImportStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ImportStatus::parse("done"), None);
    }
}
