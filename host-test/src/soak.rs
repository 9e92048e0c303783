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
use crate::runtime::{Allowlist, GRAPH_ORIGIN, Limits, Message, Runtime, url_host};
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

/// The access token of every soak config: distinctive, so that a leak is found by plain search.
/// Only characters the simulator accepts in a token (letters, digits, `-`, `_`).
pub const CANARY_TOKEN: &str = "EAAGsoakCANARY7f3e9d21c0b84a65";

/// The built-in insights streams, in Airbyte's names.
pub const INSIGHT_STREAMS: [&str; 20] = [
    "ads_insights",
    "ads_insights_age_and_gender",
    "ads_insights_country",
    "ads_insights_region",
    "ads_insights_comscore_market",
    "ads_insights_platform_and_device",
    "ads_insights_action_type",
    "ads_insights_action_carousel_card",
    "ads_insights_action_conversion_device",
    "ads_insights_action_product_id",
    "ads_insights_action_reaction",
    "ads_insights_action_video_sound",
    "ads_insights_action_video_type",
    "ads_insights_delivery_device",
    "ads_insights_delivery_platform",
    "ads_insights_delivery_platform_and_device_platform",
    "ads_insights_demographics_age",
    "ads_insights_demographics_country",
    "ads_insights_demographics_comscore_market_region",
    "ads_insights_demographics_gender",
];

/// The name of the custom insight a plan may add, and the stream it makes.
const CUSTOM_NAME: &str = "SoakCustom";
const CUSTOM_STREAM: &str = "custom_soak_custom";

/// 12 %: the most requests of a seed that answer with a transport or HTTP fault. With five
/// retries per call, a call is lost with odds of 0.12^6 ≈ 3e-6, rare enough over a soak.
const MAX_REQUEST_FAULT_SHARE: f64 = 0.12;

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

/// SplitMix64: small, seedable, and plenty for drawing plans.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A fixed salt, so the plan stream differs from the simulator's own use of the seed.
        Rng(seed ^ 0x50a6_5eed_c0ff_ee00)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The two halves of a seed's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Entities,
    Insights,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Entities => "entities",
            Phase::Insights => "insights",
        }
    }
}

/// A custom insight the plan adds.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomPlan {
    pub level: &'static str,
    pub breakdowns: Vec<&'static str>,
}

/// Everything a seed decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub seed: u64,
    pub sim: SimConfig,
    /// The account ids the config lists (a non-empty subset of the simulator's).
    pub accounts: Vec<String>,
    pub page_size: u32,
    pub lookback_days: Option<u32>,
    pub entity_streams: Vec<&'static str>,
    /// Days back of the entity phase's `start_date`; `None` for no start date.
    pub entity_start_days: Option<i64>,
    pub insight_streams: Vec<&'static str>,
    pub custom: Option<CustomPlan>,
    /// Days back of the insights phase's `start_date`.
    pub insight_days: i64,
    /// The phase the crash-and-resume run stops in.
    pub crash_phase: Phase,
}

fn draw_faults(rng: &mut Rng) -> Faults {
    let mut f = Faults::default();
    let maybe = |rng: &mut Rng, p_on: f64, max: f64| {
        if rng.chance(p_on) { (rng.unit() * max * 1000.0).round() / 1000.0 } else { 0.0 }
    };
    f.http_500 = maybe(rng, 0.4, 0.04);
    f.transient_code = maybe(rng, 0.4, 0.04);
    f.connection_reset = maybe(rng, 0.3, 0.03);
    f.timeout = maybe(rng, 0.3, 0.03);
    f.malformed_body = maybe(rng, 0.3, 0.03);
    f.truncated_body = maybe(rng, 0.3, 0.03);
    let total = f.http_500 + f.transient_code + f.connection_reset + f.timeout + f.malformed_body + f.truncated_body;
    if total > MAX_REQUEST_FAULT_SHARE {
        let k = MAX_REQUEST_FAULT_SHARE / total;
        for p in [
            &mut f.http_500,
            &mut f.transient_code,
            &mut f.connection_reset,
            &mut f.timeout,
            &mut f.malformed_body,
            &mut f.truncated_body,
        ] {
            *p = (*p * k * 1000.0).floor() / 1000.0;
        }
    }
    f.batch_null = maybe(rng, 0.3, 0.15);
    f.batch_aborted_960 = maybe(rng, 0.3, 0.08);
    f.empty_middle_pages = rng.chance(0.3);
    f.job_fail_first_attempts = if rng.chance(0.25) { if rng.chance(0.2) { 2 } else { 1 } } else { 0 };
    f.stuck_jobs = maybe(rng, 0.15, 0.3);
    f.job_skipped = maybe(rng, 0.2, 0.15);
    f.throttled = rng.chance(0.08);
    f
}

impl Plan {
    /// The plan of `seed`: a pure function of it.
    pub fn draw(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let mut sim = SimConfig { seed, access_token: CANARY_TOKEN.to_string(), ..SimConfig::default() };
        sim.accounts = rng.range(1, 3) as usize;
        sim.campaigns_per_account = rng.range(1, 3) as usize;
        sim.adsets_per_campaign = rng.range(1, 2) as usize;
        sim.ads_per_adset = rng.range(1, 3) as usize;
        sim.faults = draw_faults(&mut rng);
        // Ids as the simulator numbers its accounts.
        let all: Vec<String> = (1..=sim.accounts).map(|i| format!("{}", 1_000_000_000_000_000u64 + i as u64)).collect();
        let mut accounts: Vec<String> = all.iter().filter(|_| rng.chance(0.7)).cloned().collect();
        if accounts.is_empty() {
            accounts.push(rng.pick(&all.iter().map(String::as_str).collect::<Vec<_>>()).to_string());
        }
        let page_size = rng.pick(&[3u32, 10, 25, 100]);
        let lookback_days = rng.chance(0.5).then(|| rng.range(1, 3) as u32);
        let mut entity_streams: Vec<&'static str> =
            ENTITY_STREAMS.iter().copied().filter(|_| rng.chance(0.35)).collect();
        if entity_streams.is_empty() {
            entity_streams.push(rng.pick(&ENTITY_STREAMS));
        }
        let entity_start_days = rng.chance(0.5).then(|| rng.range(100, 700) as i64);
        let mut insight_streams = vec![if rng.chance(0.4) { "ads_insights" } else { rng.pick(&INSIGHT_STREAMS) }];
        if rng.chance(0.3) {
            let s = rng.pick(&INSIGHT_STREAMS);
            if !insight_streams.contains(&s) {
                insight_streams.push(s);
            }
        }
        let custom = rng.chance(0.25).then(|| CustomPlan {
            level: rng.pick(&["ad", "adset", "campaign", "account"]),
            breakdowns: rng
                .pick(&[&[][..], &["country"], &["age"], &["publisher_platform"], &["age", "gender"]])
                .to_vec(),
        });
        let insight_days = rng.range(1, 10) as i64;
        let crash_phase = rng.pick(&[Phase::Entities, Phase::Insights]);
        Plan {
            seed,
            sim,
            accounts,
            page_size,
            lookback_days,
            entity_streams,
            entity_start_days,
            insight_streams,
            custom,
            insight_days,
            crash_phase,
        }
    }

    /// One line saying what the seed runs.
    pub fn describe(&self) -> String {
        let f = &self.sim.faults;
        let mut faults = Vec::new();
        for (name, p) in [
            ("http_500", f.http_500),
            ("transient_code", f.transient_code),
            ("connection_reset", f.connection_reset),
            ("timeout", f.timeout),
            ("malformed_body", f.malformed_body),
            ("truncated_body", f.truncated_body),
            ("batch_null", f.batch_null),
            ("batch_aborted_960", f.batch_aborted_960),
            ("stuck_jobs", f.stuck_jobs),
            ("job_skipped", f.job_skipped),
        ] {
            if p > 0.0 {
                faults.push(format!("{name}={p}"));
            }
        }
        if f.empty_middle_pages {
            faults.push("empty_middle_pages".into());
        }
        if f.job_fail_first_attempts > 0 {
            faults.push(format!("job_fail_first_attempts={}", f.job_fail_first_attempts));
        }
        if f.throttled {
            faults.push("throttled".into());
        }
        let custom = match &self.custom {
            Some(c) => format!(" + {CUSTOM_STREAM} (level {}, breakdowns [{}])", c.level, c.breakdowns.join(",")),
            None => String::new(),
        };
        format!(
            "world {}x{}x{}x{} accounts {:?} page_size {} lookback {:?}; entities {:?} start {}; insights {:?}{custom} over {} days; crash in {}; faults [{}]",
            self.sim.accounts,
            self.sim.campaigns_per_account,
            self.sim.adsets_per_campaign,
            self.sim.ads_per_adset,
            self.accounts,
            self.page_size,
            self.lookback_days,
            self.entity_streams,
            self.entity_start_days.map_or("none".to_string(), |d| format!("{d} days back")),
            self.insight_streams,
            self.insight_days,
            self.crash_phase.name(),
            faults.join(" ")
        )
    }

    /// The config of `phase` for a read starting at `now_ms`.
    pub fn config(&self, phase: Phase, now_ms: i64) -> Value {
        let mut c = json!({
            "account_ids": self.accounts,
            "credentials": {"auth_type": "Service", "access_token": CANARY_TOKEN},
            "page_size": self.page_size,
        });
        if let Some(l) = self.lookback_days {
            c["insights_lookback_window"] = json!(l);
        }
        let days_back = match phase {
            Phase::Entities => self.entity_start_days,
            Phase::Insights => Some(self.insight_days),
        };
        if let Some(d) = days_back {
            c["start_date"] = json!(start_date(now_ms, d));
        }
        if phase == Phase::Insights
            && let Some(custom) = &self.custom
        {
            c["custom_insights"] = json!([{
                "name": CUSTOM_NAME,
                "level": custom.level,
                "fields": ["impressions", "spend", "clicks"],
                "breakdowns": custom.breakdowns,
            }]);
        }
        c
    }

    /// The streams `phase` selects.
    pub fn streams(&self, phase: Phase) -> Vec<&'static str> {
        match phase {
            Phase::Entities => self.entity_streams.clone(),
            Phase::Insights => {
                let mut s = self.insight_streams.clone();
                if self.custom.is_some() {
                    s.push(CUSTOM_STREAM);
                }
                s
            }
        }
    }
}

/// Midnight UTC `days` days before `now_ms`, as a config `start_date`.
fn start_date(now_ms: i64, days: i64) -> String {
    let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    (now - chrono::Duration::days(days)).format("%Y-%m-%dT00:00:00Z").to_string()
}

/// One read of one phase, ready to run: its config, catalog and how to key its records.
pub struct PhaseRead {
    pub phase: Phase,
    pub config: Value,
    pub catalog: Value,
    /// Primary key fields by stream; empty for `activities`, which has none.
    pub keys: BTreeMap<String, Vec<String>>,
}

/// What one run of the reader gave.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// Every message as its protocol line, unredacted.
    pub lines: Vec<String>,
    /// Records by stream.
    pub records: BTreeMap<String, Vec<Value>>,
    /// STATE messages in order: (stream, the whole message).
    pub states: Vec<(String, Value)>,
    /// For each STATE message, how many records of its stream this run emitted before it.
    pub state_records: Vec<usize>,
    /// The `error` objects of error TRACEs.
    pub errors: Vec<Value>,
    /// Lines that are not a well-formed Airbyte message, with why.
    pub malformed: Vec<String>,
    /// The host's error when the guest trapped or could not start.
    pub trap: Option<String>,
    /// Whether the host stopped the reader before it finished.
    pub stopped: bool,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl RunOutput {
    /// The last STATE message of each stream, as the state a next sync is given.
    pub fn last_states(&self) -> String {
        let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
        for (stream, msg) in &self.states {
            last.insert(stream, msg);
        }
        Value::Array(last.into_values().cloned().collect()).to_string()
    }

    pub fn record_count(&self) -> u64 {
        self.records.values().map(|v| v.len() as u64).sum()
    }
}

/// Checks one protocol line: a JSON object with a known `type` and its payload.
pub fn check_line_shape(line: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let ty = v.get("type").and_then(Value::as_str).ok_or("no \"type\"")?;
    let payload_key = match ty {
        "RECORD" => "record",
        "STATE" => "state",
        "LOG" => "log",
        "TRACE" => "trace",
        "CONNECTION_STATUS" => "connectionStatus",
        "CATALOG" => "catalog",
        "SPEC" => "spec",
        other => return Err(format!("unknown type '{other}'")),
    };
    let p = v
        .get(payload_key)
        .filter(|p| p.is_object())
        .ok_or_else(|| format!("{ty} without a \"{payload_key}\" object"))?;
    let ok = match ty {
        "RECORD" => p["stream"].is_string() && p["data"].is_object() && p["emitted_at"].is_number(),
        "STATE" => match p["type"].as_str() {
            Some("STREAM") => {
                p["stream"]["stream_descriptor"]["name"].is_string() && p["stream"].get("stream_state").is_some()
            }
            Some("GLOBAL") => p["global"].is_object(),
            Some("LEGACY") | None => p.get("data").is_some(),
            Some(_) => false,
        },
        "LOG" => p["level"].is_string() && p["message"].is_string(),
        "TRACE" => {
            p["type"].is_string()
                && p["emitted_at"].is_number()
                && (p["type"] != "ERROR"
                    || (p["error"]["message"].is_string() && p["error"]["failure_type"].is_string()))
        }
        _ => true,
    };
    if ok { Ok(()) } else { Err(format!("{ty} payload is missing required fields")) }
}

/// A guest on `sim`, with the Graph host allowed and default limits.
fn guest(runtime: &Runtime, sim: &Arc<Mutex<Simulator>>) -> Result<crate::runtime::Guest> {
    let allow = Allowlist {
        hosts: vec![url_host(GRAPH_ORIGIN).unwrap_or_default().to_string()],
        suffixes: vec![".fbcdn.net".into()],
    };
    runtime.instantiate(Box::new(SimBackend::new(sim.clone())), allow, None, &Limits::default())
}

fn now_ms(sim: &Arc<Mutex<Simulator>>) -> i64 {
    sim.lock().map(|s| s.now_ms()).unwrap_or(0)
}

/// Discovers the phase's streams through the component and builds its configured catalog.
pub fn prepare(runtime: &Runtime, sim: &Arc<Mutex<Simulator>>, plan: &Plan, phase: Phase) -> Result<PhaseRead> {
    let config = plan.config(phase, now_ms(sim));
    let discovered = guest(runtime, sim)?.discover(&config.to_string())?;
    let streams = plan.streams(phase);
    let catalog = catalog_from(&discovered, &streams)?;
    let keys = catalog_keys(&catalog);
    let missing: Vec<&&str> = streams.iter().filter(|s| !keys.contains_key(**s)).collect();
    anyhow::ensure!(missing.is_empty(), "discover did not offer {missing:?}");
    Ok(PhaseRead { phase, config, catalog, keys })
}

/// Runs a read to the end, or until the host has taken `stop_after` messages.
pub fn run_read(
    runtime: &Runtime,
    sim: &Arc<Mutex<Simulator>>,
    read: &PhaseRead,
    state: Option<&str>,
    stop_after: Option<usize>,
) -> RunOutput {
    let mut out = RunOutput { start_ms: now_ms(sim), ..RunOutput::default() };
    let mut taken = 0usize;
    let result = guest(runtime, sim).and_then(|mut g| {
        g.read(&read.config.to_string(), &read.catalog.to_string(), state, |batch| {
            for m in &batch {
                if stop_after.is_some_and(|n| taken >= n) {
                    out.stopped = true;
                    return false;
                }
                taken += 1;
                let line = to_line(m);
                if let Err(why) = check_line_shape(&line) {
                    out.malformed.push(format!("{why}: {line}"));
                }
                match m {
                    Message::Record(r) => {
                        let data = serde_json::from_str(&r.data).unwrap_or(Value::Null);
                        out.records.entry(r.stream.clone()).or_default().push(data);
                    }
                    Message::State(s) => {
                        let v: Value = serde_json::from_str(s).unwrap_or(Value::Null);
                        let stream = v["stream"]["stream_descriptor"]["name"].as_str().unwrap_or("?").to_string();
                        out.state_records.push(out.records.get(&stream).map_or(0, Vec::len));
                        out.states.push((stream, v));
                    }
                    m if is_error_trace(m) => {
                        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                        out.errors.push(v["trace"]["error"].clone());
                    }
                    _ => {}
                }
                out.lines.push(line);
            }
            if stop_after.is_some_and(|n| taken >= n) {
                out.stopped = true;
                return false;
            }
            true
        })
    });
    if let Err(e) = result {
        out.trap = Some(format!("{e:#}"));
    }
    out.end_ms = now_ms(sim);
    out
}

/// Ground truth of `stream` at `truth`'s clock, for the read `read` that started at `start_ms`.
fn truth_keys(read: &PhaseRead, stream: &str, truth: &Simulator, start_ms: i64) -> Result<Keys> {
    let pk = read.keys.get(stream).cloned().unwrap_or_default();
    SyncConfig::from_value(&read.config)?.stream_keys(truth, stream, &pk, start_ms)
}

/// The truth of `stream` at `t0` and `t1`; a harness failure when the truth cannot be had.
fn truth_at_both(
    read: &PhaseRead,
    stream: &str,
    (t0, t1): (&Simulator, &Simulator),
    start_ms: i64,
    failures: &mut Vec<Failure>,
) -> Option<(Keys, Keys)> {
    match truth_keys(read, stream, t0, start_ms).and_then(|a| Ok((a, truth_keys(read, stream, t1, start_ms)?))) {
        Ok(pair) => Some(pair),
        Err(e) => {
            failures.push(Failure { run: "harness".into(), what: format!("ground truth of {stream}: {e:#}") });
            None
        }
    }
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

/// Checks that hold for any single run: no trap, messages well formed, no token, no error
/// trace, no duplicate primary key.
fn check_run(read: &PhaseRead, out: &RunOutput, run: &str, failures: &mut Vec<Failure>) {
    let mut fail = |what: String| failures.push(Failure { run: run.to_string(), what });
    if let Some(t) = &out.trap {
        fail(format!("the guest trapped or the host failed: {}", shorten(t)));
    }
    for m in out.malformed.iter().take(3) {
        fail(format!("malformed message: {}", shorten(m)));
    }
    let leaks: Vec<&String> = out.lines.iter().filter(|l| l.contains(CANARY_TOKEN)).collect();
    if let Some(l) = leaks.first() {
        fail(format!("the access token appears in {} output line(s), e.g. {}", leaks.len(), shorten(l)));
    }
    if out.trap.as_deref().is_some_and(|t| t.contains(CANARY_TOKEN)) {
        fail("the access token appears in the host's error".into());
    }
    for e in out.errors.iter().take(3) {
        fail(format!(
            "the sync ended with an error trace ({}): {}",
            e["failure_type"].as_str().unwrap_or("?"),
            shorten(e["message"].as_str().unwrap_or(""))
        ));
    }
    for (stream, rows) in &out.records {
        let Some(pk) = read.keys.get(stream) else {
            fail(format!("{} records of stream '{stream}', which the catalog did not select", rows.len()));
            continue;
        };
        if pk.is_empty() {
            continue;
        }
        let dups: Vec<String> = count_keys(pk, rows).into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect();
        if !dups.is_empty() {
            fail(format!("{stream}: {} primary key(s) emitted more than once: {}", dups.len(), preview(&dups)));
        }
    }
}

/// A stream's cursor at one account, from a state blob.
#[derive(Clone, Debug, Default, PartialEq)]
struct AcctCursor {
    /// `updated_time` / `event_time`, epoch s.
    time: Option<i64>,
    /// Insights `date_start`.
    date: Option<NaiveDate>,
    /// Insights days completed after the cursor.
    slices: BTreeSet<NaiveDate>,
}

fn acct_cursor(v: &Value) -> AcctCursor {
    let time = ["updated_time", "event_time"].iter().find_map(|k| v[*k].as_str().and_then(epoch_secs));
    let date = v["date_start"].as_str().and_then(|d| d.parse().ok());
    let slices = v["slices"].as_array().into_iter().flatten().filter_map(|d| d.as_str()?.parse().ok()).collect();
    AcctCursor { time, date, slices }
}

/// State never moves backwards: per stream and account, a cursor never decreases or vanishes,
/// and a day once claimed (at or before the cursor, or in `slices`) stays claimed.
fn check_states<'a>(states: impl IntoIterator<Item = &'a (String, Value)>, run: &str, failures: &mut Vec<Failure>) {
    let mut prev: BTreeMap<(String, String), AcctCursor> = BTreeMap::new();
    let mut reported = 0;
    for (i, (stream, msg)) in states.into_iter().enumerate() {
        let Some(blob) = msg["stream"]["stream_state"].as_object() else { continue };
        let mut problems = Vec::new();
        for ((s, acct), p) in &prev {
            if s != stream {
                continue;
            }
            let Some(v) = blob.get(acct) else {
                problems.push(format!("account {acct} vanished from the state"));
                continue;
            };
            let c = acct_cursor(v);
            if p.time.is_some_and(|t| c.time.is_none_or(|n| n < t)) {
                problems.push(format!("account {acct}: cursor went from {:?} to {:?}", p.time, c.time));
            }
            if p.date.is_some_and(|d| c.date.is_none_or(|n| n < d)) {
                problems.push(format!("account {acct}: date_start went from {:?} to {:?}", p.date, c.date));
            }
            let unclaimed: Vec<String> = p
                .slices
                .iter()
                .filter(|d| !c.slices.contains(d) && c.date.is_none_or(|n| **d > n))
                .map(|d| d.to_string())
                .collect();
            if !unclaimed.is_empty() {
                problems.push(format!("account {acct}: completed days {} are no longer claimed", unclaimed.join(", ")));
            }
        }
        for p in problems {
            if reported < 3 {
                failures.push(Failure {
                    run: run.to_string(),
                    what: format!(
                        "{stream}: state moved backwards at state message {i}: {p}; now {}",
                        shorten(&Value::Object(blob.clone()).to_string())
                    ),
                });
            }
            reported += 1;
        }
        for (acct, v) in blob {
            if v.is_object() {
                prev.insert((stream.clone(), acct.clone()), acct_cursor(v));
            }
        }
    }
}

/// Insights checkpoints are never ahead of the rows: when a STATE claims a day of an account
/// (at or before its cursor, or in its `slices`), every row of that day that ground truth holds
/// (at the read's start and end alike) was emitted before it, in this run or in `prior`.
fn check_claims(
    read: &PhaseRead,
    out: &RunOutput,
    prior: Option<&RunOutput>,
    must: &BTreeMap<String, BTreeSet<String>>,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    if read.phase != Phase::Insights {
        return;
    }
    let mut reported = 0;
    for (stream, pk) in &read.keys {
        // Truth keys start `date_start|account_id|`.
        let mut by_day: BTreeMap<(&str, NaiveDate), Vec<&String>> = BTreeMap::new();
        for k in must.get(stream).into_iter().flatten() {
            let mut parts = k.split('|');
            if let (Some(Ok(day)), Some(acct)) = (parts.next().map(str::parse::<NaiveDate>), parts.next()) {
                by_day.entry((acct, day)).or_default().push(k);
            }
        }
        let mut emitted: BTreeSet<String> =
            prior.and_then(|p| p.records.get(stream)).into_iter().flatten().map(|r| record_key(pk, r)).collect();
        let rows = out.records.get(stream).map(Vec::as_slice).unwrap_or(&[]);
        let mut upto = 0;
        for ((s, msg), n) in out.states.iter().zip(&out.state_records) {
            if s != stream {
                continue;
            }
            let n = (*n).min(rows.len());
            emitted.extend(rows[upto.min(n)..n].iter().map(|r| record_key(pk, r)));
            upto = n;
            let Some(blob) = msg["stream"]["stream_state"].as_object() else { continue };
            for ((acct, day), keys) in &by_day {
                let Some(v) = blob.get(*acct) else { continue };
                let c = acct_cursor(v);
                if !(c.date.is_some_and(|d| *day <= d) || c.slices.contains(day)) {
                    continue;
                }
                let missing: Vec<&String> = keys.iter().copied().filter(|k| !emitted.contains(*k)).collect();
                if !missing.is_empty() && reported < 3 {
                    reported += 1;
                    failures.push(Failure {
                        run: run.to_string(),
                        what: format!(
                            "{stream}: state claims {day} of account {acct} before {} of its {} rows were emitted: {}",
                            missing.len(),
                            keys.len(),
                            preview(missing)
                        ),
                    });
                }
            }
        }
    }
}

/// The keys in both truths: those a read must not miss.
fn must_keys(a: &Keys, b: &Keys) -> BTreeSet<String> {
    a.keys().filter(|k| b.contains_key(*k)).cloned().collect()
}

/// Compares what was read with the truth at the read's start and end: a key in both must be
/// read, a key in neither must not be.
fn check_truth(
    stream: &str,
    got: &BTreeSet<String>,
    at_start: &Keys,
    at_end: &Keys,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let must: Vec<&String> = at_start.keys().filter(|k| at_end.contains_key(*k) && !got.contains(*k)).collect();
    if !must.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!(
                "{stream}: lost {} of {} key(s) of ground truth: {}",
                must.len(),
                at_start.len(),
                preview(must)
            ),
        });
    }
    let extra: Vec<&String> = got.iter().filter(|k| !at_start.contains_key(*k) && !at_end.contains_key(*k)).collect();
    if !extra.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!("{stream}: {} key(s) not in ground truth: {}", extra.len(), preview(extra)),
        });
    }
}

/// For activities (no primary key) multiplicity counts: each key as often as in truth.
fn check_truth_counts(
    stream: &str,
    got: &Keys,
    at_start: &Keys,
    at_end: &Keys,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let mut bad = Vec::new();
    for k in at_start.keys().chain(at_end.keys()).chain(got.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (at_start.get(k).copied().unwrap_or(0), at_end.get(k).copied().unwrap_or(0));
        let n = got.get(k).copied().unwrap_or(0);
        if n < a.min(b) || n > a.max(b) {
            bad.push(format!("{k} x{n} (truth x{a}..x{b})"));
        }
    }
    if !bad.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!("{stream}: {} key(s) read a wrong number of times: {}", bad.len(), preview(&bad)),
        });
    }
}

/// Checks a run of `read` that went to the end against ground truth and every invariant;
/// returns the number of records compared with truth.
pub fn check_full_run(plan: &Plan, read: &PhaseRead, out: &RunOutput, run: &str, failures: &mut Vec<Failure>) -> u64 {
    check_run(read, out, run, failures);
    check_states(&out.states, run, failures);
    let (t0, t1) = (sim_at(&plan.sim, out.start_ms), sim_at(&plan.sim, out.end_ms));
    let mut checked = 0;
    let mut must = BTreeMap::new();
    for (stream, pk) in &read.keys {
        let rows = out.records.get(stream).map(Vec::as_slice).unwrap_or(&[]);
        let Some((a, b)) = truth_at_both(read, stream, (&t0, &t1), out.start_ms, failures) else { continue };
        must.insert(stream.clone(), must_keys(&a, &b));
        if pk.is_empty() {
            check_truth_counts(stream, &count_keys(pk, rows), &a, &b, run, failures);
        } else {
            let got: BTreeSet<String> = rows.iter().map(|r| record_key(pk, r)).collect();
            check_truth(stream, &got, &a, &b, run, failures);
        }
        checked += rows.len() as u64;
    }
    check_claims(read, out, None, &must, run, failures);
    checked
}

/// Runs a phase to the end on `sim` and checks it; returns its output.
fn full_phase(
    runtime: &Runtime,
    sim: &Arc<Mutex<Simulator>>,
    plan: &Plan,
    phase: Phase,
    report: &mut SeedReport,
) -> Result<(PhaseRead, RunOutput)> {
    let read = prepare(runtime, sim, plan, phase)?;
    let out = run_read(runtime, sim, &read, None, None);
    let run = phase.name();
    report.records_checked += check_full_run(plan, &read, &out, run, &mut report.failures);
    report.messages += out.lines.len() as u64;
    report.runs.push((run.to_string(), out.lines.clone()));
    Ok((read, out))
}

/// Stops a run of `phase` on a fresh simulator after `stop` messages, resumes it from the last
/// state of each stream with a new guest on the same simulator, and checks the union.
pub fn crash_and_resume(
    runtime: &Runtime,
    plan: &Plan,
    phase: Phase,
    stop: usize,
    report: &mut SeedReport,
) -> Result<()> {
    let sim = Arc::new(Mutex::new(Simulator::new(plan.sim.clone())));
    let read = prepare(runtime, &sim, plan, phase)?;
    let first = run_read(runtime, &sim, &read, None, Some(stop));
    let state = first.last_states();
    let second = run_read(runtime, &sim, &read, Some(&state), None);
    let run1 = format!("crash in {} at message {stop}: first run", phase.name());
    let run2 = format!("crash in {} at message {stop}: resumed run", phase.name());
    let failures_before = report.failures.len();
    check_run(&read, &first, &run1, &mut report.failures);
    check_run(&read, &second, &run2, &mut report.failures);
    check_states(
        first.states.iter().chain(second.states.iter()),
        &format!("crash in {}: both runs", phase.name()),
        &mut report.failures,
    );
    let (t0, t1) = (sim_at(&plan.sim, first.start_ms), sim_at(&plan.sim, second.end_ms));
    let run = format!("crash in {} at message {stop}: union", phase.name());
    let mut must = BTreeMap::new();
    for stream in read.keys.keys() {
        let pk = &read.keys[stream];
        let rows =
            first.records.get(stream).into_iter().flatten().chain(second.records.get(stream).into_iter().flatten());
        let got: BTreeSet<String> = rows.map(|r| record_key(pk, r)).collect();
        let Some((a, b)) = truth_at_both(&read, stream, (&t0, &t1), first.start_ms, &mut report.failures) else {
            continue;
        };
        check_truth(stream, &got, &a, &b, &run, &mut report.failures);
        must.insert(stream.clone(), must_keys(&a, &b));
    }
    check_claims(&read, &first, None, &must, &run1, &mut report.failures);
    check_claims(&read, &second, Some(&first), &must, &run2, &mut report.failures);
    report.records_checked += first.record_count() + second.record_count();
    report.messages += (first.lines.len() + second.lines.len()) as u64;
    report.runs.push((format!("crash-{}-first", phase.name()), first.lines.clone()));
    report.runs.push((format!("crash-{}-resumed", phase.name()), second.lines.clone()));
    if first.stopped {
        report.crash_points += 1;
    }
    let s = sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?;
    add_faults(&mut report.faults, &s);
    if report.failures.len() > failures_before && report.call_log_tail.is_empty() {
        report.call_log_tail = s.render_call_log_tail(CALL_LOG_TAIL);
    }
    Ok(())
}

/// Runs one seed: both phases in full on one simulator, then one crash and resume.
pub fn run_seed(runtime: &Runtime, seed: u64) -> SeedReport {
    let plan = Plan::draw(seed);
    let mut report = SeedReport {
        seed,
        plan: plan.describe(),
        empty_middle_pages: plan.sim.faults.empty_middle_pages,
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
pub fn run(component: &Path, args: &SoakArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let runtime = Runtime::load(component).with_context(|| format!("loading {}", component.display()))?;
    let mut summary = Summary::default();
    println!("soak: seeds {}..={} through {}", args.seeds.start(), args.seeds.end(), component.display());
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
