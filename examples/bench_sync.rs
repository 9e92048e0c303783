//! Request and time budget of a whole sync against the simulator, natively:
//! `cargo run --release --example bench_sync -- [accounts] [days] [ads_per_adset]`.
//!
//! Prints, per entity stream, the requests the fields-in-listing read made next to what a
//! two-step read (list ids, then fetch details in batches of 50) would need; and for insights
//! the requests by kind, report jobs, and the virtual duration against the shortest possible.

// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use graph_sim::RequestKind;
use serde_json::json;

const ENTITY: &[(&str, &str)] = &[
    ("campaigns", "campaigns"),
    ("ad_sets", "adsets"),
    ("ads", "ads"),
    ("ad_creatives", "adcreatives"),
    ("activities", "activities"),
    ("images", "adimages"),
    ("videos", "advideos"),
    ("custom_conversions", "customconversions"),
    ("custom_audiences", "customaudiences"),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (accounts, days, ads) = (arg(1, 3) as usize, arg(2, 30) as i64, arg(3, 4) as usize);
    let sim_cfg = graph_sim::SimConfig {
        accounts,
        ads_per_adset: ads,
        campaigns_per_account: 5,
        ..graph_sim::SimConfig::default()
    };
    let page = 100u64;

    // Entity streams, no start date: everything.
    let mut sim = graph_sim::Simulator::new(sim_cfg.clone());
    let mut config = common::config(&sim, days, json!({ "page_size": page }));
    config.as_object_mut().unwrap().remove("start_date");
    let names: Vec<&str> = ENTITY.iter().map(|(s, _)| *s).collect();
    let catalog = common::catalog(&config, sim.now_ms(), &names);
    let out = common::read(&mut sim, &config, &catalog, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    println!("entity streams, {accounts} accounts, page_size {page}");
    println!("{:<20} {:>8} {:>14} {:>16} {:>18}", "stream", "records", "requests", "two-step reqs", "two-step quota");
    for (stream, edge) in ENTITY {
        let n = out.count(stream) as u64;
        let made = sim.counters().of(&RequestKind::EdgeList(edge.to_string()));
        // Ids listing pages (at least one per account), then one batch call per 50 records;
        // every batch operation counts against the quota like a call.
        let id_pages = (accounts as u64).max(n.div_ceil(page));
        let two_step = id_pages + n.div_ceil(50);
        println!("{stream:<20} {n:>8} {made:>14} {two_step:>16} {:>18}", id_pages + n);
    }

    // Insights.
    let mut sim = graph_sim::Simulator::new(sim_cfg);
    let start = sim.now_ms();
    let config = common::config(&sim, days, json!({}));
    let catalog = common::catalog(&config, start, &["ads_insights"]);
    let out = common::read(&mut sim, &config, &catalog, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let c = sim.counters();
    println!();
    println!("ads_insights, {accounts} accounts x {days} days: {} records", out.count("ads_insights"));
    for (kind, n) in &c.requests {
        println!("  {:<30} {n:>8}", kind.to_string());
    }
    let summary = out
        .messages
        .iter()
        .find_map(|m| match m {
            source_facebook_marketing::protocol::Message::Log { message, .. } if message.contains("report jobs") => {
                Some(message.clone())
            }
            _ => None,
        })
        .unwrap_or_default();
    println!("  {summary}");
    let cfg = sim.config();
    let pages = c.of(&RequestKind::JobResults);
    let minimum = cfg.job_duration_ms + pages * cfg.latency_ms;
    let actual = (sim.now_ms() - start) as u64;
    println!(
        "  virtual duration {:.1} s; shortest possible {:.1} s (job time {:.1} s + {pages} result pages x {} ms); ratio {:.2}",
        actual as f64 / 1000.0,
        minimum as f64 / 1000.0,
        cfg.job_duration_ms as f64 / 1000.0,
        cfg.latency_ms,
        actual as f64 / minimum as f64
    );
}
