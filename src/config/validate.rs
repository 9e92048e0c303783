//! Validation of each part of the config, with messages that name the field and say what to do.

use super::CustomInsight;
use super::reader::{Obj, kind_of};
use crate::error::ConnectorError;
use crate::model::AccountId;
use crate::model::{
    ACTION_BREAKDOWNS, BUILTIN_INSIGHTS, ENTITY_STREAMS, Level, NEVER_REQUESTED_INSIGHT_FIELDS, OBJECT_BREAKDOWNS,
    TimeIncrement, UNSUPPORTED_CUSTOM_FIELDS,
};
use crate::schema;
use serde_json::Value;

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

pub(super) fn is_api_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let mut parts = rest.split('.');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

/// The accounts the config names; none (the key missing, null or an empty list) means the
/// accounts are discovered through the token.
pub(super) fn parse_account_ids(root: &Obj) -> Result<Vec<AccountId>, ConnectorError> {
    let ids = match root.get("account_ids") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(_) => root.string_list("account_ids")?,
    };
    let mut out: Vec<AccountId> = Vec::with_capacity(ids.len());
    for (i, raw) in ids.iter().enumerate() {
        let id = raw.trim();
        let id = id.strip_prefix("act_").unwrap_or(id);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::config(format!(
                "account_ids[{i}]: '{raw}' is not an ad account id; use the number shown in Ads Manager, e.g. 1234567890, or leave account_ids empty to read every active account the token reaches"
            )));
        }
        if !out.iter().any(|o| o == id) {
            out.push(AccountId::new(id));
        }
    }
    Ok(out)
}

pub(super) fn parse_token(root: &Obj) -> Result<String, ConnectorError> {
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

pub(super) fn parse_custom_insights(root: &Obj) -> Result<Vec<CustomInsight>, ConnectorError> {
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
