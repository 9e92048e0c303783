//! The connection specification, field for field compatible with Airbyte's
//! `source-facebook-marketing` 6.x, plus the optional `api_version` override.

use crate::config::{DEFAULT_API_VERSION, valid_breakdowns, valid_insight_fields};
use crate::model::{ACTION_BREAKDOWNS, AD_STATUSES, ADSET_STATUSES, CAMPAIGN_STATUSES, DEFAULT_ACTION_BREAKDOWNS};
use serde_json::{Value, json};

const DATE_TIME_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$";

fn enum_array(title: &str, description: &str, values: &[&str], default: Value, order: u32) -> Value {
    json!({
        "title": title,
        "description": description,
        "type": "array",
        "order": order,
        "default": default,
        "items": {"title": "ValidEnums", "description": "An enumeration.", "enum": values},
    })
}

/// The `ConnectorSpecification` object.
pub fn spec() -> Value {
    let insight_fields = valid_insight_fields();
    let breakdowns = valid_breakdowns();
    let custom_insight = json!({
        "title": "InsightConfig",
        "description": "Config for custom insights",
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"title": "Name", "description": "The name value of insight", "type": "string"},
            "level": {"title": "Level", "description": "Chosen level for API", "default": "ad", "enum": ["ad", "adset", "campaign", "account"], "type": "string"},
            "fields": {"title": "Fields", "description": "A list of chosen fields for fields parameter", "default": [], "type": "array",
                "items": {"title": "ValidEnums", "description": "An enumeration.", "enum": insight_fields}},
            "breakdowns": {"title": "Breakdowns", "description": "A list of chosen breakdowns for breakdowns", "default": [], "type": "array",
                "items": {"title": "ValidBreakdowns", "description": "An enumeration.", "enum": breakdowns}},
            "action_breakdowns": {"title": "Action Breakdowns", "description": "A list of chosen action_breakdowns for action_breakdowns", "default": [], "type": "array",
                "items": {"title": "ValidActionBreakdowns", "description": "An enumeration.", "enum": ACTION_BREAKDOWNS}},
            "time_increment": {"title": "Time Increment", "description": "Time window in days by which to aggregate statistics. The sync will be chunked into N day intervals, where N is the number of days you specified.", "default": 1, "exclusiveMaximum": 90, "exclusiveMinimum": 0, "type": "integer"},
            "time_increment_period": {"title": "Time Increment Period", "description": "Calendar-aligned alternative to time_increment: daily, weekly (Monday to Sunday) or monthly.", "enum": ["daily", "weekly", "monthly"], "type": "string"},
            "start_date": {"title": "Start Date", "description": "The date from which you'd like to replicate data for this stream, in the format YYYY-MM-DDT00:00:00Z.", "pattern": DATE_TIME_PATTERN, "examples": ["2017-01-25T00:00:00Z"], "type": "string", "format": "date-time"},
            "end_date": {"title": "End Date", "description": "The date until which you'd like to replicate data for this stream, in the format YYYY-MM-DDT00:00:00Z. All data generated between the start date and this end date will be replicated. Not setting this option will result in always syncing the latest data.", "pattern": DATE_TIME_PATTERN, "examples": ["2017-01-26T00:00:00Z"], "type": "string", "format": "date-time"},
            "insights_lookback_window": {"title": "Custom Insights Lookback Window", "description": "The attribution window", "default": 28, "maximum": 28, "mininum": 1, "exclusiveMinimum": 0, "type": "integer"},
            "insights_job_timeout": {"title": "Custom Insights Job Timeout", "description": "The insights job timeout", "default": 60, "maximum": 60, "mininum": 10, "exclusiveMinimum": 0, "type": "integer"},
            "include_incrementality": {"title": "Include Incrementality", "description": "Add the incrementality attribution window to this stream's action metrics.", "default": false, "type": "boolean"},
            "include_engaged_view": {"title": "Include Engaged View", "description": "Add the 1d_ev (engaged-view) attribution window to this stream's action metrics.", "default": false, "type": "boolean"},
        }
    });
    json!({
        "documentationUrl": "https://docs.airbyte.com/integrations/sources/facebook-marketing",
        "changelogUrl": "https://docs.airbyte.com/integrations/sources/facebook-marketing",
        "supportsIncremental": true,
        "supported_destination_sync_modes": ["append"],
        "connectionSpecification": {
            "title": "Source Facebook Marketing",
            "description": "Meta Marketing API source: ad accounts, campaigns, ad sets, ads, creatives, activities, images, videos, custom conversions, custom audiences and insights.",
            "type": "object",
            "required": ["credentials"],
            "properties": {
                "account_ids": {
                    "title": "Ad Account ID(s)", "order": 0,
                    "description": "The Facebook Ad account ID(s) to pull data from. The Ad account ID number is in the account dropdown menu or in your browser's address bar of your Meta Ads Manager. Leave empty to read every active ad account the token reaches (listed through /me/adaccounts at each sync; an account the token can no longer read is skipped with a warning).",
                    "pattern_descriptor": "The Ad Account ID must be a number.",
                    "examples": ["111111111111111"], "type": "array", "uniqueItems": true,
                    "items": {"pattern": "^[0-9]+$", "type": "string"},
                },
                "access_token": {"title": "Access Token", "description": "The value of the generated access token. Legacy field, moved into credentials.", "airbyte_secret": true, "airbyte_hidden": true, "type": "string"},
                "credentials": {
                    "title": "Authentication", "description": "Credentials for connecting to the Facebook Marketing API", "type": "object",
                    "oneOf": [
                        {"title": "Authenticate via Facebook Marketing (Oauth)", "type": "object", "required": ["client_id", "client_secret"],
                         "properties": {
                            "auth_type": {"title": "Auth Type", "default": "Client", "const": "Client", "enum": ["Client"], "type": "string"},
                            "client_id": {"title": "Client ID", "description": "Client ID for the Facebook Marketing API", "airbyte_secret": true, "type": "string"},
                            "client_secret": {"title": "Client Secret", "description": "Client Secret for the Facebook Marketing API", "airbyte_secret": true, "type": "string"},
                            "access_token": {"title": "Access Token", "description": "The value of the generated access token.", "airbyte_secret": true, "type": "string"}}},
                        {"title": "Service Account Key Authentication", "type": "object", "required": ["access_token"],
                         "properties": {
                            "auth_type": {"title": "Auth Type", "default": "Service", "const": "Service", "enum": ["Service"], "type": "string"},
                            "access_token": {"title": "Access Token", "description": "The value of the generated access token.", "airbyte_secret": true, "type": "string"}}}
                    ]
                },
                "start_date": {"title": "Start Date", "order": 2, "description": "The date from which you'd like to replicate data for all incremental streams, in the format YYYY-MM-DDT00:00:00Z. If not set then all data will be replicated for usual streams and only last 2 years for insight streams.", "pattern": DATE_TIME_PATTERN, "examples": ["2017-01-25T00:00:00Z"], "type": "string", "format": "date-time"},
                "end_date": {"title": "End Date", "order": 3, "description": "The date until which you'd like to replicate data for all incremental streams, in the format YYYY-MM-DDT00:00:00Z. All data generated between the start date and this end date will be replicated. Not setting this option will result in always syncing the latest data.", "pattern": "^$|^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$", "examples": ["2017-01-26T00:00:00Z"], "type": "string", "format": "date-time"},
                "campaign_statuses": enum_array("Campaign Statuses", "Select the statuses you want to be loaded in the stream. If no specific statuses are selected, the API's default behavior applies, and some statuses may be filtered out.", CAMPAIGN_STATUSES, json!([]), 4),
                "adset_statuses": enum_array("AdSet Statuses", "Select the statuses you want to be loaded in the stream. If no specific statuses are selected, the API's default behavior applies, and some statuses may be filtered out.", ADSET_STATUSES, json!([]), 5),
                "ad_statuses": enum_array("Ad Statuses", "Select the statuses you want to be loaded in the stream. If no specific statuses are selected, the API's default behavior applies, and some statuses may be filtered out.", AD_STATUSES, json!([]), 6),
                "fetch_thumbnail_images": {"title": "Fetch Thumbnail Images from Ad Creative", "order": 7, "description": "Set to active if you want to fetch the thumbnail_url and store the result in thumbnail_data_url for each Ad Creative.", "default": false, "type": "boolean"},
                "default_ads_insights_action_breakdowns": enum_array("Default Ads Insights Action Breakdowns", "Action breakdowns for the built-in ads_insights stream. An empty list gives aggregates that match the Ads Manager UI.", ACTION_BREAKDOWNS, json!(DEFAULT_ACTION_BREAKDOWNS), 8),
                "custom_insights": {"title": "Custom Insights", "order": 9, "description": "A list which contains ad statistics entries, each entry must have a name and can contains fields, breakdowns or action_breakdowns. Click on \"add\" to fill this field.", "type": "array", "items": custom_insight},
                "page_size": {"title": "Page Size of Requests", "order": 10, "description": "Page size used when sending requests to Facebook API to specify number of records per page when response has pagination. Most users do not need to set this field unless they specifically need to tune the connector to address specific issues or use cases.", "default": 100, "exclusiveMinimum": 0, "type": "integer"},
                "insights_lookback_window": {"title": "Insights Lookback Window", "order": 11, "description": "The attribution window. Facebook freezes insight data 28 days after it was generated, which means that all data from the past 28 days may have changed since we last emitted it, so you can retrieve refreshed insights from the past by setting this parameter. If you set a custom lookback window value in Facebook account, please provide the same value here.", "default": 28, "maximum": 28, "mininum": 1, "exclusiveMinimum": 0, "type": "integer"},
                "insights_job_timeout": {"title": "Insights Job Timeout", "order": 12, "description": "Insights Job Timeout establishes the maximum amount of time (in minutes) of waiting for the report job to complete. When timeout is reached the job is considered failed and we are trying to request smaller amount of data by breaking the job to few smaller ones. If you definitely know that 60 minutes is not enough for your report to be processed then you can decrease the timeout value, so we start breaking job to smaller parts faster.", "default": 60, "maximum": 60, "mininum": 10, "exclusiveMinimum": 0, "type": "integer"},
                "include_incrementality": {"title": "Include Incrementality", "order": 13, "description": "Add the incrementality attribution window to the action metrics of every built-in insights stream.", "default": false, "type": "boolean"},
                "include_engaged_view": {"title": "Include Engaged View", "order": 14, "description": "Add the 1d_ev (engaged-view) attribution window to the action metrics of every built-in insights stream.", "default": false, "type": "boolean"},
                "action_breakdowns_allow_empty": {"title": "Action Breakdowns Allow Empty", "description": "Allows action_breakdowns to be an empty list", "default": true, "airbyte_hidden": true, "type": "boolean"},
                "client_id": {"title": "Client Id", "description": "The Client Id for your OAuth app", "airbyte_secret": true, "airbyte_hidden": true, "type": "string"},
                "client_secret": {"title": "Client Secret", "description": "The Client Secret for your OAuth app", "airbyte_secret": true, "airbyte_hidden": true, "type": "string"},
                "response_size_limit_mb": {"title": "Response Size Limit (MiB)", "order": 16, "description": "The largest listing or report page the connector takes from Graph, in MiB (default 64, far above any real page; at most 128, so that answers in flight and the one being read fit the connector's memory). A larger answer is that request's failure: the page size is halved and, with nothing left to halve, that account of that stream fails; the rest of the sync goes on.", "minimum": 1, "maximum": 128, "default": 64, "airbyte_hidden": true, "type": "integer"},
                "max_concurrent_requests": {"title": "Maximum Concurrent Requests", "order": 17, "description": "How many requests to the Graph API the connector keeps in flight at once (default 32, and never more than 4 for one ad account). Accounts and streams are read side by side within this bound; lower it if a proxy or firewall limits connections, set 1 to make one request at a time.", "minimum": 1, "maximum": 256, "default": 32, "airbyte_hidden": true, "type": "integer"},
                "max_duration_seconds": {"title": "Maximum Duration of One Read (seconds)", "order": 18, "description": "Optional time box for serverless and edge platforms whose invocations have a deadline. The read stops this many seconds after it began, at a consistent point: it emits a STATE for every stream that covers every record it emitted, logs 'time budget reached; resume with the last state' and ends as a success. The next read given that state goes on where this one stopped (report jobs still running are polled, not created again), and a chain of such reads yields the records and final state of one uninterrupted sync. Set it 10 to 20 seconds below the platform's limit. Empty: no time box.", "minimum": 1, "maximum": 604800, "airbyte_hidden": true, "type": "integer"},
                "api_version": {"title": "Graph API Version", "order": 15, "description": format!("The Graph Marketing API version to call, like {DEFAULT_API_VERSION} (the default). Change it only to move to a newer version before the connector does."), "pattern": "^$|^v[0-9]+\\.[0-9]+$", "default": DEFAULT_API_VERSION, "airbyte_hidden": true, "type": "string"},
            }
        },
        "advanced_auth": {
            "auth_flow_type": "oauth2.0",
            "predicate_key": ["credentials", "auth_type"],
            "predicate_value": "Client",
            "oauth_config_specification": {
                "complete_oauth_output_specification": {"type": "object", "properties": {"access_token": {"type": "string", "path_in_connector_config": ["credentials", "access_token"]}}},
                "complete_oauth_server_input_specification": {"type": "object", "properties": {"client_id": {"type": "string"}, "client_secret": {"type": "string"}}},
                "complete_oauth_server_output_specification": {"type": "object", "properties": {
                    "client_id": {"type": "string", "path_in_connector_config": ["credentials", "client_id"]},
                    "client_secret": {"type": "string", "path_in_connector_config": ["credentials", "client_secret"]}}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_and_secrets_match_airbyte() {
        let s = spec();
        let cs = &s["connectionSpecification"];
        // account_ids is optional, as in Airbyte's 6.2.0: without it the accounts are discovered.
        assert_eq!(cs["required"], json!(["credentials"]));
        assert_eq!(cs["properties"]["access_token"]["airbyte_secret"], true);
        assert_eq!(cs["properties"]["credentials"]["oneOf"][1]["properties"]["access_token"]["airbyte_secret"], true);
        assert_eq!(cs["properties"]["page_size"]["default"], 100);
    }

    #[test]
    fn breakdown_enum_has_no_dma_and_every_value_has_a_schema() {
        let s = spec();
        let enum_values =
            s["connectionSpecification"]["properties"]["custom_insights"]["items"]["properties"]["breakdowns"]["items"]
                ["enum"]
                .as_array()
                .unwrap()
                .clone();
        assert!(!enum_values.contains(&json!("dma")));
        assert!(enum_values.contains(&json!("comscore_market")));
        let props = crate::schema::properties("ads_insights_breakdowns");
        for v in enum_values {
            assert!(props.contains_key(v.as_str().unwrap()), "{v}");
        }
    }
}
