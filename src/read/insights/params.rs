//! What every report job of one insights stream shares: the level, breakdowns, windows, fields
//! and filters of its requests, and the rules that turn its rows into records.

use super::job::{JobSpec, Purpose};
use crate::catalog::SyncMode;
use crate::commands::graph_url;
use crate::config::Config;
use crate::http::Request;
use crate::model::{AD_STATUSES, Level, OBJECT_BREAKDOWNS, TimeIncrement};
use crate::read::fields::{FieldSet, Refusals};
use crate::read::transcode::{RowRules, row_record};
use crate::schema::Properties;
use crate::streams::InsightStream;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// The attribution windows of every insights stream.
pub const DEFAULT_WINDOWS: &[&str] = &["1d_click", "7d_click", "28d_click", "1d_view"];

/// What every job of the stream shares.
#[derive(Clone, Debug)]
pub struct Params {
    pub name: String,
    pub level: Level,
    pub breakdowns: Vec<String>,
    /// The breakdowns that report an object (their `<name>_id` joins the key).
    pub object_breakdowns: Vec<String>,
    pub windows: Vec<String>,
    pub increment: TimeIncrement,
    pub filtering: Option<String>,
    pub pk: Vec<String>,
    pub props: Properties,
    /// Fields requested for rows (primary-key fields included), and those Graph refused.
    pub fields: FieldSet,
    /// What Graph refused in this sync beyond fields, and what a refusal drops (the action
    /// breakdowns requested now are its).
    pub refusals: Refusals,
    pub lookback_days: u32,
    pub job_timeout: Duration,
    pub custom: bool,
    pub wants_objective_results: bool,
    pub incremental: bool,
    /// The stream's own date range, if the config sets one.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

fn json_list(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

impl Params {
    pub fn new(def: &InsightStream, sync_mode: SyncMode, selected_fields: &[String], config: &Config) -> Params {
        let props = def.properties();
        let custom = def.custom.as_ref();
        let fields = FieldSet::insights(def, selected_fields, &props);
        let mut windows: Vec<String> = DEFAULT_WINDOWS.iter().map(|s| s.to_string()).collect();
        let (incrementality, engaged) = match custom {
            Some(c) => (c.include_incrementality, c.include_engaged_view),
            None => (config.include_incrementality, config.include_engaged_view),
        };
        if incrementality {
            windows.push("incrementality".into());
        }
        if engaged {
            windows.push("1d_ev".into());
        }
        let filtering = def
            .status_filtered
            .then(|| json!([{"field": "ad.effective_status", "operator": "IN", "value": AD_STATUSES}]).to_string());
        let lookback_days = custom.and_then(|c| c.insights_lookback_window).unwrap_or(config.insights_lookback_window);
        let timeout_min = custom.and_then(|c| c.insights_job_timeout).unwrap_or(config.insights_job_timeout);
        Params {
            name: def.name.clone(),
            level: def.level,
            breakdowns: def.breakdowns.clone(),
            object_breakdowns: def
                .breakdowns
                .iter()
                .filter(|b| OBJECT_BREAKDOWNS.contains(&b.as_str()))
                .cloned()
                .collect(),
            windows,
            increment: def.time_increment,
            filtering,
            pk: def.primary_key(),
            props,
            wants_objective_results: fields.contains("objective_results"),
            fields,
            refusals: Refusals::insights(
                &def.name,
                custom.map(|c| c.name.as_str()),
                &def.breakdowns,
                &def.action_breakdowns,
            ),
            lookback_days,
            job_timeout: Duration::from_secs(u64::from(timeout_min) * 60),
            custom: custom.is_some(),
            incremental: sync_mode == SyncMode::Incremental,
            start: custom.and_then(|c| c.start_date).or(config.start_date).map(|d| d.date_naive()),
            end: custom.and_then(|c| c.end_date).or(config.end_date).map(|d| d.date_naive()),
        }
    }

    /// The rules rows of `account_id` are turned into records by.
    pub fn row_rules<'a>(&'a self, account_id: &'a str) -> RowRules<'a> {
        RowRules {
            props: &self.props,
            required: &self.breakdowns,
            object_breakdowns: &self.object_breakdowns,
            account_id,
            rename_results: self.custom && self.wants_objective_results,
        }
    }

    /// Turns a result row into a record; `None` drops it (a breakdown key is missing).
    pub fn record(&self, row: Value, account_id: &str) -> Option<Map<String, Value>> {
        row_record(row, &self.row_rules(account_id))
    }

    /// The primary key of a record as one string.
    pub fn key(&self, row: &Map<String, Value>) -> String {
        let parts: Vec<String> = self.pk.iter().map(|k| row.get(k).map(Value::to_string).unwrap_or_default()).collect();
        parts.join("\u{1f}")
    }

    /// Whether a job asks for two or more fields outside the primary key, so that halving its
    /// fields leaves something on each side.
    pub fn splittable_fields(&self, spec: &JobSpec) -> bool {
        spec.fields.iter().filter(|f| !self.pk.contains(f)).count() > 1
    }

    /// The `POST <object>/insights` that creates a job.
    pub fn create_request(&self, spec: &JobSpec, config: &Config) -> Request {
        let mut form: Vec<(&str, String)> = Vec::new();
        let range = json!({"since": spec.since.to_string(), "until": spec.until.to_string()}).to_string();
        match &spec.purpose {
            Purpose::ChildIds { child, .. } => {
                form.push(("level", child.as_str().to_string()));
                form.push(("fields", json_list(&spec.fields)));
                form.push(("time_increment", "all_days".into()));
            }
            Purpose::Rows { .. } => {
                form.push(("level", self.level.as_str().to_string()));
                form.push(("fields", json_list(&spec.fields)));
                form.push(("time_increment", increment_param(self.increment)));
                if !self.breakdowns.is_empty() {
                    form.push(("breakdowns", json_list(&self.breakdowns)));
                }
                form.push(("action_breakdowns", json_list(self.refusals.action_breakdowns())));
                form.push(("action_attribution_windows", json_list(&self.windows)));
            }
        }
        form.push(("time_range", range));
        if let Some(f) = &self.filtering {
            form.push(("filtering", f.clone()));
        }
        let url = graph_url(&config.api_version, &format!("{}/insights", spec.object_id));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Request::post_form(url, &pairs)
    }
}

fn increment_param(inc: TimeIncrement) -> String {
    match inc {
        TimeIncrement::Days(n) => n.to_string(),
        TimeIncrement::Weekly => "7".into(),
        TimeIncrement::Monthly => "monthly".into(),
    }
}
