//! What the fuzz targets share: fixed inputs (the instant, configs, catalogs), generators of
//! Graph-shaped data from fuzz bytes, and [`FuzzIo`], an [`Io`] that answers every fetch from
//! the fuzz input so the real [`Driver`] runs a machine against an adversarial Graph API.
//!
//! Generators draw from an [`Unstructured`] and never fail: once the input runs out they yield
//! the first choice of every table, so a short input is still a complete, replayable run.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Value, json};
use source_facebook_marketing::catalog::full_catalog;
use source_facebook_marketing::commands::GRAPH_ORIGIN;
use source_facebook_marketing::config::Config;
use source_facebook_marketing::driver::{BatchLimit, Completion, Driver, Io, Machine, TimeoutReason};
use source_facebook_marketing::http::{FetchError, Method, Request, RequestId, Response, split_query};
use source_facebook_marketing::time::Timestamp;
use std::sync::LazyLock;
use std::time::Duration;

/// 2024-06-15T12:00:00Z: every target runs at this instant, so a finding replays exactly.
pub const NOW: Timestamp = Timestamp::from_millis(1_718_452_800_000);

/// The two ad accounts of every fixed config.
pub const ACCOUNTS: [&str; 2] = ["111", "222"];

/// 2000: enough fetches and sleeps for several streams over two accounts, few enough that one
/// execution stays in the milliseconds. Past it every fetch is refused by the "host".
pub const MAX_ACTIONS: usize = 2000;

/// 5000: driver batches per execution; a machine still talking after that many is cut off.
pub const MAX_BATCHES: usize = 5000;

/// How many variants [`config_json`] knows.
pub const CONFIG_VARIANTS: u8 = 3;

/// A valid config with both accounts. Variant 0 reads four days of insights, small pages and
/// thumbnails; 1 adds a weekly campaign-level custom insight; 2 reads half a year with default
/// timeouts, deleted objects and incrementality.
pub fn config_json(variant: u8) -> Value {
    let base = json!({
        "account_ids": ACCOUNTS,
        "credentials": {"auth_type": "Service", "access_token": "EAAfuzztoken"},
    });
    let extra = match variant % CONFIG_VARIANTS {
        0 => json!({
            "start_date": "2024-06-12T00:00:00Z",
            "page_size": 5,
            "insights_lookback_window": 1,
            "insights_job_timeout": 1,
            "fetch_thumbnail_images": true,
        }),
        1 => json!({
            "start_date": "2024-06-01T00:00:00Z",
            "end_date": "2024-06-14T00:00:00Z",
            "insights_job_timeout": 2,
            "action_breakdowns_allow_empty": true,
            "custom_insights": [{
                "name": "FuzzWeekly",
                "level": "campaign",
                "fields": ["spend", "impressions"],
                "breakdowns": ["age"],
                "action_breakdowns": [],
                "time_increment_period": "weekly",
                "insights_lookback_window": 7,
            }],
        }),
        _ => json!({
            "start_date": "2024-01-01T00:00:00Z",
            "include_deleted": true,
            "include_incrementality": true,
        }),
    };
    let (Value::Object(mut b), Value::Object(e)) = (base, extra) else { unreachable!("both are object literals") };
    b.extend(e);
    Value::Object(b)
}

/// The streams the machine targets select: entity streams of each kind, then insights.
pub const STREAMS: &[&str] = &["ad_account", "campaigns", "ads", "ad_creatives", "ads_insights", "custom_fuzz_weekly"];

/// The catalog entries of [`STREAMS`] each config variant offers, as text, in four forms each:
/// index `2 * full_refresh + narrow`. Built once, since a full catalog takes milliseconds; the
/// parser reads only the property names of a stream's schema, so each property's own schema is
/// left out. A narrow entry selects every third field only (`id` and cursors included or not).
static ENTRIES: LazyLock<Vec<Vec<[String; 4]>>> = LazyLock::new(|| {
    (0..CONFIG_VARIANTS)
        .map(|v| {
            let Ok(cfg) = Config::from_value(config_json(v), NOW) else { return Vec::new() };
            let cat = full_catalog(&cfg);
            let offered = cat["streams"].as_array().cloned().unwrap_or_default();
            STREAMS
                .iter()
                .filter_map(|name| offered.iter().find(|s| s["stream"]["name"] == *name).cloned())
                .map(|mut entry| {
                    if let Some(props) = entry["stream"]["json_schema"]["properties"].as_object_mut() {
                        props.values_mut().for_each(|p| *p = json!({}));
                    }
                    std::array::from_fn(|form| {
                        let mut e = entry.clone();
                        if form & 2 != 0 {
                            e["sync_mode"] = json!("full_refresh");
                        }
                        if form & 1 != 0
                            && let Some(props) = e["stream"]["json_schema"]["properties"].as_object_mut()
                        {
                            let keep: Vec<String> = props.keys().step_by(3).cloned().collect();
                            props.retain(|k, _| keep.contains(k));
                        }
                        e.to_string()
                    })
                })
                .collect()
        })
        .collect()
});

/// A configured catalog of [`STREAMS`] (those config `variant` offers), rotated by `rotate` so
/// any stream can come first. Bit `i` of `full_refresh_mask` turns stream `i` to full refresh;
/// bit `i` of `narrow_mask` selects only a third of its fields.
pub fn catalog_text(variant: u8, rotate: u8, full_refresh_mask: u8, narrow_mask: u8) -> String {
    let entries = &ENTRIES[usize::from(variant % CONFIG_VARIANTS)];
    let n = entries.len().max(1);
    let list: Vec<&str> = (0..entries.len())
        .map(|i| {
            let form = 2 * usize::from(full_refresh_mask >> i & 1) + usize::from(narrow_mask >> i & 1);
            entries[(i + usize::from(rotate)) % n][form].as_str()
        })
        .collect();
    format!(r#"{{"streams":[{}]}}"#, list.join(","))
}

// ---------------------------------------------------------------------------------------------
// Small draws that never fail.

pub fn byte(u: &mut Unstructured) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

pub fn flag(u: &mut Unstructured) -> bool {
    byte(u) & 1 == 1
}

/// True one time in `n`.
pub fn one_in(u: &mut Unstructured, n: u8) -> bool {
    byte(u).is_multiple_of(n)
}

/// One of `items` (the first once the input is exhausted).
pub fn pick<T: Copy>(u: &mut Unstructured, items: &[T]) -> T {
    u.choose(items).copied().unwrap_or(items[0])
}

/// A count in `0..=max`.
pub fn count(u: &mut Unstructured, max: u8) -> usize {
    usize::from(byte(u) % (max + 1))
}

/// A short string straight from the input.
pub fn short_string(u: &mut Unstructured) -> String {
    let n = count(u, 24);
    let bytes = u.bytes(n.min(u.len())).unwrap_or_default();
    String::from_utf8_lossy(bytes).into_owned()
}

/// Either a table entry or, one time in four, a short string from the input.
pub fn string_from(u: &mut Unstructured, table: &[&str]) -> String {
    if byte(u) % 4 == 3 { short_string(u) } else { pick(u, table).to_string() }
}

// ---------------------------------------------------------------------------------------------
// Tables of values Graph sends, and of values it should not but might.

/// Numbers as JSON tokens: typical percentages, limits, huge and negative values, and numbers
/// sent as strings (which the parsers accept), including ones Rust parses to infinity or NaN.
#[rustfmt::skip]
pub const NUMBER_TOKENS: &[&str] = &[
    "0", "12", "50", "84.9", "85", "90", "95", "99", "100", "150", "-1", "0.5", "3600", "86400",
    "1e9", "1e20", "1e308", "-1e308", "18446744073709551615", "9223372036854775807",
    "\"28\"", "\"96\"", "\" 90 \"", "\"inf\"", "\"-inf\"", "\"NaN\"", "\"1e400\"", "\"abc\"", "\"\"",
    "null", "true", "[]", "{}",
];

pub const DATES: &[&str] = &[
    "2024-06-14T10:00:00+0000",
    "2024-06-13T00:00:00-0700",
    "2024-06-15T11:59:59Z",
    "2024-06-14",
    "2024-06-12",
    "2024-06-01",
    "2024-01-01",
    "2021-01-01",
    "2024-06-14t10:00:00 0000",
    "2024-06-14T10:00:00.123456789+1400",
    "2024-02-30",
    "9999-12-31T23:59:59+0000",
    "+262142-12-31",
    "-262143-01-01",
    "-0001-01-01T00:00:00+0000",
    "1970-01-01",
    "",
    "garbage",
];

const IDS: &[&str] = &["1", "2", "3", "120200000000001", "act_111", "", "0"];

const STATUSES: &[u16] = &[200, 200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503, 0, 99, 999];

#[rustfmt::skip]
const GRAPH_CODES: &[i64] = &[
    1, 2, 4, 10, 17, 32, 100, 102, 190, 200, 230, 270, 294, 341, 368, 613, 2500, 2601, 2635, 2642,
    3018, 80000, 80004, 80014, -3, 0, i64::MAX, i64::MIN,
];

const GRAPH_SUBCODES: &[i64] = &[33, 99, 460, 463, 467, 1487534, 1504018, 1504045, 1815694, 2446079, -1];

const GRAPH_MESSAGES: &[&str] = &[
    "Please reduce the amount of data you're asking for, then retry your request",
    "An unknown error occurred",
    "(#17) User request limit reached",
    "Invalid OAuth access token.",
    "Service temporarily unavailable",
    "(#100) Tried accessing nonexisting field (owner)",
    "",
];

/// Weighted towards completion, so reads get past report jobs to their results.
const ASYNC_STATUSES: &[&str] = &[
    "Job Completed",
    "Job Completed",
    "Job Completed",
    "Job Running",
    "Job Failed",
    "Job Skipped",
    "Job Not Started",
    "",
];

const HEADER_NAMES: &[&str] = &[
    "x-app-usage",
    "x-ad-account-usage",
    "x-business-use-case-usage",
    "x-fb-ads-insights-throttle",
    "retry-after",
    "content-type",
    "X-App-Usage",
];

/// A number token, or one time in eight a short string from the input spliced in raw.
pub fn number_token(u: &mut Unstructured) -> String {
    if byte(u) % 8 == 7 { short_string(u) } else { pick(u, NUMBER_TOKENS).to_string() }
}

pub fn number_value(u: &mut Unstructured) -> Value {
    serde_json::from_str(pick(u, NUMBER_TOKENS)).unwrap_or(Value::Null)
}

/// A JSON value of bounded size: scalars from the tables, arrays and objects with table keys.
pub fn json_value(u: &mut Unstructured, depth: u8) -> Value {
    const KEYS: &[&str] = &[
        "id",
        "data",
        "paging",
        "next",
        "error",
        "code",
        "async_status",
        "async_percent_completion",
        "date_start",
        "updated_time",
        "value",
        "action_type",
        "name",
        "body",
    ];
    match byte(u) % if depth == 0 { 5 } else { 7 } {
        0 => Value::Null,
        1 => Value::Bool(flag(u)),
        2 => number_value(u),
        3 => Value::String(string_from(u, DATES)),
        4 => Value::String(string_from(u, IDS)),
        5 => Value::Array((0..count(u, 4)).map(|_| json_value(u, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..count(u, 4) {
                let k = string_from(u, KEYS);
                m.insert(k, json_value(u, depth - 1));
            }
            Value::Object(m)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Headers and bodies.

/// One usage or throttle header: a template with number tokens spliced in raw (so the value may
/// not even be JSON), or an arbitrary value under a known name.
pub fn usage_header(u: &mut Unstructured) -> (String, String) {
    let name = pick(u, HEADER_NAMES);
    let value = match byte(u) % 6 {
        0 => format!(
            r#"{{"call_count":{},"total_time":{},"total_cputime":{}}}"#,
            number_token(u),
            number_token(u),
            number_token(u)
        ),
        1 => format!(
            r#"{{"acc_id_util_pct":{},"reset_time_duration":{},"ads_api_access_tier":"standard_access"}}"#,
            number_token(u),
            number_token(u)
        ),
        2 => format!(
            r#"{{"111":[{{"type":"ads_insights","call_count":{},"total_cputime":{},"total_time":{},"estimated_time_to_regain_access":{}}}]}}"#,
            number_token(u),
            number_token(u),
            number_token(u),
            number_token(u)
        ),
        3 => format!(r#"{{"app_id_util_pct":{},"acc_id_util_pct":{}}}"#, number_token(u), number_token(u)),
        4 => json_value(u, 2).to_string(),
        _ => short_string(u),
    };
    // The template decides the shape; the name decides which parser reads it.
    (name.to_string(), value)
}

pub fn headers(u: &mut Unstructured) -> Vec<(String, String)> {
    (0..count(u, 3)).map(|_| usage_header(u)).collect()
}

/// A Graph error body `{"error": {...}}`, fields sometimes missing or of the wrong type.
pub fn graph_error_body(u: &mut Unstructured) -> Value {
    let mut e = Map::new();
    let code = pick(u, GRAPH_CODES);
    match byte(u) % 6 {
        0 => {}
        1 => {
            e.insert("code".into(), json!(code.to_string()));
        }
        2 => {
            e.insert("code".into(), number_value(u));
        }
        _ => {
            e.insert("code".into(), json!(code));
        }
    }
    if flag(u) {
        e.insert("error_subcode".into(), json!(pick(u, GRAPH_SUBCODES)));
    }
    e.insert("message".into(), json!(string_from(u, GRAPH_MESSAGES)));
    e.insert("type".into(), json!(pick(u, &["OAuthException", "GraphMethodException", "FacebookApiException"])));
    if flag(u) {
        e.insert("is_transient".into(), json!(flag(u)));
    }
    if flag(u) {
        e.insert("error_user_title".into(), json!(short_string(u)));
        e.insert("error_user_msg".into(), json!(short_string(u)));
    }
    if flag(u) {
        e.insert("fbtrace_id".into(), json!(short_string(u)));
    }
    json!({ "error": e })
}

/// A report run's status as `GET /<report_run_id>` returns it.
pub fn job_status_body(u: &mut Unstructured) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(pick(u, IDS)));
    if !one_in(u, 8) {
        m.insert("async_status".into(), json!(string_from(u, ASYNC_STATUSES)));
    }
    let percent = if flag(u) { json!(100) } else { number_value(u) };
    m.insert("async_percent_completion".into(), percent);
    if flag(u) {
        m.insert("error_code".into(), number_value(u));
        m.insert("error_subcode".into(), json!(pick(u, GRAPH_SUBCODES)));
        m.insert("error_message".into(), json!(string_from(u, GRAPH_MESSAGES)));
    }
    Value::Object(m)
}

fn entity_record(u: &mut Unstructured) -> Value {
    let mut m = Map::new();
    if !one_in(u, 8) {
        m.insert("id".into(), json!(pick(u, IDS)));
    }
    m.insert("account_id".into(), json!(pick(u, &["111", "222", "999", ""])));
    m.insert("updated_time".into(), json!(string_from(u, DATES)));
    if flag(u) {
        m.insert("created_time".into(), json!(pick(u, DATES)));
    }
    if flag(u) {
        let thumb = pick(u, &["https://scontent.example/t.jpg", "https://graph.facebook.com/v25.0/1/picture", "", "x"]);
        m.insert("thumbnail_url".into(), json!(thumb));
    }
    if flag(u) {
        m.insert("effective_status".into(), json!(pick(u, &["ACTIVE", "DELETED", "PAUSED"])));
    }
    for _ in 0..count(u, 2) {
        let k = pick(u, &["name", "status", "adlabels", "targeting", "spend_cap", "timezone_offset_hours_utc"]);
        m.insert(k.into(), json_value(u, 2));
    }
    Value::Object(m)
}

fn insights_row(u: &mut Unstructured) -> Value {
    let mut m = Map::new();
    m.insert("account_id".into(), json!(pick(u, &["111", "222", "999"])));
    for k in ["campaign_id", "adset_id", "ad_id"] {
        if !one_in(u, 8) {
            m.insert(k.into(), json!(pick(u, IDS)));
        }
    }
    let start = string_from(u, DATES);
    m.insert("date_start".into(), json!(start));
    m.insert("date_stop".into(), json!(pick(u, DATES)));
    m.insert("spend".into(), number_value(u));
    if flag(u) {
        m.insert("age".into(), json!(pick(u, &["18-24", "25-34", ""])));
    }
    if flag(u) {
        m.insert("actions".into(), json!([{"action_type": "link_click", "value": pick(u, NUMBER_TOKENS)}]));
    }
    for _ in 0..count(u, 2) {
        let k = pick(u, &["impressions", "objective_results", "cost_per_action_type", "video_play_actions"]);
        m.insert(k.into(), json_value(u, 2));
    }
    Value::Object(m)
}

/// A listing page: `data` (sometimes missing or not a list) and a `paging.next` that may
/// repeat an earlier one.
fn page_body(u: &mut Unstructured, base: &str, row: fn(&mut Unstructured) -> Value) -> Value {
    let data = match byte(u) % 10 {
        0 => Value::Null,
        1 => json_value(u, 1),
        _ => Value::Array((0..count(u, 6)).map(|_| row(u)).collect()),
    };
    let mut body = Map::new();
    if !one_in(u, 10) {
        body.insert("data".into(), data);
    }
    if flag(u) {
        let next = match byte(u) % 5 {
            0 => format!("{base}?after=c{}&limit=5", byte(u) % 4),
            1 => format!("{base}?access_token=EAAfuzztoken&after={}&limit=100", byte(u)),
            2 => "not a url".to_string(),
            3 => String::new(),
            _ => format!("{base}?after={}", short_string(u)),
        };
        body.insert("paging".into(), json!({"cursors": {"before": "b", "after": "a"}, "next": next}));
    }
    Value::Object(body)
}

fn account_body(u: &mut Unstructured) -> Value {
    let offset = if one_in(u, 4) { number_value(u) } else { json!(pick(u, &[0.0, -7.0, 5.5, 14.0, -12.0])) };
    json!({
        "id": "act_111",
        "account_id": pick(u, &["111", "222"]),
        "name": short_string(u),
        "timezone_name": pick(u, &["America/Los_Angeles", "Asia/Kolkata", "UTC", "Nowhere/Else", ""]),
        "timezone_offset_hours_utc": offset,
        "account_status": pick(u, &[1, 2, 3, 101]),
        "currency": "USD",
    })
}

/// How many operations a batch request carries (0 if its body cannot be read).
pub fn batch_len(request: &Request) -> usize {
    let Some(body) = &request.body else { return 0 };
    let (_, form) = split_query(&format!("?{}", String::from_utf8_lossy(body)));
    form.iter()
        .find(|(k, _)| k == "batch")
        .and_then(|(_, b)| serde_json::from_str::<Vec<Value>>(b).ok())
        .map_or(0, |ops| ops.len())
}

fn batch_element(u: &mut Unstructured) -> Value {
    let code = pick(u, &[200, 200, 200, 200, 200, 400, 500, 0]);
    let body = match byte(u) % 8 {
        0 => graph_error_body(u).to_string(),
        1 => short_string(u),
        2 => json_value(u, 2).to_string(),
        _ => job_status_body(u).to_string(),
    };
    let mut m = Map::new();
    m.insert("code".into(), json!(code));
    if flag(u) {
        let hs: Vec<Value> = headers(u).into_iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        m.insert("headers".into(), Value::Array(hs));
    }
    match byte(u) % 10 {
        0 => {}
        1 => {
            m.insert("body".into(), json!({"not": "a string"}));
        }
        _ => {
            m.insert("body".into(), Value::String(body));
        }
    }
    Value::Object(m)
}

/// A body shaped like what Graph answers to `request`.
pub fn plausible_body(u: &mut Unstructured, request: &Request) -> Value {
    let url = request.url.split('?').next().unwrap_or("");
    let is_graph = url.strip_prefix(GRAPH_ORIGIN).is_some_and(|rest| rest.starts_with('/'));
    let last = url.rsplit('/').next().unwrap_or("");
    if request.method == Method::POST && batch_len(request) > 0 {
        let n = batch_len(request);
        // Now and then a batch answers with the wrong number of results.
        let n = match byte(u) % 16 {
            0 => n + 1,
            1 => n.saturating_sub(1),
            _ => n,
        };
        Value::Array((0..n).map(|_| if one_in(u, 6) { Value::Null } else { batch_element(u) }).collect())
    } else if request.method == Method::POST {
        match byte(u) % 16 {
            0 => json!({}),
            1 => json!({"report_run_id": byte(u)}),
            _ => json!({"report_run_id": format!("{}", 9000 + u32::from(byte(u) % 8))}),
        }
    } else if !is_graph {
        Value::String(short_string(u))
    } else if last == "insights" {
        page_body(u, url, insights_row)
    } else if last.starts_with("act_") {
        account_body(u)
    } else {
        page_body(u, url, entity_record)
    }
}

/// The outcome of one fetch, drawn from the input. Mostly (200 in 256) a clean answer shaped
/// like Graph's, so reads get deep; otherwise a plausible answer under another status or cut
/// short, a Graph error, a raw answer (status, headers and body bytes as given), or a transport
/// failure.
pub fn answer(u: &mut Unstructured, request: &Request) -> Result<Response, FetchError> {
    match byte(u) {
        0..200 => {
            Ok(Response { status: 200, headers: headers(u), body: plausible_body(u, request).to_string().into_bytes() })
        }
        200..216 => {
            let status = pick(u, STATUSES);
            let headers = headers(u);
            let mut body = plausible_body(u, request).to_string().into_bytes();
            if flag(u) {
                let cut = usize::from(byte(u)) % (body.len() + 1);
                body.truncate(cut);
            }
            Ok(Response { status, headers, body })
        }
        216..232 => {
            let status = pick(u, &[400, 400, 403, 500, 200, 429, 503]);
            Ok(Response { status, headers: headers(u), body: graph_error_body(u).to_string().into_bytes() })
        }
        232..244 => {
            let status = pick(u, STATUSES);
            let headers = headers(u);
            let n = count(u, 64).min(u.len());
            let body = u.bytes(n).unwrap_or_default().to_vec();
            Ok(Response { status, headers, body })
        }
        _ => Err(match byte(u) % 7 {
            0 => FetchError::Timeout,
            1 => FetchError::ConnectionRefused,
            2 => FetchError::ConnectionReset,
            3 => FetchError::Dns(short_string(u)),
            4 => FetchError::Tls(short_string(u)),
            5 => FetchError::DeniedByHost(short_string(u)),
            _ => FetchError::Other(short_string(u)),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The IO.

/// Answers requests from the fuzz input on a fake clock: the input picks which of the requests
/// in flight complete, in what order, and whether a wait passes with none. Once the input or
/// the action budget is spent, the "host" completes every request in order with a refusal,
/// which any machine must turn into an orderly end.
pub struct FuzzIo<'a> {
    u: Unstructured<'a>,
    now: Timestamp,
    pub actions: usize,
    in_flight: Vec<(RequestId, Request)>,
}

impl<'a> FuzzIo<'a> {
    pub fn new(u: Unstructured<'a>) -> Self {
        FuzzIo { u, now: NOW, actions: 0, in_flight: Vec::new() }
    }

    fn spent(&self) -> bool {
        self.actions > MAX_ACTIONS || self.u.is_empty()
    }
}

impl Io for FuzzIo<'_> {
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion> {
        self.in_flight.extend(start);
        if self.in_flight.is_empty() {
            return Vec::new();
        }
        if let Some(w) = wait
            && !self.spent()
            && one_in(&mut self.u, 8)
        {
            self.actions += 1;
            self.now = self.now.plus(w);
            return Vec::new();
        }
        let n = if self.spent() { self.in_flight.len() } else { 1 + usize::from(byte(&mut self.u)) % self.in_flight.len() };
        let mut done = Vec::with_capacity(n);
        for _ in 0..n {
            let i = if self.spent() { 0 } else { usize::from(byte(&mut self.u)) % self.in_flight.len() };
            let (id, request) = self.in_flight.remove(i);
            let outcome = self.answer_one(&request);
            done.push((id, outcome));
        }
        done
    }

    fn sleep(&mut self, duration: Duration, _reason: TimeoutReason) {
        self.actions += 1;
        self.now = self.now.plus(duration);
    }

    fn now(&mut self) -> Timestamp {
        self.now
    }
}

impl FuzzIo<'_> {
    /// One request's answer, as the input says.
    fn answer_one(&mut self, request: &Request) -> Result<Response, FetchError> {
        self.actions += 1;
        if self.spent() {
            return Err(FetchError::DeniedByHost("the fuzz input is spent".into()));
        }
        // A fetch takes from no time to an hour.
        let took = pick(&mut self.u, &[0u64, 0, 1, 500, 5_000, 60_000, 3_600_000]);
        let outcome = answer(&mut self.u, request);
        self.now = self.now.plus(Duration::from_millis(took));
        outcome
    }
}

/// Runs `machine` with the crate's driver until it ends or [`MAX_BATCHES`] batches came out,
/// rendering every message as the host would. Returns how many messages it produced.
pub fn drive<M: Machine>(machine: M, io: &mut FuzzIo) -> usize {
    let mut driver = Driver::new(machine);
    let mut messages = 0;
    for _ in 0..MAX_BATCHES {
        let Some(batch) = driver.next_batch(io, BatchLimit { messages: 16, bytes: 64 * 1024 }) else { break };
        for m in batch {
            messages += 1;
            let _ = m.to_json_line();
        }
    }
    messages
}

// ---------------------------------------------------------------------------------------------
// Incoming state.

fn entity_state(u: &mut Unstructured) -> Value {
    match byte(u) % 5 {
        0 => json!({"updated_time": string_from(u, DATES)}),
        1 => json_value(u, 2),
        _ => {
            let mut m = Map::new();
            for acct in ["111", "222", "999"] {
                if flag(u) {
                    m.insert(acct.into(), json!({"updated_time": string_from(u, DATES), "include_deleted": flag(u)}));
                }
            }
            Value::Object(m)
        }
    }
}

fn insights_state(u: &mut Unstructured) -> Value {
    let mut m = Map::new();
    for acct in ["111", "222", "999"] {
        if flag(u) {
            let slices: Vec<Value> = (0..count(u, 3)).map(|_| json!(string_from(u, DATES))).collect();
            m.insert(acct.into(), json!({"date_start": string_from(u, DATES), "slices": slices}));
        }
    }
    match byte(u) % 4 {
        0 => {
            m.insert("time_increment".into(), number_value(u));
        }
        1 => {
            m.insert("time_increment_period".into(), json!(pick(u, &["daily", "weekly", "monthly", "x"])));
        }
        _ => {}
    }
    if one_in(u, 8) {
        m.insert("date_start".into(), json!(string_from(u, DATES)));
    }
    Value::Object(m)
}

/// The state a sync starts from: none, per-stream messages, a GLOBAL message, a legacy object,
/// each with dates from [`DATES`] or the input, or (rarely) text straight from the input.
pub fn state_text(u: &mut Unstructured) -> Option<String> {
    type Gen = fn(&mut Unstructured) -> Value;
    let streams: [(&str, Gen); 4] = [
        ("campaigns", entity_state),
        ("ads", entity_state),
        ("ads_insights", insights_state),
        ("custom_fuzz_weekly", insights_state),
    ];
    let mut states = Vec::new();
    for (name, gen_state) in streams {
        if flag(u) {
            states.push((name, gen_state(u)));
        }
    }
    let text = match byte(u) % 8 {
        0 | 1 => return None,
        2..=4 => Value::Array(
            states
                .into_iter()
                .map(
                    |(n, s)| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": n}, "stream_state": s}}),
                )
                .collect(),
        )
        .to_string(),
        5 => {
            let list: Vec<Value> =
                states.into_iter().map(|(n, s)| json!({"stream_descriptor": {"name": n}, "stream_state": s})).collect();
            json!([{"type": "GLOBAL", "global": {"shared_state": {}, "stream_states": list}}]).to_string()
        }
        6 => Value::Object(states.into_iter().map(|(n, s)| (n.to_string(), s)).collect()).to_string(),
        _ => short_string(u),
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_config_is_valid_and_offers_the_selected_streams() {
        for v in 0..CONFIG_VARIANTS {
            let config = config_json(v);
            Config::from_value(config.clone(), NOW).expect("valid config");
            let catalog: Value = serde_json::from_str(&catalog_text(v, 0, 0, 0)).expect("catalog is json");
            let n = catalog["streams"].as_array().map_or(0, Vec::len);
            assert_eq!(n, if v == 1 { 6 } else { 5 }, "variant {v}");
        }
    }
}
