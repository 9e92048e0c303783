//! The simulator over real loopback HTTP behaves as it does in-process.

mod common;

use graph_sim::{SimConfig, Simulator};
use host_test::backend::NetBackend;
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::runtime::{Allowlist, Limits, Message, Runtime};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn runtime() -> Runtime {
    common::runtime().clone()
}

fn sim_config() -> SimConfig {
    // Jobs finish at once: over HTTP the guest's sleeps cannot move the server's clock.
    SimConfig { job_duration_ms: 0, ..SimConfig::default() }
}

/// Record ids (or insight keys) per stream.
fn summarise(batches: &[Message]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in batches {
        if let Message::Record(r) = m {
            let v: serde_json::Value = serde_json::from_str(&r.data).unwrap();
            let key = match v["id"].as_str() {
                Some(id) => id.to_string(),
                None => format!("{}|{}|{}", v["date_start"], v["ad_id"], v["object_id"]),
            };
            out.entry(r.stream.clone()).or_default().push(key);
        }
    }
    for keys in out.values_mut() {
        keys.sort();
    }
    out
}

#[test]
fn a_read_over_loopback_http_equals_the_in_process_read() {
    let streams = ["ad_account", "campaigns", "ads", "ad_creatives", "activities", "ads_insights"];
    // In-process.
    let harness = SimHarness::new(runtime(), sim_config());
    let (config, start_ms) = {
        let sim = harness.sim.lock().unwrap();
        (sample_config(&sim, 3).to_string(), sim.now_ms())
    };
    let discovered = harness.guest().unwrap().discover(&config).unwrap();
    let catalog = catalog_from(&discovered, &streams).unwrap().to_string();
    let mut local = Vec::new();
    harness
        .guest()
        .unwrap()
        .read(&config, &catalog, None, |b| {
            local.extend(b);
            true
        })
        .unwrap();

    // Over HTTP, from a fresh simulator with the same seed.
    let server = host_test::server::Server::bind(0).unwrap();
    let port = server.port();
    let sim = Arc::new(Mutex::new(Simulator::new(sim_config())));
    let served = sim.clone();
    let handle = std::thread::spawn(move || host_test::server::serve(&server, served, Duration::ZERO, None, false));
    let allow = Allowlist { hosts: vec!["127.0.0.1".into()], suffixes: vec![] };
    let mut guest = runtime()
        .instantiate(
            Box::new(NetBackend::with_virtual_clock(start_ms)),
            allow,
            Some(format!("http://127.0.0.1:{port}")),
            &Limits::default(),
        )
        .unwrap();
    let mut remote = Vec::new();
    guest
        .read(&config, &catalog, None, |b| {
            remote.extend(b);
            true
        })
        .unwrap();
    drop(handle);

    let (l, r) = (summarise(&local), summarise(&remote));
    // Entity streams read only what changed since the start date three days ago.
    assert!(
        l.contains_key("ad_account") && l.contains_key("ads_insights") && l.contains_key("ad_creatives"),
        "{:?}",
        l.keys()
    );
    assert_eq!(l, r);
    assert!(remote.iter().all(|m| !host_test::output::is_error_trace(m)));
    assert!(sim.lock().unwrap().counters().requests.values().sum::<u64>() > 10);
}
