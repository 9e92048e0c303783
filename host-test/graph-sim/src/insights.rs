//! The insights engine: parameter validation, breakdown expansion, aggregation and row rendering.
//!
//! One function, [`run`], turns a validated [`Spec`] into the exact rows Graph would return. Both the
//! sync `GET /{obj}/insights` path and async report runs call it, and so does the ground-truth
//! oracle, which is why "truth equals what paging the job returns" holds by construction.
//! Metrics are a pure function of (seed, ad, day, breakdown tuple); see `metrics` for the cells.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value, json};

use crate::config::SimConfig;
use crate::errors::ApiError;
use crate::fields;
use crate::metrics::{ACTION_TYPES, ActionLabels, Cell, NW, WINDOWS, metric};
use crate::params::{Filter, Params, parse_fields, parse_filtering};
use crate::render::objective;
use crate::rng::{hash_str, mix, range, unit};
use crate::time::{DAY_MS, date_str, day_number, epoch_day, graph_time, local_date, parse_date};
use crate::world::{Kind, World};

/// 37 months expressed as the minimum number of days they can span (Graph's retention limit).
pub const RETENTION_DAYS: i64 = 1123;

/// Breakdowns the simulator can expand, with their value sets.
const BREAKDOWN_VALUES: &[(&str, &[&str])] = &[
    ("age", &["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]),
    ("gender", &["female", "male", "unknown"]),
    ("country", &["US", "GB", "DE", "JP", "BR"]),
    ("region", &["California", "Texas", "New York", "England", "Bavaria"]),
    ("comscore_market", &["New York, NY", "Los Angeles, CA", "Chicago, IL", "Unknown"]),
    ("publisher_platform", &["facebook", "instagram", "audience_network", "messenger"]),
    (
        "platform_position",
        &[
            "feed",
            "facebook_stories",
            "marketplace",
            "stream",
            "instagram_stories",
            "instagram_reels",
            "classic",
            "messenger_inbox",
        ],
    ),
    ("impression_device", &["iphone", "android_smartphone", "desktop", "ipad"]),
    ("device_platform", &["mobile_app", "mobile_web", "desktop"]),
    ("product_id", &["5983858725075630", "5983858725075631", "5983858725075632"]),
    ("hourly_stats_aggregated_by_advertiser_time_zone", HOURS),
    ("hourly_stats_aggregated_by_audience_time_zone", HOURS),
];

/// Hour buckets as Graph labels them.
const HOURS: &[&str] = &[
    "00:00:00 - 00:59:59",
    "01:00:00 - 01:59:59",
    "02:00:00 - 02:59:59",
    "03:00:00 - 03:59:59",
    "04:00:00 - 04:59:59",
    "05:00:00 - 05:59:59",
    "06:00:00 - 06:59:59",
    "07:00:00 - 07:59:59",
    "08:00:00 - 08:59:59",
    "09:00:00 - 09:59:59",
    "10:00:00 - 10:59:59",
    "11:00:00 - 11:59:59",
    "12:00:00 - 12:59:59",
    "13:00:00 - 13:59:59",
    "14:00:00 - 14:59:59",
    "15:00:00 - 15:59:59",
    "16:00:00 - 16:59:59",
    "17:00:00 - 17:59:59",
    "18:00:00 - 18:59:59",
    "19:00:00 - 19:59:59",
    "20:00:00 - 20:59:59",
    "21:00:00 - 21:59:59",
    "22:00:00 - 22:59:59",
    "23:00:00 - 23:59:59",
];

/// The publisher platform each placement belongs to (pairs `platform_position` with its platform).
fn position_platform(pos: &str) -> &'static str {
    match pos {
        "stream" | "instagram_stories" | "instagram_reels" => "instagram",
        "classic" => "audience_network",
        "messenger_inbox" => "messenger",
        _ => "facebook",
    }
}

/// Action breakdowns and their value sets (`action_type` is implicit in every entry).
const ACTION_BREAKDOWN_VALUES: &[(&str, &[&str])] = &[
    ("action_type", &[]),
    ("action_target_id", &["110000000000000", "110000000000001"]),
    ("action_destination", &["110000000000000", "110000000000001"]),
    ("action_device", &["desktop", "iphone", "android_smartphone", "other"]),
    ("action_reaction", &["like", "love", "haha"]),
    ("action_video_sound", &["sound_on", "sound_off"]),
    ("action_video_type", &["auto_played", "click_to_play"]),
    ("action_carousel_card_id", &["6200000000000001", "6200000000000002", "6200000000000003"]),
    ("action_carousel_card_name", &["Card 1", "Card 2", "Card 3"]),
    ("action_canvas_component_name", &["Header", "Footer"]),
];

/// Aggregation level of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// One row per account.
    Account,
    /// One row per campaign.
    Campaign,
    /// One row per ad set.
    AdSet,
    /// One row per ad.
    Ad,
}

impl Level {
    /// Graph's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Account => "account",
            Level::Campaign => "campaign",
            Level::AdSet => "adset",
            Level::Ad => "ad",
        }
    }

    /// Parses Graph's spelling.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "account" => Some(Level::Account),
            "campaign" => Some(Level::Campaign),
            "adset" => Some(Level::AdSet),
            "ad" => Some(Level::Ad),
            _ => None,
        }
    }
}

/// How days are bucketed into rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    /// Rolling buckets of N days from `since`.
    Days(u32),
    /// Calendar months.
    Monthly,
    /// One bucket for the whole range.
    AllDays,
}

/// A validated insights query.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Account the queried object belongs to.
    pub account: usize,
    /// The queried object (`None` = the whole account).
    pub object: Option<usize>,
    /// Aggregation level.
    pub level: Level,
    /// Requested fields (insight field names).
    pub fields: Vec<String>,
    /// Breakdowns, in request order.
    pub breakdowns: Vec<String>,
    /// Action breakdowns, in request order.
    pub action_breakdowns: Vec<String>,
    /// Requested attribution windows.
    pub windows: Vec<String>,
    /// First day, account time.
    pub since: NaiveDate,
    /// Last day, account time.
    pub until: NaiveDate,
    /// Bucketing.
    pub increment: Increment,
    /// `filtering` clauses.
    pub filters: Vec<Filter>,
}

impl Spec {
    /// Fields counted by the size guards (at least one).
    pub fn field_count(&self) -> u64 {
        self.fields.len().max(1) as u64
    }
}

fn must_be_one_of(param: &str, i: usize, allowed: &[&str]) -> ApiError {
    ApiError::invalid_param(format!("{param}[{i}] must be one of the following values: {}", allowed.join(", ")))
}

/// Validates insights parameters for `object` (or the account) at virtual time `now_ms`.
pub fn parse(
    world: &World,
    cfg: &SimConfig,
    account: usize,
    object: Option<usize>,
    params: &Params,
    now_ms: i64,
) -> Result<Spec, ApiError> {
    let default_level = match object.map(|o| world.objs[o].kind) {
        Some(Kind::Campaign) => Level::Campaign,
        Some(Kind::AdSet) => Level::AdSet,
        Some(Kind::Ad) => Level::Ad,
        _ => Level::Account,
    };
    let level = match params.get("level") {
        None => default_level,
        Some(l) => Level::parse(l.trim()).ok_or_else(|| {
            ApiError::invalid_param("level must be one of the following values: ad, adset, campaign, account")
        })?,
    };
    let known: Vec<&str> = [fields::INSIGHTS, fields::INSIGHTS_CUSTOM, fields::BREAKDOWN, fields::ACTION_BREAKDOWN]
        .iter()
        .flat_map(|l| l.iter().copied())
        .collect();
    let fields = match params.get("fields") {
        None => vec![String::from("impressions"), String::from("spend")],
        Some(raw) => {
            let specs = parse_fields(raw)?;
            for s in &specs {
                if !known.contains(&s.name.as_str()) {
                    return Err(ApiError::nonexisting_field(&s.name, "AdsInsights"));
                }
            }
            specs.into_iter().map(|s| s.name).collect()
        }
    };
    let breakdowns = params.list("breakdowns")?.unwrap_or_default();
    let names: Vec<&str> = BREAKDOWN_VALUES.iter().map(|(n, _)| *n).collect();
    for (i, b) in breakdowns.iter().enumerate() {
        if !names.contains(&b.as_str()) {
            return Err(must_be_one_of("breakdowns", i, &names));
        }
    }
    check_combination(&breakdowns)?;
    let action_breakdowns = params.list("action_breakdowns")?.unwrap_or_else(|| vec![String::from("action_type")]);
    let ab_names: Vec<&str> = ACTION_BREAKDOWN_VALUES.iter().map(|(n, _)| *n).collect();
    for (i, b) in action_breakdowns.iter().enumerate() {
        if !ab_names.contains(&b.as_str()) {
            return Err(must_be_one_of("action_breakdowns", i, &ab_names));
        }
    }
    let windows = params.list("action_attribution_windows")?.unwrap_or_default();
    let offset = world.accounts[account].offset_s;
    let today = local_date(now_ms, offset);
    let (since, until) = date_range(params, today)?;
    if day_number(since) < day_number(today) - RETENTION_DAYS {
        return Err(ApiError::beyond_37_months());
    }
    let increment = match params.get("time_increment").map(str::trim) {
        None | Some("all_days") => Increment::AllDays,
        Some("monthly") => Increment::Monthly,
        Some(n) => match n.parse::<u32>() {
            Ok(d @ 1..=90) => Increment::Days(d),
            _ => {
                return Err(ApiError::invalid_param(
                    "time_increment must be an integer between 1 and 90, monthly or all_days",
                ));
            }
        },
    };
    let filters = match params.get("filtering") {
        None => Vec::new(),
        Some(raw) => parse_filtering(raw)?,
    };
    for f in &filters {
        check_filter(f)?;
    }
    let _ = cfg;
    Ok(Spec {
        account,
        object,
        level,
        fields,
        breakdowns,
        action_breakdowns,
        windows,
        since,
        until,
        increment,
        filters,
    })
}

/// Rejects breakdown combinations Graph refuses (code 2 / 1504041).
fn check_combination(b: &[String]) -> Result<(), ApiError> {
    let has = |n: &str| b.iter().any(|x| x == n);
    if has("platform_position") && !has("publisher_platform") {
        return Err(ApiError::invalid_breakdowns("platform_position requires publisher_platform"));
    }
    if has("impression_device") && b.len() == 1 {
        return Err(ApiError::invalid_breakdowns("impression_device cannot be used alone"));
    }
    let hourly = b.iter().any(|x| x.starts_with("hourly_stats"));
    if hourly && b.len() > 1 {
        return Err(ApiError::invalid_breakdowns("hourly breakdowns cannot be combined with other breakdowns"));
    }
    Ok(())
}

fn check_filter(f: &Filter) -> Result<(), ApiError> {
    let (prefix, field) = f.split();
    let Some(prefix) = prefix else {
        return Err(ApiError::invalid_param(format!("Filtering field {} is invalid", f.field)));
    };
    let entity_ok = matches!(prefix, "ad" | "adset" | "campaign");
    let ok = entity_ok
        && match field {
            "effective_status" | "id" => matches!(f.op.as_str(), "IN" | "NOT_IN" | "EQUAL"),
            "impressions" | "spend" | "clicks" => {
                matches!(f.op.as_str(), "GREATER_THAN" | "GREATER_THAN_OR_EQUAL" | "LESS_THAN" | "EQUAL")
            }
            _ => false,
        };
    if ok { Ok(()) } else { Err(ApiError::filtering_unsupported(&f.field, &f.op)) }
}

fn date_range(params: &Params, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let bad = || ApiError::invalid_param("time_range must be a JSON object with since and until dates (YYYY-MM-DD)");
    let range_of = |v: &Value| -> Result<(NaiveDate, NaiveDate), ApiError> {
        let s = v.get("since").and_then(Value::as_str).and_then(parse_date).ok_or_else(bad)?;
        let u = v.get("until").and_then(Value::as_str).and_then(parse_date).ok_or_else(bad)?;
        Ok((s, u))
    };
    let (s, u) = if let Some(raw) = params.get("time_range") {
        range_of(&serde_json::from_str::<Value>(raw).map_err(|_| bad())?)?
    } else if let Some(raw) = params.get("time_ranges") {
        let v: Value = serde_json::from_str(raw).map_err(|_| bad())?;
        let first = v.as_array().and_then(|a| a.first()).ok_or_else(bad)?;
        range_of(first)?
    } else {
        let days = |n: i64| epoch_day(day_number(today) - n);
        match params.get("date_preset").unwrap_or("last_30d") {
            "today" => (today, today),
            "yesterday" => (days(1), days(1)),
            "last_3d" => (days(3), days(1)),
            "last_7d" => (days(7), days(1)),
            "last_14d" => (days(14), days(1)),
            "last_28d" => (days(28), days(1)),
            "last_30d" => (days(30), days(1)),
            "last_90d" => (days(90), days(1)),
            "maximum" | "data_maximum" => (days(RETENTION_DAYS), today),
            "this_month" => (today.with_day(1).unwrap_or(today), today),
            other => {
                return Err(ApiError::invalid_param(format!(
                    "date_preset must be one of the supported presets, got {other}"
                )));
            }
        }
    };
    if u < s {
        return Err(ApiError::invalid_param("time_range: since must be on or before until"));
    }
    Ok((s, u))
}

/// Every breakdown tuple, in a fixed order (placements only under their own platform).
pub fn breakdown_tuples(b: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for name in b {
        let vals = BREAKDOWN_VALUES.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(&[]);
        let mut next = Vec::new();
        for t in &out {
            for v in vals {
                let mut t2 = t.clone();
                t2.push((*v).to_string());
                next.push(t2);
            }
        }
        out = next;
    }
    let pp = b.iter().position(|x| x == "publisher_platform");
    let pos = b.iter().position(|x| x == "platform_position");
    if let (Some(pp), Some(pos)) = (pp, pos) {
        out.retain(|t| position_platform(&t[pos]) == t[pp]);
    }
    out
}

/// Action-breakdown keys (other than `action_type`) and their value tuples.
fn action_tuples(ab: &[String]) -> (Vec<String>, Vec<Vec<String>>) {
    let keys: Vec<String> = ab.iter().filter(|k| *k != "action_type").cloned().collect();
    let mut idx: Vec<Vec<usize>> = vec![Vec::new()];
    for k in &keys {
        let n = ACTION_BREAKDOWN_VALUES.iter().find(|(x, _)| x == k).map(|(_, v)| v.len()).unwrap_or(1).max(1);
        idx = idx.into_iter().flat_map(|t| (0..n).map(move |i| [t.clone(), vec![i]].concat())).collect();
    }
    // Paired dimensions move together: a target and its destination, a card id and its name.
    let paired = |a: &str, b: &str| (keys.iter().position(|k| k == a), keys.iter().position(|k| k == b));
    for (a, b) in [
        paired("action_target_id", "action_destination"),
        paired("action_carousel_card_id", "action_carousel_card_name"),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            idx.retain(|t| t[a] == t[b]);
        }
    }
    let tuples = idx
        .iter()
        .map(|t| {
            t.iter()
                .zip(keys.iter())
                .map(|(i, k)| {
                    let vals = ACTION_BREAKDOWN_VALUES.iter().find(|(x, _)| x == k).map(|(_, v)| *v).unwrap_or(&[]);
                    vals.get(*i).map(|s| (*s).to_string()).unwrap_or_default()
                })
                .collect()
        })
        .collect();
    (keys, tuples)
}

/// The base (unbroken-down) cell of an ad on a day, or `None` when it did not deliver.
fn base_cell(seed: u64, ad_h: u64, day: i64) -> Option<Cell> {
    let h = mix(seed, &[500, ad_h, day as u64]);
    // Each ad delivers on a fixed share of days between 35 % and 90 %.
    let share = 0.35 + 0.55 * unit(mix(seed, &[501, ad_h]));
    if unit(h) >= share {
        return None;
    }
    let impressions = range(mix(h, &[1]), 150, 6000);
    let ctr_bp = range(mix(h, &[2]), 40, 400); // clicks per 10 000 impressions
    let clicks = impressions * ctr_bp / 10_000;
    let cpm_cents = range(mix(h, &[3]), 200, 1500);
    let spend = impressions * cpm_cents / 1000;
    let reach = impressions * range(mix(h, &[4]), 60, 95) / 100;
    let link_clicks = clicks * 7 / 10;
    let plays = impressions * range(mix(h, &[5]), 5, 30) / 100;
    let mut c = Cell {
        impressions,
        clicks,
        spend,
        reach: reach.max(1),
        link_clicks,
        unique_clicks: clicks * 9 / 10,
        unique_link_clicks: link_clicks * 9 / 10,
        outbound: link_clicks * 8 / 10,
        video: [
            plays,
            plays * 7 / 10,
            plays / 2,
            plays * 3 / 10,
            plays / 5,
            plays / 6,
            plays / 4,
            plays / 8,
            plays * 8 / 10,
        ],
        ..Cell::default()
    };
    for (t, _) in ACTION_TYPES.iter().enumerate() {
        let base = match t {
            0 => link_clicks,
            1 => link_clicks * range(mix(h, &[6]), 40, 80) / 100,
            2 => clicks * range(mix(h, &[7]), 5, 20) / 100,
            3 => clicks * range(mix(h, &[8]), 1, 8) / 100,
            4 | 5 => clicks + plays / 3,
            _ => plays,
        };
        if base == 0 {
            continue;
        }
        let arr: [u64; NW] = [base * 7 / 10, base * 9 / 10, base, base / 10, base / 20];
        c.actions.insert((t, 0), arr);
        if t == 2 || t == 3 {
            let price = range(mix(h, &[9, t as u64]), 1500, 9000);
            c.values.insert((t, 0), arr.map(|x| x * price));
        }
    }
    Some(c)
}

fn tuple_weights(seed: u64, ad_h: u64, day: i64, tuples: &[Vec<String>]) -> Vec<u64> {
    tuples
        .iter()
        .map(|t| {
            let w = 1 + mix(seed, &[502, ad_h, day as u64, hash_str(&t.join("|"))]) % 9;
            // Hourly rows follow a day curve: few impressions at night.
            match t.first().and_then(|s| s.get(0..2)).and_then(|hh| hh.parse::<u64>().ok()) {
                Some(hour) if t.len() == 1 && t[0].contains(" - ") => w * if (7..23).contains(&hour) { 4 } else { 1 },
                _ => w,
            }
        })
        .collect()
}

/// Whether an ad passes the spec's filters (and the default level=ad visibility) at `t_s`.
fn ad_visible(world: &World, spec: &Spec, ad: usize, t_s: i64) -> bool {
    let o = &world.objs[ad];
    let mut status_filtered = false;
    for f in &spec.filters {
        let (prefix, field) = f.split();
        let target = match prefix {
            Some("campaign") => o.campaign.unwrap_or(ad),
            Some("adset") => o.adset.unwrap_or(ad),
            _ => ad,
        };
        match field {
            "effective_status" => {
                if prefix == Some("ad") {
                    status_filtered = true;
                }
                let s = world.effective_status(target, t_s);
                let vals = f.strings();
                let inside = vals.iter().any(|v| v == s);
                if (f.op == "NOT_IN") == inside {
                    return false;
                }
            }
            "id" => {
                let inside = f.strings().iter().any(|v| *v == world.objs[target].id);
                if (f.op == "NOT_IN") == inside {
                    return false;
                }
            }
            _ => {}
        }
    }
    let hidden_by_default = spec.level == Level::Ad && spec.object.is_none_or(|x| world.objs[x].kind != Kind::Ad);
    if !status_filtered && hidden_by_default {
        let s = world.effective_status(ad, t_s);
        if s == "DELETED" || s == "ARCHIVED" {
            return false;
        }
    }
    true
}

/// The ads a spec covers, in world order.
fn scoped_ads(world: &World, spec: &Spec) -> Vec<usize> {
    world
        .of_kind(spec.account, Kind::Ad)
        .iter()
        .copied()
        .filter(|&a| match spec.object {
            None => true,
            Some(x) => {
                let o = &world.objs[a];
                a == x || o.campaign == Some(x) || o.adset == Some(x)
            }
        })
        .collect()
}

fn bucket(spec: &Spec, day: i64) -> (i64, i64) {
    let s = day_number(spec.since);
    let u = day_number(spec.until);
    match spec.increment {
        Increment::AllDays => (s, u),
        Increment::Days(n) => {
            let start = s + (day - s) / i64::from(n) * i64::from(n);
            (start, (start + i64::from(n) - 1).min(u))
        }
        Increment::Monthly => {
            let d = epoch_day(day);
            let first = d.with_day(1).unwrap_or(d);
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .unwrap_or(first);
            (day_number(first).max(s), (day_number(next) - 1).min(u))
        }
    }
}

/// Runs a spec at virtual time `now_ms` and returns Graph's rows in Graph's order
/// (by date, then object, then breakdown tuple).
pub fn run(world: &World, cfg: &SimConfig, spec: &Spec, now_ms: i64) -> Vec<Value> {
    let t_s = now_ms.div_euclid(1000);
    let acc = &world.accounts[spec.account];
    let today = day_number(local_date(now_ms, acc.offset_s));
    let first = day_number(local_date(cfg.start_time_ms - i64::from(cfg.history_days) * DAY_MS, acc.offset_s));
    let tuples = breakdown_tuples(&spec.breakdowns);
    let (ab_keys, ab_tuples) = action_tuples(&spec.action_breakdowns);
    let mut groups: BTreeMap<(i64, usize, usize), (i64, Cell)> = BTreeMap::new();
    for ad in scoped_ads(world, spec) {
        if !ad_visible(world, spec, ad, t_s) {
            continue;
        }
        let o = &world.objs[ad];
        let created = day_number(local_date(o.created_s * 1000, acc.offset_s));
        let from = day_number(spec.since).max(first).max(created);
        let to = day_number(spec.until).min(today);
        let key_obj = match spec.level {
            Level::Account => 0,
            Level::Campaign => o.campaign.unwrap_or(ad),
            Level::AdSet => o.adset.unwrap_or(ad),
            Level::Ad => ad,
        };
        for day in from..=to {
            let Some(base) = base_cell(world.seed, o.h, day) else { continue };
            let cells =
                if tuples.len() == 1 { vec![base] } else { base.split(&tuple_weights(world.seed, o.h, day, &tuples)) };
            for (j, mut cell) in cells.into_iter().enumerate() {
                if cell.impressions == 0 {
                    continue;
                }
                if ab_tuples.len() > 1 {
                    cell.split_actions(|t| {
                        (0..ab_tuples.len()).map(|k| 1 + mix(world.seed, &[503, o.h, t as u64, k as u64]) % 5).collect()
                    });
                }
                let (b0, b1) = bucket(spec, day);
                let e = groups.entry((b0, key_obj, j)).or_insert_with(|| (b1, Cell::default()));
                e.1.add(&cell);
            }
        }
    }
    let windows: Vec<usize> = spec.windows.iter().filter_map(|w| WINDOWS.iter().position(|x| x == w)).collect();
    let labels = ActionLabels { keys: ab_keys, tuples: ab_tuples, windows };
    groups
        .into_iter()
        .map(|((b0, key_obj, j), (b1, cell))| render_row(world, spec, t_s, b0, b1, key_obj, &tuples[j], &cell, &labels))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn render_row(
    world: &World,
    spec: &Spec,
    t_s: i64,
    b0: i64,
    b1: i64,
    key_obj: usize,
    tuple: &[String],
    cell: &Cell,
    labels: &ActionLabels,
) -> Value {
    let acc = &world.accounts[spec.account];
    let (camp, adset, ad) = match spec.level {
        Level::Account => (None, None, None),
        Level::Campaign => (Some(key_obj), None, None),
        Level::AdSet => (world.objs[key_obj].campaign, Some(key_obj), None),
        Level::Ad => (world.objs[key_obj].campaign, world.objs[key_obj].adset, Some(key_obj)),
    };
    let id = |o: Option<usize>| o.map(|i| json!(world.objs[i].id));
    let name = |o: Option<usize>| o.map(|i| json!(world.state(i, t_s).name));
    let mut m = Map::new();
    for f in &spec.fields {
        let v = match f.as_str() {
            "account_id" => Some(json!(acc.id)),
            "account_name" => Some(json!(acc.name)),
            "account_currency" => Some(json!(acc.currency)),
            "campaign_id" => id(camp),
            "campaign_name" => name(camp),
            "adset_id" => id(adset),
            "adset_name" => name(adset),
            "ad_id" => id(ad),
            "ad_name" => name(ad),
            "objective" => camp.map(|c| json!(objective(world.objs[c].h))),
            "buying_type" => camp.map(|_| json!("AUCTION")),
            "optimization_goal" => adset.map(|_| json!("OFFSITE_CONVERSIONS")),
            "attribution_setting" => adset.map(|_| json!("7d_click_1d_view")),
            "quality_ranking" | "engagement_rate_ranking" | "conversion_rate_ranking" => ad.map(|_| json!("UNKNOWN")),
            "created_time" => ad.map(|a| json!(graph_time(world.objs[a].created_s, acc.offset_s)[..10].to_string())),
            "updated_time" => {
                ad.map(|a| json!(graph_time(world.state(a, t_s).updated_s, acc.offset_s)[..10].to_string()))
            }
            "date_start" | "date_stop" => None,
            other => metric(other, cell, labels),
        };
        if let Some(v) = v {
            m.insert(f.clone(), v);
        }
    }
    m.insert("date_start".into(), json!(date_str(epoch_day(b0))));
    m.insert("date_stop".into(), json!(date_str(epoch_day(b1))));
    for (k, v) in spec.breakdowns.iter().zip(tuple.iter()) {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}
