//! Meta's churn against the simulator: fields, action breakdowns and breakdowns that Graph
//! refuses as removed, in each of its message forms, on each kind of request.

mod common;

use common::*;
use graph_sim::{RefusalForm, RemovedField, SimConfig, Simulator};
use serde_json::{Value, json};
use source_facebook_marketing::protocol::{LogLevel, Message};
use std::collections::BTreeSet;

const STREAMS: [&str; 4] = ["ads", "ad_creatives", "ad_creatives_from_ads", "ads_insights"];

/// Meta removes a field from each kind of request, in each of its message forms.
fn churned() -> SimConfig {
    let mut cfg = SimConfig { accounts: 2, ..SimConfig::default() };
    cfg.faults.removed_fields = vec![
        // An entity listing, named one at a time.
        RemovedField::new("Ad", "bid_type", RefusalForm::Nonexisting),
        RemovedField::new("Ad", "bid_info", RefusalForm::Nonexisting),
        // Creatives: a listing (ad_creatives) and batch items (ad_creatives_from_ads).
        RemovedField::new("AdCreative", "url_tags", RefusalForm::NotValidPleaseCheck),
        // A report-job creation, every removed field at once.
        RemovedField::new("AdsInsights", "cpp", RefusalForm::NotValidAfterVersion),
        RemovedField::new("AdsInsights", "social_spend", RefusalForm::NotValidAfterVersion),
        // A result page: the job is created, its results are refused.
        RemovedField { at_results: true, ..RemovedField::new("AdsInsights", "cpm", RefusalForm::Nonexisting) },
    ];
    cfg.faults.removed_action_breakdowns = vec!["action_target_id".into()];
    cfg
}

fn sync(cfg: SimConfig, streams: &[&str], extra: Value) -> Output {
    let mut sim = Simulator::new(cfg);
    let config = config(&sim, 30, extra);
    let cat = catalog(&config, sim.now_ms(), streams);
    read(&mut sim, &config, &cat, None, None)
}

fn infos(out: &Output) -> Vec<String> {
    out.messages
        .iter()
        .filter_map(|m| match m {
            Message::Log { level: LogLevel::Info, message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Every record of `stream`, each as its field names.
fn keys_of(out: &Output, stream: &str, key: &[&str]) -> BTreeSet<String> {
    out.records
        .get(stream)
        .into_iter()
        .flatten()
        .map(|r| key.iter().map(|k| r[*k].to_string()).collect::<Vec<_>>().join("|"))
        .collect()
}

fn has_field(out: &Output, stream: &str, field: &str) -> bool {
    out.records.get(stream).into_iter().flatten().any(|r| r.get(field).is_some())
}

#[test]
fn fields_meta_removed_are_dropped_and_the_sync_reads_every_record_without_them() {
    let calm = sync(SimConfig { accounts: 2, ..SimConfig::default() }, &STREAMS, json!({}));
    let out = sync(churned(), &STREAMS, json!({}));
    assert!(out.errors.is_empty(), "no stream fails: {:?}", out.errors);
    for (stream, key) in [
        ("ads", &["id"][..]),
        ("ad_creatives", &["id"]),
        ("ad_creatives_from_ads", &["id"]),
        ("ads_insights", &["date_start", "account_id", "ad_id"]),
    ] {
        assert!(!calm.records[stream].is_empty(), "{stream}");
        assert_eq!(keys_of(&out, stream, key), keys_of(&calm, stream, key), "{stream}: every record");
    }
    for (stream, field) in [
        ("ads", "bid_type"),
        ("ads", "bid_info"),
        ("ad_creatives", "url_tags"),
        ("ad_creatives_from_ads", "url_tags"),
        ("ads_insights", "cpp"),
        ("ads_insights", "social_spend"),
        ("ads_insights", "cpm"),
    ] {
        assert!(has_field(&calm, stream, field), "{stream}.{field} is there when Meta serves it");
        assert!(!has_field(&out, stream, field), "{stream}.{field} is dropped");
    }
    assert!(has_field(&out, "ads", "name") && has_field(&out, "ads_insights", "impressions"), "the rest stays");
    // One WARN per stream, naming the fields and the API version.
    let warns = warnings(&out);
    for (stream, fields) in [
        ("ads", &["bid_info", "bid_type"][..]),
        ("ad_creatives", &["url_tags"]),
        ("ad_creatives_from_ads", &["url_tags"]),
        ("ads_insights", &["cpm", "cpp", "social_spend", "action_target_id (action breakdown)"]),
    ] {
        let mine: Vec<&String> = warns.iter().filter(|w| w.starts_with(&format!("{stream}: "))).collect();
        assert_eq!(mine.len(), 1, "{stream}: {warns:#?}");
        assert!(mine[0].contains(&fields.join(", ")) && mine[0].contains("v25.0"), "{}", mine[0]);
    }
    let summary = infos(&out).into_iter().find(|l| l.starts_with("fields meta refused")).expect("a closing summary");
    assert!(summary.contains("ads: bid_info, bid_type") && summary.contains("ads_insights: cpm"), "{summary}");
    // Nothing was failed or skipped for it.
    assert_eq!(out.jobs("ads_insights").split, 0, "{:?}", out.jobs("ads_insights"));
}

#[test]
fn a_refusal_naming_a_key_field_drops_nothing_and_fails_the_stream_as_before() {
    let mut cfg = SimConfig { accounts: 1, ..SimConfig::default() };
    cfg.faults.removed_fields = vec![RemovedField::new("Ad", "id", RefusalForm::Nonexisting)];
    let out = sync(cfg, &["ads", "ad_creatives"], json!({}));
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert!(out.errors[0]["message"].as_str().unwrap().contains("(ads)"), "{}", out.errors[0]);
    assert!(out.records.get("ads").is_none_or(Vec::is_empty));
    assert!(!out.records["ad_creatives"].is_empty(), "the next stream is read");
    assert!(warnings(&out).iter().all(|w| !w.contains("no longer serves the field")), "nothing was dropped");
}

#[test]
fn a_breakdown_meta_removed_ends_that_stream_with_a_config_error_and_the_others_go_on() {
    let mut cfg = SimConfig { accounts: 1, ..SimConfig::default() };
    cfg.faults.removed_breakdowns = vec!["country".into()];
    let out = sync(cfg, &["ads_insights_country", "ads_insights"], json!({}));
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0]["failure_type"], "config_error");
    let message = out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains("ads_insights_country") && message.contains("breakdown(s) country"), "{message}");
    assert!(!out.records["ads_insights"].is_empty(), "the next stream is read");
}

#[test]
fn a_field_meta_removed_from_a_custom_insight_ends_it_with_a_config_error_naming_field_and_fix() {
    let mut cfg = SimConfig { accounts: 1, ..SimConfig::default() };
    cfg.faults.removed_fields = vec![RemovedField::new("AdsInsights", "cpp", RefusalForm::NotValidAfterVersion)];
    let custom = json!({"custom_insights": [{"name": "Costs", "fields": ["spend", "cpp"]}]});
    let out = sync(cfg.clone(), &["custom_costs"], custom.clone());
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0]["failure_type"], "config_error");
    let message = out.errors[0]["message"].as_str().unwrap();
    let expected = "custom_insights 'Costs': meta does not serve the field(s) cpp in api v25.0; remove them from this custom insight";
    assert!(message.contains(expected), "{message}");
    // `check` tries the custom insight's fields and fails with the same words.
    let mut sim = Simulator::new(cfg);
    let config = config(&sim, 3, custom);
    let status = check(&mut sim, &config);
    assert!(status.contains(expected), "{status}");
}

#[test]
fn a_retired_api_version_ends_the_sync_at_once_with_a_config_error_naming_it() {
    let cfg = SimConfig { accounts: 2, api_versions: vec!["v26.0".into()], ..SimConfig::default() };
    let out = sync(cfg, &["campaigns", "ads", "ads_insights"], json!({}));
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    assert_eq!(out.errors[0]["failure_type"], "config_error");
    let message = out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains("api version v25.0") && message.contains("no longer serves"), "{message}");
    assert!(out.records.is_empty(), "no stream goes on after it");
}

#[test]
fn an_expired_token_ends_the_sync_at_the_first_answer_instead_of_failing_every_stream() {
    let out = sync(SimConfig::preset("token_expired").unwrap(), &STREAMS, json!({}));
    assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
    let message = out.errors[0]["message"].as_str().unwrap();
    assert!(message.starts_with("the sync stopped") && message.contains("expired"), "{message}");
    assert!(!message.contains("ads_insights"), "not a list of every stream: {message}");
}
