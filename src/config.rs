//! The connector config: parsing, Airbyte's legacy-form migrations, and validation with
//! messages that name the field and say what to do.

use crate::error::ConnectorError;
use crate::schema;
use crate::streams::{BUILTIN_INSIGHTS, DEFAULT_ACTION_BREAKDOWNS, ENTITY_STREAMS, OBJECT_BREAKDOWNS, TimeIncrement};
use crate::time::Timestamp;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// v25.0: the Graph API version Airbyte's connector 6.1.9 uses; overridable with `api_version`.
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// 100: Airbyte's default `page_size` for entity listings.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// 28 days: Meta's attribution data settles within 28 days, so that much is re-read.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 28;

/// 60 minutes: Airbyte's default and maximum for an async report job.
pub const DEFAULT_JOB_TIMEOUT_MIN: u32 = 60;

pub const CAMPAIGN_STATUSES: &[&str] = &["ACTIVE", "ARCHIVED", "DELETED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"];
pub const ADSET_STATUSES: &[&str] =
    &["ACTIVE", "ARCHIVED", "CAMPAIGN_PAUSED", "DELETED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"];
pub const AD_STATUSES: &[&str] = &[
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

/// The action breakdowns the spec offers.
pub const ACTION_BREAKDOWNS: &[&str] = &[
    "action_canvas_component_name",
    "action_carousel_card_id",
    "action_carousel_card_name",
    "action_destination",
    "action_device",
    "action_reaction",
    "action_target_id",
    "action_type",
    "action_video_sound",
    "action_video_type",
    "conversion_destination",
    "is_business_ai_assisted",
    "matched_persona_id",
    "matched_persona_name",
    "signal_source_bucket",
    "standard_event_content_type",
];

/// Fields Meta refuses in custom insights (Airbyte rejects them too).
pub const UNSUPPORTED_CUSTOM_FIELDS: &[&str] = &["unique_conversions", "unique_ctr", "unique_clicks"];

/// Fields never requested from insights: `wish_bid` corrupts `spend`.
pub const NEVER_REQUESTED_INSIGHT_FIELDS: &[&str] = &["wish_bid"];

/// The level of an insights report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Account,
    Campaign,
    AdSet,
    Ad,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Account => "account",
            Level::Campaign => "campaign",
            Level::AdSet => "adset",
            Level::Ad => "ad",
        }
    }

    /// The row field naming this level's object; none for account level.
    pub fn id_field(self) -> Option<&'static str> {
        match self {
            Level::Account => None,
            Level::Campaign => Some("campaign_id"),
            Level::AdSet => Some("adset_id"),
            Level::Ad => Some("ad_id"),
        }
    }

    /// The next level down, used to split a report that is too large.
    pub fn child(self) -> Option<Level> {
        match self {
            Level::Account => Some(Level::Campaign),
            Level::Campaign => Some(Level::AdSet),
            Level::AdSet => Some(Level::Ad),
            Level::Ad => None,
        }
    }

    fn parse(s: &str) -> Option<Level> {
        match s {
            "account" => Some(Level::Account),
            "campaign" => Some(Level::Campaign),
            "adset" => Some(Level::AdSet),
            "ad" => Some(Level::Ad),
            _ => None,
        }
    }
}

/// One entry of `custom_insights`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomInsight {
    pub name: String,
    pub level: Level,
    pub fields: Vec<String>,
    pub breakdowns: Vec<String>,
    pub action_breakdowns: Vec<String>,
    pub time_increment: TimeIncrement,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub insights_lookback_window: Option<u32>,
    pub insights_job_timeout: Option<u32>,
    pub include_incrementality: bool,
    pub include_engaged_view: bool,
}

impl CustomInsight {
    /// Airbyte's stream name: snake case of `"Custom" + name` (`MyInsight` -> `custom_my_insight`).
    pub fn stream_name(&self) -> String {
        camel_to_snake(&format!("Custom{}", self.name))
    }
}

/// Inserts `_` before every uppercase letter but the first, then lowercases (the CDK's rule).
pub fn camel_to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// A validated config.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub account_ids: Vec<String>,
    pub access_token: String,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub campaign_statuses: Vec<String>,
    pub adset_statuses: Vec<String>,
    pub ad_statuses: Vec<String>,
    pub fetch_thumbnail_images: bool,
    pub default_ads_insights_action_breakdowns: Vec<String>,
    pub custom_insights: Vec<CustomInsight>,
    pub page_size: u32,
    pub insights_lookback_window: u32,
    pub insights_job_timeout: u32,
    pub include_incrementality: bool,
    pub include_engaged_view: bool,
    pub action_breakdowns_allow_empty: bool,
    pub api_version: String,
}

/// Insight field names a custom insight may request.
pub fn valid_insight_fields() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = schema::properties("ads_insights").keys().map(String::as_str).collect();
    out.extend(schema::properties("ads_insights_custom_fields").keys().map(String::as_str));
    out.retain(|f| !UNSUPPORTED_CUSTOM_FIELDS.contains(f) && !NEVER_REQUESTED_INSIGHT_FIELDS.contains(f));
    out.sort_unstable();
    out.dedup();
    out
}

/// Breakdown names the spec offers: those with a schema entry, so discovery never fails on one.
pub fn valid_breakdowns() -> Vec<&'static str> {
    schema::properties("ads_insights_breakdowns")
        .keys()
        .map(String::as_str)
        .filter(|b| !(b.ends_with("_asset_id") && OBJECT_BREAKDOWNS.contains(&b.trim_end_matches("_id"))))
        .collect()
}

/// A JSON object and the path that led to it, for messages that name the field.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn field(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The value at `key`, treating `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => {
                Err(ConnectorError::config(format!("{}: expected a string, got {}", self.field(key), kind_of(other))))
            }
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ConnectorError::config(format!(
                "{}: expected true or false, got {}",
                self.field(key),
                kind_of(other)
            ))),
        }
    }

    /// A whole number in `min..=max`.
    fn uint(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ConnectorError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let n = v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
        match n {
            Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(Some(n as u32)),
            _ => Err(ConnectorError::config(format!(
                "{}: expected a whole number from {min} to {max}, got {v}",
                self.field(key)
            ))),
        }
    }

    fn string_list(&self, key: &str) -> Result<Vec<String>, ConnectorError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ConnectorError::config(format!(
                        "{}[{i}]: expected a string, got {}",
                        self.field(key),
                        kind_of(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(ConnectorError::config(format!(
                "{}: expected a list of strings, got {}",
                self.field(key),
                kind_of(other)
            ))),
        }
    }

    /// A list whose every item is one of `allowed`, deduplicated in order.
    fn enum_list(
        &self,
        key: &str,
        allowed: &[&str],
        hint: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut out: Vec<String> = Vec::new();
        for (i, item) in self.string_list(key)?.into_iter().enumerate() {
            if !allowed.contains(&item.as_str()) {
                let extra = hint(&item).unwrap_or_else(|| format!("valid values are: {}", preview(allowed)));
                return Err(ConnectorError::config(format!(
                    "{}[{i}]: '{item}' is not supported; {extra}",
                    self.field(key)
                )));
            }
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn date_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ConnectorError> {
        match self.string(key)? {
            None | Some("") => Ok(None),
            Some(s) => parse_date_time(s).map(Some).ok_or_else(|| {
                ConnectorError::config(format!(
                    "{}: '{s}' is not a date-time; write it as YYYY-MM-DDTHH:MM:SSZ, e.g. 2024-01-31T00:00:00Z",
                    self.field(key)
                ))
            }),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn preview(allowed: &[&str]) -> String {
    if allowed.len() <= 16 {
        allowed.join(", ")
    } else {
        format!("{}, ... ({} in all; see the spec)", allowed[..8].join(", "), allowed.len())
    }
}

/// Accepts `2024-01-31T00:00:00Z`, any RFC 3339 date-time, and a bare `2024-01-31`.
pub fn parse_date_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

impl Config {
    /// Parses a config document (text) and validates it at time `now`.
    pub fn parse(text: &str, now: Timestamp) -> Result<Config, ConnectorError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ConnectorError::config(format!("config: not valid JSON ({e}); pass the config as a JSON object"))
        })?;
        Config::from_value(value, now)
    }

    /// Migrates Airbyte's legacy forms, then validates.
    pub fn from_value(value: Value, now: Timestamp) -> Result<Config, ConnectorError> {
        let Value::Object(mut map) = value else {
            return Err(ConnectorError::config("config: expected a JSON object with account_ids and credentials"));
        };
        migrate(&mut map);
        let root = Obj { map: &map, path: String::new() };

        let account_ids = parse_account_ids(&root)?;
        let access_token = parse_token(&root)?;
        let start_date = root.date_time("start_date")?;
        let end_date = root.date_time("end_date")?;
        let now_dt = now.to_datetime();
        if let Some(s) = start_date
            && s > now_dt
        {
            return Err(ConnectorError::config(format!(
                "start_date: {} is in the future; use a date on or before today",
                s.format("%Y-%m-%dT%H:%M:%SZ")
            )));
        }
        if let Some(e) = end_date
            && e > now_dt + chrono::Duration::days(1)
        {
            return Err(ConnectorError::config(format!(
                "end_date: {} is in the future; leave it empty to read up to today",
                e.format("%Y-%m-%dT%H:%M:%SZ")
            )));
        }
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            return Err(ConnectorError::config("end_date: must be on or after start_date"));
        }
        let no_hint = |_: &str| None;
        let campaign_statuses = root.enum_list("campaign_statuses", CAMPAIGN_STATUSES, &no_hint)?;
        let adset_statuses = root.enum_list("adset_statuses", ADSET_STATUSES, &no_hint)?;
        let ad_statuses = root.enum_list("ad_statuses", AD_STATUSES, &no_hint)?;
        let default_ads_insights_action_breakdowns = if root.map.contains_key("default_ads_insights_action_breakdowns")
        {
            root.enum_list("default_ads_insights_action_breakdowns", ACTION_BREAKDOWNS, &no_hint)?
        } else {
            DEFAULT_ACTION_BREAKDOWNS.iter().map(|s| s.to_string()).collect()
        };
        let page_size = root.uint("page_size", 1, 10_000)?.unwrap_or(DEFAULT_PAGE_SIZE);
        let insights_lookback_window = root.uint("insights_lookback_window", 1, 28)?.unwrap_or(DEFAULT_LOOKBACK_DAYS);
        let insights_job_timeout = root.uint("insights_job_timeout", 1, 60)?.unwrap_or(DEFAULT_JOB_TIMEOUT_MIN);
        let api_version = match root.string("api_version")? {
            None | Some("") => DEFAULT_API_VERSION.to_string(),
            Some(v) if is_api_version(v) => v.to_string(),
            Some(v) => {
                return Err(ConnectorError::config(format!(
                    "api_version: '{v}' is not a Graph API version; write it like {DEFAULT_API_VERSION}"
                )));
            }
        };
        let custom_insights = parse_custom_insights(&root)?;
        Ok(Config {
            account_ids,
            access_token,
            start_date,
            end_date,
            campaign_statuses,
            adset_statuses,
            ad_statuses,
            fetch_thumbnail_images: root.bool("fetch_thumbnail_images", false)?,
            default_ads_insights_action_breakdowns,
            custom_insights,
            page_size,
            insights_lookback_window,
            insights_job_timeout,
            include_incrementality: root.bool("include_incrementality", false)?,
            include_engaged_view: root.bool("include_engaged_view", false)?,
            // Airbyte treats a missing key as false (its spec default of true applies only in the UI).
            action_breakdowns_allow_empty: root.bool("action_breakdowns_allow_empty", false)?,
            api_version,
        })
    }
}

fn is_api_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let mut parts = rest.split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

/// Airbyte's runtime migrations: `account_id` -> `account_ids`, `include_deleted` -> every
/// status, top-level secrets -> `credentials`, and no `action_report_time` in custom insights.
fn migrate(map: &mut Map<String, Value>) {
    if !map.contains_key("account_ids")
        && let Some(Value::String(id)) = map.get("account_id")
    {
        let id = id.clone();
        map.insert("account_ids".into(), Value::Array(vec![Value::String(id)]));
    }
    if map.get("include_deleted") == Some(&Value::Bool(true)) && !map.contains_key("ad_statuses") {
        for (key, all) in
            [("campaign_statuses", CAMPAIGN_STATUSES), ("adset_statuses", ADSET_STATUSES), ("ad_statuses", AD_STATUSES)]
        {
            map.insert(key.into(), Value::Array(all.iter().map(|s| Value::from(*s)).collect()));
        }
    }
    let has_credentials_token = map
        .get("credentials")
        .and_then(|c| c.get("access_token"))
        .is_some_and(|t| t.as_str().is_some_and(|s| !s.is_empty()));
    if !has_credentials_token && let Some(token) = map.get("access_token").cloned() {
        let mut creds = match map.get("credentials") {
            Some(Value::Object(c)) => c.clone(),
            _ => Map::new(),
        };
        let client = map.contains_key("client_id") || creds.contains_key("client_id");
        creds.entry("auth_type").or_insert_with(|| Value::from(if client { "Client" } else { "Service" }));
        for key in ["client_id", "client_secret"] {
            if let Some(v) = map.get(key) {
                creds.entry(key).or_insert_with(|| v.clone());
            }
        }
        creds.insert("access_token".into(), token);
        map.insert("credentials".into(), Value::Object(creds));
    }
    if let Some(Value::Array(items)) = map.get_mut("custom_insights") {
        for item in items.iter_mut() {
            if let Value::Object(o) = item {
                o.remove("action_report_time");
            }
        }
    }
}

fn parse_account_ids(root: &Obj) -> Result<Vec<String>, ConnectorError> {
    let ids = match root.get("account_ids") {
        None => {
            return Err(ConnectorError::config(
                "account_ids: missing; list the numeric ad account ids to read, e.g. [\"1234567890\"]",
            ));
        }
        Some(_) => root.string_list("account_ids")?,
    };
    if ids.is_empty() {
        return Err(ConnectorError::config("account_ids: empty; list at least one numeric ad account id"));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for (i, raw) in ids.iter().enumerate() {
        let id = raw.trim();
        let id = id.strip_prefix("act_").unwrap_or(id);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::config(format!(
                "account_ids[{i}]: '{raw}' is not an ad account id; use the number shown in Ads Manager, e.g. 1234567890"
            )));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

fn parse_token(root: &Obj) -> Result<String, ConnectorError> {
    let Some(creds) = root.get("credentials") else {
        return Err(ConnectorError::config(
            "credentials: missing; set credentials.access_token to a Marketing API access token with ads_read",
        ));
    };
    let Value::Object(map) = creds else {
        return Err(ConnectorError::config("credentials: expected an object with auth_type and access_token"));
    };
    let creds = Obj { map, path: "credentials".into() };
    match creds.string("auth_type")? {
        None | Some("Service") | Some("Client") => {}
        Some(other) => {
            return Err(ConnectorError::config(format!(
                "credentials.auth_type: '{other}' is not supported; use Service or Client"
            )));
        }
    }
    match creds.string("access_token")? {
        Some(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => Err(ConnectorError::config(
            "credentials.access_token: missing; generate a token with the ads_read permission and set it here",
        )),
    }
}

fn parse_custom_insights(root: &Obj) -> Result<Vec<CustomInsight>, ConnectorError> {
    let items = match root.get("custom_insights") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConnectorError::config(format!(
                "custom_insights: expected a list of objects, got {}",
                kind_of(other)
            )));
        }
    };
    let fields = valid_insight_fields();
    let breakdowns = valid_breakdowns();
    let mut out: Vec<CustomInsight> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("custom_insights[{i}]");
        let Value::Object(map) = item else {
            return Err(ConnectorError::config(format!("{path}: expected an object with at least a name")));
        };
        let o = Obj { map, path };
        let name = match o.string("name")? {
            Some(n) if !n.trim().is_empty() => n.trim().to_string(),
            _ => {
                return Err(ConnectorError::config(format!(
                    "{}: missing; give the custom insight a name",
                    o.field("name")
                )));
            }
        };
        let level = match o.string("level")? {
            None => Level::Ad,
            Some(l) => Level::parse(l).ok_or_else(|| {
                ConnectorError::config(format!(
                    "{}: '{l}' is not a level; use ad, adset, campaign or account",
                    o.field("level")
                ))
            })?,
        };
        let field_hint = |f: &str| {
            UNSUPPORTED_CUSTOM_FIELDS
                .contains(&f)
                .then(|| "Meta does not allow this field in custom insights; remove it".to_string())
        };
        let c_fields = o.enum_list("fields", &fields, &field_hint)?;
        let breakdown_hint =
            |b: &str| (b == "dma").then(|| "Meta retired dma on 2026-06-22; use comscore_market instead".to_string());
        let c_breakdowns = o.enum_list("breakdowns", &breakdowns, &breakdown_hint)?;
        let no_hint = |_: &str| None;
        let c_action_breakdowns = o.enum_list("action_breakdowns", ACTION_BREAKDOWNS, &no_hint)?;
        let increment = o.uint("time_increment", 1, 89)?;
        let period = o.string("time_increment_period")?;
        let time_increment = match (increment, period) {
            (Some(n), Some(_)) if n != 1 => {
                return Err(ConnectorError::config(format!(
                    "{}: set either time_increment or time_increment_period, not both",
                    o.field("time_increment_period")
                )));
            }
            (_, Some("daily")) => TimeIncrement::Days(1),
            (_, Some("weekly")) => TimeIncrement::Weekly,
            (_, Some("monthly")) => TimeIncrement::Monthly,
            (_, Some(p)) => {
                return Err(ConnectorError::config(format!(
                    "{}: '{p}' is not a period; use daily, weekly or monthly",
                    o.field("time_increment_period")
                )));
            }
            (n, None) => TimeIncrement::Days(n.unwrap_or(1)),
        };
        let start_date = o.date_time("start_date")?;
        let end_date = o.date_time("end_date")?;
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            return Err(ConnectorError::config(format!("{}: must be on or after start_date", o.field("end_date"))));
        }
        let c = CustomInsight {
            name,
            level,
            fields: c_fields,
            breakdowns: c_breakdowns,
            action_breakdowns: c_action_breakdowns,
            time_increment,
            start_date,
            end_date,
            insights_lookback_window: o.uint("insights_lookback_window", 0, 28)?.filter(|n| *n > 0),
            insights_job_timeout: o.uint("insights_job_timeout", 0, 60)?.filter(|n| *n > 0),
            include_incrementality: o.bool("include_incrementality", false)?,
            include_engaged_view: o.bool("include_engaged_view", false)?,
        };
        let stream = c.stream_name();
        let clashes_builtin =
            ENTITY_STREAMS.iter().any(|e| e.name == stream) || BUILTIN_INSIGHTS.iter().any(|b| b.name == stream);
        if clashes_builtin || out.iter().any(|other| other.stream_name() == stream) {
            return Err(ConnectorError::config(format!(
                "{}: '{}' makes the stream name '{stream}', which another stream already has; rename it",
                o.field("name"),
                c.name
            )));
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::from_datetime(parse_date_time("2026-06-15T10:00:00Z").unwrap())
    }

    fn parse(v: Value) -> Result<Config, ConnectorError> {
        Config::from_value(v, now())
    }

    fn minimal() -> Value {
        json!({"account_ids": ["111"], "credentials": {"auth_type": "Service", "access_token": "tok"}})
    }

    #[test]
    fn minimal_config_gets_airbyte_defaults() {
        let c = parse(minimal()).unwrap();
        assert_eq!(c.page_size, 100);
        assert_eq!(c.insights_lookback_window, 28);
        assert_eq!(c.insights_job_timeout, 60);
        assert_eq!(c.default_ads_insights_action_breakdowns, DEFAULT_ACTION_BREAKDOWNS);
        assert!(!c.action_breakdowns_allow_empty);
        assert_eq!(c.api_version, "v25.0");
    }

    #[test]
    fn legacy_account_id_and_top_level_token_are_migrated() {
        let c = parse(json!({"account_id": "222", "access_token": "legacy"})).unwrap();
        assert_eq!(c.account_ids, vec!["222"]);
        assert_eq!(c.access_token, "legacy");
    }

    #[test]
    fn include_deleted_selects_every_status() {
        let mut v = minimal();
        v["include_deleted"] = json!(true);
        let c = parse(v).unwrap();
        assert_eq!(c.ad_statuses.len(), 12);
        assert_eq!(c.campaign_statuses.len(), 6);
    }

    #[test]
    fn act_prefix_is_stripped_and_duplicates_dropped() {
        let mut v = minimal();
        v["account_ids"] = json!(["act_111", "111", "222"]);
        assert_eq!(parse(v).unwrap().account_ids, vec!["111", "222"]);
    }

    #[test]
    fn custom_insight_stream_names_follow_airbyte() {
        assert_eq!(camel_to_snake("CustomMyInsight"), "custom_my_insight");
        assert_eq!(camel_to_snake("Customtest"), "customtest");
        assert_eq!(camel_to_snake("Custommy_insight"), "custommy_insight");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"account_ids": ["12a"], "credentials": {"access_token": "t"}}), "account_ids[0]"),
            (json!({"credentials": {"access_token": "t"}}), "account_ids"),
            (json!({"account_ids": ["1"]}), "credentials"),
            (json!({"account_ids": ["1"], "credentials": {"access_token": ""}}), "credentials.access_token"),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "start_date": "2024-13-01"}),
                "start_date",
            ),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "start_date": "2030-01-01T00:00:00Z"}),
                "start_date",
            ),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "start_date": "2025-01-02T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}),
                "end_date",
            ),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "ad_statuses": ["NOPE"]}),
                "ad_statuses[0]",
            ),
            (json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "page_size": 0}), "page_size"),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "insights_lookback_window": 29}),
                "insights_lookback_window",
            ),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "custom_insights": [{"name": "x", "fields": ["nope"]}]}),
                "custom_insights[0].fields[0]",
            ),
            (
                json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "custom_insights": [{"name": "x", "breakdowns": ["dma"]}]}),
                "comscore_market",
            ),
        ];
        for (v, needle) in cases {
            let e = parse(v.clone()).expect_err(&v.to_string());
            assert!(e.message.contains(needle), "{} does not mention {needle}", e.message);
        }
    }
}
