//! End to end through the component: Meta removes fields from an entity listing, creative
//! batch items and insights (at job creation and at result pages), each in one of its message
//! forms; the sync ends without an error, with every record and without those fields, and says
//! so once per stream.

mod common;

use common::runtime;
use graph_sim::{RefusalForm, RemovedField, SimConfig};
use host_test::demo::{SimHarness, catalog_from, sample_config};
use host_test::output::{is_error_trace, to_line};
use host_test::runtime::{LogLevel, Message};
use serde_json::Value;
use std::collections::BTreeMap;

const STREAMS: [&str; 3] = ["ads", "ad_creatives_from_ads", "ads_insights"];

/// Records by stream, WARN lines, and whether an error trace came, of a sync of STREAMS.
fn sync(cfg: SimConfig) -> (BTreeMap<String, Vec<Value>>, Vec<String>, Vec<String>) {
    let harness = SimHarness::new(runtime().clone(), cfg);
    let config = {
        let sim = harness.sim.lock().expect("simulator lock");
        sample_config(&sim, 10).to_string()
    };
    let mut guest = harness.guest().expect("instantiate");
    let discovered = guest.discover(&config).expect("discover");
    let catalog = catalog_from(&discovered, &STREAMS).expect("catalog").to_string();
    let mut messages = Vec::new();
    guest
        .read(&config, &catalog, None, |batch| {
            messages.extend(batch);
            true
        })
        .expect("read");
    let errors: Vec<String> = messages.iter().filter(|m| is_error_trace(m)).map(to_line).collect();
    let mut records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut warns = Vec::new();
    for m in &messages {
        match m {
            Message::Record(r) => {
                records.entry(r.stream.clone()).or_default().push(serde_json::from_str(&r.data).expect("json"))
            }
            Message::Log(l) if l.level == LogLevel::Warn => warns.push(l.message.clone()),
            _ => {}
        }
    }
    (records, warns, errors)
}

fn ids(records: &BTreeMap<String, Vec<Value>>, stream: &str, key: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> =
        records[stream].iter().map(|r| key.iter().map(|k| r[*k].to_string()).collect::<Vec<_>>().join("|")).collect();
    ids.sort();
    ids
}

#[test]
fn a_sync_through_the_component_survives_fields_meta_removed() {
    let mut cfg = SimConfig::preset("calm").expect("calm");
    let (calm, _, calm_errors) = sync(cfg.clone());
    assert!(calm_errors.is_empty(), "{calm_errors:?}");
    cfg.faults.removed_fields = vec![
        RemovedField::new("Ad", "bid_type", RefusalForm::NotValidAfterVersion),
        RemovedField::new("AdCreative", "url_tags", RefusalForm::Nonexisting),
        RemovedField::new("AdsInsights", "cpc", RefusalForm::NotValidPleaseCheck),
        RemovedField { at_results: true, ..RemovedField::new("AdsInsights", "reach", RefusalForm::Nonexisting) },
    ];
    let (churned, warns, errors) = sync(cfg);
    assert!(errors.is_empty(), "the sync ends without an error: {errors:?}");
    for (stream, key) in
        [("ads", &["id"][..]), ("ad_creatives_from_ads", &["id"]), ("ads_insights", &["date_start", "ad_id"])]
    {
        assert_eq!(ids(&churned, stream, key), ids(&calm, stream, key), "{stream}: every record");
    }
    for (stream, field) in
        [("ads", "bid_type"), ("ad_creatives_from_ads", "url_tags"), ("ads_insights", "cpc"), ("ads_insights", "reach")]
    {
        assert!(calm[stream].iter().any(|r| r.get(field).is_some()), "{stream}.{field} when served");
        assert!(churned[stream].iter().all(|r| r.get(field).is_none()), "{stream}.{field} dropped");
    }
    for stream in STREAMS {
        let mine = warns.iter().filter(|w| w.starts_with(&format!("{stream}: meta no longer serves"))).count();
        assert_eq!(mine, 1, "one WARN for {stream}: {warns:#?}");
    }
}
