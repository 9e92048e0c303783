//! Insights against the simulator, on virtual time.

mod common;

use common::*;
use serde_json::{Value, json};
use source_facebook_marketing::read::insights::MAX_ID_LISTING_ATTEMPTS;
use std::collections::BTreeSet;

fn truth_keys(
    sim: &graph_sim::Simulator,
    since: chrono::NaiveDate,
    until: chrono::NaiveDate,
    breakdowns: &[&str],
) -> BTreeSet<String> {
    let q = graph_sim::TruthQuery {
        stream: "insights".into(),
        account_ids: sim.account_ids(),
        insights: Some(graph_sim::InsightsQuery {
            level: "ad".into(),
            breakdowns: breakdowns.iter().map(|s| s.to_string()).collect(),
            since,
            until,
            time_increment: 1,
            fields: vec!["account_id".into(), "ad_id".into(), "impressions".into()],
            ad_statuses: source_facebook_marketing::model::AD_STATUSES.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    sim.ground_truth(&q).iter().map(|r| key(r, breakdowns)).collect()
}

fn key(r: &Value, breakdowns: &[&str]) -> String {
    let mut k = format!(
        "{}|{}|{}",
        r["date_start"].as_str().unwrap_or(""),
        r["account_id"].as_str().unwrap_or(""),
        r["ad_id"].as_str().unwrap_or("")
    );
    for b in breakdowns {
        k.push('|');
        k.push_str(r[*b].as_str().unwrap_or(""));
    }
    k
}

fn window(sim: &graph_sim::Simulator, days: i64) -> (chrono::NaiveDate, chrono::NaiveDate) {
    let now = chrono::DateTime::from_timestamp_millis(sim.now_ms()).unwrap();
    ((now - chrono::Duration::days(days)).date_naive(), now.date_naive())
}

/// Reads `stream` over `days` days against `preset` and checks it against ground truth.
fn equals_ground_truth(preset: &str, stream: &str, breakdowns: &[&str], days: i64) -> Output {
    equals_ground_truth_in(preset, graph_sim::SimConfig::preset(preset).unwrap(), stream, breakdowns, days)
}

fn equals_ground_truth_with(sim_config: graph_sim::SimConfig, stream: &str, breakdowns: &[&str], days: i64) -> Output {
    equals_ground_truth_in("a custom simulator", sim_config, stream, breakdowns, days)
}

/// As [`equals_ground_truth`]; `preset` names the simulator's setup in failure messages.
fn equals_ground_truth_in(
    preset: &str,
    sim_config: graph_sim::SimConfig,
    stream: &str,
    breakdowns: &[&str],
    days: i64,
) -> Output {
    let mut sim = graph_sim::Simulator::new(sim_config.clone());
    let start = sim.now_ms();
    let cfg = config(&sim, days, json!({}));
    let cat = catalog(&cfg, start, &[stream]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{preset}: {:?}", out.errors);
    let now = chrono::DateTime::from_timestamp_millis(start).unwrap();
    let since = (now - chrono::Duration::days(days)).date_naive();
    let got: BTreeSet<String> = out.records.get(stream).into_iter().flatten().map(|r| key(r, breakdowns)).collect();
    // Truth as of the sync's start day (reports are frozen when created).
    let truth_sim = graph_sim::Simulator::new(sim_config);
    let until = now.date_naive() + chrono::Duration::days(1);
    let truth = truth_keys(&truth_sim, since, until, breakdowns);
    assert!(!truth.is_empty());
    assert_eq!(got.len(), truth.len(), "{preset}: {} rows read, {} in truth", got.len(), truth.len());
    assert_eq!(got, truth, "{preset}");
    assert_eq!(got.len(), out.count(stream), "{preset}: duplicate keys");
    out
}

#[test]
fn ads_insights_equals_ground_truth_on_a_calm_api() {
    equals_ground_truth("calm", "ads_insights", &[], 10);
}

#[test]
fn breakdown_stream_equals_ground_truth() {
    equals_ground_truth("calm", "ads_insights_age_and_gender", &["age", "gender"], 3);
}

#[test]
fn failing_jobs_are_retried_and_every_row_arrives() {
    let out = equals_ground_truth("failing_jobs", "ads_insights", &[], 5);
    let jobs = out.jobs("ads_insights");
    assert!(jobs.retried > 0, "no job was retried: {jobs:?}");
}

#[test]
fn stuck_jobs_time_out_and_every_row_arrives() {
    let out = equals_ground_truth("stuck_jobs", "ads_insights", &[], 5);
    assert!(out.slept.iter().map(|(d, _)| d.as_secs()).sum::<u64>() >= 3600, "a stuck job costs the job timeout");
    let jobs = out.jobs("ads_insights");
    assert!(jobs.timed_out > 0 && jobs.retried >= jobs.timed_out.min(1), "{jobs:?}");
}

#[test]
fn huge_account_jobs_are_split_until_they_succeed() {
    let out = equals_ground_truth("huge_account", "ads_insights", &[], 2);
    assert!(out.jobs("ads_insights").split > 0, "{:?}", out.jobs("ads_insights"));
}

#[test]
fn huge_account_splits_by_objects_before_days() {
    // Too large by rows: a job per campaign over the same days divides the rows by the
    // campaigns, where halving the days took two generations a halving and never reached a
    // day Graph could build at account level.
    let out = equals_ground_truth("huge_account", "ads_insights", &[], 2);
    let splits = out.jobs("ads_insights").splits;
    assert!(splits.account_to_campaigns > 0, "object split: {splits:?}");
    assert!(splits.campaign_to_adsets > 0, "and again below: {splits:?}");
    assert_eq!(splits.by_days, 0, "no day split above the stream's level: {splits:?}");
}

#[test]
fn account_jobs_that_always_fail_are_restarted_once_then_split_into_campaigns() {
    // Every whole-account report fails, however few its days: the fewest generations are the
    // job, its restart, the campaign id listing and the campaign jobs.
    let out = equals_ground_truth("failing_account_jobs", "ads_insights", &[], 9);
    let jobs = out.jobs("ads_insights");
    assert_eq!(jobs.splits.by_days, 0, "{jobs:?}");
    assert!(jobs.splits.account_to_campaigns > 0, "{jobs:?}");
    assert_eq!(jobs.retried, jobs.splits.account_to_campaigns, "one restart per account job, then its split: {jobs:?}");
    assert_eq!(jobs.split, jobs.splits.account_to_campaigns, "no split below the campaigns: {jobs:?}");
}

/// The field names of each record, by primary key.
fn field_names(out: &Output, stream: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let names = |r: &Value| r.as_object().map(|o| o.keys().cloned().collect::<BTreeSet<_>>()).unwrap_or_default();
    out.records[stream].iter().map(|r| (key(r, &[]), names(r))).collect()
}

fn logs(out: &Output) -> Vec<String> {
    out.messages
        .iter()
        .filter_map(|m| match m {
            source_facebook_marketing::protocol::Message::Log { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn ad_level_jobs_that_still_fail_are_split_by_fields_and_merged_by_key() {
    let cfg = graph_sim::SimConfig {
        accounts: 1,
        campaigns_per_account: 1,
        adsets_per_campaign: 1,
        ads_per_adset: 2,
        max_job_cells: 60,
        ..graph_sim::SimConfig::default()
    };
    let out = equals_ground_truth_with(cfg.clone(), "ads_insights", &[], 1);
    assert!(out.jobs("ads_insights").splits.by_fields > 0, "{:?}", out.jobs("ads_insights"));
    // Merged rows carry the fields of both halves: every field a sync without failures reads.
    let calm = equals_ground_truth_with(
        graph_sim::SimConfig { max_job_cells: graph_sim::UNLIMITED, ..cfg },
        "ads_insights",
        &[],
        1,
    );
    assert_eq!(calm.jobs("ads_insights").split, 0);
    assert_eq!(field_names(&out, "ads_insights"), field_names(&calm, "ads_insights"), "a row lacks a half's fields");
}

fn job_creates(sim: &graph_sim::Simulator) -> Vec<String> {
    sim.call_log().iter().filter(|e| e.kind == graph_sim::RequestKind::JobCreate).map(|e| e.path.clone()).collect()
}

fn account_reads(sim: &graph_sim::Simulator) -> usize {
    sim.call_log().iter().filter(|e| e.kind == graph_sim::RequestKind::AccountRead).count()
}

#[test]
fn each_account_is_looked_up_once_per_sync_however_many_streams_need_its_time_zone() {
    let streams = ["ads_insights", "ads_insights_age_and_gender", "ads_insights_region"];
    let mut sim = sim("calm");
    let accounts = sim.account_ids().len();
    let cfg = config(&sim, 2, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &streams);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(streams.iter().all(|s| out.count(s) > 0));
    assert_eq!(account_reads(&sim), accounts, "one time zone lookup per account for {} streams", streams.len());

    // With ad_account in the catalog, its records serve the lookups.
    let mut sim = self::sim("calm");
    let cat = catalog(&cfg, sim.now_ms(), &["ad_account", streams[0], streams[1]]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(account_reads(&sim), accounts, "only ad_account's own reads");
}

#[test]
fn estimate_traces_follow_the_rows_and_the_last_one_is_exact() {
    let mut sim = sim("calm");
    let cfg = config(&sim, 20, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let estimates: Vec<Value> = out
        .messages
        .iter()
        .filter_map(|m| match m {
            source_facebook_marketing::protocol::Message::Trace(t) => serde_json::from_str::<Value>(t).ok(),
            _ => None,
        })
        .filter(|t| t["type"] == "ESTIMATE")
        .collect();
    assert!(estimates.len() >= 2, "an estimate once the slices are known, and as it firms up: {estimates:?}");
    for e in &estimates {
        assert_eq!(e["estimate"]["name"], "ads_insights");
        assert_eq!(e["estimate"]["type"], "STREAM");
    }
    let last = estimates.last().unwrap()["estimate"]["row_estimate"].as_u64();
    assert_eq!(last, Some(out.count("ads_insights") as u64));
}

#[test]
fn a_start_date_five_years_ago_is_clamped_to_37_months() {
    let mut sim = sim("calm");
    let cfg = config(&sim, 5 * 365, json!({"account_ids": [sim.account_ids()[0].clone()]}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let today = chrono::DateTime::from_timestamp_millis(graph_sim::DEFAULT_START_MS).unwrap().date_naive();
    let earliest = today - chrono::Duration::days(1122);
    let acct = &sim.account_ids()[0];
    // The cursor walked every slice from the clamped start.
    assert!(!out.state_log.is_empty());
    assert!(
        logs(&out).iter().any(|l| l.contains("37 months") && l.contains(&earliest.to_string())),
        "{:?}",
        &logs(&out)[..3]
    );
    assert!(
        out.records["ads_insights"].iter().all(|r| r["date_start"].as_str().unwrap() >= earliest.to_string().as_str())
    );
    let cursor = out.states["ads_insights"][acct]["date_start"].as_str().unwrap().to_string();
    assert!(cursor.as_str() >= (today - chrono::Duration::days(1)).to_string().as_str(), "every slice read: {cursor}");
}

#[test]
fn incremental_insights_reread_the_lookback_window_before_the_cursor() {
    let mut sim = sim("calm");
    let acct = sim.account_ids()[0].clone();
    let cfg = config(&sim, 60, json!({"account_ids": [acct.clone()], "insights_lookback_window": 10}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let state =
        json!({"ads_insights": {acct.clone(): {"date_start": "2026-06-12", "slices": []}, "time_increment": 1}});
    let out = read(&mut sim, &cfg, &cat, Some(&state.to_string()), None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let first_day =
        out.records["ads_insights"].iter().map(|r| r["date_start"].as_str().unwrap().to_string()).min().unwrap();
    assert_eq!(first_day, "2026-06-02", "cursor 2026-06-12 minus 10 days");
    let cursor = out.states["ads_insights"][&acct]["date_start"].as_str().unwrap().to_string();
    assert!(cursor.as_str() >= "2026-06-12", "the cursor never moves backwards: {cursor}");
}

#[test]
fn state_with_another_time_increment_is_ignored_and_everything_reread() {
    let mut sim = sim("calm");
    let acct = sim.account_ids()[0].clone();
    let cfg = config(&sim, 5, json!({"account_ids": [acct.clone()]}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let state = json!({"ads_insights": {acct.clone(): {"date_start": "2026-06-14"}, "time_increment": 7}});
    let out = read(&mut sim, &cfg, &cat, Some(&state.to_string()), None);
    let first_day =
        out.records["ads_insights"].iter().map(|r| r["date_start"].as_str().unwrap().to_string()).min().unwrap();
    assert_eq!(first_day, "2026-06-10");
}

#[test]
fn state_is_never_ahead_of_the_rows_already_emitted() {
    let cfg_sim = graph_sim::SimConfig::preset("failing_jobs").unwrap();
    let mut sim = graph_sim::Simulator::new(cfg_sim.clone());
    let cfg = config(&sim, 12, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty());
    let truth_sim = graph_sim::Simulator::new(cfg_sim);
    let (since, until) = window(&truth_sim, 12);
    let truth = truth_keys(&truth_sim, since, until, &[]);
    let mut emitted: Vec<String> = Vec::new();
    let mut states_checked = 0;
    for m in &out.messages {
        match m {
            source_facebook_marketing::protocol::Message::Record { data, .. } => {
                let r: Value = serde_json::from_str(data).unwrap();
                emitted.push(key(&r, &[]));
            }
            source_facebook_marketing::protocol::Message::State(s) => {
                let s: Value = serde_json::from_str(s).unwrap();
                let st = &s["stream"]["stream_state"];
                for acct in truth_sim.account_ids() {
                    let Some(cursor) = st[&acct]["date_start"].as_str() else { continue };
                    let mut covered: Vec<&str> = vec![];
                    let done: Vec<String> = st[&acct]["slices"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d.as_str().map(str::to_string))
                        .collect();
                    covered.extend(done.iter().map(String::as_str));
                    for k in truth.iter().filter(|k| k.contains(&acct)) {
                        let day = &k[..10];
                        if day <= cursor || covered.contains(&day) {
                            assert!(emitted.contains(k), "state claims {day} of {acct} before row {k} was emitted");
                        }
                    }
                }
                states_checked += 1;
            }
            _ => {}
        }
    }
    assert!(states_checked > 3);
}

#[test]
fn an_insights_sync_stopped_at_any_state_message_and_resumed_misses_nothing() {
    let mut sim = sim("calm");
    let cfg = config(&sim, 6, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let full = read(&mut sim, &cfg, &cat, None, None);
    let all: BTreeSet<String> = full.records["ads_insights"].iter().map(|r| key(r, &[])).collect();
    let stops = full.state_stops();
    assert!(stops.len() >= 2);
    for stop in stops {
        let mut s = common::sim("calm");
        let partial = read(&mut s, &cfg, &cat, None, Some(stop));
        let resumed = read(&mut s, &cfg, &cat, Some(&partial.state_messages()), None);
        let mut union: BTreeSet<String> =
            partial.records.get("ads_insights").into_iter().flatten().map(|r| key(r, &[])).collect();
        union.extend(resumed.records["ads_insights"].iter().map(|r| key(r, &[])));
        assert_eq!(union, all, "stopped at message {stop}");
    }
}

#[test]
fn fifty_five_running_jobs_are_polled_as_fifty_and_five() {
    let mut sim = graph_sim::Simulator::new(graph_sim::SimConfig {
        accounts: 1,
        history_days: 400,
        ..graph_sim::SimConfig::default()
    });
    let cfg = config(&sim, 384, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(job_creates(&sim).len(), 55, "385 days in 7-day jobs");
    // The simulator logs a batch's operations just before the batch itself.
    let log = sim.call_log();
    let sizes: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == graph_sim::RequestKind::Batch)
        .map(|(i, _)| log[..i].iter().rev().take_while(|e| e.in_batch).count())
        .collect();
    assert_eq!(&sizes[..2], &[50, 5], "the first poll round");
    assert!(sizes.iter().all(|n| *n <= 50));
}

/// Meta's limited tier: job creations meet quota blocks, which the sync waits out (the manager's
/// own hold on new jobs while an account's insights load is high is its unit test,
/// `new_jobs_wait_while_the_accounts_insights_load_is_at_the_limit_then_go`).
#[test]
fn a_throttled_insights_api_is_waited_out_and_still_gives_every_row() {
    let out = equals_ground_truth("throttled", "ads_insights", &[], 60);
    let waits =
        out.slept.iter().filter(|(_, r)| *r == source_facebook_marketing::driver::TimeoutReason::QuotaWait).count();
    assert!(waits > 0, "the quota blocks were waited out: {:?}", out.slept);
}

#[test]
fn jobs_failing_twice_at_every_level_split_down_to_ads_then_fields_and_merge() {
    let mut cfg = graph_sim::SimConfig {
        accounts: 1,
        campaigns_per_account: 2,
        adsets_per_campaign: 2,
        ads_per_adset: 2,
        ..Default::default()
    };
    cfg.faults.job_fail_first_attempts = 2;
    let out = equals_ground_truth_with(cfg, "ads_insights", &[], 1);
    let jobs = out.jobs("ads_insights");
    assert!(jobs.retried > 0, "restart first: {jobs:?}");
    assert!(jobs.splits.account_to_campaigns > 0, "account -> campaigns: {jobs:?}");
    assert!(jobs.splits.campaign_to_adsets > 0, "campaign -> ad sets: {jobs:?}");
    assert!(jobs.splits.adset_to_ads > 0, "ad set -> ads: {jobs:?}");
    assert!(jobs.splits.by_fields > 0, "ad -> halves of its fields: {jobs:?}");
}

#[test]
fn an_id_listing_that_keeps_failing_gives_way_to_a_field_split_and_every_row_arrives() {
    let mut cfg = graph_sim::SimConfig { accounts: 1, campaigns_per_account: 2, ..Default::default() };
    // Every report fails five times: the account's id listing runs out of attempts.
    cfg.faults.job_fail_first_attempts = MAX_ID_LISTING_ATTEMPTS;
    let out = equals_ground_truth_with(cfg.clone(), "ads_insights", &[], 0);
    let jobs = out.jobs("ads_insights");
    assert!(jobs.id_listings_given_up > 0, "{jobs:?}");
    // The halves at account level fail too and are halved again, never split by objects: every
    // row is merged whole, with the fields of a sync where no report fails.
    assert!(jobs.splits.by_fields > 1, "halves halved again: {jobs:?}");
    assert_eq!(jobs.splits.campaign_to_adsets, 0, "{jobs:?}");
    cfg.faults.job_fail_first_attempts = 0;
    let calm = equals_ground_truth_with(cfg, "ads_insights", &[], 0);
    assert_eq!(field_names(&out, "ads_insights"), field_names(&calm, "ads_insights"), "a partly merged row");
}

#[test]
fn a_stuck_job_is_restarted_after_the_timeout_even_while_status_polls_fail() {
    let mut cfg = graph_sim::SimConfig::preset("stuck_jobs").unwrap();
    cfg.faults.batch_null = 0.5;
    cfg.faults.batch_aborted_960 = 0.2;
    let out = equals_ground_truth_with(cfg, "ads_insights", &[], 3);
    assert!(out.jobs("ads_insights").timed_out > 0, "a job timed out: {:?}", out.jobs("ads_insights"));
}

#[test]
fn a_field_that_fails_alone_ends_the_stream_with_a_config_error_naming_it() {
    let cfg_sim = graph_sim::SimConfig {
        accounts: 1,
        campaigns_per_account: 1,
        adsets_per_campaign: 1,
        ads_per_adset: 1,
        max_job_cells: 1,
        ..Default::default()
    };
    let mut sim = graph_sim::Simulator::new(cfg_sim);
    let cfg = config(&sim, 1, json!({}));
    let mut cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    // Select only the key fields and one metric.
    let props = json!({"date_start": {}, "account_id": {}, "ad_id": {}, "impressions": {}});
    cat["streams"][0]["stream"]["json_schema"]["properties"] = props;
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0]["failure_type"], "config_error");
    assert!(out.errors[0]["message"].as_str().unwrap().contains("'impressions'"), "{}", out.errors[0]);
}

#[test]
fn a_failing_id_listing_with_no_field_split_left_fails_the_account_as_transient_not_as_config() {
    let mut cfg_sim = graph_sim::SimConfig { accounts: 1, campaigns_per_account: 2, ..Default::default() };
    cfg_sim.faults.job_fail_first_attempts = MAX_ID_LISTING_ATTEMPTS;
    let mut sim = graph_sim::Simulator::new(cfg_sim);
    let cfg = config(&sim, 0, json!({}));
    let mut cat = catalog(&cfg, sim.now_ms(), &["ads_insights"]);
    let props = json!({"date_start": {}, "account_id": {}, "ad_id": {}, "impressions": {}});
    cat["streams"][0]["stream"]["json_schema"]["properties"] = props;
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0]["failure_type"], "transient_error", "{}", out.errors[0]);
    assert!(out.errors[0]["message"].as_str().unwrap().contains("could not list the objects"), "{}", out.errors[0]);
}

#[test]
fn every_builtin_insight_stream_equals_ground_truth_on_hard_presets() {
    let streams: Vec<(&str, Vec<&str>)> =
        source_facebook_marketing::streams::BUILTIN_INSIGHTS.iter().map(|b| (b.name, b.breakdowns.to_vec())).collect();
    for preset in ["failing_jobs", "stuck_jobs", "huge_account"] {
        for (stream, breakdowns) in &streams {
            equals_ground_truth(preset, stream, breakdowns, 1);
        }
    }
}

#[test]
fn a_custom_insight_at_adset_level_by_week_equals_ground_truth() {
    let mut sim = sim("calm");
    let start = sim.now_ms();
    let cfg = config(
        &sim,
        20,
        json!({"custom_insights": [{
            "name": "WeeklyAdsets", "level": "adset", "fields": ["impressions", "spend", "clicks"],
            "breakdowns": ["country"], "time_increment_period": "weekly"
        }]}),
    );
    let cat = catalog(&cfg, start, &["custom_weekly_adsets"]);
    let pk = cat["streams"][0]["stream"]["source_defined_primary_key"].clone();
    assert_eq!(pk, json!([["date_start"], ["account_id"], ["adset_id"], ["country"]]));
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let rows = &out.records["custom_weekly_adsets"];
    let keys: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("{}|{}|{}|{}", r["date_start"], r["account_id"], r["adset_id"], r["country"]))
        .collect();
    assert_eq!(keys.len(), rows.len(), "unique keys");
    for r in rows {
        let d: chrono::NaiveDate = r["date_start"].as_str().unwrap().parse().unwrap();
        assert_eq!(chrono::Datelike::weekday(&d), chrono::Weekday::Mon, "weeks start on Monday");
        assert!(r["adset_id"].is_string(), "the level id is always requested");
    }
    let state = &out.states["custom_weekly_adsets"];
    assert_eq!(state["time_increment_period"], "weekly");
}
