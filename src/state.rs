//! Incoming state: Airbyte's per-stream state messages, or its legacy whole-sync object.

use crate::error::ConnectorError;
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
    accounts: &[String],
    cursor_key: &str,
) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    let Some(Value::Object(map)) = state else { return out };
    if map.contains_key(cursor_key) || map.contains_key("slices") {
        if let [only] = accounts {
            out.insert(only.clone(), map.clone());
        }
        return out;
    }
    for acct in accounts {
        if let Some(Value::Object(s)) = map.get(acct) {
            out.insert(acct.clone(), s.clone());
        }
    }
    out
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
}
