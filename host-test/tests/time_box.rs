//! The time box from `host-test read` (config `max_duration_seconds`), through the component in
//! wasmtime, against `host-test simulate` over loopback on the real clock: each read stops at its
//! budget as a success with every stream's STATE last, and a chain of reads, each given the
//! states of those before, yields the records and final state of one uninterrupted read.
//! The report job of the first read is polled by the next, not created again.

mod common;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_host-test");
const STREAMS: [&str; 4] = ["ad_account", "campaigns", "ads", "ads_insights"];

/// A simulator over loopback, killed when dropped.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    /// A fresh world that starts at `start_ms`: two servers given the same start serve the same.
    fn start(start_ms: i64) -> Sim {
        let mut child = Command::new(EXE)
            .args(["simulate", "--port", "0", "--clock", "virtual", "--job-duration-ms", "0"])
            .args(["--latency-ms", "100", "--start-time-ms", &start_ms.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .expect("host-test simulate");
        let mut first = String::new();
        BufReader::new(child.stderr.take().expect("stderr")).read_line(&mut first).expect("a line");
        let url = first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("the address");
        Sim { url: url.to_string(), child }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_test(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(EXE).args(args).current_dir(dir).output().expect("host-test runs");
    assert!(out.status.success(), "host-test {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Writes config.json (with `extra`) and catalog.json (discovered from the simulator at `url`)
/// into `dir`.
fn inputs(dir: &Path, url: &str, start_ms: i64, extra: &Value) {
    let start = chrono::DateTime::from_timestamp_millis(start_ms).expect("instant") - chrono::Duration::days(2);
    let mut config = json!({
        "account_ids": ["1000000000000001", "1000000000000002"],
        "credentials": {"auth_type": "Service", "access_token": "sim-token"},
        "start_date": start.format("%Y-%m-%dT00:00:00Z").to_string(),
        "max_concurrent_requests": 2,
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut config, extra) {
        c.extend(e.clone());
    }
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
    let out = host_test(dir, &["--graph-url", url, "discover", "--config", "config.json"]);
    let catalog = common::configured_catalog(&String::from_utf8_lossy(&out.stdout), &STREAMS);
    std::fs::write(dir.join("catalog.json"), catalog.to_string()).expect("catalog");
}

/// One read's lines, and how many report jobs it created (from its recording).
fn read(dir: &Path, url: &str, state: bool) -> (Vec<Value>, usize) {
    let mut args = vec!["--graph-url", url, "read", "--config", "config.json", "--catalog", "catalog.json"];
    if state {
        args.extend(["--state", "state.json"]);
    }
    args.extend(["--output", "out.jsonl", "--record", "rec.jsonl"]);
    host_test(dir, &args);
    let text = std::fs::read_to_string(dir.join("out.jsonl")).expect("output");
    let lines = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let recording = std::fs::read_to_string(dir.join("rec.jsonl")).expect("recording");
    let created = recording
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["type"] == "start" && e["method"] == "POST" && e["url"].as_str().is_some_and(|u| u.ends_with("/insights"))
        })
        .count();
    (lines, created)
}

/// Records (stream and data) and the last state of each stream.
fn take(lines: &[Value], records: &mut Vec<String>, states: &mut BTreeMap<String, Value>) {
    for m in lines {
        match m["type"].as_str() {
            Some("RECORD") => records.push(json!([m["record"]["stream"], m["record"]["data"]]).to_string()),
            Some("STATE") => {
                let s = &m["state"]["stream"];
                states.insert(s["stream_descriptor"]["name"].as_str().expect("name").into(), s["stream_state"].clone());
            }
            _ => {}
        }
    }
}

fn budget_reached(lines: &[Value]) -> bool {
    lines
        .iter()
        .any(|m| m["type"] == "LOG" && m["log"]["message"].as_str().is_some_and(|t| t.contains("time budget reached")))
}

#[test]
fn reads_time_boxed_at_one_second_chain_into_one_full_read_and_poll_the_report_they_left() {
    let start_ms = chrono::Utc::now().timestamp_millis();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();

    let reference = Sim::start(start_ms);
    inputs(d, &reference.url, start_ms, &json!({}));
    let (full, want_created) = read(d, &reference.url, false);
    assert!(!budget_reached(&full));
    let (mut want_records, mut want_states) = (Vec::new(), BTreeMap::new());
    take(&full, &mut want_records, &mut want_states);
    drop(reference);

    // The connector polls a new report job after 5 s at the earliest: a 1 s budget stops the
    // first read with its job created and not yet polled.
    let chained = Sim::start(start_ms);
    inputs(d, &chained.url, start_ms, &json!({"max_duration_seconds": 1}));
    let (mut records, mut states) = (Vec::new(), BTreeMap::new());
    let mut reads = 0;
    let mut job_creations = 0;
    loop {
        let state: Vec<Value> = states
            .iter()
            .map(|(s, v)| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": s}, "stream_state": v}}))
            .collect();
        std::fs::write(d.join("state.json"), Value::Array(state).to_string()).expect("state");
        let (lines, created) = read(d, &chained.url, reads > 0);
        reads += 1;
        job_creations += created;
        assert!(lines.iter().all(|m| m["trace"]["type"] != "ERROR"), "read {reads} failed");
        take(&lines, &mut records, &mut states);
        if !budget_reached(&lines) {
            break;
        }
        // Every stream's STATE, then the closing line: everything emitted is covered.
        let n = lines.len();
        assert!(lines[n - 1]["log"]["message"].as_str().is_some_and(|m| m.contains("resume with the last state")));
        assert_eq!(lines[n - 2]["type"], "STATE", "the STATEs come last");
        assert!(reads < 12, "no end after {reads} reads");
    }
    assert!(reads >= 2, "a 1 s budget cut the read");
    assert_eq!(job_creations, want_created, "report jobs created over the chain, against the full read's");
    assert!(want_created > 0);
    let final_state: BTreeMap<String, Value> = states.into_iter().filter(|(_, v)| v != &json!({})).collect();
    assert!(!serde_json::to_string(&final_state).expect("json").contains("sfm_resume"));
    assert_eq!(final_state, want_states, "the final state");
    let distinct: BTreeSet<&String> = records.iter().collect();
    assert_eq!(distinct, want_records.iter().collect::<BTreeSet<_>>(), "the records");
}
