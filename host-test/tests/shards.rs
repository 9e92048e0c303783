//! One sync run as shards: the state of a first sync split by account (`sfm_host::state`), each
//! shard reading its accounts from its split on a simulator of its own, then the shards' states
//! merged, gives the same records and the same state as one process reading every account from
//! the whole state. On the `flaky` world, so each run meets its own faults on the way.

mod common;

use common::runtime;
use graph_sim::SimConfig;
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::Message;
use host_test::truth::{catalog_keys, record_key};
use serde_json::{Value, json};
use sfm_host::state::{self, Streams};
use std::collections::BTreeMap;

const STREAMS: [&str; 6] = ["ad_account", "campaigns", "ad_sets", "ads", "activities", "ads_insights"];
const ACCOUNTS: usize = 6;
const DAY_MS: i64 = 86_400_000;

/// The world at `start_ms`: six accounts, the `flaky` faults.
fn world(start_ms: i64) -> SimConfig {
    let mut cfg = SimConfig::preset("flaky").expect("flaky is a preset");
    cfg.accounts = ACCOUNTS;
    cfg.start_time_ms = start_ms;
    cfg
}

/// What one read gave: each stream's record keys (sorted, repeats kept) and its last state.
struct Read {
    keys: BTreeMap<String, Vec<String>>,
    state: Streams,
}

fn read(cfg: SimConfig, accounts: &[String], state: &Value) -> Read {
    let harness = SimHarness::new(runtime().clone(), cfg);
    let mut config = sample_config(&harness.sim.lock().expect("simulator lock"), 30);
    config["account_ids"] = json!(accounts);
    let discovered = harness.guest().expect("instantiate").discover(&config.to_string()).expect("discover");
    let catalog = catalog_from(&discovered, &STREAMS).expect("catalog");
    let pks = catalog_keys(&catalog);
    let mut messages = Vec::new();
    harness
        .guest()
        .expect("instantiate")
        .read(&config.to_string(), &catalog.to_string(), Some(&state.to_string()), |batch| {
            messages.extend(batch);
            true
        })
        .expect("read");
    let errors: Vec<String> = messages.iter().filter(|m| is_error_trace(m)).map(to_line).collect();
    assert!(errors.is_empty(), "accounts {accounts:?}: {errors:?}");
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last: BTreeMap<String, Value> = BTreeMap::new();
    for m in &messages {
        match m {
            Message::Record(r) => {
                let data: Value = serde_json::from_str(&r.data).expect("record JSON");
                keys.entry(r.stream.clone()).or_default().push(record_key(&pks[&r.stream], &data));
            }
            Message::State(s) => {
                let v: Value = serde_json::from_str(s).expect("state JSON");
                let name = v["stream"]["stream_descriptor"]["name"].as_str().expect("stream name").to_string();
                last.insert(name, v);
            }
            _ => {}
        }
    }
    for k in keys.values_mut() {
        k.sort();
    }
    let state = state::streams_of(&Value::Array(last.into_values().collect())).expect("the read's state");
    Read { keys, state }
}

#[test]
fn three_shards_and_a_merge_equal_one_process_in_records_and_state() {
    let first_start = SimConfig::default().start_time_ms;
    let ids: Vec<String> = (1..=ACCOUNTS).map(|i| (1_000_000_000_000_000u64 + i as u64).to_string()).collect();
    // A first sync, one process, leaves the state the second starts from.
    let first = read(world(first_start), &ids, &Value::Null);
    assert_eq!(first.state.len(), 5, "every incremental stream has state: {:?}", first.state.keys());

    // The second sync, a day later: one process, and three shards of two accounts each.
    let later = first_start + DAY_MS;
    let whole = state::to_messages(&first.state);
    let one = read(world(later), &ids, &whole);
    let mut shard_keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut shard_states = Vec::new();
    for (k, group) in ids.chunks(2).enumerate() {
        let split = state::split(&first.state, group).expect("split");
        let shard = read(world(later), group, &split);
        for (stream, keys) in shard.keys {
            shard_keys.entry(stream).or_default().extend(keys);
        }
        shard_states.push((format!("shard {k}"), shard.state));
    }
    for k in shard_keys.values_mut() {
        k.sort();
    }
    let merged = state::merge(&shard_states);
    assert!(merged.notes.is_empty(), "no account is in two shards: {:?}", merged.notes);

    assert!(one.keys.values().map(Vec::len).sum::<usize>() > 0, "the second sync read records");
    for stream in STREAMS {
        assert_eq!(shard_keys.get(stream), one.keys.get(stream), "{stream}: the same records");
    }
    assert_eq!(state::streams_of(&merged.state).expect("merged"), one.state, "the same state");
}

#[test]
fn the_state_commands_split_and_merge_files_and_say_what_a_merge_chose() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).expect("write");
        p
    };
    let host_test = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test")).args(args).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Airbyte's own form: full STATE messages, per-account entries.
    let airbyte = json!([
        {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "ads"},
            "stream_state": {"1": {"updated_time": "2026-06-01T00:00:00+0000", "filter_statuses": []},
                             "2": {"updated_time": "2026-06-05T00:00:00+0000", "filter_statuses": []}}}}},
    ]);
    let whole = write("whole.json", &airbyte);
    let (code, shard, err) =
        host_test(&["state".as_ref(), "split".as_ref(), whole.as_os_str(), "--accounts".as_ref(), "act_2".as_ref()]);
    assert_eq!(code, Some(0), "{err}");
    let shard: Value = serde_json::from_str(&shard).expect("JSON");
    assert_eq!(
        shard,
        json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ads"},
        "stream_state": {"2": {"updated_time": "2026-06-05T00:00:00+0000", "filter_statuses": []}}}}])
    );
    // Account 2 read again by a shard, to a later cursor: the merge keeps it and says so.
    let newer = write(
        "newer.json",
        &json!({"ads": {"2": {"updated_time": "2026-06-06T00:00:00+0000", "filter_statuses": []}}}),
    );
    let (code, merged, err) = host_test(&["state".as_ref(), "merge".as_ref(), whole.as_os_str(), newer.as_os_str()]);
    assert_eq!(code, Some(0), "{err}");
    let merged: Value = serde_json::from_str(&merged).expect("JSON");
    assert_eq!(merged[0]["stream"]["stream_state"]["2"]["updated_time"], "2026-06-06T00:00:00+0000");
    assert_eq!(merged[0]["stream"]["stream_state"]["1"]["updated_time"], "2026-06-01T00:00:00+0000");
    assert!(err.contains("stream ads, account 2:") && err.contains("kept") && err.contains("newer.json"), "{err}");
    let legacy = write("legacy.json", &json!({"ads": {"updated_time": "2026-06-01T00:00:00+0000"}}));
    let (code, _, err) =
        host_test(&["state".as_ref(), "split".as_ref(), legacy.as_os_str(), "--accounts".as_ref(), "1".as_ref()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("single-account state"), "{err}");
}
