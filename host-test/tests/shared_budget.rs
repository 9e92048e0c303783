//! Shards back off together: two guests, each reading its own accounts, against one simulator
//! whose app-wide call budget is small. The app's usage (`x-app-usage`) and insights load
//! (`x-fb-ads-insights-throttle`'s `app_id_util_pct`) are the same for every process of the
//! app, and every answer carries them: each shard must pause from them, neither may fail, and
//! together they read everything. The budget is so small (40 calls an hour, each shard making
//! about 44) that each shard passes 85 % of it by its own calls, whatever the order the threads
//! run in; its 15 % of headroom is a few calls, so a call or two that were in flight when a
//! shard paused may still be refused, and are waited out and made again.
//!
//! The guests share the simulator and its virtual clock: each runs on a thread of its own,
//! starting its requests under ids tagged with the guest, and an answer that arrives while the
//! other guest waits is kept for its own guest. A pause moves the one clock for both.

mod common;

use common::runtime;
use graph_sim::{SimConfig, SimRequest, Simulator};
use host_test::backend::{Backend, Clock, HostCompletion, HostRequest, sim_outcome};
use host_test::demo::{catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{Allowlist, Limits, Message};
use host_test::truth::{catalog_keys, record_key, sim_at, sync_truth};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const STREAMS: [&str; 4] = ["campaigns", "ad_sets", "ads", "ads_insights"];
/// Guest tags sit above every id a guest uses (the component's ids stay far below 2^48).
const TAG_SHIFT: u32 = 48;

/// The simulator both guests use, and the answers that arrived for a guest not waiting.
struct Shared {
    sim: Simulator,
    held: BTreeMap<u64, Vec<HostCompletion>>,
}

/// One guest's view of the shared simulator.
struct ShardBackend {
    shared: Arc<Mutex<Shared>>,
    guest: u64,
    clock: Clock,
    /// Size caps of this guest's requests in flight.
    caps: BTreeMap<u64, u64>,
}

impl ShardBackend {
    fn sync_clock(&self, shared: &Shared) {
        self.clock.set(shared.sim.now_ms());
    }

    /// Takes what the simulator completed (up to `wait_ms` from now), handing each answer to
    /// its guest; this guest's come back.
    fn collect(&mut self, shared: &mut Shared, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        for (tag, out) in shared.sim.complete(wait_ms) {
            let (guest, id) = (tag >> TAG_SHIFT, tag & ((1 << TAG_SHIFT) - 1));
            let cap = if guest == self.guest { self.caps.remove(&id).unwrap_or(u64::MAX) } else { u64::MAX };
            shared.held.entry(guest).or_default().push((id, sim_outcome(out, cap)));
        }
        shared.held.remove(&self.guest).unwrap_or_default()
    }
}

impl Backend for ShardBackend {
    fn start(&mut self, id: u64, req: HostRequest) {
        let mut shared = self.shared.lock().expect("shared simulator");
        self.caps.insert(id, req.max_response_bytes);
        let tag = (self.guest << TAG_SHIFT) | id;
        shared.sim.start(tag, SimRequest { method: req.method, url: req.url, headers: req.headers, body: req.body });
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let deadline = wait_ms.map(|w| self.clock.now_ms() + w as i64);
        let arc = self.shared.clone();
        loop {
            let mut shared = arc.lock().expect("shared simulator");
            let held = shared.held.get(&self.guest).is_some_and(|h| !h.is_empty());
            let left = deadline.map(|d| u64::try_from(d - shared.sim.now_ms()).unwrap_or(0));
            let done = if held {
                shared.held.remove(&self.guest).unwrap_or_default()
            } else {
                self.collect(&mut shared, left)
            };
            self.sync_clock(&shared);
            // Done: answers of this guest, nothing of it in flight, or its wait is over.
            if !done.is_empty() || self.caps.is_empty() || deadline.is_some_and(|d| shared.sim.now_ms() >= d) {
                return done;
            }
            drop(shared);
            std::thread::yield_now();
        }
    }

    fn sleep(&mut self, ms: u64) {
        let mut shared = self.shared.lock().expect("shared simulator");
        let until = self.clock.now_ms() + ms as i64;
        let now = shared.sim.now_ms();
        if until > now {
            shared.sim.advance((until - now) as u64);
        }
        self.sync_clock(&shared);
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

/// What a shard's read gave.
struct ShardRead {
    records: BTreeMap<String, BTreeSet<String>>,
    errors: Vec<String>,
    pauses: u64,
}

fn read_shard(shared: Arc<Mutex<Shared>>, guest: u64, config: Value, catalog: Value) -> ShardRead {
    let now = shared.lock().expect("shared simulator").sim.now_ms();
    let backend = ShardBackend { shared, guest, clock: Clock::virtual_at(now), caps: BTreeMap::new() };
    let allow = Allowlist::for_sync(None, true).expect("allowlist");
    let mut g = runtime().instantiate(Box::new(backend), allow, None, &Limits::default()).expect("instantiate");
    let pks = catalog_keys(&catalog);
    let (mut records, mut errors, mut pauses) = (BTreeMap::<String, BTreeSet<String>>::new(), Vec::new(), 0);
    g.read_with_progress(
        &config.to_string(),
        &catalog.to_string(),
        None,
        |batch| {
            for m in &batch {
                match m {
                    Message::Record(r) => {
                        let data: Value = serde_json::from_str(&r.data).expect("record JSON");
                        records.entry(r.stream.clone()).or_default().insert(record_key(&pks[&r.stream], &data));
                    }
                    m if is_error_trace(m) => errors.push(to_line(m)),
                    _ => {}
                }
            }
            true
        },
        |p| pauses = p.pauses,
    )
    .expect("read");
    ShardRead { records, errors, pauses }
}

#[test]
fn two_shards_on_one_small_app_budget_both_pause_none_is_refused_and_nothing_is_lost() {
    let mut cfg = SimConfig { accounts: 4, ..SimConfig::default() };
    // The app's budget: about as many calls an hour as the two shards make in all, so that
    // together they pass 85 % of it; and report jobs that weigh on the app's insights load.
    cfg.limits.app_calls_per_hour = 40.0;
    cfg.limits.app_insights_load_per_job_pct = 30.0;
    let sim = Simulator::new(cfg.clone());
    let ids = sim.account_ids();
    let mut config = sample_config(&sim, 10);
    let start = sim.now_ms();
    let shared = Arc::new(Mutex::new(Shared { sim, held: BTreeMap::new() }));
    let catalog = {
        let allow = Allowlist::for_sync(None, true).expect("allowlist");
        let backend =
            ShardBackend { shared: shared.clone(), guest: 9, clock: Clock::virtual_at(start), caps: BTreeMap::new() };
        let mut g = runtime().instantiate(Box::new(backend), allow, None, &Limits::default()).expect("instantiate");
        catalog_from(&g.discover(&config.to_string()).expect("discover"), &STREAMS).expect("catalog")
    };

    let shards: Vec<_> = ids
        .chunks(2)
        .enumerate()
        .map(|(k, group)| {
            let (shared, catalog) = (shared.clone(), catalog.clone());
            let mut config = config.clone();
            config["account_ids"] = json!(group);
            std::thread::spawn(move || read_shard(shared, k as u64, config, catalog))
        })
        .collect();
    let reads: Vec<ShardRead> = shards.into_iter().map(|h| h.join().expect("shard thread")).collect();

    let shared = shared.lock().expect("shared simulator");
    let counters = shared.sim.counters();
    let pauses: Vec<u64> = reads.iter().map(|r| r.pauses).collect();
    eprintln!(
        "shards paused {pauses:?} times over {} virtual s; calls the app limit refused (each waited out, then made again): {}",
        (shared.sim.now_ms() - start) / 1000,
        counters.throttled_responses
    );

    for (k, r) in reads.iter().enumerate() {
        assert!(r.errors.is_empty(), "shard {k}: {:?}", r.errors);
        assert!(r.pauses > 0, "shard {k} paused from the app's usage");
    }
    let end = shared.sim.now_ms();
    config["account_ids"] = json!(ids);
    let truth = |at| sync_truth(&sim_at(&cfg, at), &config, &catalog, start).expect("truth");
    let (before, after) = (truth(start), truth(end));
    for stream in STREAMS {
        let got: BTreeSet<&String> = reads.iter().flat_map(|r| r.records.get(stream).into_iter().flatten()).collect();
        let missing: Vec<&String> =
            before[stream].iter().filter(|k| after[stream].contains(k) && !got.contains(k)).collect();
        assert!(!before[stream].is_empty(), "{stream}: the truth has records");
        assert!(missing.is_empty(), "{stream}: lost {missing:?}");
    }
}
