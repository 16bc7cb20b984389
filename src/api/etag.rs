//! Strong ETags derived from a product's version, and the `If-Match` / `If-None-Match` rules
//! of RFC 9110 over them.

use crate::service::products::Precondition;

pub fn of(version: i64) -> String {
    format!("\"v{version}\"")
}

/// The versions an ETag list names (`"v3", W/"v4"`); `None` for `*`.
fn versions(header: &str) -> Option<Vec<i64>> {
    if header.trim() == "*" {
        return None;
    }
    Some(
        header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix("\"v")?.strip_suffix('"')?.parse().ok()
            })
            .collect(),
    )
}

/// `If-Match` as a precondition. Strong comparison: a weak tag never matches.
pub fn if_match(header: Option<&str>) -> Option<Precondition> {
    let header = header?;
    Some(match header.trim() {
        "*" => Precondition::Exists,
        _ => Precondition::OneOf(
            header
                .split(',')
                .map(str::trim)
                .filter(|t| !t.starts_with("W/"))
                .filter_map(|t| t.strip_prefix("\"v")?.strip_suffix('"')?.parse().ok())
                .collect(),
        ),
    })
}

/// True when `If-None-Match` names `version` (weak comparison) or is `*`.
pub fn none_match_hits(header: Option<&str>, version: i64) -> bool {
    match header.map(versions) {
        Some(None) => true,
        Some(Some(list)) => list.contains(&version),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_wildcards_and_weak_tags() {
        assert_eq!(if_match(None), None);
        assert_eq!(if_match(Some("*")), Some(Precondition::Exists));
        assert_eq!(
            if_match(Some("\"v1\", \"v3\"")),
            Some(Precondition::OneOf(vec![1, 3]))
        );
        assert_eq!(
            if_match(Some("W/\"v1\"")),
            Some(Precondition::OneOf(vec![]))
        );
        assert_eq!(if_match(Some("garbage")), Some(Precondition::OneOf(vec![])));
        assert!(none_match_hits(Some("W/\"v2\""), 2));
        assert!(none_match_hits(Some("*"), 9));
        assert!(!none_match_hits(Some("\"v1\""), 2));
        assert!(!none_match_hits(None, 2));
    }
}
