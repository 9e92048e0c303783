//! Airbyte's runtime config migrations, applied before validation so that every legacy form
//! Airbyte's connector accepts is accepted here.

use crate::model::{AD_STATUSES, ADSET_STATUSES, CAMPAIGN_STATUSES};
use serde_json::{Map, Value};

/// Airbyte's runtime migrations: `account_id` -> `account_ids`, `include_deleted` -> every
/// status, top-level secrets -> `credentials`, and no `action_report_time` in custom insights.
pub(super) fn migrate(map: &mut Map<String, Value>) {
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
