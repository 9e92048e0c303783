//! Account discovery end to end, through the component on the in-process simulator's `agency`
//! world: four accounts listed by `/me/adaccounts`, the third of which the token may no longer
//! read and the fourth closed. A config without `account_ids` reads the two it can, skips the
//! third with one WARN and keeps its state; naming the third fails its streams as before.

mod common;

use common::runtime;
use graph_sim::SimConfig;
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{LogLevel, Message, Status};
use host_test::truth::{catalog_keys, record_key, sim_at, sync_truth};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const READABLE: [&str; 2] = ["1000000000000001", "1000000000000002"];
const REVOKED: &str = "1000000000000003";
const CLOSED: &str = "1000000000000004";
const STREAMS: [&str; 4] = ["ad_account", "campaigns", "ads", "ads_insights"];

fn agency() -> SimHarness {
    SimHarness::new(runtime().clone(), SimConfig::preset("agency").expect("agency is a preset"))
}

/// The demo's config over the simulator's whole history, without `account_ids`.
fn discovering_config(harness: &SimHarness) -> Value {
    let sim = harness.sim.lock().expect("simulator lock");
    let mut config = sample_config(&sim, i64::from(sim.config().history_days));
    config.as_object_mut().expect("config object").remove("account_ids");
    config
}

fn logs(messages: &[Message], level: LogLevel) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Log(l) if l.level == level => Some(l.message.clone()),
            _ => None,
        })
        .collect()
}

/// Every message of a read of `config`, given `state`.
fn read(harness: &SimHarness, config: &Value, catalog: &Value, state: Option<&Value>) -> Vec<Message> {
    let mut messages = Vec::new();
    let state = state.map(Value::to_string);
    harness
        .guest()
        .expect("instantiate")
        .read(&config.to_string(), &catalog.to_string(), state.as_deref(), |batch| {
            messages.extend(batch);
            true
        })
        .expect("read");
    messages
}

#[test]
fn check_and_discover_say_which_accounts_a_discovered_sync_reads() {
    let harness = agency();
    let config = discovering_config(&harness).to_string();
    let mut guest = harness.guest().expect("instantiate");
    let checked = guest.check(&config).expect("check");
    let status = checked.iter().find_map(|m| match m {
        Message::ConnectionStatus(c) => Some(c.status),
        _ => None,
    });
    assert_eq!(status, Some(Status::Succeeded), "{}", checked.iter().map(to_line).collect::<Vec<_>>().join("\n"));
    let expected = format!(
        "account discovery: the token reaches 4 ad account(s); 3 active, read: {}, {}, {REVOKED}; 1 not active, not read: {CLOSED} (CLOSED)",
        READABLE[0], READABLE[1]
    );
    // The revoked account is active in the listing: only a read can tell the token may not read it.
    let says = |messages: &[Message]| logs(messages, LogLevel::Info).iter().any(|l| l.contains(&expected));
    assert!(says(&checked), "check: {:?}", logs(&checked, LogLevel::Info));
    let discovered = guest.discover(&config).expect("discover");
    assert!(says(&discovered), "discover: {:?}", logs(&discovered, LogLevel::Info));
    assert!(catalog_from(&discovered, &STREAMS).is_ok(), "discover still gives the catalog");
}

#[test]
fn a_discovered_sync_reads_every_readable_account_and_skips_the_unreadable_one_with_one_warn() {
    let harness = agency();
    let config = discovering_config(&harness);
    let discovered = harness.guest().expect("instantiate").discover(&config.to_string()).expect("discover");
    let catalog = catalog_from(&discovered, &STREAMS).expect("catalog");
    // The revoked account's campaigns state from an earlier sync, which must come back unchanged.
    let kept = json!({"updated_time": "2026-06-01T00:00:00+0000", "filter_statuses": []});
    let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "campaigns"}, "stream_state": {REVOKED: kept}}}]);
    let start = harness.sim.lock().expect("simulator lock").now_ms();
    let messages = read(&harness, &config, &catalog, Some(&state));
    let end = harness.sim.lock().expect("simulator lock").now_ms();

    let errors: Vec<String> = messages.iter().filter(|m| is_error_trace(m)).map(to_line).collect();
    assert!(errors.is_empty(), "the sync failed: {errors:?}");
    let warns = logs(&messages, LogLevel::Warn);
    let about_revoked: Vec<&String> = warns.iter().filter(|w| w.contains(REVOKED)).collect();
    assert_eq!(about_revoked.len(), 1, "one WARN for the unreadable account: {warns:?}");
    assert!(about_revoked[0].contains("skipped"), "{}", about_revoked[0]);
    assert!(logs(&messages, LogLevel::Error).is_empty(), "no ERROR line: {:?}", logs(&messages, LogLevel::Error));
    let closing = logs(&messages, LogLevel::Info);
    assert!(
        closing.iter().any(|l| l.starts_with("skipped 1 discovered ad account(s)") && l.contains(REVOKED)),
        "the closing summary names it: {closing:?}"
    );

    // Every readable account's records, as the ground truth has them, and no other account's.
    let mut read_keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let pks = catalog_keys(&catalog);
    for m in &messages {
        if let Message::Record(r) = m {
            let data: Value = serde_json::from_str(&r.data).expect("record JSON");
            let account = data["account_id"].as_str().unwrap_or_default().trim_start_matches("act_").to_string();
            assert!(READABLE.contains(&account.as_str()), "{} record of account {account}", r.stream);
            read_keys.entry(r.stream.clone()).or_default().insert(record_key(&pks[&r.stream], &data));
        }
    }
    let cfg = harness.sim.lock().expect("simulator lock").config().clone();
    let truth = |at| sync_truth(&sim_at(&cfg, at), &config, &catalog, start).expect("truth");
    let (before, after) = (truth(start), truth(end));
    for stream in STREAMS {
        let got = read_keys.get(stream).cloned().unwrap_or_default();
        let (b, a): (BTreeSet<String>, BTreeSet<String>) =
            (before[stream].iter().cloned().collect(), after[stream].iter().cloned().collect());
        assert!(!b.is_empty(), "{stream}: the truth has records");
        let missing: Vec<&String> = b.intersection(&a).filter(|k| !got.contains(*k)).collect();
        let extra: Vec<&String> = got.iter().filter(|k| !b.contains(*k) && !a.contains(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{stream}: missing {missing:?}, extra {extra:?}");
    }

    let last_campaigns_state = messages
        .iter()
        .rev()
        .find_map(|m| match m {
            Message::State(s) => {
                let v: Value = serde_json::from_str(s).ok()?;
                (v["stream"]["stream_descriptor"]["name"] == "campaigns").then(|| v["stream"]["stream_state"].clone())
            }
            _ => None,
        })
        .expect("a campaigns STATE");
    assert_eq!(last_campaigns_state[REVOKED], kept, "the skipped account's state is kept");
    for id in READABLE {
        assert!(last_campaigns_state[id].is_object(), "{id} has a cursor: {last_campaigns_state}");
    }
}

#[test]
fn naming_the_unreadable_account_fails_its_streams_as_before() {
    let harness = agency();
    let mut config = discovering_config(&harness);
    config["account_ids"] = json!([READABLE[0], REVOKED]);
    let discovered = harness.guest().expect("instantiate").discover(&config.to_string()).expect("discover");
    let catalog = catalog_from(&discovered, &STREAMS).expect("catalog");
    let messages = read(&harness, &config, &catalog, None);
    let errors: Vec<String> = messages.iter().filter(|m| is_error_trace(m)).map(to_line).collect();
    assert_eq!(errors.len(), 1, "one error trace: {errors:?}");
    assert!(errors[0].contains(REVOKED) && errors[0].contains("permission"), "{}", errors[0]);
    for stream in STREAMS {
        assert!(errors[0].contains(stream), "{stream} is named as not synced: {}", errors[0]);
    }
}

#[test]
fn the_cli_exits_0_for_a_discovered_sync_and_1_when_the_unreadable_account_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let harness = agency();
    let config = discovering_config(&harness);
    let discovered = harness.guest().expect("instantiate").discover(&config.to_string()).expect("discover");
    let catalog = catalog_from(&discovered, &["campaigns"]).expect("catalog");
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, catalog.to_string()).expect("write catalog");
    let mut named = config.clone();
    named["account_ids"] = json!([REVOKED]);
    for (config, code) in [(config, 0), (named, 1)] {
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string()).expect("write config");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
            .args(["--simulator", "agency", "read", "--config"])
            .arg(&config_path)
            .arg("--catalog")
            .arg(&catalog_path)
            .output()
            .expect("run host-test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{config}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    }
}
