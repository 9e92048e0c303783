//! `host-test read --record` and `host-test replay`: a recorded sync replays byte for byte, a
//! changed request is named as the divergence, and no token reaches the recording.

mod common;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_host-test");

fn host_test(dir: &Path, args: &[&str]) -> Output {
    Command::new(EXE).args(args).current_dir(dir).output().expect("host-test runs")
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Writes config.json and catalog.json (the streams, incremental where offered) into `dir`.
fn inputs(dir: &Path, token: &str, streams: &[&str], graph: &[&str]) {
    let config = json!({
        "account_ids": ["1000000000000001", "1000000000000002"],
        "credentials": {"auth_type": "Service", "access_token": token},
        "start_date": "2026-06-08T00:00:00Z",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut args = graph.to_vec();
    args.extend(["discover", "--config", "config.json"]);
    let out = ok(host_test(dir, &args), "discover");
    let catalog = common::configured_catalog(&String::from_utf8_lossy(&out.stdout), streams);
    std::fs::write(dir.join("catalog.json"), catalog.to_string()).unwrap();
}

#[test]
fn a_sync_recorded_through_faults_replays_byte_for_byte_and_a_changed_request_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = ["--simulator", "flaky"];
    inputs(d, "sim-token", &["campaigns", "ads", "ads_insights"], &sim);
    let read = ["--simulator", "flaky", "read", "--config", "config.json", "--catalog", "catalog.json"];
    let mut args = read.to_vec();
    args.extend(["--output", "out.jsonl", "--record", "sync.rec.jsonl"]);
    ok(host_test(d, &args), "read --record");

    let recording = std::fs::read_to_string(d.join("sync.rec.jsonl")).unwrap();
    let entries: Vec<Value> = recording.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries[0]["type"], "recording");
    let answers: Vec<&Value> =
        entries.iter().filter(|e| e["type"] == "wait").flat_map(|e| e["completed"].as_array().unwrap()).collect();
    assert!(
        answers.iter().any(|a| a.get("error").is_some() || a["response"]["status"].as_u64() >= Some(500)),
        "faults were recorded"
    );
    assert!(entries.iter().any(|e| e["type"] == "clock") && entries.iter().any(|e| e["type"] == "sleep"));

    let replayed = ok(host_test(d, &["replay", "sync.rec.jsonl", "--output", "replayed.jsonl"]), "replay");
    assert!(String::from_utf8_lossy(&replayed.stderr).contains("byte-identical"));
    let (a, b) = (std::fs::read(d.join("out.jsonl")).unwrap(), std::fs::read(d.join("replayed.jsonl")).unwrap());
    assert!(!a.is_empty());
    assert!(a == b, "the replay's output differs from the recorded run's");

    // A connector that asks for something else: here the recording is changed instead.
    let changed_line =
        recording.lines().position(|l| l.contains("\"type\":\"start\"") && l.contains("/campaigns")).unwrap();
    let changed: Vec<String> = recording
        .lines()
        .enumerate()
        .map(|(i, l)| if i == changed_line { l.replacen("/campaigns", "/campaigns_v2", 1) } else { l.to_string() })
        .collect();
    std::fs::write(d.join("changed.rec.jsonl"), changed.join("\n") + "\n").unwrap();
    let diverged = host_test(d, &["replay", "changed.rec.jsonl", "--output", "diverged.jsonl"]);
    assert_eq!(diverged.status.code(), Some(1));
    let err = String::from_utf8_lossy(&diverged.stderr);
    assert!(err.contains(&format!("diverged at line {} of the recording", changed_line + 1)), "{err}");
    assert!(err.contains("expected:") && err.contains("/campaigns_v2") && err.contains("made:"), "{err}");
}

#[test]
fn a_recording_of_a_sync_with_a_canary_token_holds_it_nowhere() {
    const CANARY: &str = "EAAGrecordCANARY0123456789";
    let mut sim = Command::new(EXE)
        .args(["simulate", "--port", "0", "--clock", "virtual", "--job-duration-ms", "0", "--access-token", CANARY])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stderr.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("the address").to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let graph = ["--graph-url", url.as_str()];
    inputs(d, CANARY, &["ad_account", "campaigns", "ads"], &graph);
    let out = host_test(
        d,
        &[
            "--graph-url",
            &url,
            "read",
            "--config",
            "config.json",
            "--catalog",
            "catalog.json",
            "--output",
            "out.jsonl",
            "--record",
            "r.jsonl",
        ],
    );
    let _ = sim.kill();
    let _ = sim.wait();
    ok(out, "read --record");
    let recording = std::fs::read_to_string(d.join("r.jsonl")).unwrap();
    assert!(recording.lines().count() > 10 && recording.contains("\"type\":\"start\""));
    assert!(!recording.contains(CANARY), "the token is in the recording");
    assert!(!std::fs::read_to_string(d.join("out.jsonl")).unwrap().contains(CANARY));
    let replayed = ok(host_test(d, &["replay", "r.jsonl", "--output", "replayed.jsonl"]), "replay");
    assert!(String::from_utf8_lossy(&replayed.stderr).contains("byte-identical"));
    assert_eq!(std::fs::read(d.join("out.jsonl")).unwrap(), std::fs::read(d.join("replayed.jsonl")).unwrap());
}
