//! The connector config: Airbyte's legacy-form migrations (`migrate`), then validation of each
//! part (`validate`, on the field reader of `reader`), into a [`Config`].

mod migrate;
mod reader;
mod validate;

use crate::error::ConnectorError;
use crate::model::{
    ACTION_BREAKDOWNS, AD_STATUSES, ADSET_STATUSES, CAMPAIGN_STATUSES, DEFAULT_ACTION_BREAKDOWNS, Level, TimeIncrement,
};
use crate::time::Timestamp;
use chrono::{DateTime, Utc};
use migrate::migrate;
use reader::Obj;
pub use reader::parse_date_time;
use serde_json::Value;
use validate::{is_api_version, parse_account_ids, parse_custom_insights, parse_token};
pub use validate::{valid_breakdowns, valid_insight_fields};

/// v25.0: the Graph API version Airbyte's connector 6.1.9 uses; overridable with `api_version`.
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// The most `max_concurrent_requests` may ask for (256, shared with the hosts).
pub const MAX_CONCURRENT_REQUESTS_LIMIT: u32 = sfm_wire::limits::MAX_CONCURRENT_REQUESTS as u32;

/// 64 MiB: the default `response_size_limit_mb` (see `http::DEFAULT_MAX_RESPONSE_BYTES`).
pub const DEFAULT_RESPONSE_SIZE_LIMIT_MB: u32 = (crate::http::DEFAULT_MAX_RESPONSE_BYTES >> 20) as u32;

/// 128 MiB: the largest `response_size_limit_mb`. The guest's memory (512 MiB, the hosts'
/// default) holds the answers in flight (at most `api::client::IN_FLIGHT_BYTES`, 192 MiB), the
/// connector's own state, and what reading one answer takes beside its bytes: at most one more
/// copy of it and one object's tree (DESIGN.md, "Memory"). Past 128 MiB that no longer fits.
pub const MAX_RESPONSE_SIZE_LIMIT_MB: u32 = 128;

/// 7 days: the longest `max_duration_seconds`; a longer sync needs no time box.
pub const MAX_DURATION_SECONDS_LIMIT: u32 = 7 * 24 * 3600;

/// 100: Airbyte's default `page_size` for entity listings.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// 28 days: Meta's attribution data settles within 28 days, so that much is re-read.
pub const DEFAULT_LOOKBACK_DAYS: u32 = 28;

/// 60 minutes: Airbyte's default and maximum for an async report job.
pub const DEFAULT_JOB_TIMEOUT_MIN: u32 = 60;

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
    /// The accounts read: those the config names, or, when it names none, those discovered
    /// through the token (empty until the discovery is done; see [`Config::discovers_accounts`]).
    pub account_ids: Vec<crate::model::AccountId>,
    /// Whether the accounts are discovered (`account_ids` missing or empty), not named.
    pub discovers_accounts: bool,
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
    /// The most bytes any Graph answer may have.
    pub max_response_bytes: u64,
    /// The most requests in flight at once (`max_concurrent_requests`).
    pub max_concurrent_requests: usize,
    /// How long one read may take before it stops at a checkpoint (`max_duration_seconds`).
    pub max_duration: Option<std::time::Duration>,
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
        let discovers_accounts = account_ids.is_empty();
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
            discovers_accounts,
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
            max_response_bytes: u64::from(
                root.uint("response_size_limit_mb", 1, MAX_RESPONSE_SIZE_LIMIT_MB)?
                    .unwrap_or(DEFAULT_RESPONSE_SIZE_LIMIT_MB),
            ) << 20,
            max_concurrent_requests: root
                .uint("max_concurrent_requests", 1, MAX_CONCURRENT_REQUESTS_LIMIT)?
                .map_or(sfm_wire::limits::DEFAULT_CONCURRENT_REQUESTS, |n| n as usize),
            max_duration: root
                .uint("max_duration_seconds", 1, MAX_DURATION_SECONDS_LIMIT)?
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
        })
    }
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
    fn no_account_ids_means_the_accounts_are_discovered() {
        for v in [
            json!({"credentials": {"access_token": "t"}}),
            json!({"account_ids": [], "credentials": {"access_token": "t"}}),
            json!({"account_ids": null, "credentials": {"access_token": "t"}}),
        ] {
            let c = parse(v).unwrap();
            assert!(c.discovers_accounts && c.account_ids.is_empty());
        }
        assert!(!parse(minimal()).unwrap().discovers_accounts);
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
            assert!(e.message().contains(needle), "{} does not mention {needle}", e.message());
        }
    }
}
