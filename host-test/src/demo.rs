//! `host-test demo`: a full sync of a sample config against the in-process simulator, on a
//! virtual clock, with a summary of what it took.

use crate::backend::SimBackend;
use crate::output::{is_error_trace, to_line};
use crate::runtime::{Allowlist, Limits, Message, Runtime};
use crate::server::WorldArgs;
use anyhow::{Context, Result};
use clap::Args;
use graph_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Where the protocol messages go.
    #[arg(long, default_value = "out/demo-messages.jsonl")]
    pub output: PathBuf,
    #[command(flatten)]
    pub world: WorldArgs,
    /// Days of insights to read (default 30; 3 with `--preset huge_account`, whose every
    /// breakdown report splits down to single ads: 30 days of it are ~100 000 requests).
    #[arg(long)]
    pub days: Option<i64>,
    /// Read only these streams (comma-separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub streams: Vec<String>,
}

/// A config for the simulator's world: every account, `days` of insights.
pub fn sample_config(sim: &Simulator, days: i64) -> Value {
    let now = chrono::DateTime::from_timestamp_millis(sim.now_ms()).unwrap_or_default();
    let start = (now - chrono::Duration::days(days)).format("%Y-%m-%dT00:00:00Z").to_string();
    json!({
        "account_ids": sim.account_ids(),
        "credentials": {"auth_type": "Service", "access_token": sim.config().access_token},
        "start_date": start,
    })
}

/// A configured catalog selecting `streams` (all when empty) from a CATALOG message.
pub fn catalog_from(discovered: &[Message], streams: &[&str]) -> Result<Value> {
    let catalog = discovered
        .iter()
        .find_map(|m| match m {
            Message::Catalog(c) => Some(c.clone()),
            _ => None,
        })
        .context("discover returned no catalog")?;
    let catalog: Value = serde_json::from_str(&catalog)?;
    let selected: Vec<Value> = catalog["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| streams.is_empty() || streams.contains(&s["name"].as_str().unwrap_or("")))
        .map(|s| {
            let incremental = s["supported_sync_modes"].as_array().is_some_and(|m| m.contains(&json!("incremental")));
            json!({"stream": s, "sync_mode": if incremental {"incremental"} else {"full_refresh"}, "destination_sync_mode": "append"})
        })
        .collect();
    Ok(json!({ "streams": selected }))
}

/// A runtime and an in-process simulator wired together.
pub struct SimHarness {
    pub runtime: Runtime,
    pub sim: Arc<Mutex<Simulator>>,
}

impl SimHarness {
    pub fn new(runtime: Runtime, cfg: SimConfig) -> Self {
        SimHarness { runtime, sim: Arc::new(Mutex::new(Simulator::new(cfg))) }
    }

    pub fn guest(&self) -> Result<crate::runtime::Guest> {
        let allow = Allowlist::for_sync(None, true).map_err(anyhow::Error::msg)?;
        self.runtime.instantiate(Box::new(SimBackend::new(self.sim.clone())), allow, None, &Limits::default())
    }
}

pub fn run(component: Option<&Path>, args: &DemoArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let runtime = crate::runtime::locate(component)?;
    let harness = SimHarness::new(runtime, args.world.sim_config()?);
    let (config, virtual_start) = {
        let sim = harness.sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?;
        let days = args.days.unwrap_or(if args.world.preset == "huge_account" { 3 } else { 30 });
        if args.days.is_none() && days != 30 {
            eprintln!("demo: {days} days of insights for preset {} (--days N to change)", args.world.preset);
        }
        (sample_config(&sim, days), sim.now_ms())
    };
    let config_text = config.to_string();
    let discovered = harness.guest()?.discover(&config_text)?;
    let streams: Vec<&str> = args.streams.iter().map(String::as_str).collect();
    let catalog = catalog_from(&discovered, &streams)?;
    if let Some(dir) = args.output.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?,
    );
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    let mut jobs = [0u64; 4];
    let mut failed = Vec::new();
    let mut total = 0u64;
    let mut guest = harness.guest()?;
    let mut io_error = None;
    let view = std::cell::RefCell::new(crate::progress::ProgressView::default());
    guest.read_with_progress(
        &config_text,
        &catalog.to_string(),
        None,
        |batch| {
            for m in &batch {
                match m {
                    Message::Record(r) => {
                        *records.entry(r.stream.clone()).or_default() += 1;
                        total += 1;
                    }
                    m if is_error_trace(m) => failed.push(to_line(m)),
                    Message::Log(l) => {
                        if let Some(tail) = l.message.split("report jobs: ").nth(1) {
                            let counts: Vec<u64> =
                                tail.split(", ").filter_map(|p| p.split(' ').next()?.parse().ok()).collect();
                            for (slot, n) in jobs.iter_mut().zip(counts) {
                                *slot += n;
                            }
                        }
                    }
                    _ => {}
                }
                if let Err(e) = writeln!(out, "{}", to_line(m)) {
                    io_error = Some(e);
                    return false;
                }
            }
            true
        },
        |p| view.borrow_mut().update(p),
    )?;
    view.borrow_mut().clear();
    if let Some(e) = io_error {
        return Err(e.into());
    }
    out.flush()?;
    let sim = harness.sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?;
    let virtual_secs = (sim.now_ms() - virtual_start) as f64 / 1000.0;
    println!("{:<55} {:>10}", "stream", "records");
    for (stream, n) in &records {
        println!("{stream:<55} {n:>10}");
    }
    println!("{:<55} {:>10}", "total", total);
    println!();
    let counters = sim.counters();
    println!("{:<40} {:>10}", "requests by kind (simulator)", "count");
    for (kind, n) in &counters.requests {
        println!("{:<40} {n:>10}", kind.to_string());
    }
    println!("{:<40} {:>10}", "http requests from the guest", guest.state().requests);
    println!();
    println!(
        "report jobs: {} started, {} read, {} restarted, {} split (simulator: {} created, {} failed, {} skipped, {} stuck)",
        jobs[0],
        jobs[1],
        jobs[2],
        jobs[3],
        counters.jobs_created,
        counters.jobs_failed,
        counters.jobs_skipped,
        counters.jobs_stuck
    );
    println!("virtual duration: {virtual_secs:.0} s; real duration: {:.2} s", started.elapsed().as_secs_f64());
    println!("messages written to {}", args.output.display());
    for f in &failed {
        println!("error: {f}");
    }
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
