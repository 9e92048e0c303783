//! Graph's date-times as cursors: parsed, compared as instants, written as Airbyte writes them.

use chrono::{DateTime, FixedOffset};

/// Parses `2024-03-12T15:02:47-0700`, `...+07:00`, `...Z` and Graph's `...t... 0000` variant.
pub fn parse(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    let fixed;
    let s = if s.as_bytes().get(10) == Some(&b't') || s.contains(" 0000") {
        let mut f = s.replace(" 0000", "+0000");
        if f.len() > 10 && f.is_char_boundary(10) && f.is_char_boundary(11) {
            f.replace_range(10..11, "T");
        }
        fixed = f;
        fixed.as_str()
    } else {
        s
    };
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

/// The state form Airbyte writes: RFC 3339 with a colon in the offset.
pub fn format(dt: &DateTime<FixedOffset>) -> String {
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form_graph_and_airbyte_write() {
        let a = parse("2024-03-12T15:02:47-0700").unwrap();
        let b = parse("2024-03-12T15:02:47-07:00").unwrap();
        let c = parse("2024-03-12t22:02:47 0000").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(format(&a), "2024-03-12T15:02:47-07:00");
        assert!(parse("yesterday").is_none());
    }
}
