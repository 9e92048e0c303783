//! The ground-truth oracle: the exact records a correct sync must emit, in Graph's raw shapes.
//!
//! It calls the same listing, rendering and insights functions as the request path, at the
//! simulator's current virtual time, so it cannot drift from what the API serves. Entity records
//! carry every field the simulator populates for the stream (callers project to the fields they
//! requested). Insight rows are exactly what paging a report run created now would return.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::edges::{ListQuery, activities_between, list_objects};
use crate::insights;
use crate::params::Params;
use crate::render::{render_account, render_activity, render_object};
use crate::sim::Simulator;
use crate::world::Kind;

/// The entity streams whose truth [`Simulator::ground_truth`] knows, in Airbyte's names.
pub const ENTITY_STREAMS: [&str; 11] = [
    "ad_account",
    "campaigns",
    "ad_sets",
    "ads",
    "ad_creatives",
    "ad_creatives_from_ads",
    "activities",
    "images",
    "videos",
    "custom_conversions",
    "custom_audiences",
];

/// The built-in insights streams, in Airbyte's names (their truth is an [`InsightsQuery`] with
/// the stream's breakdowns).
pub const INSIGHT_STREAMS: [&str; 20] = [
    "ads_insights",
    "ads_insights_age_and_gender",
    "ads_insights_country",
    "ads_insights_region",
    "ads_insights_comscore_market",
    "ads_insights_platform_and_device",
    "ads_insights_action_type",
    "ads_insights_action_carousel_card",
    "ads_insights_action_conversion_device",
    "ads_insights_action_product_id",
    "ads_insights_action_reaction",
    "ads_insights_action_video_sound",
    "ads_insights_action_video_type",
    "ads_insights_delivery_device",
    "ads_insights_delivery_platform",
    "ads_insights_delivery_platform_and_device_platform",
    "ads_insights_demographics_age",
    "ads_insights_demographics_country",
    "ads_insights_demographics_comscore_market_region",
    "ads_insights_demographics_gender",
];

/// What to compute the truth of.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TruthQuery {
    /// Airbyte stream name: `ad_account`, `campaigns`, `ad_sets`, `ads`, `ad_creatives`,
    /// `ad_creatives_from_ads`, `activities`, `images`, `videos`, `custom_conversions`,
    /// `custom_audiences` or `insights`. `ad_creatives_from_ads` applies `statuses` and
    /// `updated_since` to the ads, and yields each of their creatives once per account, with the
    /// `updated_time` of the first ad (in listing order) that names it.
    pub stream: String,
    /// Bare account ids, in output order; empty means every account.
    pub account_ids: Vec<String>,
    /// `effective_status IN` filter; empty means Graph's default visibility.
    pub statuses: Vec<String>,
    /// Keep records whose cursor (`updated_time`, or `event_time` for activities) is strictly
    /// greater than this, epoch s.
    pub updated_since: Option<i64>,
    /// Insights parameters (stream `insights` only).
    pub insights: Option<InsightsQuery>,
}

/// Parameters of an insights truth query (mirrors an async report run at `level`).
#[derive(Debug, Clone, PartialEq)]
pub struct InsightsQuery {
    /// `account`, `campaign`, `adset` or `ad`.
    pub level: String,
    /// Breakdowns.
    pub breakdowns: Vec<String>,
    /// Action breakdowns (empty means Graph's default `action_type`).
    pub action_breakdowns: Vec<String>,
    /// First day (account time).
    pub since: NaiveDate,
    /// Last day (account time).
    pub until: NaiveDate,
    /// Days per row, 1..=90; 0 means `all_days`.
    pub time_increment: u32,
    /// Requested insight fields.
    pub fields: Vec<String>,
    /// `ad.effective_status IN` filter; empty means none (deleted/archived ads hidden at level=ad).
    pub ad_statuses: Vec<String>,
    /// `action_attribution_windows`; empty means none requested.
    pub action_attribution_windows: Vec<String>,
}

impl Default for InsightsQuery {
    fn default() -> Self {
        let d = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
        InsightsQuery {
            level: String::from("ad"),
            breakdowns: Vec::new(),
            action_breakdowns: Vec::new(),
            since: d,
            until: d,
            time_increment: 1,
            fields: Vec::new(),
            ad_statuses: Vec::new(),
            action_attribution_windows: Vec::new(),
        }
    }
}

impl InsightsQuery {
    /// The request parameters an async job with these settings would carry.
    pub fn to_params(&self) -> Params {
        let mut p = Params::default();
        let mut push = |k: &str, v: String| p.pairs.push((k.to_string(), v));
        push("level", self.level.clone());
        push("fields", json!(self.fields).to_string());
        if !self.breakdowns.is_empty() {
            push("breakdowns", json!(self.breakdowns).to_string());
        }
        if !self.action_breakdowns.is_empty() {
            push("action_breakdowns", json!(self.action_breakdowns).to_string());
        }
        if !self.action_attribution_windows.is_empty() {
            push("action_attribution_windows", json!(self.action_attribution_windows).to_string());
        }
        push("time_range", json!({"since": self.since.to_string(), "until": self.until.to_string()}).to_string());
        push(
            "time_increment",
            if self.time_increment == 0 { "all_days".into() } else { self.time_increment.to_string() },
        );
        if !self.ad_statuses.is_empty() {
            push(
                "filtering",
                json!([{"field": "ad.effective_status", "operator": "IN", "value": self.ad_statuses}]).to_string(),
            );
        }
        p
    }
}

impl Simulator {
    /// The records a correct sync of `q` must emit at the current virtual time.
    /// Unknown streams, accounts or invalid insights parameters yield no records.
    pub fn ground_truth(&self, q: &TruthQuery) -> Vec<Value> {
        let t_s = self.now_ms.div_euclid(1000);
        let accounts: Vec<usize> = if q.account_ids.is_empty() {
            (0..self.world.accounts.len()).collect()
        } else {
            q.account_ids.iter().filter_map(|id| self.world.account_index(id)).collect()
        };
        let w = &self.world;
        let mut out = Vec::new();
        for a in accounts {
            let kind = match q.stream.as_str() {
                "ad_account" => {
                    out.push(Value::Object(render_account(w, a, t_s)));
                    continue;
                }
                "activities" => {
                    let since = q.updated_since.map(|s| s + 1);
                    for i in activities_between(w, a, since, None, t_s) {
                        out.push(Value::Object(render_activity(w, a, &w.accounts[a].activities[i])));
                    }
                    continue;
                }
                "insights" => {
                    let Some(iq) = &q.insights else { continue };
                    if let Ok(spec) = insights::parse(w, &self.cfg, a, None, &iq.to_params(), self.now_ms) {
                        out.extend(insights::run(w, &self.cfg, &spec, self.now_ms));
                    }
                    continue;
                }
                "ad_creatives_from_ads" => {
                    let lq = ListQuery {
                        statuses: q.statuses.clone(),
                        updated_after: q.updated_since,
                        ..ListQuery::default()
                    };
                    let mut seen = std::collections::BTreeSet::new();
                    for ad in list_objects(w, a, Kind::Ad, &lq, t_s) {
                        let Some(c) = w.objs[ad].link.filter(|c| seen.insert(*c)) else { continue };
                        let mut creative = render_object(w, c, t_s);
                        let updated = render_object(w, ad, t_s).remove("updated_time").unwrap_or(Value::Null);
                        creative.insert("updated_time".into(), updated);
                        out.push(Value::Object(creative));
                    }
                    continue;
                }
                "campaigns" => Kind::Campaign,
                "ad_sets" => Kind::AdSet,
                "ads" => Kind::Ad,
                "ad_creatives" => Kind::Creative,
                "images" => Kind::Image,
                "videos" => Kind::Video,
                "custom_conversions" => Kind::CustomConversion,
                "custom_audiences" => Kind::CustomAudience,
                _ => continue,
            };
            let lq = ListQuery { statuses: q.statuses.clone(), updated_after: q.updated_since, ..ListQuery::default() };
            for i in list_objects(w, a, kind, &lq, t_s) {
                out.push(Value::Object(render_object(w, i, t_s)));
            }
        }
        out
    }
}
