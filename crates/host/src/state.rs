//! A sync's state split by ad account, and merged back: for running one sync as several shards
//! (each reads some of the accounts, from its split of the state) and carrying on as one.
//!
//! Every stream's state is an object of per-account entries (keys that are ad account ids,
//! values objects) beside stream-level keys (`time_increment`, ...), as the connector and
//! Airbyte's connector both write it. A split keeps the entries of its accounts and every
//! stream-level key; a merge puts the entries of several states together. An account found in
//! more than one state keeps the entry with the later cursor, and the merge says so. The Python
//! package's `source_facebook_marketing_wasm.state` follows the same rules.
//!
//! Refused, with what to do: a state a time-boxed read left mid-sync (its mark, `sfm_resume`,
//! describes the sync as a whole), and a single-account state of an older Airbyte version (not
//! keyed by account, so no split can tell whose it is).

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The mark a time-boxed read leaves in each stream's state (`src/read/resume.rs`).
const RESUME_KEY: &str = "sfm_resume";

/// Keys of an entry that hold its cursor, in the order they are looked for.
const CURSOR_KEYS: [&str; 3] = ["updated_time", "event_time", "date_start"];

/// A stream's state as a single-account (legacy) state holds it: not keyed by account.
const LEGACY_KEYS: [&str; 4] = ["updated_time", "event_time", "date_start", "slices"];

/// Each stream's state, by stream name.
pub type Streams = BTreeMap<String, Map<String, Value>>;

/// A merged state, and what the merge had to choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The state, as [`to_messages`] writes it.
    pub state: Value,
    /// One line per account (or stream-level key) found with different values in more than one
    /// state, saying which was kept.
    pub notes: Vec<String>,
}

/// Parses a state in any form the connector takes: a list of STATE messages (Airbyte's full
/// `{"type": "STATE", "state": ...}` or the inner `STREAM`, `GLOBAL` and `LEGACY` forms), one
/// such message, or a legacy object keyed by stream name. `null` or empty text is no state.
pub fn parse(text: &str) -> Result<Streams> {
    if text.trim().is_empty() {
        return Ok(Streams::new());
    }
    let v: Value = serde_json::from_str(text).context("the state is not JSON")?;
    streams_of(&v)
}

/// As [`parse`], for a state already parsed.
pub fn streams_of(v: &Value) -> Result<Streams> {
    let mut blobs: Vec<(String, Value)> = Vec::new();
    match v {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                take_message(item, &mut blobs).with_context(|| format!("state[{i}]"))?;
            }
        }
        Value::Object(m) if m.contains_key("type") || m.contains_key("stream") => take_message(v, &mut blobs)?,
        Value::Object(m) => {
            let m = match m.get("data") {
                Some(Value::Object(d)) if m.len() == 1 => d,
                _ => m,
            };
            blobs.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        _ => bail!("expected a list of state messages or an object keyed by stream"),
    }
    let mut out = Streams::new();
    for (name, blob) in blobs {
        match blob {
            Value::Null => {}
            Value::Object(m) => {
                check_stream(&name, &m)?;
                out.insert(name, m);
            }
            other => bail!("stream {name}: its state is {other}, not an object"),
        }
    }
    Ok(out)
}

fn take_message(item: &Value, out: &mut Vec<(String, Value)>) -> Result<()> {
    let item = if item.get("type").and_then(Value::as_str) == Some("STATE") { &item["state"] } else { item };
    let name_of = |s: &Value| s["stream_descriptor"]["name"].as_str().map(str::to_string);
    match item.get("type").and_then(Value::as_str).unwrap_or("STREAM") {
        "STREAM" => {
            let stream = &item["stream"];
            let name = name_of(stream).context("a STREAM message without stream.stream_descriptor.name")?;
            out.push((name, stream.get("stream_state").cloned().unwrap_or(Value::Null)));
        }
        "GLOBAL" => {
            for s in item["global"]["stream_states"].as_array().into_iter().flatten() {
                let name = name_of(s).context("a GLOBAL stream state without stream_descriptor.name")?;
                out.push((name, s.get("stream_state").cloned().unwrap_or(Value::Null)));
            }
        }
        "LEGACY" => {
            if let Some(d) = item["data"].as_object() {
                out.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        other => bail!("state message type '{other}' is not one the connector writes"),
    }
    Ok(())
}

/// Whether `key` is an ad account id with an entry under it.
fn is_entry(key: &str, value: &Value) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) && value.is_object()
}

/// Refuses what no split or merge can carry.
fn check_stream(name: &str, blob: &Map<String, Value>) -> Result<()> {
    if blob.contains_key(RESUME_KEY) {
        bail!(
            "stream {name}: the state is from a time-boxed read that has not finished its sync ({RESUME_KEY}); finish the chain of reads first (read again until a read ends without the time box)"
        );
    }
    if !blob.iter().any(|(k, v)| is_entry(k, v)) && LEGACY_KEYS.iter().any(|k| blob.contains_key(*k)) {
        bail!(
            "stream {name}: a single-account state from an older version of Airbyte's connector (not keyed by account); read once with that account in account_ids, which rewrites it by account, then split"
        );
    }
    Ok(())
}

/// `act_123` or ` 123 ` as `123`; anything else is an error naming it.
pub fn account_id(raw: &str) -> Result<String> {
    let id = raw.trim();
    let id = id.strip_prefix("act_").unwrap_or(id);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("'{raw}' is not an ad account id (the number shown in Ads Manager, e.g. 1234567890)");
    }
    Ok(id.to_string())
}

/// The state for a shard that reads `accounts`: their entries and every stream-level key; a
/// stream holding none of their entries is left out (its read starts fresh, as it would).
pub fn split(state: &Streams, accounts: &[String]) -> Result<Value> {
    let ids = accounts.iter().map(|a| account_id(a)).collect::<Result<Vec<String>>>()?;
    let mut out = Streams::new();
    for (name, blob) in state {
        let kept: Map<String, Value> = blob
            .iter()
            .filter(|(k, v)| !is_entry(k, v) || ids.iter().any(|id| id == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if kept.iter().any(|(k, v)| is_entry(k, v)) {
            out.insert(name.clone(), kept);
        }
    }
    Ok(to_messages(&out))
}

/// The states of several shards as one, in order (`named` gives each a name for the notes).
pub fn merge(named: &[(String, Streams)]) -> Merged {
    let mut out = Streams::new();
    // Where each kept value came from, by (stream, key).
    let mut from: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut notes = Vec::new();
    for (i, (name, streams)) in named.iter().enumerate() {
        for (stream, blob) in streams {
            let merged = out.entry(stream.clone()).or_default();
            for (key, value) in blob {
                let at = (stream.clone(), key.clone());
                let Some(old) = merged.get(key) else {
                    merged.insert(key.clone(), value.clone());
                    from.insert(at, i);
                    continue;
                };
                if old == value {
                    continue;
                }
                let was = &named[from[&at]].0;
                if is_entry(key, value) {
                    let keep_new = cursor_of(value).cmp_later(&cursor_of(old)) != std::cmp::Ordering::Less;
                    let (kept, kept_name) = if keep_new { (value, name) } else { (old, was) };
                    notes.push(format!(
                        "stream {stream}, account {key}: in {was} and {name}; kept {kept_name}'s ({})",
                        cursor_of(kept).describe()
                    ));
                    if keep_new {
                        merged.insert(key.clone(), value.clone());
                        from.insert(at, i);
                    }
                } else {
                    notes.push(format!("stream {stream}: {key} {old} in {was}, {value} in {name}; kept {name}'s"));
                    merged.insert(key.clone(), value.clone());
                    from.insert(at, i);
                }
            }
        }
    }
    Merged { state: to_messages(&out), notes }
}

/// An entry's cursor: its key and value, if it has one.
struct Cursor<'a>(Option<(&'static str, &'a Value)>);

fn cursor_of(entry: &Value) -> Cursor<'_> {
    Cursor(CURSOR_KEYS.iter().find_map(|k| entry.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v))))
}

impl Cursor<'_> {
    /// This cursor against `other`: `Greater` when later. A missing cursor is the earliest;
    /// values that do not both parse as instants compare as text.
    fn cmp_later(&self, other: &Cursor) -> std::cmp::Ordering {
        match (self.0, other.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some((_, a)), Some((_, b))) => {
                let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
                match (instant(a), instant(b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => text(a).cmp(&text(b)),
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self.0 {
            Some((k, Value::String(s))) => format!("{k} {s}"),
            Some((k, v)) => format!("{k} {v}"),
            None => "no cursor".into(),
        }
    }
}

/// A cursor value as an instant: `2024-01-01T00:00:00+0000`, `+00:00`, `Z`, or a bare date
/// (midnight UTC).
fn instant(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Streams as a list of `STREAM` state messages, by stream name (what `read --state` takes).
pub fn to_messages(streams: &Streams) -> Value {
    Value::Array(
        streams
            .iter()
            .map(|(name, blob)| {
                let sorted: BTreeMap<&String, &Value> = blob.iter().collect();
                json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": sorted}})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Streams {
        streams_of(&json!({
            "campaigns": {"1": {"updated_time": "2026-06-01T00:00:00+0000", "filter_statuses": []},
                          "2": {"updated_time": "2026-06-02T00:00:00+0000"},
                          "3": {"updated_time": "2026-06-03T00:00:00+0000"}},
            "ads_insights": {"1": {"date_start": "2026-06-10", "slices": []},
                             "3": {"date_start": "2026-06-11"}, "time_increment": 1},
        }))
        .unwrap()
    }

    fn shard(accounts: &[&str]) -> Streams {
        let ids: Vec<String> = accounts.iter().map(|s| s.to_string()).collect();
        streams_of(&split(&state(), &ids).unwrap()).unwrap()
    }

    #[test]
    fn shards_merged_give_the_state_back() {
        let shards = [shard(&["1"]), shard(&["act_2"]), shard(&["3", "9"])];
        assert!(!shards[1].contains_key("ads_insights"), "no entry of account 2: left out");
        assert_eq!(shards[0]["ads_insights"]["time_increment"], 1);
        let named: Vec<(String, Streams)> = shards.into_iter().enumerate().map(|(i, s)| (format!("s{i}"), s)).collect();
        let merged = merge(&named);
        assert!(merged.notes.is_empty(), "{:?}", merged.notes);
        assert_eq!(streams_of(&merged.state).unwrap(), state());
    }

    #[test]
    fn an_account_in_two_states_keeps_the_later_cursor_whichever_comes_first_and_says_so() {
        let older = streams_of(&json!({"campaigns": {"1": {"updated_time": "2026-06-01T00:00:00+0000"}}})).unwrap();
        let newer = streams_of(&json!({"campaigns": {"1": {"updated_time": "2026-06-01T02:00:00+01:00"}}})).unwrap();
        for order in [[("a", &older), ("b", &newer)], [("b", &newer), ("a", &older)]] {
            let named: Vec<(String, Streams)> = order.iter().map(|(n, s)| (n.to_string(), (*s).clone())).collect();
            let m = merge(&named);
            assert_eq!(m.state[0]["stream"]["stream_state"]["1"]["updated_time"], "2026-06-01T02:00:00+01:00");
            assert_eq!(m.notes.len(), 1);
            assert!(m.notes[0].ends_with("kept b's (updated_time 2026-06-01T02:00:00+01:00)"), "{}", m.notes[0]);
        }
    }

    #[test]
    fn every_form_of_state_is_read_and_what_cannot_be_split_is_refused() {
        let blob = json!({"1": {"date_start": "2026-06-10"}});
        let inner = json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": "s"}, "stream_state": blob}});
        let forms = [
            json!([inner]),
            inner.clone(),
            json!([{"type": "STATE", "state": inner}]),
            json!({"type": "GLOBAL", "global": {"stream_states": [{"stream_descriptor": {"name": "s"}, "stream_state": blob}]}}),
            json!({"type": "LEGACY", "data": {"s": blob}}),
            json!({"s": blob}),
            json!({"data": {"s": blob}}),
        ];
        for f in forms {
            assert_eq!(streams_of(&f).unwrap()["s"]["1"]["date_start"], "2026-06-10", "{f}");
        }
        assert!(parse("").unwrap().is_empty() && parse("null").unwrap().is_empty());
        let refused = |v: Value, needle: &str| {
            let e = format!("{:#}", streams_of(&v).unwrap_err());
            assert!(e.contains(needle), "{e}");
        };
        refused(json!({"s": {"1": {}, "sfm_resume": {"done": true}}}), "time-boxed");
        refused(json!({"s": {"updated_time": "2026-01-01T00:00:00+0000"}}), "single-account");
        refused(json!({"s": 3}), "not an object");
        assert!(split(&state(), &["12a".to_string()]).is_err());
    }
}
