//! Graph's date-times as cursors: parsed, compared as instants, written as Airbyte writes them.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

/// Parses `2024-03-12T15:02:47-0700`, `...+07:00`, `...Z` and Graph's `...t... 0000` variant.
pub fn parse(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    let repaired = crate::schema::repair_date_time(s);
    let s = repaired.as_deref().unwrap_or(s);
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

/// The state form Airbyte writes: RFC 3339 with a colon in the offset.
pub fn format(dt: &DateTime<FixedOffset>) -> String {
    dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The cursor `key` stored in an account's state entry, unless the configured status filter
/// (`statuses`, for streams that have one) names a status the entry's `filter_statuses` lacks:
/// records of an added status may be older than the cursor, so it must not filter them out.
pub fn stored(entry: &Map<String, Value>, key: &str, statuses: Option<&[String]>) -> Option<DateTime<FixedOffset>> {
    let c = parse(entry.get(key)?.as_str()?)?;
    if let Some(configured) = statuses {
        let stored: Vec<&str> = entry
            .get("filter_statuses")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if configured.iter().any(|s| !stored.contains(&s.as_str())) {
            return None;
        }
    }
    Some(c)
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

    #[test]
    fn a_stored_cursor_is_ignored_once_a_status_is_added() {
        let entry: Map<String, Value> =
            serde_json::from_str(r#"{"updated_time": "2024-03-12T15:02:47-07:00", "filter_statuses": ["ACTIVE"]}"#)
                .unwrap();
        let active = ["ACTIVE".to_string()];
        let more = ["ACTIVE".to_string(), "PAUSED".to_string()];
        assert!(stored(&entry, "updated_time", Some(&active)).is_some());
        assert!(stored(&entry, "updated_time", Some(&[])).is_some(), "removing statuses keeps it");
        assert!(stored(&entry, "updated_time", Some(&more)).is_none());
        assert!(stored(&entry, "updated_time", None).is_some());
    }
}
