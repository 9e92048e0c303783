//! `host-test soak`: seeded simulations through the built component, checked against the
//! simulator's ground truth, to show that nothing is lost.
//!
//! Each seed draws, from its own small RNG, a simulated world (1–3 accounts), a config, a
//! selection of entity and insights streams and a fault mix. It then runs the reads through the
//! wasm component in wasmtime against the in-process simulator and checks:
//!
//! - per stream, the set of primary keys equals ground truth (no key lost, none invented);
//! - no primary key twice within one sync (a first sync has no documented overlap);
//! - per stream and account, state never moves backwards from one STATE message to the next;
//! - an insights STATE never claims a day before every ground-truth row of it was emitted;
//! - every message is an Airbyte message of a known type with its payload key;
//! - no trap, no error TRACE (the fault mixes stay within what retries absorb);
//! - the access token (a distinctive canary) appears in no output line and no host error.
//!
//! Then the seed is run again on a fresh simulator, stopped at a random message (the host drops
//! the reader), and resumed by a new guest from the last STATE of each stream on the same
//! simulator; the union of both runs must cover ground truth, and state must not move
//! backwards across the resume.
//!
//! A seed's reads come in two phases on one simulator: entity streams (no `start_date`, or one
//! older than the simulated history) and insights streams (`start_date` 1–10 days back), since
//! one config has one `start_date`. Ground truth moves with the virtual clock (objects are
//! edited, a new day begins), so each phase is checked against the truth at its start and at its
//! end: a key in both must be read, a key in neither must not be.
//!
//! Everything is a pure function of the seed and the component: the same seed gives the same
//! requests, faults and output, so a failure reproduces with `host-test soak --seeds N..=N`.

use crate::backend::SimBackend;
use crate::demo::catalog_from;
use crate::output::{is_error_trace, to_line};
use crate::runtime::{Allowlist, Limits, Message, Runtime};
use crate::truth::{ENTITY_STREAMS, Keys, SyncConfig, catalog_keys, count_keys, epoch_secs, record_key, sim_at};
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate};
use clap::Args;
use graph_sim::{Faults, SimConfig, Simulator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod checks;
mod exec;
mod plan;

use checks::*;
pub use checks::{check_full_run, check_line_shape};
use exec::*;
pub use exec::{PhaseRead, RunOutput, crash_and_resume, prepare, run_read};
pub use plan::{CustomPlan, INSIGHT_STREAMS, Phase, Plan, Rng};

/// The access token of every soak config: distinctive, so that a leak is found by plain search.
/// Only characters the simulator accepts in a token (letters, digits, `-`, `_`).
pub const CANARY_TOKEN: &str = "EAAGsoakCANARY7f3e9d21c0b84a65";

/// 30: the call-log lines printed with a failure.
const CALL_LOG_TAIL: usize = 30;

/// Seeds to run, parsed from `A..B` (B excluded), `A..=B` or `N`.
pub fn parse_seeds(s: &str) -> Result<RangeInclusive<u64>, String> {
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| format!("'{t}' is not a seed number"));
    if let Some((a, b)) = s.split_once("..=") {
        let (a, b) = (num(a)?, num(b)?);
        if b < a {
            return Err(format!("{s}: the range is empty"));
        }
        Ok(a..=b)
    } else if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        if b <= a {
            return Err(format!("{s}: the range is empty"));
        }
        Ok(a..=b - 1)
    } else {
        let a = num(s)?;
        Ok(a..=a)
    }
}

#[derive(Args, Clone, Debug)]
pub struct SoakArgs {
    /// Seeds to run: `A..B` (B excluded), `A..=B`, or one seed `N`.
    #[arg(long, value_parser = parse_seeds, default_value = "1..=100")]
    pub seeds: RangeInclusive<u64>,
    /// Print every seed's plan and figures, not only failures.
    #[arg(long)]
    pub verbose: bool,
    /// Write each run's messages (unredacted: the token is a canary) to `DIR/seed-N-<run>.jsonl`.
    #[arg(long, value_name = "DIR")]
    pub messages_dir: Option<std::path::PathBuf>,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Which run: `entities`, `insights`, `crash in insights: first run`, ...
    pub run: String,
    pub what: String,
}

/// What a seed did and found.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub plan: String,
    pub failures: Vec<Failure>,
    /// The call-log tail of the simulator where the first failure happened.
    pub call_log_tail: String,
    /// Faults injected, by kind, over every simulator of the seed.
    pub faults: BTreeMap<String, u64>,
    pub empty_middle_pages: bool,
    /// Whether one account's ads listing cycled (that account must fail alone).
    pub cycling_listing: bool,
    pub records_checked: u64,
    pub messages: u64,
    /// Runs stopped mid-sync and resumed.
    pub crash_points: u64,
    /// Where the crash run stopped: (phase, message index, messages of the full run).
    pub crash_at: Option<(Phase, usize, usize)>,
    /// Virtual seconds the seed's sync took.
    pub virtual_secs: f64,
    /// Each run's messages as protocol lines: (run name, lines).
    pub runs: Vec<(String, Vec<String>)>,
}

impl SeedReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failure text: the seed, what broke, the call-log tail and how to reproduce it.
    pub fn render_failure(&self) -> String {
        let mut s = format!("seed {} FAILED\n  plan: {}\n", self.seed, self.plan);
        for f in &self.failures {
            let _ = writeln!(s, "  [{}] {}", f.run, f.what);
        }
        let _ = writeln!(s, "  simulator call log, last {CALL_LOG_TAIL} calls (ms since start, call, kind, outcome):");
        for line in self.call_log_tail.lines() {
            let _ = writeln!(s, "    {line}");
        }
        let _ = writeln!(s, "  reproduce: host-test soak --seeds {0}..={0} --verbose", self.seed);
        s
    }
}

fn add_faults(into: &mut BTreeMap<String, u64>, sim: &Simulator) {
    let c = sim.counters();
    for (k, n) in &c.faults {
        *into.entry(k.clone()).or_insert(0) += n;
    }
    for (k, n) in [
        ("job_failed", c.jobs_failed),
        ("job_skipped", c.jobs_skipped),
        ("job_stuck", c.jobs_stuck),
        ("throttled_response", c.throttled_responses),
    ] {
        if n > 0 {
            *into.entry(k.to_string()).or_insert(0) += n;
        }
    }
}

fn preview<'a>(keys: impl IntoIterator<Item = &'a String>) -> String {
    let keys: Vec<&String> = keys.into_iter().collect();
    let shown: Vec<&str> = keys.iter().take(5).map(|k| k.as_str()).collect();
    if keys.len() > 5 { format!("{} (+{} more)", shown.join(", "), keys.len() - 5) } else { shown.join(", ") }
}

fn shorten(s: &str) -> String {
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

/// Runs one seed: both phases in full on one simulator, then one crash and resume.
pub fn run_seed(runtime: &Runtime, seed: u64) -> SeedReport {
    let plan = Plan::draw(seed);
    let mut report = SeedReport {
        seed,
        plan: plan.describe(),
        empty_middle_pages: plan.sim.faults.empty_middle_pages,
        cycling_listing: plan.cycle_victim.is_some(),
        ..SeedReport::default()
    };
    if let Err(e) = run_seed_inner(runtime, &plan, &mut report) {
        report.failures.push(Failure { run: "harness".into(), what: format!("{e:#}") });
    }
    report
}

fn run_seed_inner(runtime: &Runtime, plan: &Plan, report: &mut SeedReport) -> Result<()> {
    let sim = Arc::new(Mutex::new(Simulator::new(plan.sim.clone())));
    let mut lengths = BTreeMap::new();
    for phase in [Phase::Entities, Phase::Insights] {
        let (_, out) = full_phase(runtime, &sim, plan, phase, report)?;
        lengths.insert(phase, out.lines.len());
    }
    same_again(runtime, plan, report)?;
    {
        let s = sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?;
        add_faults(&mut report.faults, &s);
        report.virtual_secs = (s.now_ms() - plan.sim.start_time_ms) as f64 / 1000.0;
        if !report.failures.is_empty() {
            report.call_log_tail = s.render_call_log_tail(CALL_LOG_TAIL);
        }
    }
    // Stop somewhere inside the run: after at least one message, before the last.
    let total = lengths.get(&plan.crash_phase).copied().unwrap_or(0);
    if total >= 2 {
        let mut rng = Rng::new(seed_for_crash(plan.seed));
        let stop = rng.range(1, total as u64 - 1) as usize;
        report.crash_at = Some((plan.crash_phase, stop, total));
        crash_and_resume(runtime, plan, plan.crash_phase, stop, report)?;
    }
    Ok(())
}

/// Determinism: both phases again on a fresh simulator of the same seed must emit the same
/// lines, byte for byte, however the requests in flight overlapped.
fn same_again(runtime: &Runtime, plan: &Plan, report: &mut SeedReport) -> Result<()> {
    let sim = Arc::new(Mutex::new(Simulator::new(plan.sim.clone())));
    for phase in [Phase::Entities, Phase::Insights] {
        let read = prepare(runtime, &sim, plan, phase)?;
        let again = run_read(runtime, &sim, &read, None, None);
        let Some((_, first)) = report.runs.iter().find(|(name, _)| name == phase.name()) else { continue };
        if let Some(i) = (0..first.len().max(again.lines.len())).find(|&i| first.get(i) != again.lines.get(i)) {
            let what = format!(
                "the same seed read again differs at message {i} of {}: {} / {}",
                first.len(),
                first.get(i).map_or("(none)".to_string(), |l| shorten(l)),
                again.lines.get(i).map_or("(none)".to_string(), |l| shorten(l)),
            );
            report.failures.push(Failure { run: format!("{}: determinism", phase.name()), what });
        }
    }
    Ok(())
}

/// The crash point has its own stream so that adding draws to a plan does not move it.
fn seed_for_crash(seed: u64) -> u64 {
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xc4a5
}

/// Totals over a soak.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    pub passed: u64,
    pub failed: Vec<u64>,
    pub faults: BTreeMap<String, u64>,
    pub seeds_with_empty_middle_pages: u64,
    pub seeds_with_a_cycling_listing: u64,
    pub records_checked: u64,
    pub messages: u64,
    pub crash_points: u64,
    pub virtual_secs: f64,
}

impl Summary {
    pub fn add(&mut self, r: &SeedReport) {
        self.seeds += 1;
        if r.passed() {
            self.passed += 1;
        } else {
            self.failed.push(r.seed);
        }
        for (k, n) in &r.faults {
            *self.faults.entry(k.clone()).or_insert(0) += n;
        }
        self.seeds_with_empty_middle_pages += u64::from(r.empty_middle_pages);
        self.seeds_with_a_cycling_listing += u64::from(r.cycling_listing);
        self.records_checked += r.records_checked;
        self.messages += r.messages;
        self.crash_points += r.crash_points;
        self.virtual_secs += r.virtual_secs;
    }

    /// The closing summary; its last line is `N passed, M failed`.
    pub fn render(&self, real_secs: f64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "seeds run: {}", self.seeds);
        let total: u64 = self.faults.values().sum();
        let _ = writeln!(s, "faults injected by kind (simulator counters):");
        for (k, n) in &self.faults {
            let _ = writeln!(s, "  {k:<22} {n:>10}");
        }
        let _ = writeln!(s, "  {:<22} {total:>10}", "total");
        let _ = writeln!(s, "seeds serving empty middle pages: {}", self.seeds_with_empty_middle_pages);
        let _ = writeln!(
            s,
            "seeds with a cycling ads listing (its account failed alone, as expected): {}",
            self.seeds_with_a_cycling_listing
        );
        let _ = writeln!(s, "records checked against ground truth: {}", self.records_checked);
        let _ = writeln!(s, "messages checked: {}", self.messages);
        let _ = writeln!(s, "crash points resumed: {}", self.crash_points);
        let _ = writeln!(s, "virtual time simulated: {:.1} h; real time: {real_secs:.1} s", self.virtual_secs / 3600.0);
        if !self.failed.is_empty() {
            let list: Vec<String> = self.failed.iter().map(u64::to_string).collect();
            let _ = writeln!(s, "failed seeds: {}", list.join(" "));
        }
        let _ = write!(s, "{} passed, {} failed", self.passed, self.failed.len());
        s
    }
}

/// `host-test soak`: runs the seeds, prints failures (and with `--verbose` every seed), then
/// the summary. Exits 1 when a seed failed.
pub fn run(component: Option<&Path>, args: &SoakArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let runtime = crate::runtime::locate(component)?;
    let mut summary = Summary::default();
    println!(
        "soak: seeds {}..={} through {}",
        args.seeds.start(),
        args.seeds.end(),
        crate::runtime::describe_component(component)
    );
    for seed in args.seeds.clone() {
        let report = run_seed(&runtime, seed);
        summary.add(&report);
        if let Some(dir) = &args.messages_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for (run, lines) in &report.runs {
                let path = dir.join(format!("seed-{seed}-{run}.jsonl"));
                let mut text = lines.join("\n");
                text.push('\n');
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        if args.verbose {
            println!("seed {seed}: {}", report.plan);
            let crash = report
                .crash_at
                .map_or("no crash point".to_string(), |(p, at, of)| format!("crash in {} at {at}/{of}", p.name()));
            println!(
                "  {}: {} records checked, {} messages, {crash}, {:.0} s virtual, faults {:?}",
                if report.passed() { "ok" } else { "FAILED" },
                report.records_checked,
                report.messages,
                report.virtual_secs,
                report.faults
            );
        }
        if !report.passed() {
            println!("{}", report.render_failure());
        }
    }
    println!("{}", summary.render(started.elapsed().as_secs_f64()));
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::plan::MAX_REQUEST_FAULT_SHARE;
    use super::*;

    #[test]
    fn seed_ranges_parse_like_rust_ranges() {
        assert_eq!(parse_seeds("1..=1000"), Ok(1..=1000));
        assert_eq!(parse_seeds("3..7"), Ok(3..=6));
        assert_eq!(parse_seeds("42"), Ok(42..=42));
        assert!(parse_seeds("7..3").is_err());
        assert!(parse_seeds("a..b").is_err());
    }

    #[test]
    fn a_seed_draws_the_same_plan_every_time() {
        for seed in 1..50 {
            assert_eq!(Plan::draw(seed), Plan::draw(seed));
        }
        assert_ne!(Plan::draw(1), Plan::draw(2));
    }

    #[test]
    fn plans_stay_within_sane_fault_bounds() {
        for seed in 1..500 {
            let f = Plan::draw(seed).sim.faults;
            let share =
                f.http_500 + f.transient_code + f.connection_reset + f.timeout + f.malformed_body + f.truncated_body;
            assert!(share <= MAX_REQUEST_FAULT_SHARE + 1e-9, "seed {seed}: {share}");
            assert!(f.stuck_jobs <= 0.3 && f.job_skipped <= 0.15 && f.job_fail_first_attempts <= 2);
        }
    }

    #[test]
    fn line_shapes_are_checked() {
        assert!(check_line_shape(r#"{"type":"RECORD","record":{"stream":"a","data":{},"emitted_at":1}}"#).is_ok());
        assert!(check_line_shape(r#"{"type":"RECORD","data":{}}"#).is_err());
        assert!(check_line_shape(r#"{"type":"NOPE","nope":{}}"#).is_err());
        assert!(check_line_shape("not json").is_err());
    }

    #[test]
    fn state_moving_backwards_is_caught() {
        let st = |t: &str| {
            (
                "ads".to_string(),
                json!({"type":"STREAM","stream":{"stream_descriptor":{"name":"ads"},"stream_state":{"1":{"updated_time": t}}}}),
            )
        };
        let mut f = Vec::new();
        check_states(&[st("2026-06-01T00:00:00+00:00"), st("2026-06-02T00:00:00+00:00")], "t", &mut f);
        assert!(f.is_empty(), "{f:?}");
        check_states(&[st("2026-06-02T00:00:00+00:00"), st("2026-06-01T00:00:00+00:00")], "t", &mut f);
        assert_eq!(f.len(), 1, "{f:?}");
    }
}
