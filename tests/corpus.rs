//! The recorded-response corpus through the connector's own code.
//!
//! `../shared/fixtures/graph-responses/` (beside the checkout; `SFM_CORPUS` names another place)
//! holds response bodies recorded from the real Graph API or written by other projects, with an
//! `index.tsv` per source. Every body that concerns a stream of ours goes through the code that
//! would meet it in a sync: the client's classification, the paginator, the batch reader, the
//! job-status parser, the insights transcoder (held to the `Value` path) and the entity record
//! path. No body may panic, be dropped in silence, or leave a value typed against the schema (a
//! number still a string where the schema says number, and so on); each error body must be
//! classified as the index's notes and Meta's error table say. Bodies that do not apply are
//! listed as skipped, each with its reason. The corpus itself is not part of the project: where
//! it is absent (a user's own clone) the suite says so in one line and passes.

use serde_json::{Map, Value, json};
use source_facebook_marketing::api::batch::BatchSender;
use source_facebook_marketing::api::classify::{Verdict, classify_response};
use source_facebook_marketing::api::client::{Api, CallFailure, CallKind, CallOutcome};
use source_facebook_marketing::api::paginator::{Paginator, Paging, Step};
use source_facebook_marketing::api::throttle::{Throttle, parse_insights_throttle, parse_usage};
use source_facebook_marketing::config::Config;
use source_facebook_marketing::error::FailureType;
use source_facebook_marketing::http::Response;
use source_facebook_marketing::model::OBJECT_BREAKDOWNS;
use source_facebook_marketing::read::AccountFacts;
use source_facebook_marketing::read::common::prepare_record;
use source_facebook_marketing::read::insights::job::{RunStatus, parse_status, report_run_id};
use source_facebook_marketing::read::reader::{Outbox, Turn};
use source_facebook_marketing::read::transcode::{self, RowRules, row_record};
use source_facebook_marketing::schema::{self, Node, Properties, parse_number};
use source_facebook_marketing::time::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How each error body must be classified: by Meta's error table (graph-api.md section 6.2)
/// and the index's notes.
const ERROR_EXPECTATIONS: &[(&str, Expect)] = &[
    ("airbyte/inline/error_100_33_unsupported_get_400.json", Expect::Config),
    ("airbyte/inline/error_100_cannot_include_summary_400.json", Expect::Transient),
    ("airbyte/inline/error_100_missing_permissions_400.json", Expect::Config),
    // A test's bug kept as-is: no `error` envelope, so not a Graph error at all.
    ("airbyte/inline/error_100_unsupported_method_no_envelope_400.json", Expect::System),
    ("airbyte/inline/error_190_458_app_not_authorized_400.json", Expect::Token),
    ("airbyte/inline/error_190_460_password_changed_400.json", Expect::Token),
    ("airbyte/inline/error_190_463_session_expired_400.json", Expect::Token),
    ("airbyte/inline/error_190_pages_permission_400.json", Expect::Token),
    ("airbyte/inline/error_1_2853001_profile_not_linked_400.json", Expect::Config),
    ("airbyte/inline/error_1_2853001_profile_not_linked_es_400.json", Expect::Config),
    ("airbyte/inline/error_1_99_unknown_500.json", Expect::Transient),
    ("airbyte/inline/error_200_business_management_403.json", Expect::Config),
    ("airbyte/inline/error_200_no_envelope_403.json", Expect::System),
    ("airbyte/inline/error_2_service_unavailable_503.json", Expect::Transient),
    ("airbyte/inline/error_3018_start_date_37_months_400.json", Expect::Config),
    ("airbyte/inline/error_80000_rate_limit_400.json", Expect::RateLimit),
    ("airbyte/inline/error_call_not_successful_503.json", Expect::Transient),
    ("airbyte/inline/error_code104_nostatus.json", Expect::Transient),
    ("airbyte/inline/error_code2_500.json", Expect::Transient),
    ("airbyte/inline/error_empty_500.json", Expect::Transient),
    ("airbyte/inline/error_reduce_amount_of_data_500.json", Expect::ReduceData),
    ("airbyte/inline/error_unknown_code1_500.json", Expect::Transient),
    ("issues/airbyte-8773_error_80004_2446079.json", Expect::RateLimit),
    ("issues/airbyte-pr-14267_error_code2_only.json", Expect::Transient),
    ("issues/nodejs-business-sdk-5_error_100_33_post.json", Expect::Config),
    ("issues/php-business-sdk-288_error_2601_results_not_ready.json", Expect::ReportNotReady),
    ("issues/php-business-sdk-441_error_reduce_data_account_insights.json", Expect::ReduceData),
    ("issues/php-graph-sdk-1094_error_2601_v3.json", Expect::ReportNotReady),
    ("issues/python-business-sdk-293_error_2601.json", Expect::ReportNotReady),
    ("issues/python-business-sdk-470_error_reduce_data_sync_insights.json", Expect::ReduceData),
    ("issues/python-business-sdk-510_error_unknown_99.json", Expect::Transient),
    ("issues/singer-tap-facebook-65_error_reduce_data_on_results_page.json", Expect::ReduceData),
    ("meta-sdk-docs/sdk_service_unavailable_200.txt", Expect::Transient),
    ("restfb/error_190_460_with_user_fields.json", Expect::Token),
    // Code 1 with a subcode, `is_transient: false` and Meta's words for the user, on a 400.
    ("restfb/error_1_1446036_user_fields.json", Expect::Config),
    ("restfb/error_1_1965014_user_fields.json", Expect::Config),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Transient,
    RateLimit,
    QuotaBlock,
    ReduceData,
    ReportNotReady,
    /// The token: a config error that ends the sync.
    Token,
    Config,
    System,
}

/// One row of a source's `index.tsv`.
#[derive(Clone, Debug)]
struct Entry {
    /// Relative to the corpus root.
    file: String,
    method: String,
    /// `v2.8 /act_{account_id}/campaigns`.
    url: String,
    query: String,
    status: u16,
    kind: String,
}

/// What a body is run through.
#[derive(Clone, Debug, PartialEq)]
enum Plan {
    Skip(String),
    Error(Expect),
    /// A page of an edge listing; `stream` when it is one of ours; `nested` when its items hold
    /// insights rows (a field expansion).
    Listing {
        stream: Option<&'static str>,
        nested: bool,
    },
    /// An object keyed by id (`ids=`), each with nested insights rows.
    KeyedInsights,
    Node(&'static str),
    InsightsPage,
    JobCreate,
    JobStatus,
    Batch,
    Headers,
}

fn corpus_root() -> Option<PathBuf> {
    let root = std::env::var_os("SFM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/graph-responses"));
    root.join("ALL_INDEX.tsv").exists().then_some(root)
}

/// Every body of `ALL_INDEX.tsv` (bucket, file, fidelity, source, method, url, status, notes),
/// with its query from its source's own `index.tsv` where that has one.
fn entries(root: &Path) -> Vec<Entry> {
    let mut queries: BTreeMap<String, String> = BTreeMap::new();
    for source in std::fs::read_dir(root).expect("the corpus folder").filter_map(|e| e.ok().map(|e| e.path())) {
        let Ok(index) = std::fs::read_to_string(source.join("index.tsv")) else { continue };
        let name = source.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let header: Vec<&str> = index.lines().next().unwrap_or("").split('\t').collect();
        let Some(q) = header.iter().position(|h| h.starts_with("query")) else { continue };
        for line in index.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if let (Some(file), Some(query)) = (cols.first(), cols.get(q)) {
                queries.insert(format!("{name}/{file}"), query.to_string());
            }
        }
    }
    let all = std::fs::read_to_string(root.join("ALL_INDEX.tsv")).expect("ALL_INDEX.tsv");
    all.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let col = |i: usize| cols.get(i).copied().unwrap_or("").to_string();
            let status: String = col(6).trim_start_matches('(').chars().take_while(char::is_ascii_digit).collect();
            Entry {
                query: queries.get(&col(1)).cloned().unwrap_or_default(),
                file: col(1),
                method: col(4),
                url: col(5),
                status: status.parse().unwrap_or(200),
                kind: col(0),
            }
        })
        .collect()
}

/// Our stream for a Graph edge name.
fn stream_of_edge(edge: &str) -> Option<&'static str> {
    Some(match edge {
        "ads" => "ads",
        "adsets" => "ad_sets",
        "campaigns" => "campaigns",
        "adimages" => "images",
        "advideos" => "videos",
        "adcreatives" => "ad_creatives",
        "activities" => "activities",
        "adaccounts" => "ad_account",
        _ => return None,
    })
}

fn plan(e: &Entry) -> Plan {
    let path = e.url.split_whitespace().nth(1).unwrap_or("");
    let edge = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let file = e.file.as_str();
    if file.ends_with(".headers.json") {
        return Plan::Skip("a header file, read with its body".into());
    }
    match e.kind.as_str() {
        "write" => Plan::Skip(format!("a write ({} {path}): the connector only reads", e.method)),
        "error" => match ERROR_EXPECTATIONS.iter().find(|(f, _)| *f == file) {
            Some((_, expect)) => Plan::Error(*expect),
            None => panic!("an error body with no expectation: {file}; add it to ERROR_EXPECTATIONS"),
        },
        "header_sample" => Plan::Headers,
        "insights_async_create" => Plan::JobCreate,
        "insights_async_status" => Plan::JobStatus,
        "insights_async_results" | "insights_throttle_probe" => Plan::InsightsPage,
        "batch" => Plan::Batch,
        "insights_sync_or_expansion" if path.ends_with("/insights") => Plan::InsightsPage,
        "insights_sync_or_expansion" if file.contains("ids_multi") || e.query.contains("ids=") => Plan::KeyedInsights,
        "insights_sync_or_expansion" => Plan::Listing { stream: stream_of_edge(edge), nested: true },
        "node_get" if file.contains("ad_creative") => Plan::Node("ad_creatives"),
        "node_get" if file.contains("ad_set") => Plan::Node("ad_sets"),
        "node_get" => Plan::Node("campaigns"),
        "ad_account" if edge == "adaccounts" => Plan::Listing { stream: Some("ad_account"), nested: false },
        "ad_account" => Plan::Node("ad_account"),
        _ if file.contains("ids_multi") || e.query.contains("ids=") => {
            Plan::Skip("an ids= multi-object read: a request shape the connector never makes".into())
        }
        "ads" if path == "/{ad_id}" => Plan::Node("ads"),
        "other_edge" if edge == "reachestimate" => {
            Plan::Skip("reachestimate: an edge no stream reads (and not a listing)".into())
        }
        "other_edge" => Plan::Listing { stream: None, nested: false },
        kind => match stream_of_edge(match kind {
            "adsets" => "adsets",
            other => other,
        }) {
            Some(stream) => Plan::Listing { stream: Some(stream), nested: false },
            None => Plan::Skip(format!("kind {kind}: nothing of ours reads it")),
        },
    }
}

/// The body's headers, when the source kept them (`<body>.headers.json`: an object, or a list
/// of `{name, value}`).
fn headers_of(root: &Path, file: &str) -> Vec<(String, String)> {
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let Ok(text) = std::fs::read_to_string(root.join(format!("{stem}.headers.json"))) else { return Vec::new() };
    header_pairs(&serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn header_pairs(v: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.to_ascii_lowercase(), text(v))).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|h| Some((h.get("name")?.as_str()?.to_ascii_lowercase(), text(h.get("value")?))))
            .collect(),
        _ => Vec::new(),
    }
}

/// What the run found, for the closing figures.
#[derive(Default)]
struct Figures {
    by_plan: BTreeMap<String, usize>,
    skipped: BTreeMap<String, usize>,
    records: usize,
    rows: usize,
    refused_with_an_error: Vec<String>,
    failures: Vec<String>,
    /// Bodies that went through without a finding.
    read: usize,
}

const NOW: i64 = 1_781_517_600_000;

fn api() -> Api {
    Api::new("corpus-token".into(), 1, Timestamp::from_millis(NOW), true)
}

/// Answers the one call the client has queued with the body.
fn answer(api: &mut Api, status: u16, headers: &[(String, String)], body: &[u8]) -> CallOutcome {
    let (id, _) = api.poll_transmit().expect("a request");
    let response = Response { status, headers: headers.to_vec(), body: body.to_vec() };
    api.handle_response(id, response, Timestamp::from_millis(NOW)).expect("a known request");
    loop {
        if let Some((_, outcome)) = api.poll_completion() {
            return outcome;
        }
        // A retry waits out its backoff (a smaller page is asked for at once); the same answer
        // comes again until the budget is spent.
        let at = match api.poll_timeout() {
            Some((at, _)) => at,
            None => Timestamp::from_millis(NOW),
        };
        api.handle_timeout(at);
        let (id, _) = api.poll_transmit().expect("the retry");
        let response = Response { status, headers: headers.to_vec(), body: body.to_vec() };
        api.handle_response(id, response, at).expect("a known request");
    }
}

/// Values typed against `props`: a number left as a numeric string, a string left as a number,
/// a boolean left as `"true"`.
fn mistyped(record: &Map<String, Value>, props: &Properties, path: &str, out: &mut Vec<String>) {
    for (key, value) in record {
        if let Some(node) = props.get(key) {
            check_value(value, node, &format!("{path}{key}"), out);
        }
    }
}

fn check_value(value: &Value, node: &Node, path: &str, out: &mut Vec<String>) {
    match (node, value) {
        (Node::Number, Value::String(s)) if parse_number(s).is_some() => {
            out.push(format!("{path}: \"{s}\" not a number"))
        }
        (Node::Integer, Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            out.push(format!("{path}: \"{s}\" not an integer"))
        }
        (Node::Boolean, Value::String(s)) if s == "true" || s == "false" => {
            out.push(format!("{path}: \"{s}\" not a boolean"))
        }
        (Node::String { .. }, Value::Number(n)) => out.push(format!("{path}: {n} not a string")),
        (Node::Object(children), Value::Object(map)) => {
            for (k, v) in map {
                if let Some(child) = children.get(k) {
                    check_value(v, child, &format!("{path}.{k}"), out);
                }
            }
        }
        (Node::Array(items), Value::Array(list)) => {
            for v in list {
                check_value(v, items, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// The properties insights rows are typed by: the base fields, every breakdown and action
/// breakdown.
fn insights_props() -> Properties {
    let mut props = schema::properties("ads_insights").clone();
    props.extend(schema::properties("ads_insights_custom_fields").clone());
    props.extend(schema::properties("ads_insights_breakdowns").clone());
    props.extend(schema::properties("ads_insights_action_breakdowns").clone());
    props
}

/// Insights rows through the transcoder, held to the `Value` path; returns the rows kept.
fn insights_rows(page: &Value, figures: &mut Figures, file: &str) -> usize {
    let props = insights_props();
    let objects: Vec<String> = OBJECT_BREAKDOWNS.iter().map(|s| s.to_string()).collect();
    let rules =
        RowRules { props: &props, required: &[], object_breakdowns: &objects, account_id: "1", rename_results: false };
    let body = page.to_string();
    let transcoded = match transcode::page(body.as_bytes(), &rules) {
        Ok(p) => p,
        Err(e) => {
            figures.failures.push(format!("{file}: the transcoder refused a page: {e}"));
            return 0;
        }
    };
    let data: Vec<Value> = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    let objects_in = data.iter().filter(|r| r.is_object()).count();
    if transcoded.rows.len() != objects_in {
        figures.failures.push(format!("{file}: {} rows in, {} out", objects_in, transcoded.rows.len()));
    }
    let by_value: Vec<Value> = data.into_iter().filter_map(|r| row_record(r, &rules)).map(Value::Object).collect();
    for (i, (row, reference)) in transcoded.rows.iter().zip(&by_value).enumerate() {
        let row: Value = serde_json::from_str(row).expect("the transcoder writes JSON");
        if &row != reference {
            figures.failures.push(format!("{file}: row {i} differs from the Value path"));
        }
        let mut bad = Vec::new();
        mistyped(row.as_object().expect("a row is an object"), &props, "", &mut bad);
        if !bad.is_empty() {
            figures.failures.push(format!("{file}: row {i} typed against the schema: {bad:?}"));
        }
    }
    figures.rows += transcoded.rows.len();
    transcoded.rows.len()
}

/// An entity item through the record path of `stream`.
fn entity_record(stream: &str, item: Value, figures: &mut Figures, file: &str) {
    let config =
        Config::parse(r#"{"account_ids": ["1"], "credentials": {"access_token": "t"}}"#, Timestamp::from_millis(NOW))
            .expect("config");
    let (throttle, facts, mut out) = (Throttle::default(), AccountFacts::new(), Outbox::default());
    let mut cx = Turn {
        now: Timestamp::from_millis(NOW),
        config: &config,
        accounts: &facts,
        throttle: &throttle,
        out: &mut out,
    };
    let props = schema::properties(stream);
    let was_object = item.is_object();
    match prepare_record(stream, item, "1", props, &mut cx) {
        Some(record) => {
            figures.records += 1;
            let mut bad = Vec::new();
            mistyped(&record, props, "", &mut bad);
            if !bad.is_empty() {
                figures.failures.push(format!("{file}: a {stream} record typed against the schema: {bad:?}"));
            }
            if props.contains_key("account_id") && record.get("account_id").is_none() {
                figures.failures.push(format!("{file}: a {stream} record without account_id"));
            }
        }
        // Only a non-object is dropped, and it is logged.
        None if was_object => figures.failures.push(format!("{file}: an object item was dropped")),
        None if out.is_empty() => figures.failures.push(format!("{file}: an item was dropped without a word")),
        None => {}
    }
}

fn run(root: &Path, e: &Entry, plan: &Plan, figures: &mut Figures) {
    let file = e.file.as_str();
    let bytes = std::fs::read(root.join(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
    let headers = headers_of(root, file);
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match plan {
        Plan::Skip(_) => {}
        Plan::Error(expect) => {
            let verdict = classify_response(e.status, &bytes);
            // Through the client too: a 200 can carry an error, retries must end.
            let mut client = api();
            client.submit(source_facebook_marketing::api::client::Call::graph(
                source_facebook_marketing::http::Request::get("https://graph.facebook.com/v25.0/act_1/ads?limit=100"),
                CallKind::EdgePage,
            ));
            let outcome = answer(&mut client, e.status, &headers, &bytes);
            let got = match (&verdict, &outcome) {
                (_, Ok(_)) => None,
                (Verdict::ReduceData, _) => Some(Expect::ReduceData),
                (Verdict::ReportNotReady, _) => Some(Expect::ReportNotReady),
                (Verdict::RateLimited { quota_block: true }, _) => Some(Expect::QuotaBlock),
                (Verdict::RateLimited { quota_block: false }, _) => Some(Expect::RateLimit),
                (Verdict::Transient(_), _) => Some(Expect::Transient),
                (Verdict::Success, Err(e)) if e.error.failure_type() == FailureType::Transient => {
                    Some(Expect::Transient)
                }
                (_, Err(err)) if err.failure == CallFailure::Token => Some(Expect::Token),
                (_, Err(err)) => Some(match err.error.failure_type() {
                    FailureType::Config => Expect::Config,
                    FailureType::Transient => Expect::Transient,
                    FailureType::System => Expect::System,
                }),
            };
            if got != Some(*expect) {
                figures.failures.push(format!("{file}: classified {got:?}, expected {expect:?} ({verdict:?})"));
            }
            if let Err(err) = &outcome
                && err.error.message().is_empty()
            {
                figures.failures.push(format!("{file}: an error without a message"));
            }
        }
        Plan::Listing { stream, nested } => {
            let mut client = api();
            let mut paginator =
                Paginator::new("https://graph.facebook.com/v25.0/act_1/x?limit=25".into(), CallKind::EdgePage);
            let call = paginator.start(&mut client);
            let outcome = answer(&mut client, e.status, &headers, &bytes);
            let expected_items = json.get("data").and_then(Value::as_array).map(Vec::len);
            match paginator.on_outcome(call, outcome, &mut client) {
                Ok(Step::Items { items, has_next }) => {
                    let next = json.get("paging").and_then(|p| p.get("next")).and_then(Value::as_str).is_some();
                    if has_next != next {
                        figures.failures.push(format!("{file}: has_next {has_next}, paging.next present {next}"));
                    }
                    if Some(items.len()) != expected_items && !(expected_items.is_none() && items.is_empty()) {
                        figures.failures.push(format!("{file}: {} items of {expected_items:?}", items.len()));
                    }
                    for item in items {
                        if *nested && let Some(insights) = item.get("insights") {
                            insights_rows(insights, figures, file);
                        }
                        if let Some(stream) = stream {
                            entity_record(stream, item, figures, file);
                        }
                    }
                }
                Ok(Step::Restarted(_)) => figures.failures.push(format!("{file}: a listing restarted")),
                // A shape no listing can take (data as an object): refused with a clear error.
                Err(err) if json.get("data").is_some_and(|d| !d.is_array() && !d.is_null()) => {
                    figures.refused_with_an_error.push(format!("{file}: {}", err.error.message()))
                }
                // Anything else is a listing the connector should have read.
                Err(err) => figures.failures.push(format!("{file}: a listing was refused: {}", err.error.message())),
            }
        }
        Plan::KeyedInsights => {
            for node in json.as_object().into_iter().flat_map(|m| m.values()) {
                if let Some(insights) = node.get("insights") {
                    insights_rows(insights, figures, file);
                }
            }
        }
        Plan::Node(stream) => {
            if !matches!(classify_response(e.status, &bytes), Verdict::Success) {
                figures.failures.push(format!("{file}: a node read not classified a success"));
            }
            entity_record(stream, json, figures, file);
        }
        Plan::InsightsPage => {
            let mut client = api();
            let mut paginator =
                Paginator::new("https://graph.facebook.com/v25.0/1/insights?limit=100".into(), CallKind::JobResults);
            let call = paginator.start(&mut client);
            let outcome = answer(&mut client, e.status, &headers, &bytes);
            // The page as one item: what the client handed over, repaired and checked.
            let read = |b: &[u8]| Ok((vec![b.to_vec()], Paging::default()));
            match paginator.on_raw_outcome(call, outcome, &mut client, read) {
                Ok(Step::Items { items, .. }) => {
                    let page: Value = items.first().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
                    insights_rows(&page, figures, file);
                }
                other => figures.failures.push(format!("{file}: an insights page was not read: {other:?}")),
            }
            let mut throttle = Throttle::default();
            throttle.observe(&headers, Some("1"), Timestamp::from_millis(NOW));
        }
        Plan::JobCreate => {
            if report_run_id(&json).is_none() {
                figures.failures.push(format!("{file}: no report_run_id read"));
            }
        }
        Plan::JobStatus => match parse_status(&json) {
            Some(RunStatus::Completed | RunStatus::Pending { .. } | RunStatus::Failed(_)) => {}
            None => figures.failures.push(format!("{file}: the job status was not read")),
        },
        Plan::Batch => {
            let Some(items) = json.as_array() else {
                figures.failures.push(format!("{file}: a batch answer that is not a list"));
                return;
            };
            let mut client = api();
            let mut batch = BatchSender::new("https://graph.facebook.com/v25.0/".into());
            for k in 0..items.len() {
                batch.push(k as u64, format!("{k}/"));
            }
            let call = batch.flush(&mut client)[0];
            let outcome = answer(&mut client, e.status, &headers, &bytes);
            batch.on_outcome(call, outcome, &mut client).expect("a call of the batch");
            let mut results = 0;
            loop {
                while batch.poll_result().is_some() {
                    results += 1;
                }
                // Operations to send again (an abort, a null) come back the same way: no loop.
                let calls = batch.flush(&mut client);
                let Some(call) = calls.first().copied() else { break };
                let resent = resend_answer(items, &client);
                let outcome = answer(&mut client, 200, &[], resent.to_string().as_bytes());
                batch.on_outcome(call, outcome, &mut client).expect("a call of the batch");
            }
            if results != items.len() {
                figures.failures.push(format!("{file}: {results} results of {} operations", items.len()));
            }
        }
        Plan::Headers => {
            let mut pairs = header_pairs(&json);
            // A bare header value (restfb): the business use case header's.
            if json.as_object().is_some_and(|m| m.values().all(Value::is_array)) {
                pairs = vec![("x-business-use-case-usage".into(), json.to_string())];
            }
            // Keys named after the header with a note appended (`x-app-usage_on_error_100`).
            let pairs: Vec<(String, String)> = pairs
                .into_iter()
                .map(|(k, v)| {
                    let known = [
                        "x-business-use-case-usage",
                        "x-app-usage",
                        "x-ad-account-usage",
                        "x-fb-ads-insights-throttle",
                    ];
                    (known.iter().find(|h| k.starts_with(*h)).map_or(k, |h| h.to_string()), v)
                })
                .collect();
            let _ = (parse_usage(&pairs), parse_insights_throttle(&pairs));
            Throttle::default().observe(&pairs, Some("1"), Timestamp::from_millis(NOW));
        }
    }
}

/// A batch's re-sent operations answered as the recorded items answered (null items as 200s).
fn resend_answer(items: &[Value], _client: &Api) -> Value {
    Value::Array(
        items.iter().map(|i| if i.is_null() { json!({"code": 200, "body": "{}"}) } else { i.clone() }).collect(),
    )
}

#[test]
fn every_recorded_body_of_ours_goes_through_the_connector_typed_and_classified() {
    let Some(root) = corpus_root() else {
        // CI must read the corpus: a missing ../shared is a failure there, not a pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus: ../shared/fixtures/graph-responses not found (set SFM_CORPUS); CI must run it"
        );
        println!("corpus: ../shared/fixtures/graph-responses not found (set SFM_CORPUS); skipped");
        return;
    };
    let mut figures = Figures::default();
    let all = entries(&root);
    for e in &all {
        let plan = plan(e);
        let label = match &plan {
            Plan::Skip(reason) => {
                *figures.skipped.entry(reason.clone()).or_default() += 1;
                continue;
            }
            Plan::Error(_) => "error".to_string(),
            Plan::Listing { stream: Some(s), nested: true } => format!("listing {s} + nested insights rows"),
            Plan::Listing { stream: Some(s), .. } => format!("listing {s}"),
            Plan::Listing { stream: None, .. } => "listing of another edge (paginator only)".into(),
            Plan::KeyedInsights => "ids= answer with nested insights rows".into(),
            Plan::Node(s) => format!("node {s}"),
            Plan::InsightsPage => "insights page".into(),
            Plan::JobCreate => "job create".into(),
            Plan::JobStatus => "job status".into(),
            Plan::Batch => "batch".into(),
            Plan::Headers => "headers".into(),
        };
        *figures.by_plan.entry(label).or_default() += 1;
        let findings = figures.failures.len();
        run(&root, e, &plan, &mut figures);
        figures.read += usize::from(figures.failures.len() == findings);
    }
    let run_total: usize = figures.by_plan.values().sum();
    let skipped_total: usize = figures.skipped.values().sum();
    println!("corpus: {} bodies: {run_total} run, {skipped_total} skipped", all.len());
    for (k, n) in &figures.by_plan {
        println!("  run {n:>4}  {k}");
    }
    for (k, n) in &figures.skipped {
        println!("  skipped {n:>4}  {k}");
    }
    println!("  entity records checked: {}, insights rows checked: {}", figures.records, figures.rows);
    for r in &figures.refused_with_an_error {
        println!("  refused with an error (not a listing's shape): {r}");
    }
    println!("  read without a finding: {} of {run_total}", figures.read);
    assert!(figures.read >= 250, "most of the corpus concerns a stream of ours: {} read", figures.read);
    assert!(figures.failures.is_empty(), "{} findings:\n{}", figures.failures.len(), figures.failures.join("\n"));
}

#[test]
fn the_type_check_catches_what_normalisation_must_fix() {
    let props = insights_props();
    let raw: Map<String, Value> = serde_json::from_value(
        json!({"impressions": "185", "spend": "14.35", "ad_id": 238, "actions": [{"value": "10"}]}),
    )
    .unwrap();
    let mut bad = Vec::new();
    mistyped(&raw, &props, "", &mut bad);
    assert_eq!(bad.len(), 4, "{bad:?}");
    let mut fixed = raw;
    schema::normalise(&mut fixed, &props);
    let mut bad = Vec::new();
    mistyped(&fixed, &props, "", &mut bad);
    assert!(bad.is_empty(), "{bad:?}");
}
