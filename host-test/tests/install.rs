//! The CLI works wherever it is copied: it carries its component and caches the compiled copy
//! in the user's cache folder, so no path into the checkout is needed.

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn run(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(exe)
        .args(args)
        .current_dir(dir)
        .env_remove("SFM_COMPONENT")
        .output()
        .expect("the copied host-test runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn messages(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn a_copy_of_the_cli_outside_the_checkout_runs_spec_and_a_read_with_no_component_path() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let exe = dir.path().join("host-test");
    std::fs::copy(env!("CARGO_BIN_EXE_host-test"), &exe).expect("copy the CLI");
    assert!(!dir.path().join("source_facebook_marketing.wasm").exists());

    let spec = messages(&run(&exe, dir.path(), &["spec"]));
    assert_eq!(spec.len(), 1);
    assert_eq!(spec[0]["type"], "SPEC");

    // The in-process simulator's first two accounts (seed 1) and its token.
    let config = json!({
        "account_ids": ["1000000000000001", "1000000000000002"],
        "credentials": {"auth_type": "Service", "access_token": "sim-token"},
        "start_date": "2026-06-01T00:00:00Z",
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let discovered = messages(&run(&exe, dir.path(), &["--simulator", "calm", "discover", "--config", "config.json"]));
    let streams: Vec<Value> =
        discovered.iter().find(|m| m["type"] == "CATALOG").expect("a catalog")["catalog"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == "campaigns" || s["name"] == "ads_insights")
            .map(|s| json!({"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "append"}))
            .collect();
    assert_eq!(streams.len(), 2);
    std::fs::write(dir.path().join("catalog.json"), json!({"streams": streams}).to_string()).unwrap();

    let read = messages(&run(
        &exe,
        dir.path(),
        &["--simulator", "calm", "read", "--config", "config.json", "--catalog", "catalog.json"],
    ));
    let records = |s: &str| read.iter().filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == s).count();
    assert!(
        records("campaigns") > 0 && records("ads_insights") > 0,
        "{} {}",
        records("campaigns"),
        records("ads_insights")
    );
    assert!(read.iter().all(|m| !(m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")));
}
