//! The example host (`examples/embed.rs`, built by `cargo test`) syncs against the simulator
//! served by `host-test simulate` over loopback.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// target/<profile>/deps/<this test> -> target/<profile>/<name>
fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    profile_dir.join(name)
}

#[test]
fn the_example_host_reads_campaigns_and_insights_from_the_simulator() {
    let example = built("examples/embed");
    let host_test = built("host-test");
    assert!(example.exists(), "{} is built by cargo test", example.display());
    assert!(host_test.exists(), "{} is missing: cargo build -p host-test", host_test.display());
    let component = built("../wasm32-wasip2/release/source_facebook_marketing.wasm");
    assert!(
        component.exists(),
        "build the component first: cargo build --release --target wasm32-wasip2 -p source-facebook-marketing"
    );

    let mut sim = Command::new(&host_test)
        .args(["simulate", "--port", "0", "--clock", "virtual", "--job-duration-ms", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("host-test simulate starts");
    let mut first = String::new();
    BufReader::new(sim.stderr.take().unwrap()).read_line(&mut first).unwrap();
    let origin =
        first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("the address").to_string();

    let dir = tempfile_dir();
    let config = json!({
        "account_ids": ["1000000000000001"],
        "credentials": {"auth_type": "Service", "access_token": "sim-token"},
        "start_date": "2026-06-10T00:00:00Z",
    });
    let catalog = json!({"streams": [
        {"stream": {"name": "campaigns", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"},
        {"stream": {"name": "ads_insights", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "append"},
    ]});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("catalog.json"), catalog.to_string()).unwrap();
    let out = Command::new(&example)
        .arg(&component)
        .arg(dir.join("config.json"))
        .arg(dir.join("catalog.json"))
        .arg(&origin)
        .output()
        .expect("the example runs");
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let messages: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let records = |s: &str| messages.iter().filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == s).count();
    assert!(
        records("campaigns") > 0 && records("ads_insights") > 0,
        "{} {}",
        records("campaigns"),
        records("ads_insights")
    );
    assert!(messages.iter().all(|m| !(m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sfm-example-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
