//! Insights against the simulator, on virtual time.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn truth_keys(sim: &graph_sim::Simulator, since: chrono::NaiveDate, until: chrono::NaiveDate, breakdowns: &[&str]) -> BTreeSet<String> {
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
            ad_statuses: source_facebook_marketing::config::AD_STATUSES.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    sim.ground_truth(&q).iter().map(|r| key(r, breakdowns)).collect()
}

fn key(r: &Value, breakdowns: &[&str]) -> String {
    let mut k = format!("{}|{}|{}", r["date_start"].as_str().unwrap_or(""), r["account_id"].as_str().unwrap_or(""), r["ad_id"].as_str().unwrap_or(""));
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
    equals_ground_truth_with(graph_sim::SimConfig::preset(preset).unwrap(), stream, breakdowns, days)
}

fn equals_ground_truth_with(sim_config: graph_sim::SimConfig, stream: &str, breakdowns: &[&str], days: i64) -> Output {
    let preset = "custom";
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
    equals_ground_truth("failing_jobs", "ads_insights", &[], 5);
}

#[test]
fn stuck_jobs_time_out_and_every_row_arrives() {
    let out = equals_ground_truth("stuck_jobs", "ads_insights", &[], 5);
    assert!(out.slept.iter().map(|(d, _)| d.as_secs()).sum::<u64>() >= 3600, "a stuck job costs the job timeout");
}

#[test]
fn huge_account_jobs_are_split_until_they_succeed() {
    equals_ground_truth("huge_account", "ads_insights", &[], 2);
}

#[test]
fn huge_account_splits_by_days_objects_and_fields() {
    let out = equals_ground_truth("huge_account", "ads_insights", &[], 2);
    let logs: Vec<String> = out
        .messages
        .iter()
        .filter_map(|m| match m {
            source_facebook_marketing::protocol::Message::Log { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    let has = |needle: &str| logs.iter().any(|l| l.contains(needle));
    assert!(has("report of account") && has("splitting it"), "day split: {logs:#?}");
    assert!(has("report of campaign"), "object split: {logs:#?}");
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
    let out = equals_ground_truth_with(cfg, "ads_insights", &[], 1);
    assert!(logs(&out).iter().any(|l| l.contains("report of ad ") && l.contains("splitting it")), "{:#?}", logs(&out));
    // Merged rows carry fields of both halves.
    let row = &out.records["ads_insights"][0];
    assert!(row.get("impressions").is_some() && row.get("website_ctr").is_some() || row.get("spend").is_some());
}
