//! Malformed configs, catalogs and states fed to `read` through the built wasm component: each
//! must end the sync with exactly one error TRACE, `failure_type` `config_error`, whose message
//! names the problem, and never trap. A few also go through the `host-test` binary, which must
//! exit 1.
//!
//! Needs `cargo build --release --target wasm32-wasip2 -p source-facebook-marketing` first.

mod common;

use common::runtime;
use graph_sim::{SimConfig, Simulator};
use host_test::backend::SimBackend;
use host_test::demo::{catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{Allowlist, Limits, Message};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

fn sim() -> Arc<Mutex<Simulator>> {
    Arc::new(Mutex::new(Simulator::new(SimConfig::preset("calm").expect("calm is a preset"))))
}

fn guest(sim: &Arc<Mutex<Simulator>>) -> host_test::runtime::Guest {
    let allow = Allowlist { hosts: vec!["graph.facebook.com".into()], suffixes: Vec::new() };
    runtime().instantiate(Box::new(SimBackend::new(sim.clone())), allow, None, &Limits::default()).expect("instantiate")
}

/// A valid config (the simulator's accounts, 3 days of insights).
fn good_config() -> Value {
    let sim = sim();
    let s = sim.lock().expect("simulator lock");
    sample_config(&s, 3)
}

/// A valid configured catalog of `ads` and `ads_insights`.
fn good_catalog() -> Value {
    let sim = sim();
    let discovered = guest(&sim).discover(&good_config().to_string()).expect("discover");
    catalog_from(&discovered, &["ads", "ads_insights"]).expect("catalog")
}

/// One bad input: which document is bad, the three documents, and what the message must say.
struct Case {
    name: &'static str,
    config: String,
    catalog: String,
    state: Option<String>,
    expect: &'static str,
}

fn with_config(name: &'static str, edit: impl FnOnce(&mut Value), expect: &'static str) -> Case {
    let mut c = good_config();
    edit(&mut c);
    Case { name, config: c.to_string(), catalog: good_catalog().to_string(), state: None, expect }
}

fn raw_config(name: &'static str, text: &str, expect: &'static str) -> Case {
    Case { name, config: text.to_string(), catalog: good_catalog().to_string(), state: None, expect }
}

fn raw_catalog(name: &'static str, text: &str, expect: &'static str) -> Case {
    Case { name, config: good_config().to_string(), catalog: text.to_string(), state: None, expect }
}

fn with_catalog(name: &'static str, edit: impl FnOnce(&mut Value), expect: &'static str) -> Case {
    let mut c = good_catalog();
    edit(&mut c);
    raw_catalog(name, &c.to_string(), expect)
}

fn raw_state(name: &'static str, text: &str, expect: &'static str) -> Case {
    Case {
        name,
        config: good_config().to_string(),
        catalog: good_catalog().to_string(),
        state: Some(text.to_string()),
        expect,
    }
}

fn remove(v: &mut Value, key: &str) {
    v.as_object_mut().expect("an object").remove(key);
}

fn custom(v: &mut Value, insights: Value) {
    v["custom_insights"] = insights;
}

fn cases() -> Vec<Case> {
    let ok_custom = json!({"name": "Mine", "fields": ["impressions"]});
    vec![
        // Configs.
        raw_config("config is not JSON", "{account_ids: [1", "config: not valid JSON"),
        raw_config("config is a list", "[1, 2]", "config: expected a JSON object"),
        raw_config("config is a string", "\"hello\"", "config: expected a JSON object"),
        raw_config("config is null", "null", "config: expected a JSON object"),
        raw_config("config is empty", "", "config: not valid JSON"),
        // A config without account_ids (or with an empty list) discovers its accounts: not bad.
        with_config("account_ids a number", |c| c["account_ids"] = json!(123), "account_ids: expected a list"),
        with_config("account_ids holds a bad id", |c| c["account_ids"] = json!(["12a"]), "account_ids[0]"),
        with_config(
            "account_ids a string",
            |c| c["account_ids"] = json!("123"),
            "account_ids: expected a list of strings",
        ),
        with_config("account id a number", |c| c["account_ids"] = json!([123]), "account_ids[0]: expected a string"),
        with_config(
            "account id not numeric",
            |c| c["account_ids"] = json!(["12a"]),
            "account_ids[0]: '12a' is not an ad account id",
        ),
        with_config("credentials missing", |c| remove(c, "credentials"), "credentials: missing"),
        with_config("credentials a string", |c| c["credentials"] = json!("EAAB"), "credentials: expected an object"),
        with_config(
            "access token empty",
            |c| c["credentials"]["access_token"] = json!("  "),
            "credentials.access_token: missing",
        ),
        with_config(
            "auth type unknown",
            |c| c["credentials"]["auth_type"] = json!("OAuth"),
            "credentials.auth_type: 'OAuth' is not supported",
        ),
        with_config(
            "start_date not a date",
            |c| c["start_date"] = json!("2024-13-01"),
            "start_date: '2024-13-01' is not a date-time",
        ),
        with_config("start_date a number", |c| c["start_date"] = json!(20240101), "start_date: expected a string"),
        with_config(
            "start_date in the future",
            |c| c["start_date"] = json!("2099-01-01T00:00:00Z"),
            "start_date: 2099-01-01T00:00:00Z is in the future",
        ),
        with_config(
            "end_date before start_date",
            |c| c["end_date"] = json!("2020-01-01T00:00:00Z"),
            "end_date: must be on or after start_date",
        ),
        with_config(
            "end_date in the future",
            |c| c["end_date"] = json!("2099-01-01T00:00:00Z"),
            "end_date: 2099-01-01T00:00:00Z is in the future",
        ),
        with_config("page_size zero", |c| c["page_size"] = json!(0), "page_size: expected a whole number from 1 to"),
        with_config("page_size a string", |c| c["page_size"] = json!("100"), "page_size: expected a whole number"),
        with_config("page_size a fraction", |c| c["page_size"] = json!(2.5), "page_size: expected a whole number"),
        with_config(
            "lookback window too long",
            |c| c["insights_lookback_window"] = json!(99),
            "insights_lookback_window: expected a whole number from 1 to 28",
        ),
        with_config(
            "job timeout zero",
            |c| c["insights_job_timeout"] = json!(0),
            "insights_job_timeout: expected a whole number from 1 to 60",
        ),
        with_config(
            "ad status unknown",
            |c| c["ad_statuses"] = json!(["ACTIVE", "NOPE"]),
            "ad_statuses[1]: 'NOPE' is not supported",
        ),
        with_config(
            "campaign statuses not a list",
            |c| c["campaign_statuses"] = json!("ACTIVE"),
            "campaign_statuses: expected a list of strings",
        ),
        with_config(
            "action breakdown unknown",
            |c| c["default_ads_insights_action_breakdowns"] = json!(["nope"]),
            "default_ads_insights_action_breakdowns[0]: 'nope' is not supported",
        ),
        with_config(
            "api_version malformed",
            |c| c["api_version"] = json!("25"),
            "api_version: '25' is not a Graph API version",
        ),
        with_config(
            "fetch_thumbnail_images not a boolean",
            |c| c["fetch_thumbnail_images"] = json!("yes"),
            "fetch_thumbnail_images: expected true or false",
        ),
        with_config(
            "custom_insights an object",
            |c| custom(c, json!({"name": "x"})),
            "custom_insights: expected a list of objects",
        ),
        with_config(
            "custom insight not an object",
            |c| custom(c, json!(["Mine"])),
            "custom_insights[0]: expected an object",
        ),
        with_config(
            "custom insight without a name",
            |c| custom(c, json!([{"name": ""}])),
            "custom_insights[0].name: missing",
        ),
        with_config(
            "custom insight level unknown",
            |c| custom(c, json!([{"name": "Mine", "level": "region"}])),
            "custom_insights[0].level: 'region' is not a level",
        ),
        with_config(
            "custom insight field refused by Meta",
            |c| custom(c, json!([{"name": "Mine", "fields": ["unique_clicks"]}])),
            "custom_insights[0].fields[0]: 'unique_clicks' is not supported; Meta does not allow",
        ),
        with_config(
            "custom insight retired breakdown",
            |c| custom(c, json!([{"name": "Mine", "breakdowns": ["dma"]}])),
            "custom_insights[0].breakdowns[0]: 'dma' is not supported; Meta retired dma",
        ),
        with_config(
            "custom insight period unknown",
            |c| custom(c, json!([{"name": "Mine", "time_increment_period": "hourly"}])),
            "custom_insights[0].time_increment_period: 'hourly' is not a period",
        ),
        with_config(
            "custom insight increment and period",
            |c| custom(c, json!([{"name": "Mine", "time_increment": 7, "time_increment_period": "weekly"}])),
            "set either time_increment or time_increment_period",
        ),
        with_config(
            "custom insights with the same stream name",
            |c| custom(c, json!([ok_custom.clone(), ok_custom.clone()])),
            "custom_insights[1].name: 'Mine' makes the stream name 'custom_mine'",
        ),
        // Catalogs.
        raw_catalog("catalog is not JSON", "{\"streams\": [", "catalog: not valid JSON"),
        raw_catalog("catalog is empty", "", "catalog: not valid JSON"),
        raw_catalog("catalog is a list", "[]", "catalog: expected an object with a \"streams\" list"),
        raw_catalog("catalog has no streams", "{}", "catalog: expected an object with a \"streams\" list"),
        raw_catalog(
            "catalog streams is an object",
            "{\"streams\": {}}",
            "catalog: expected an object with a \"streams\" list",
        ),
        with_catalog(
            "catalog stream without a name",
            |c| remove(&mut c["streams"][0]["stream"], "name"),
            "catalog.streams[0].stream.name: missing",
        ),
        with_catalog(
            "catalog names an unknown stream",
            |c| c["streams"][0]["stream"]["name"] = json!("nope"),
            "catalog.streams[0]: stream 'nope' is not offered by this config",
        ),
        with_catalog(
            "catalog names an unconfigured custom insight",
            |c| c["streams"][0]["stream"]["name"] = json!("custom_mine"),
            "catalog.streams[0]: stream 'custom_mine' is not offered",
        ),
        with_catalog(
            "catalog lists a stream twice",
            |c| {
                let first = c["streams"][0].clone();
                c["streams"][1] = first;
            },
            "catalog.streams[1]: stream 'ads' is listed twice",
        ),
        with_catalog(
            "sync mode unknown",
            |c| c["streams"][0]["sync_mode"] = json!("sometimes"),
            "catalog.streams[0].sync_mode: 'sometimes' is not a sync mode",
        ),
        // States.
        raw_state("state is not JSON", "[{\"type\": \"STREAM\"", "state: not valid JSON"),
        raw_state("state is a number", "42", "state: expected a list of state messages or an object"),
        raw_state("state is a string", "\"yesterday\"", "state: expected a list of state messages or an object"),
        raw_state("state is a boolean", "true", "state: expected a list of state messages or an object"),
        raw_state("state is a list of non-messages", "[1, 2]", "state[0]: a STREAM state message without \"stream\""),
        raw_state(
            "state message of an unknown type",
            "[{\"type\": \"BOGUS\"}]",
            "state[0]: state message type 'BOGUS' is not supported",
        ),
        raw_state(
            "state message of a type that is not a string",
            "[{\"type\": 7, \"stream\": 1}]",
            "state[0]: stream.stream_descriptor.name is missing",
        ),
        raw_state(
            "stream state without a stream name",
            "[{\"type\": \"STREAM\", \"stream\": {\"stream_descriptor\": {}, \"stream_state\": {}}}]",
            "state[0]: stream.stream_descriptor.name is missing",
        ),
        raw_state(
            "second state message bad",
            "[{\"type\": \"STREAM\", \"stream\": {\"stream_descriptor\": {\"name\": \"ads\"}, \"stream_state\": {}}}, {\"type\": \"STREAM\"}]",
            "state[1]: a STREAM state message without \"stream\"",
        ),
        raw_state(
            "single state message of an unknown type",
            "{\"type\": \"PER_STREAM\", \"stream\": {}}",
            "state: state message type 'PER_STREAM' is not supported",
        ),
    ]
}

/// What one bad read gave: its messages, or the host's error.
fn read(case: &Case) -> Result<Vec<Message>, String> {
    let sim = sim();
    let mut g = guest(&sim);
    let mut messages = Vec::new();
    g.read(&case.config, &case.catalog, case.state.as_deref(), |batch| {
        messages.extend(batch);
        true
    })
    .map_err(|e| format!("{e:#}"))?;
    assert!(sim.lock().expect("simulator lock").call_log().is_empty(), "{}: the API was called", case.name);
    Ok(messages)
}

/// Why a bad read is not one config error naming the problem; `None` when it is.
fn judge(case: &Case) -> Option<String> {
    let messages = match read(case) {
        Ok(m) => m,
        Err(e) => return Some(format!("the guest trapped: {e}")),
    };
    let lines: Vec<String> = messages.iter().map(to_line).collect();
    let errors: Vec<&Message> = messages.iter().filter(|m| is_error_trace(m)).collect();
    if errors.len() != 1 {
        return Some(format!("{} error traces in {lines:#?}", errors.len()));
    }
    if !messages.last().is_some_and(is_error_trace) {
        return Some(format!("the error trace is not the last message: {lines:#?}"));
    }
    if messages.iter().any(|m| matches!(m, Message::Record(_) | Message::State(_))) {
        return Some(format!("records or state before the error: {lines:#?}"));
    }
    let line: Value = serde_json::from_str(&to_line(errors[0])).expect("the trace line is JSON");
    let error = &line["trace"]["error"];
    if error["failure_type"] != "config_error" {
        return Some(format!("failure_type {} in {error}", error["failure_type"]));
    }
    let message = error["message"].as_str().unwrap_or("");
    if !message.contains(case.expect) {
        return Some(format!("the message does not say {:?}: {message}", case.expect));
    }
    None
}

#[test]
fn every_bad_config_catalog_and_state_ends_with_one_config_error_naming_the_problem() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} bad inputs", cases.len());
    let wrong: Vec<String> = cases.iter().filter_map(|c| judge(c).map(|why| format!("{}: {why}", c.name))).collect();
    assert!(wrong.is_empty(), "{} of {} bad inputs misjudged:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    eprintln!("{} bad inputs, each one config_error naming the problem", cases.len());
}

#[test]
fn a_state_cursor_at_the_earliest_date_is_a_config_error_not_a_panic() {
    let config = good_config();
    let acct = config["account_ids"][0].as_str().expect("an account").to_string();
    let state = json!({"ads_insights": {acct: {"date_start": "-262143-01-01"}, "time_increment": 1}});
    let case = Case {
        name: "insights cursor at the earliest date",
        config: config.to_string(),
        catalog: good_catalog().to_string(),
        state: Some(state.to_string()),
        expect: "date_start",
    };
    if let Some(why) = judge(&case) {
        panic!("{}: {why}", case.name);
    }
}

#[test]
fn the_cli_exits_1_with_one_config_error_line_for_bad_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let picks = [
        "config is not JSON",
        "account_ids holds a bad id",
        "start_date not a date",
        "catalog names an unknown stream",
        "catalog lists a stream twice",
        "state is a number",
        "state message of an unknown type",
    ];
    let cases: Vec<Case> = cases().into_iter().filter(|c| picks.contains(&c.name)).collect();
    assert_eq!(cases.len(), picks.len());
    for case in &cases {
        let path = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write input");
            p
        };
        let config = path("config.json", &case.config);
        let catalog = path("catalog.json", &case.catalog);
        let state = path("state.json", case.state.as_deref().unwrap_or("[]"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
            .args(["--simulator", "calm", "read", "--config"])
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            .arg("--state")
            .arg(&state)
            .output()
            .expect("run host-test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: stdout {stdout}\nstderr {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let errors: Vec<Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "TRACE" && v["trace"]["type"] == "ERROR")
            .collect();
        assert_eq!(errors.len(), 1, "{}: {stdout}", case.name);
        assert_eq!(errors[0]["trace"]["error"]["failure_type"], "config_error", "{}", case.name);
        let message = errors[0]["trace"]["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(case.expect), "{}: {message}", case.name);
    }
}
