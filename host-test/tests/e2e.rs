//! End to end: the built wasm component in wasmtime, served by the in-process simulator on a
//! virtual clock. Needs `cargo build --release --target wasm32-wasip2 -p source-facebook-marketing`
//! first (scripts/test.sh does it); no test reaches the network or sleeps for real.

mod common;

use common::runtime;
use graph_sim::{ENTITY_STREAMS, INSIGHT_STREAMS, SimConfig, Simulator};
use host_test::backend::SimBackend;
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{Allowlist, Limits, Message, Status};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The entity streams a read test selects: one per kind of listing (node, filtered edge, newest-first edge).
const ENTITY_READ_STREAMS: [&str; 5] = ["ad_account", "campaigns", "ad_sets", "ads", "images"];

fn calm_harness() -> SimHarness {
    let cfg = SimConfig::preset("calm").expect("calm is a preset");
    SimHarness::new(runtime().clone(), cfg)
}

/// The demo's config over the simulator's whole history, so that every object it made is in range.
fn sample_config_text(harness: &SimHarness) -> String {
    let sim = harness.sim.lock().expect("simulator lock");
    let days = i64::from(sim.config().history_days);
    sample_config(&sim, days).to_string()
}

fn account_ids(harness: &SimHarness) -> Vec<String> {
    harness.sim.lock().expect("simulator lock").account_ids()
}

fn config_with_accounts(harness: &SimHarness, ids: &[&str]) -> String {
    let mut config: Value = serde_json::from_str(&sample_config_text(harness)).expect("sample config is JSON");
    config["account_ids"] = json!(ids);
    config.to_string()
}

/// The one CONNECTION_STATUS among `messages`, failing the test unless there is exactly one.
fn connection_status(messages: &[Message]) -> (Status, Option<String>) {
    let statuses: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            Message::ConnectionStatus(c) => Some((c.status, c.message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.len(), 1, "expected one CONNECTION_STATUS, got {}", lines(messages));
    statuses.into_iter().next().expect("length checked above")
}

fn lines(messages: &[Message]) -> String {
    messages.iter().map(to_line).collect::<Vec<_>>().join("\n")
}

#[test]
fn spec_returns_one_spec_message() {
    let messages = calm_harness().guest().expect("instantiate").spec().expect("spec");
    assert_eq!(messages.len(), 1, "spec returned {}", lines(&messages));
    let Message::Spec(spec) = &messages[0] else { panic!("not a SPEC: {}", lines(&messages)) };
    let spec: Value = serde_json::from_str(spec).expect("the spec is JSON");
    assert!(spec["connectionSpecification"]["properties"]["account_ids"].is_object(), "spec: {spec}");
    let line: Value = serde_json::from_str(&to_line(&messages[0])).expect("the SPEC line is JSON");
    assert_eq!(line["type"], "SPEC");
}

#[test]
fn discover_lists_the_thirty_builtin_streams() {
    let harness = calm_harness();
    let messages = harness.guest().expect("instantiate").discover(&sample_config_text(&harness)).expect("discover");
    let catalogs: Vec<&String> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Catalog(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(catalogs.len(), 1, "discover returned {}", lines(&messages));
    let catalog: Value = serde_json::from_str(catalogs[0]).expect("the catalog is JSON");
    let mut names: Vec<&str> =
        catalog["streams"].as_array().expect("streams is a list").iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort_unstable();
    // Every stream Airbyte's connector offers without custom insights (31).
    let mut expected: Vec<&str> = ENTITY_STREAMS.iter().chain(INSIGHT_STREAMS.iter()).copied().collect();
    assert_eq!(expected.len(), 31);
    expected.sort_unstable();
    assert_eq!(names, expected);
}

#[test]
fn check_succeeds_with_the_simulators_account_ids() {
    let harness = calm_harness();
    let ids = account_ids(&harness);
    assert!(!ids.is_empty(), "the calm simulator has accounts");
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let messages = harness.guest().expect("instantiate").check(&config_with_accounts(&harness, &ids)).expect("check");
    let (status, message) = connection_status(&messages);
    assert_eq!(status, Status::Succeeded, "check failed: {message:?}");
}

#[test]
fn check_fails_naming_account_ids_for_an_unknown_account() {
    let harness = calm_harness();
    let unknown = "4242424242";
    assert!(!account_ids(&harness).iter().any(|id| id == unknown), "{unknown} must not be a simulator account");
    let messages =
        harness.guest().expect("instantiate").check(&config_with_accounts(&harness, &[unknown])).expect("check");
    let (status, message) = connection_status(&messages);
    assert_eq!(status, Status::Failed);
    let message = message.unwrap_or_default();
    assert!(message.contains("account_ids"), "the message should name account_ids: {message}");
    assert!(message.contains(unknown), "the message should name the account: {message}");
}

#[test]
fn guest_whose_allowlist_excludes_the_graph_host_gets_every_request_denied() {
    let harness = calm_harness();
    let config = sample_config_text(&harness);
    let sim = Arc::new(Mutex::new(Simulator::new(SimConfig::preset("calm").expect("calm is a preset"))));
    let allow = Allowlist { hosts: vec!["example.invalid".into()], suffixes: Vec::new() };
    let mut guest = runtime()
        .instantiate(Box::new(SimBackend::new(sim.clone())), allow, None, &Limits::default())
        .expect("instantiate");
    let messages = guest.check(&config).expect("check");
    let (status, message) = connection_status(&messages);
    assert_eq!(status, Status::Failed, "check passed without reaching the API: {message:?}");
    let state = guest.state();
    assert!(!state.denied.is_empty(), "no request was denied");
    assert!(state.denied.iter().all(|h| h == "graph.facebook.com"), "denied: {:?}", state.denied);
    assert_eq!(state.requests, 0, "a request got past the allowlist");
    assert!(sim.lock().expect("simulator lock").call_log().is_empty(), "the simulator saw a request");
}

#[test]
fn read_of_entity_streams_emits_records_for_each_without_an_error_trace() {
    let harness = calm_harness();
    let config = sample_config_text(&harness);
    let discovered = harness.guest().expect("instantiate").discover(&config).expect("discover");
    let catalog = catalog_from(&discovered, &ENTITY_READ_STREAMS).expect("configured catalog");
    assert_eq!(catalog["streams"].as_array().map(Vec::len), Some(ENTITY_READ_STREAMS.len()), "catalog: {catalog}");

    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut unparsable = Vec::new();
    let mut guest = harness.guest().expect("instantiate");
    guest
        .read(&config, &catalog.to_string(), None, |batch| {
            assert!(!batch.is_empty(), "next returned an empty batch");
            for m in &batch {
                let line = to_line(m);
                if serde_json::from_str::<Value>(&line).is_err() {
                    unparsable.push(line.clone());
                }
                match m {
                    Message::Record(r) => *records.entry(r.stream.clone()).or_default() += 1,
                    m if is_error_trace(m) => errors.push(line),
                    _ => {}
                }
            }
            true
        })
        .expect("read");
    assert!(errors.is_empty(), "the read failed:\n{}", errors.join("\n"));
    assert!(unparsable.is_empty(), "lines that are not JSON:\n{}", unparsable.join("\n"));
    for stream in ENTITY_READ_STREAMS {
        assert!(records.get(stream).copied().unwrap_or(0) > 0, "no records for {stream}; got {records:?}");
    }
    let other: Vec<&String> = records.keys().filter(|s| !ENTITY_READ_STREAMS.contains(&s.as_str())).collect();
    assert!(other.is_empty(), "records for streams not selected: {other:?}");
}

#[test]
fn a_reader_that_closes_stdout_early_stops_the_cli_quietly() {
    // `host-test --simulator calm discover | head -c 1`: the pipe closes after the first byte.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.json");
    let text = json!({
        "account_ids": ["1000000000000001"],
        "credentials": {"auth_type": "Service", "access_token": SimConfig::default().access_token},
    });
    std::fs::write(&config, text.to_string()).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["--simulator", "calm", "discover", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn host-test");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().expect("stdout"), &mut first).expect("a first byte");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// What was read is handed to the host before the connector waits: with a report job that takes
/// 60 s (virtual), the ad account read in the first second reaches the host long before the job
/// ends; and while the job runs the host keeps getting batches (empty ones
/// at least every 10 s of waiting) to show progress.
#[test]
fn records_read_in_the_first_second_reach_the_host_before_a_slow_report_ends() {
    let cfg = SimConfig { accounts: 1, job_duration_ms: 60_000, ..SimConfig::preset("calm").expect("calm") };
    let harness = SimHarness::new(runtime().clone(), cfg);
    let started = harness.sim.lock().expect("simulator").now_ms();
    let mut config: Value = serde_json::from_str(&sample_config_text(&harness)).expect("json");
    config["start_date"] = json!(
        chrono::DateTime::from_timestamp_millis(started - 2 * 86_400_000)
            .expect("a date")
            .format("%Y-%m-%dT00:00:00Z")
            .to_string()
    );
    let config = config.to_string();
    let discovered = harness.guest().expect("guest").discover(&config).expect("discover");
    let catalog = catalog_from(&discovered, &["ad_account", "ads_insights"]).expect("catalog").to_string();
    // For each batch: the virtual time it reached the host, and what it held.
    let mut batches: Vec<(i64, usize, bool, bool)> = Vec::new();
    let sim = harness.sim.clone();
    harness
        .guest()
        .expect("guest")
        .read(&config, &catalog, None, |batch| {
            let at = sim.lock().expect("simulator").now_ms() - started;
            let campaigns = batch.iter().any(|m| matches!(m, Message::Record(r) if r.stream == "ad_account"));
            let rows = batch.iter().any(|m| matches!(m, Message::Record(r) if r.stream == "ads_insights"));
            batches.push((at, batch.len(), campaigns, rows));
            true
        })
        .expect("read");
    let first_campaigns = batches.iter().find(|b| b.2).unwrap_or_else(|| panic!("the account was read: {batches:?}")).0;
    let first_rows = batches.iter().find(|b| b.3).expect("rows were read").0;
    assert!(first_campaigns < 1_000, "the account reached the host at {first_campaigns} ms: {batches:?}");
    assert!(first_rows >= 60_000, "the report took its minute: {first_rows} ms");
    // Through the minute of waiting, the host heard from the connector at least every 10 s.
    let during: Vec<i64> = batches.iter().map(|b| b.0).filter(|&t| t > first_campaigns && t < first_rows).collect();
    let mut gaps = during.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
    gaps.push(during.first().copied().unwrap_or(first_rows) - first_campaigns);
    assert!(during.len() >= 4, "batches while the job ran: {batches:?}");
    assert!(gaps.iter().all(|&g| g <= 10_100), "never more than 10 s of silence: {gaps:?}");
}
