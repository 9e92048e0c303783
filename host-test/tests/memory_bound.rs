//! The guest's memory bound, driven at its limit, end to end through the component over
//! loopback: 32 requests in flight (the default), the first 32 listing answers padded to near
//! the whole cap (60 of 64 MiB: each passes its share of the in-flight budget and goes again
//! alone with the whole cap; without the budget, the host would hand the guest gigabytes at
//! once), and every other listing answer to just under its share (so that the host hands the
//! guest up to the whole budget at once).
//! Every record is read, as a sync of unpadded answers reads it, and the guest's memory stays
//! under the bound DESIGN.md states ("Memory") and the 512 MiB cap.

mod common;

use graph_sim::{SimConfig, Simulator};
use host_test::backend::NetBackend;
use host_test::demo::{catalog_from, sample_config};
use host_test::runtime::{Allowlist, Limits, Message};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the component's client allows in flight, and an answer's whole cap (the default
/// `response_size_limit_mb`): `IN_FLIGHT_BYTES` and 64 MiB.
const BUDGET: usize = 192 << 20;
const WHOLE_CAP: usize = 64 << 20;
/// A share of the budget at 32 requests in flight.
const SHARE: usize = BUDGET / 32;
/// Near the whole cap.
const NEAR_CAP: usize = 60 << 20;

const STREAMS: [&str; 6] = ["campaigns", "ad_sets", "ads", "ad_creatives", "custom_conversions", "images"];

fn cfg() -> SimConfig {
    SimConfig { accounts: 16, job_duration_ms: 0, ..SimConfig::default() }
}

/// Serves the simulator on loopback; with `pad`, listing answers are padded with spaces (the
/// first 32 to 60 MiB, the others to just under a share), generated as they are sent. Each
/// answer is held 200 ms, so that many complete together. Returns the port and the count of
/// padded answers.
fn serve(pad: bool) -> (u16, Arc<AtomicUsize>) {
    let server = Arc::new(common::loopback_server(0).expect("bind"));
    let port = server.server_addr().to_ip().expect("ip").port();
    let sim = Arc::new(Mutex::new(Simulator::new(cfg())));
    let padded = Arc::new(AtomicUsize::new(0));
    let count = padded.clone();
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let (sim, count) = (sim.clone(), count.clone());
            std::thread::spawn(move || {
                let url = request.url().to_string();
                let answer = sim.lock().expect("simulator").handle(&common::sim_request(&mut request));
                let Ok(r) = answer else { return drop(request) };
                let mut body = r.body;
                let listing = url.split('?').next().unwrap_or("").contains("/act_") && r.status == 200;
                // The answer less its closing brace, spaces, the brace.
                let mut spaces = 0;
                if pad && listing && body.last() == Some(&b'}') {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let size = if n < 32 { NEAR_CAP } else { SHARE - 4096 };
                    body.pop();
                    spaces = size.saturating_sub(body.len() + 1);
                }
                let len = body.len() + spaces + usize::from(pad && listing && spaces > 0);
                let tail: &[u8] = if spaces > 0 { b"}" } else { b"" };
                let reader = std::io::Cursor::new(body).chain(std::io::repeat(b' ').take(spaces as u64)).chain(tail);
                std::thread::sleep(Duration::from_millis(200));
                let headers = r
                    .headers
                    .iter()
                    .filter_map(|(k, v)| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok())
                    .collect();
                let _ = request.respond(tiny_http::Response::new(r.status.into(), headers, reader, Some(len), None));
            });
        }
    });
    (port, padded)
}

struct Run {
    ids: BTreeSet<String>,
    errors: Vec<String>,
    guest_peak: usize,
    padded: usize,
    peak_in_flight: usize,
}

fn sync(pad: bool) -> Run {
    let sim = Simulator::new(cfg());
    let config = sample_config(&sim, 400).to_string();
    let start_ms = sim.now_ms();
    let (port, padded) = serve(pad);
    let runtime = common::runtime();
    let guest = || {
        runtime
            .instantiate(
                Box::new(NetBackend::with_virtual_clock(start_ms)),
                Allowlist { hosts: vec!["127.0.0.1".into()], suffixes: vec![] },
                Some(format!("http://127.0.0.1:{port}")),
                &Limits::default(),
            )
            .expect("instantiate")
    };
    let discovered = guest().discover(&config).expect("discover");
    let catalog = catalog_from(&discovered, &STREAMS).expect("catalog").to_string();
    let mut g = guest();
    let mut run = Run { ids: BTreeSet::new(), errors: Vec::new(), guest_peak: 0, padded: 0, peak_in_flight: 0 };
    g.read(&config, &catalog, None, |batch| {
        for m in batch {
            match m {
                Message::Record(r) => {
                    let v: Value = serde_json::from_str(&r.data).expect("json");
                    let key = v["id"].as_str().or(v["hash"].as_str()).unwrap_or("").to_string();
                    run.ids.insert(format!("{}/{key}", r.stream));
                }
                Message::Trace(t) if t.contains("\"error\"") => run.errors.push(t),
                _ => {}
            }
        }
        true
    })
    .expect("the read ends normally");
    run.guest_peak = g.memory_peak();
    run.peak_in_flight = g.state().peak_in_flight;
    run.padded = padded.load(Ordering::SeqCst);
    run
}

#[test]
fn answers_at_the_in_flight_budget_and_past_a_share_are_read_whole_within_the_memory_bound() {
    let clean = sync(false);
    let full = sync(true);
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "memory bound: {} padded answers (32 of {:.0} MiB, the others {:.1} MiB), {} requests in flight at most; guest peak {:.1} MiB (clean sync {:.1} MiB)",
        full.padded,
        mib(NEAR_CAP),
        mib(SHARE - 4096),
        full.peak_in_flight,
        mib(full.guest_peak),
        mib(clean.guest_peak)
    );
    assert!(clean.errors.is_empty() && full.errors.is_empty(), "{:?} {:?}", clean.errors, full.errors);
    assert_eq!(full.ids, clean.ids, "every record read");
    assert!(full.padded >= 64, "the answers were padded: {}", full.padded);
    assert!(full.peak_in_flight >= 16, "many in flight: {}", full.peak_in_flight);
    // DESIGN.md: the answers in flight, one more copy of the largest, one object's tree (64
    // MiB), and the connector's own state (well under 64 MiB here).
    let bound = BUDGET + WHOLE_CAP + (64 << 20) + (64 << 20);
    assert!(
        full.guest_peak <= bound,
        "guest peak {:.1} MiB past the bound {:.1} MiB",
        mib(full.guest_peak),
        mib(bound)
    );
    assert!(full.guest_peak < 512 << 20);
}
