//! Ground truth of a sync, keyed as its records are: the primary keys a correct first sync of a
//! config and configured catalog must emit, as the simulator serves them at one instant.
//!
//! `host-test soak` checks its reads with it, and `host-test simulate` serves it at
//! `POST /__sim/truth` for clients outside the process (the PyAirbyte test). Both apply it the
//! same way: the simulator's clock moves while a sync runs (objects are edited, a new day
//! begins), so a read is compared with the truth at its start and at its end; a key in both must
//! be read, a key in neither must not be.
//!
//! Only configs whose effect the truth models are accepted (those soak draws, plus options that
//! change no record of a first sync); any other option is an error naming it, never a silently
//! wrong truth.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use graph_sim::{InsightsQuery, SimConfig, Simulator, TruthQuery};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use graph_sim::ENTITY_STREAMS;

/// Keys with their multiplicity (activities, which have no primary key, may repeat one).
pub type Keys = BTreeMap<String, usize>;

/// Every ad status: built-in insights streams filter on all of them so that deleted ads' rows
/// are read (as `AD_STATUSES` in `src/model.rs`); ground truth must ask for the same.
pub const ALL_AD_STATUSES: [&str; 12] = [
    "ACTIVE",
    "ADSET_PAUSED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DELETED",
    "DISAPPROVED",
    "IN_PROCESS",
    "PAUSED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "WITH_ISSUES",
];

/// 730 days: how far back insights start without a start date (`DEFAULT_HISTORY_DAYS` in
/// `src/read/insights/mod.rs`, Airbyte's default).
pub const DEFAULT_HISTORY_DAYS: i64 = 730;

/// 1123 days: the oldest day Meta serves is today − 1122 (`RETENTION_DAYS` in
/// `src/read/insights/mod.rs`); an older start is moved to it.
pub const RETENTION_DAYS: i64 = 1123;

/// Top-level config options the truth models, or that change no record of a first sync.
const MODELLED_OPTIONS: [&str; 11] = [
    "account_ids",
    "account_id",
    "credentials",
    "access_token",
    "start_date",
    "custom_insights",
    "page_size",
    "insights_lookback_window",
    "insights_job_timeout",
    "response_size_limit_mb",
    "max_concurrent_requests",
];

/// Options of a `custom_insights` entry the truth models, or that change no record of a first
/// sync (`time_increment` only as 1, `time_increment_period` only as `daily`).
const MODELLED_CUSTOM_OPTIONS: [&str; 8] = [
    "name",
    "level",
    "fields",
    "breakdowns",
    "time_increment",
    "time_increment_period",
    "insights_lookback_window",
    "insights_job_timeout",
];

/// A simulator of `cfg` whose clock reads `at_ms` (for ground truth at that instant).
pub fn sim_at(cfg: &SimConfig, at_ms: i64) -> Simulator {
    let mut s = Simulator::new(cfg.clone());
    s.advance(u64::try_from(at_ms - cfg.start_time_ms).unwrap_or(0));
    s
}

/// A key's text: strings as they are, date-times as epoch seconds, other values as JSON.
fn key_part(v: &Value, date_time: bool) -> String {
    match v {
        Value::String(s) if date_time => epoch_secs(s).map_or_else(|| s.clone(), |t| t.to_string()),
        Value::String(s) => s.clone(),
        Value::Null => "∅".into(),
        other => other.to_string(),
    }
}

/// Seconds since the epoch of a Graph or RFC 3339 date-time.
pub fn epoch_secs(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|d| d.timestamp())
}

/// The key of a record (or truth row) of a stream with primary key `pk`, its parts joined by
/// `|`; activities, which have none, are keyed by object, time (epoch s) and event type.
pub fn record_key(pk: &[String], r: &Value) -> String {
    if pk.is_empty() {
        return ["object_id", "event_time", "event_type"]
            .iter()
            .map(|f| key_part(&r[*f], *f == "event_time"))
            .collect::<Vec<_>>()
            .join("|");
    }
    pk.iter().map(|f| key_part(&r[f.as_str()], false)).collect::<Vec<_>>().join("|")
}

/// The keys of `rows`, with their multiplicity.
pub fn count_keys<'a>(pk: &[String], rows: impl IntoIterator<Item = &'a Value>) -> Keys {
    let mut k = Keys::new();
    for r in rows {
        *k.entry(record_key(pk, r)).or_insert(0) += 1;
    }
    k
}

/// Primary key fields by stream of a configured catalog (top-level fields; empty for
/// `activities`, which has none).
pub fn catalog_keys(catalog: &Value) -> BTreeMap<String, Vec<String>> {
    let mut keys = BTreeMap::new();
    for entry in catalog["streams"].as_array().into_iter().flatten() {
        let name = entry["stream"]["name"].as_str().unwrap_or_default().to_string();
        let pk: Vec<String> = entry["stream"]["source_defined_primary_key"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|path| path.get(0).and_then(Value::as_str).map(str::to_string))
            .collect();
        keys.insert(name, pk);
    }
    keys
}

/// The primary-key tail that names breakdowns (everything after the level's id).
fn breakdowns_of(pk: &[String]) -> Vec<String> {
    pk.iter()
        .filter(|f| !["date_start", "account_id", "campaign_id", "adset_id", "ad_id"].contains(&f.as_str()))
        .cloned()
        .collect()
}

/// A `custom_insights` entry, as far as the truth needs it.
#[derive(Clone, Debug, PartialEq)]
struct CustomTruth {
    stream: String,
    level: String,
}

/// What of a connector config shapes the records of a first sync.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncConfig {
    /// Bare account ids (`act_` stripped), as listed.
    account_ids: Vec<String>,
    start_date: Option<DateTime<Utc>>,
    custom: Vec<CustomTruth>,
}

/// `2024-01-31T00:00:00Z`, any RFC 3339 date-time, or a bare `2024-01-31` (as the connector's
/// `parse_date_time`).
fn parse_date_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// Airbyte's stream name of a custom insight: snake case of `"Custom" + name` (the CDK's rule,
/// as `CustomInsight::stream_name` in `src/config.rs`).
fn custom_stream_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in format!("Custom{}", name.trim()).chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn unmodelled(map: &Map<String, Value>, modelled: &[&str], what: &str) -> Result<()> {
    if let Some(k) = map.keys().find(|k| !modelled.contains(&k.as_str())) {
        bail!("{what}{k}: the ground truth does not model this option; remove it to check a sync against truth");
    }
    Ok(())
}

impl SyncConfig {
    /// Reads a connector config; fails on options whose effect the truth does not model.
    pub fn from_value(config: &Value) -> Result<SyncConfig> {
        let map = config.as_object().context("the config is not a JSON object")?;
        unmodelled(map, &MODELLED_OPTIONS, "")?;
        let listed: Vec<&Value> = match (map.get("account_ids"), map.get("account_id")) {
            (Some(Value::Array(ids)), _) => ids.iter().collect(),
            (None | Some(Value::Null), Some(id)) => vec![id],
            (None | Some(Value::Null), None) => Vec::new(),
            _ => bail!("account_ids: expected a list of ad account ids"),
        };
        let mut account_ids = Vec::new();
        for id in listed {
            let id = id.as_str().context("account_ids: every id must be a string")?;
            let id = id.trim().strip_prefix("act_").unwrap_or(id.trim()).to_string();
            if !account_ids.contains(&id) {
                account_ids.push(id);
            }
        }
        let start_date = match map.get("start_date") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str().and_then(parse_date_time).with_context(|| format!("start_date: {v} is not a date-time"))?,
            ),
        };
        let mut custom = Vec::new();
        for (i, item) in map.get("custom_insights").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let c = item.as_object().with_context(|| format!("custom_insights[{i}]: expected an object"))?;
            unmodelled(c, &MODELLED_CUSTOM_OPTIONS, &format!("custom_insights[{i}]."))?;
            if c.get("time_increment").is_some_and(|t| t.as_u64() != Some(1))
                || c.get("time_increment_period").is_some_and(|p| p.as_str() != Some("daily"))
            {
                bail!("custom_insights[{i}]: the ground truth models daily rows only (time_increment 1)");
            }
            let name = c["name"].as_str().with_context(|| format!("custom_insights[{i}].name: missing"))?;
            custom.push(CustomTruth {
                stream: custom_stream_name(name),
                level: c.get("level").and_then(Value::as_str).unwrap_or("ad").to_string(),
            });
        }
        Ok(SyncConfig { account_ids, start_date, custom })
    }

    /// The accounts read: those named, or with none named, those discovered (listed as active,
    /// and readable by the token).
    fn accounts(&self, truth: &Simulator) -> Vec<String> {
        if self.account_ids.is_empty() { truth.discoverable_account_ids() } else { self.account_ids.clone() }
    }

    /// Ground truth of `stream` (primary key `pk`) at `truth`'s clock, for a first sync of this
    /// config that started at `read_start_ms`.
    pub fn stream_keys(&self, truth: &Simulator, stream: &str, pk: &[String], read_start_ms: i64) -> Result<Keys> {
        let custom = self.custom.iter().find(|c| c.stream == stream);
        let q = if custom.is_some() || stream.starts_with("ads_insights") {
            self.insights_query(truth, pk, custom, read_start_ms)
        } else {
            if !ENTITY_STREAMS.contains(&stream) {
                bail!("{stream}: not a stream of this config");
            }
            // The connector filters `updated_time > start - 1 s` (and activities `since`) on a
            // first sync; images, videos, full-refresh streams and `ad_creatives_from_ads`
            // (filtered by a state cursor only) are not filtered.
            let filtered = matches!(stream, "campaigns" | "ad_sets" | "ads" | "activities");
            TruthQuery {
                stream: stream.to_string(),
                account_ids: self.accounts(truth),
                updated_since: if filtered { self.start_date.map(|d| d.timestamp() - 1) } else { None },
                ..TruthQuery::default()
            }
        };
        Ok(count_keys(pk, &truth.ground_truth(&q)))
    }

    /// The insights query of a built-in stream (level `ad`, every ad status) or of `custom`;
    /// the simulator knows one `insights` stream, shaped by level and breakdowns.
    fn insights_query(
        &self,
        truth: &Simulator,
        pk: &[String],
        custom: Option<&CustomTruth>,
        read_start_ms: i64,
    ) -> TruthQuery {
        let level = custom.map_or("ad", |c| c.level.as_str());
        let mut fields = vec!["account_id".to_string(), "impressions".to_string()];
        if let Some(id) = pk.iter().find(|f| ["campaign_id", "adset_id", "ad_id"].contains(&f.as_str())) {
            fields.push(id.clone());
        }
        let today = utc_date(read_start_ms);
        let earliest = today - chrono::Duration::days(RETENTION_DAYS - 1);
        let since = self
            .start_date
            .map_or(today - chrono::Duration::days(DEFAULT_HISTORY_DAYS), |d| d.date_naive())
            .max(earliest);
        TruthQuery {
            stream: "insights".into(),
            account_ids: self.accounts(truth),
            insights: Some(InsightsQuery {
                level: level.to_string(),
                breakdowns: breakdowns_of(pk),
                since,
                // Tomorrow in UTC: the simulator stops at each account's own today.
                until: utc_date(truth.now_ms()) + chrono::Duration::days(1),
                time_increment: 1,
                fields,
                ad_statuses: if custom.is_some() {
                    Vec::new()
                } else {
                    ALL_AD_STATUSES.iter().map(|s| s.to_string()).collect()
                },
                ..InsightsQuery::default()
            }),
            ..TruthQuery::default()
        }
    }
}

fn utc_date(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive()
}

/// Ground truth of every stream of a configured catalog at `truth`'s clock, for a first sync of
/// `config` that started at `read_start_ms`: each stream's keys, sorted, a key repeated as often
/// as truth holds it.
pub fn sync_truth(
    truth: &Simulator,
    config: &Value,
    catalog: &Value,
    read_start_ms: i64,
) -> Result<BTreeMap<String, Vec<String>>> {
    let sync = SyncConfig::from_value(config)?;
    let mut out = BTreeMap::new();
    for (stream, pk) in catalog_keys(catalog) {
        let keys = sync.stream_keys(truth, &stream, &pk, read_start_ms)?;
        let listed = keys.into_iter().flat_map(|(k, n)| std::iter::repeat_n(k, n)).collect();
        out.insert(stream, listed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_insight_streams_are_named_as_airbyte_names_them() {
        assert_eq!(custom_stream_name("MyInsight"), "custom_my_insight");
        assert_eq!(custom_stream_name("SoakCustom"), "custom_soak_custom");
    }

    #[test]
    fn options_the_truth_does_not_model_are_refused_by_name() {
        let base = json!({"account_ids": ["act_1"], "credentials": {"access_token": "t"}});
        assert_eq!(SyncConfig::from_value(&base).unwrap().account_ids, ["1"]);
        let mut c = base.clone();
        c["end_date"] = json!("2026-06-01");
        assert!(format!("{:#}", SyncConfig::from_value(&c).unwrap_err()).contains("end_date"));
        let mut c = base.clone();
        c["custom_insights"] = json!([{"name": "W", "time_increment": 7}]);
        assert!(SyncConfig::from_value(&c).is_err());
        let mut c = base;
        c["custom_insights"] = json!([{"name": "W", "action_breakdowns": ["action_type"]}]);
        assert!(format!("{:#}", SyncConfig::from_value(&c).unwrap_err()).contains("action_breakdowns"));
    }

    #[test]
    fn truth_of_a_catalog_lists_each_streams_keys() {
        let cfg = SimConfig::default();
        let sim = Simulator::new(cfg.clone());
        let ids = sim.account_ids();
        let config = json!({"account_ids": [ids[0]], "start_date": "2026-06-12T00:00:00Z"});
        let stream = |name: &str, pk: Value| json!({"stream": {"name": name, "source_defined_primary_key": pk}});
        let catalog = json!({"streams": [
            stream("campaigns", json!([["id"]])),
            stream("ads_insights", json!([["date_start"], ["account_id"], ["ad_id"]])),
        ]});
        let truth = sync_truth(&sim, &config, &catalog, sim.now_ms()).unwrap();
        let insights = &truth["ads_insights"];
        assert!(!insights.is_empty());
        assert!(insights.iter().all(|k| k.split('|').nth(1) == Some(ids[0].as_str())), "{insights:?}");
        assert!(insights.iter().all(|k| k.as_str() >= "2026-06-12"), "{insights:?}");
        assert!(truth.contains_key("campaigns"));
        let unknown = json!({"streams": [stream("nope", json!([["id"]]))]});
        assert!(sync_truth(&sim, &config, &unknown, sim.now_ms()).is_err());
    }
}
