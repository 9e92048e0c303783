//! Incoming state: Airbyte's per-stream state messages, or its legacy whole-sync object; and
//! the two per-account entry formats the streams write, as Airbyte's connector writes them
//! ([`EntityEntry`], [`InsightsEntry`]).

use crate::error::ConnectorError;
use crate::model::AccountId;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Each stream's state blob, by stream name.
pub type StreamStates = BTreeMap<String, Value>;

/// Parses what the last sync left: an array of STATE messages (`STREAM` or `GLOBAL` type), a
/// single message, or a legacy object keyed by stream name. Empty input means no state.
pub fn parse(text: &str) -> Result<StreamStates, ConnectorError> {
    if text.trim().is_empty() {
        return Ok(StreamStates::new());
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        ConnectorError::config(format!("state: not valid JSON ({e}); pass the state the last sync emitted"))
    })?;
    let mut out = StreamStates::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                take_message(item, &mut out).map_err(|m| ConnectorError::config(format!("state[{i}]: {m}")))?;
            }
        }
        Value::Object(ref map) if map.contains_key("type") || map.contains_key("stream") => {
            take_message(&v, &mut out).map_err(|m| ConnectorError::config(format!("state: {m}")))?;
        }
        Value::Object(map) => {
            // Legacy: {"ads": {...}, "campaigns": {...}}; an Airbyte LEGACY message's `data` too.
            let map = match map.get("data") {
                Some(Value::Object(d)) if map.len() == 1 => d.clone(),
                _ => map,
            };
            for (k, v) in map {
                if !v.is_null() {
                    out.insert(k, v);
                }
            }
        }
        _ => return Err(ConnectorError::config("state: expected a list of state messages or an object")),
    }
    Ok(out)
}

fn take_message(item: &Value, out: &mut StreamStates) -> Result<(), String> {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("STREAM");
    match kind {
        "STREAM" => {
            let stream = item.get("stream").ok_or("a STREAM state message without \"stream\"")?;
            let name = stream
                .get("stream_descriptor")
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
                .ok_or("stream.stream_descriptor.name is missing")?;
            match stream.get("stream_state") {
                Some(Value::Null) | None => {}
                Some(s) => {
                    out.insert(name.to_string(), s.clone());
                }
            }
            Ok(())
        }
        "GLOBAL" => {
            let streams = item.get("global").and_then(|g| g.get("stream_states")).and_then(Value::as_array);
            for s in streams.into_iter().flatten() {
                if let (Some(name), Some(state)) = (
                    s.get("stream_descriptor").and_then(|d| d.get("name")).and_then(Value::as_str),
                    s.get("stream_state"),
                ) {
                    out.insert(name.to_string(), state.clone());
                }
            }
            Ok(())
        }
        "LEGACY" => {
            if let Some(Value::Object(d)) = item.get("data") {
                for (k, v) in d {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(())
        }
        other => Err(format!("state message type '{other}' is not supported")),
    }
}

/// A stream's state split per account. Legacy flat state (not keyed by account) is adopted
/// only when exactly one account is configured, as Airbyte does.
pub fn per_account(
    state: Option<&Value>,
    accounts: &[AccountId],
    cursor_key: &str,
) -> BTreeMap<AccountId, Map<String, Value>> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(map)) = state else { return out };
    if map.contains_key(cursor_key) || map.contains_key("slices") {
        if let [only] = accounts {
            out.insert(only.clone(), map.clone());
        }
        return out;
    }
    for acct in accounts {
        if let Some(Value::Object(s)) = map.get(acct.as_str()) {
            out.insert(acct.clone(), s.clone());
        }
    }
    out
}

/// One account's entry in an entity stream's state: the cursor under the stream's cursor field
/// (`updated_time`, `created_time`, ...), and the statuses the account was read with
/// (`filter_statuses`, for streams that filter by status); keys an earlier version wrote are
/// kept as they came. Serialized by a hand-written impl (a derive would need serde's `flatten`,
/// which costs the component 12 KiB for one map); read by hand, leniently.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntityEntry {
    pub filter_statuses: Option<Vec<String>>,
    /// The cursor, under its field, and anything else the entry held.
    pub rest: Map<String, Value>,
}

impl EntityEntry {
    /// An incoming entry, read leniently: a `filter_statuses` that is not a list of strings
    /// counts as none.
    pub fn of(entry: Option<&Map<String, Value>>) -> EntityEntry {
        let mut rest = entry.cloned().unwrap_or_default();
        let filter_statuses = rest
            .remove("filter_statuses")
            .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()));
        EntityEntry { filter_statuses, rest }
    }

    pub fn set_cursor(&mut self, key: &str, value: String) {
        self.rest.insert(key.to_string(), Value::from(value));
    }

    pub fn to_map(&self) -> Map<String, Value> {
        object_of(self)
    }
}

impl Serialize for EntityEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        for (k, v) in &self.rest {
            if k != "filter_statuses" {
                map.serialize_entry(k, v)?;
            }
        }
        if let Some(statuses) = &self.filter_statuses {
            map.serialize_entry("filter_statuses", statuses)?;
        }
        map.end()
    }
}

/// One account's entry in an insights stream's state: `date_start`, the start of the last slice
/// read with every slice before it, and `slices`, the starts of those read after it. Written
/// through serde; read by hand, leniently (what is not a date counts as absent), which also
/// keeps serde's deserializer out of the component.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InsightsEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_start: Option<chrono::NaiveDate>,
    pub slices: Vec<chrono::NaiveDate>,
}

impl InsightsEntry {
    /// An incoming entry, read leniently: what is not a date counts as absent.
    pub fn of(entry: Option<&Map<String, Value>>) -> InsightsEntry {
        let Some(entry) = entry else { return InsightsEntry::default() };
        let date = |v: &Value| v.as_str().and_then(|s| s.parse().ok());
        InsightsEntry {
            date_start: entry.get("date_start").and_then(date),
            slices: entry
                .get("slices")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(date).collect())
                .unwrap_or_default(),
        }
    }

    pub fn to_map(&self) -> Map<String, Value> {
        object_of(self)
    }
}

/// A state entry as the JSON object it is written as.
fn object_of(entry: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(entry) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_per_stream_messages_and_legacy_objects() {
        let msgs = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ads"}, "stream_state": {"1": {"updated_time": "x"}}}}]);
        assert_eq!(parse(&msgs.to_string()).unwrap()["ads"]["1"]["updated_time"], "x");
        let legacy = json!({"ads": {"updated_time": "y"}});
        assert_eq!(parse(&legacy.to_string()).unwrap()["ads"]["updated_time"], "y");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn flat_state_is_adopted_only_with_one_account() {
        let flat = json!({"updated_time": "2024-01-01T00:00:00+0000"});
        assert_eq!(per_account(Some(&flat), &["1".into()], "updated_time").len(), 1);
        assert!(per_account(Some(&flat), &["1".into(), "2".into()], "updated_time").is_empty());
        let keyed = json!({"1": {"updated_time": "a"}, "3": {"updated_time": "b"}});
        assert_eq!(per_account(Some(&keyed), &["1".into(), "2".into()], "updated_time").len(), 1);
    }

    #[test]
    fn the_two_entry_formats_read_what_airbyte_writes_and_write_it_back_alike() {
        let entity = json!({"updated_time": "2024-03-12T15:02:47-07:00", "filter_statuses": ["ACTIVE"], "extra": 1});
        let e = EntityEntry::of(entity.as_object());
        assert_eq!(e.filter_statuses.as_deref(), Some(&["ACTIVE".to_string()][..]));
        assert_eq!(Value::Object(e.to_map()), entity, "every key comes back");
        let mut fresh = EntityEntry::default();
        fresh.set_cursor("created_time", "2024-01-01T00:00:00Z".into());
        assert_eq!(Value::Object(fresh.to_map()), json!({"created_time": "2024-01-01T00:00:00Z"}));

        let insights = json!({"date_start": "2024-03-01", "slices": ["2024-03-03", "2024-03-05"]});
        let i = InsightsEntry::of(insights.as_object());
        assert_eq!(i.date_start, "2024-03-01".parse().ok());
        assert_eq!(i.slices.len(), 2);
        assert_eq!(Value::Object(i.to_map()), insights);
        assert_eq!(Value::Object(InsightsEntry::default().to_map()), json!({"slices": []}));
    }

    #[test]
    fn entries_that_are_not_what_they_should_be_read_as_empty_parts() {
        let odd = json!({"date_start": 20240301, "slices": "2024-03-03", "filter_statuses": "ACTIVE"});
        assert_eq!(InsightsEntry::of(odd.as_object()), InsightsEntry::default());
        assert_eq!(EntityEntry::of(odd.as_object()).filter_statuses, None);
    }
}
