//! Runs a whole sync natively against the in-process simulator and prints what it cost:
//! `cargo run --release --example sync_sim -- [days] [accounts] [ads_per_adset]`.
//! Used to profile the core without wasmtime in the way.

// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let days = arg(1, 30) as i64;
    let cfg = graph_sim::SimConfig {
        accounts: arg(2, 2) as usize,
        ads_per_adset: arg(3, 2) as usize,
        ..graph_sim::SimConfig::default()
    };
    let mut sim = graph_sim::Simulator::new(cfg);
    let config = common::config(&sim, days, json!({}));
    let catalog = common::catalog(&config, sim.now_ms(), &[]);
    let started = std::time::Instant::now();
    let out = common::read(&mut sim, &config, &catalog, None, None);
    let elapsed = started.elapsed();
    let records: usize = out.records.values().map(Vec::len).sum();
    let core = elapsed.saturating_sub(out.sim_time);
    println!(
        "records {records}, errors {}, wall {:.2} s (simulator {:.2} s), core + harness {:.1} us/record",
        out.errors.len(),
        elapsed.as_secs_f64(),
        out.sim_time.as_secs_f64(),
        core.as_secs_f64() * 1e6 / records.max(1) as f64
    );
}
