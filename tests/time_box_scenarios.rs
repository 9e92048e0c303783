//! Time-boxed reads (`max_duration_seconds`) on the virtual clock: a read stops at its budget
//! with a STATE for every stream, and a chain of such reads, each given the last one's state,
//! yields the records and the final state of one uninterrupted sync.

mod common;

use common::{Output, catalog, config, read, state_messages};
use graph_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use source_facebook_marketing::read::resume::KEY;
use std::collections::{BTreeMap, BTreeSet};

/// Every kind of reader: the account node, listings with a cursor filter, with `since`, newest
/// first, creatives by ad, and insights through report jobs.
const STREAMS: [&str; 9] = [
    "ad_account",
    "campaigns",
    "ad_sets",
    "ads",
    "ad_creatives",
    "ad_creatives_from_ads",
    "activities",
    "images",
    "ads_insights",
];

/// A calm world of two accounts, 160 ads each: listings of several pages (at `page_size` 25),
/// report jobs of two result pages that Graph computes for 20 s.
fn world(preset: &str) -> SimConfig {
    let mut c = SimConfig::preset(preset).unwrap();
    c.accounts = 2;
    c.campaigns_per_account = 10;
    c.ads_per_adset = 8;
    c.images_per_account = 60;
    c.activities_per_account = 60;
    c.latency_ms = 300;
    // Every report fails once and then finishes: no report is skipped at random, since a skip
    // falls on a job by the order of creation (which a chain of reads changes) and a skipped
    // restart splits its account into ten campaigns, so counts of jobs created would differ
    // for no fault of the chain.
    c.faults.job_skipped = 0.0;
    c
}

/// The config of every read: insights of 4 days, listings in pages of 25.
fn conf(sim: &Simulator, extra: Value) -> Value {
    let mut extra = extra;
    extra["page_size"] = json!(25);
    config(sim, 3, extra)
}

/// What a sync (one read, or a chain) handed over.
#[derive(Debug, Default)]
struct Synced {
    /// Each stream's records, as JSON text, in the order emitted.
    records: BTreeMap<String, Vec<String>>,
    /// The last STATE of each stream, merged over the chain as Airbyte merges them.
    states: BTreeMap<String, Value>,
    reads: usize,
    /// Report jobs created, over the chain.
    jobs_started: u64,
    /// How long the chain took on the virtual clock.
    took_ms: i64,
}

impl Synced {
    fn take(&mut self, out: &Output) {
        for (stream, rows) in &out.records {
            self.records.entry(stream.clone()).or_default().extend(rows.iter().map(Value::to_string));
        }
        self.states.extend(out.states.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.jobs_started += out.job_stats.values().map(|j| j.started).sum::<u64>();
        self.reads += 1;
    }

    /// The final state, empty states (a full refresh's, once its mark is gone) left out.
    fn final_state(&self) -> BTreeMap<String, Value> {
        self.states
            .iter()
            .filter(|(_, v)| v.as_object().is_none_or(|m| !m.is_empty()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn distinct(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.records.iter().map(|(s, rows)| (s.clone(), rows.iter().cloned().collect())).collect()
    }

    fn duplicates(&self) -> usize {
        self.records.values().map(|rows| rows.len() - rows.iter().collect::<BTreeSet<_>>().len()).sum()
    }
}

fn stopped_by_budget(out: &Output) -> bool {
    out.messages.iter().any(|m| m.to_json_line().contains("time budget reached"))
}

/// The catalog of [`STREAMS`], every stream in full refresh when `full` says so.
fn streams(conf: &Value, now: i64, full: bool) -> Value {
    let mut cat = catalog(conf, now, &STREAMS);
    if full {
        for s in cat["streams"].as_array_mut().into_iter().flatten() {
            s["sync_mode"] = json!("full_refresh");
        }
    }
    cat
}

/// One uninterrupted sync of a fresh world.
fn whole(preset: &str, full: bool) -> Synced {
    let mut sim = Simulator::new(world(preset));
    let conf = conf(&sim, json!({}));
    let cat = streams(&conf, sim.now_ms(), full);
    let began = sim.now_ms();
    let out = read(&mut sim, &conf, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(!stopped_by_budget(&out));
    let mut s = Synced::default();
    s.take(&out);
    s.took_ms = sim.now_ms() - began;
    s
}

/// The same sync cut into reads of `budget_s` seconds each, every read given the merged state
/// of those before it.
fn chain(preset: &str, budget_s: u64, full: bool) -> Synced {
    let mut sim = Simulator::new(world(preset));
    let conf = conf(&sim, json!({"max_duration_seconds": budget_s}));
    let cat = streams(&conf, sim.now_ms(), full);
    let began = sim.now_ms();
    let mut s = Synced::default();
    loop {
        let state = (!s.states.is_empty()).then(|| state_messages(&s.states));
        let out = read(&mut sim, &conf, &cat, state.as_deref(), None);
        assert!(out.errors.is_empty(), "budget {budget_s} s, read {}: {:?}", s.reads + 1, out.errors);
        s.take(&out);
        if !stopped_by_budget(&out) {
            break;
        }
        // Every stream begun says where it stands: the last message before the closing log is a
        // STATE, so a destination commits every record the read emitted.
        let last_types: Vec<String> = out.messages.iter().rev().take(2).map(|m| m.to_json_line()).collect();
        assert!(last_types[0].contains("time budget reached"), "{}", last_types[0]);
        assert!(last_types[1].contains("\"type\":\"STATE\""), "{}", last_types[1]);
        assert!(s.reads < 400, "budget {budget_s} s: no end after {} reads", s.reads);
    }
    s.took_ms = sim.now_ms() - began;
    s
}

fn assert_same(whole: &Synced, chained: &Synced, budget_s: u64) {
    for (stream, rows) in whole.distinct() {
        let got = chained.distinct().remove(&stream).unwrap_or_default();
        assert_eq!(got.len(), rows.len(), "budget {budget_s} s, {stream}: distinct records");
        assert!(got == rows, "budget {budget_s} s, {stream}: the records differ");
    }
    assert_eq!(chained.distinct().len(), whole.distinct().len(), "budget {budget_s} s: streams");
    assert_eq!(chained.final_state(), whole.final_state(), "budget {budget_s} s: final state");
    let text = serde_json::to_string(&chained.states).unwrap();
    assert!(!text.contains(KEY), "budget {budget_s} s: a mark is left in the final state");
}

#[test]
fn a_chain_of_time_boxed_reads_at_every_budget_equals_one_uninterrupted_sync() {
    let whole = whole("calm", false);
    let length_s = (whole.took_ms / 1000) as u64;
    assert!(length_s >= 20, "the sync is long enough to cut: {length_s} s");
    let mut budgets: Vec<u64> = vec![1, 2, 3, 5, 8];
    budgets.extend((1..=8).map(|k| (length_s * k / 8).max(9)));
    budgets.push(length_s + 10);
    budgets.dedup();
    let mut report = Vec::new();
    for budget in budgets {
        let chained = chain("calm", budget, false);
        assert_same(&whole, &chained, budget);
        // Report runs still computing at a stop are polled by the next read, not created again.
        assert_eq!(chained.jobs_started, whole.jobs_started, "budget {budget} s: report jobs created");
        if budget > length_s {
            assert_eq!(chained.reads, 1, "a budget longer than the sync does not cut it");
        } else {
            assert!(chained.reads >= 2, "budget {budget} s cut the sync");
        }
        report.push(format!(
            "{budget} s: {} reads, {} duplicates, {} jobs (whole: {})",
            chained.reads,
            chained.duplicates(),
            chained.jobs_started,
            whole.jobs_started
        ));
    }
    eprintln!("sync of {length_s} s cut at budgets:\n  {}", report.join("\n  "));
}

#[test]
fn report_jobs_that_fail_and_split_and_answers_that_fail_are_cut_without_losing_a_row() {
    for preset in ["failing_jobs", "flaky"] {
        let whole = whole(preset, false);
        let length_s = (whole.took_ms / 1000) as u64;
        for budget in [3, length_s / 3, length_s / 2] {
            let chained = chain(preset, budget.max(3), false);
            assert!(chained.reads >= 2, "{preset}: budget {budget} s cut the sync");
            assert_same(&whole, &chained, budget);
            // A run carries its job's failed attempts: a job that keeps failing is split as in
            // one read, not retried afresh by every read. (In `flaky` faults fall at random on
            // requests, and each read sizes its result pages afresh from the rows it reads, so
            // its faults land elsewhere: there only what is read is compared.)
            if preset == "failing_jobs" {
                assert_eq!(
                    chained.jobs_started, whole.jobs_started,
                    "{preset}: budget {budget} s: report jobs created"
                );
            }
            eprintln!(
                "{preset}, sync of {length_s} s cut at {budget} s: {} reads, {} duplicates, {} jobs (whole: {})",
                chained.reads,
                chained.duplicates(),
                chained.jobs_started,
                whole.jobs_started
            );
        }
    }
}

#[test]
fn a_full_refresh_chain_reads_every_record_once_and_leaves_no_mark() {
    let whole = whole("calm", true);
    assert!(whole.final_state().is_empty(), "a full refresh writes no state");
    for budget in [1, 4] {
        let chained = chain("calm", budget, true);
        assert!(chained.reads >= 3, "budget {budget} s cut the sync");
        assert_same(&whole, &chained, budget);
        assert_eq!(chained.duplicates(), 0, "budget {budget} s: listings go on from their page");
    }
}

/// The states after the first read of a sync of `ads_insights` time-boxed at 3 s: its report
/// runs are being computed (they take 20 s), so the mark carries them.
fn first_read_with_runs_carried() -> (Simulator, Value, Value, BTreeMap<String, Value>) {
    let mut sim = Simulator::new(world("calm"));
    let conf = conf(&sim, json!({"max_duration_seconds": 3}));
    let cat = catalog(&conf, sim.now_ms(), &["ads_insights"]);
    let out = read(&mut sim, &conf, &cat, None, None);
    assert!(stopped_by_budget(&out));
    let runs = out.states["ads_insights"][KEY]["progress"]["accounts"].to_string();
    assert!(runs.contains("\"run\""), "the runs are carried: {runs}");
    (sim, conf, cat, out.states)
}

#[test]
fn report_runs_carried_over_are_polled_unless_older_than_graph_keeps_them() {
    let (mut sim, conf, cat, states) = first_read_with_runs_carried();
    let next = read(&mut sim, &conf, &cat, Some(&state_messages(&states)), None);
    assert_eq!(next.jobs("ads_insights").started, 0, "the runs of the first read are polled, not created again");

    // The same runs, made 26 days old: Graph may have dropped them, so their days are asked again.
    let (mut sim, conf, cat, mut states) = first_read_with_runs_carried();
    let month_ago = chrono::DateTime::from_timestamp_millis(sim.now_ms() - 26 * 86_400_000).unwrap();
    let accounts = states.get_mut("ads_insights").unwrap()[KEY]["progress"]["accounts"].as_object_mut().unwrap();
    for account in accounts.values_mut() {
        for run in account["jobs"].as_array_mut().unwrap() {
            run["created_at"] = json!(month_ago.to_rfc3339());
        }
    }
    let next = read(&mut sim, &conf, &cat, Some(&state_messages(&states)), None);
    assert!(next.jobs("ads_insights").started >= 2, "old runs are created again: {:?}", next.jobs("ads_insights"));
    let logs: Vec<String> =
        next.messages.iter().map(|m| m.to_json_line()).filter(|l| l.contains("older than 25 days")).collect();
    assert!(!logs.is_empty(), "the read says why it created them again");
}

#[test]
fn a_plan_no_sync_could_have_made_is_planned_afresh() {
    let (mut sim, conf, cat, mut states) = first_read_with_runs_carried();
    let accounts = states.get_mut("ads_insights").unwrap()[KEY]["progress"]["accounts"].as_object_mut().unwrap();
    for account in accounts.values_mut() {
        account["from"] = json!("1970-01-01");
        account["to"] = json!("9999-12-31");
    }
    let whole = whole_of(&["ads_insights"]);
    // The next read runs to the end, so that it can be set beside an uninterrupted sync.
    let mut unboxed = conf.clone();
    unboxed.as_object_mut().unwrap().remove("max_duration_seconds");
    let next = read(&mut sim, &unboxed, &cat, Some(&state_messages(&states)), None);
    assert!(next.errors.is_empty(), "{:?}", next.errors);
    let got: BTreeSet<String> = next.records.get("ads_insights").into_iter().flatten().map(Value::to_string).collect();
    let want: BTreeSet<String> = whole.records.get("ads_insights").into_iter().flatten().cloned().collect();
    assert_eq!(got, want, "the accounts are read as a fresh plan would read them");
}

/// One uninterrupted sync of `streams` in the calm world.
fn whole_of(streams: &[&str]) -> Synced {
    let mut sim = Simulator::new(world("calm"));
    let conf = conf(&sim, json!({}));
    let cat = catalog(&conf, sim.now_ms(), streams);
    let out = read(&mut sim, &conf, &cat, None, None);
    let mut s = Synced::default();
    s.take(&out);
    s
}
