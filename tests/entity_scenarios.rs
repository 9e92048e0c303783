//! Entity streams against the simulator, on virtual time.

mod common;

use common::*;
use graph_sim::TruthQuery;
use serde_json::{Value, json};
use std::collections::BTreeSet;

use graph_sim::ENTITY_STREAMS;

fn truth_ids(
    sim: &graph_sim::Simulator,
    stream: &str,
    statuses: &[&str],
    updated_since: Option<i64>,
) -> BTreeSet<String> {
    let q = TruthQuery {
        stream: stream.into(),
        account_ids: sim.account_ids(),
        statuses: statuses.iter().map(|s| s.to_string()).collect(),
        updated_since,
        ..Default::default()
    };
    sim.ground_truth(&q).iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
}

/// Activities have no id: key them by object and time.
fn activity_keys(records: &[Value]) -> BTreeSet<String> {
    records.iter().map(|r| format!("{}|{}", r["object_id"], r["event_time"])).collect()
}

#[test]
fn full_refresh_of_every_entity_stream_equals_ground_truth() {
    let mut sim = sim("calm");
    let cfg = config(&sim, 30, json!({}));
    // No start date: entity streams read everything.
    let mut cfg_all = cfg.clone();
    cfg_all.as_object_mut().unwrap().remove("start_date");
    let mut cat = catalog(&cfg_all, sim.now_ms(), &ENTITY_STREAMS);
    for s in cat["streams"].as_array_mut().unwrap() {
        s["sync_mode"] = json!("full_refresh");
    }
    let out = read(&mut sim, &cfg_all, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for stream in &ENTITY_STREAMS {
        if *stream == "activities" {
            let q = TruthQuery { stream: "activities".into(), account_ids: sim.account_ids(), ..Default::default() };
            let truth: Vec<Value> = sim.ground_truth(&q);
            assert_eq!(activity_keys(&out.records["activities"]), activity_keys(&truth), "activities");
            continue;
        }
        let truth = truth_ids(&sim, stream, &[], None);
        assert!(!truth.is_empty(), "{stream} has data");
        assert_eq!(out.ids(stream), truth, "{stream}");
        assert_eq!(out.count(stream), truth.len(), "{stream}: no duplicates");
    }
    for r in &out.records["ads"] {
        assert!(r["account_id"].is_string(), "account_id added");
    }
}

#[test]
fn status_filters_select_archived_and_deleted_objects() {
    let mut sim = sim("calm");
    let mut cfg =
        config(&sim, 30, json!({"ad_statuses": ["ARCHIVED", "DELETED", "ACTIVE"], "campaign_statuses": ["PAUSED"]}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ads", "campaigns"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.ids("ads"), truth_ids(&sim, "ads", &["ARCHIVED", "DELETED", "ACTIVE"], None));
    assert_eq!(out.ids("campaigns"), truth_ids(&sim, "campaigns", &["PAUSED"], None));
    let visible = truth_ids(&sim, "ads", &[], None);
    assert_ne!(out.ids("ads"), visible, "the filter changes what is read");
}

#[test]
fn incremental_sync_picks_up_exactly_the_changed_records() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let streams = ["campaigns", "ad_sets", "ads", "images", "videos"];
    let cat = catalog(&cfg, sim.now_ms(), &streams);
    let first = read(&mut sim, &cfg, &cat, None, None);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    // Ten days pass; the simulated world changes.
    let before = sim.now_ms() / 1000;
    sim.advance(10 * 86_400_000);
    let second = read(&mut sim, &cfg, &cat, Some(&first.state_messages()), None);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    for stream in streams {
        let changed = truth_ids(&sim, stream, &[], Some(before));
        let got = second.ids(stream);
        assert!(changed.is_subset(&got), "{stream}: missed {:?}", changed.difference(&got).collect::<Vec<_>>());
        // The only extra records are those updated in the cursor's own second (the overlap that
        // keeps same-second updates from being lost).
        let all_first = first.ids(stream);
        for id in got.difference(&changed) {
            assert!(all_first.contains(id), "{stream}: {id} was neither changed nor at the cursor");
        }
        assert!(
            got.len() < all_first.len() || changed.len() >= all_first.len() / 2,
            "{stream}: incremental re-read everything"
        );
    }
}

#[test]
fn incremental_state_keeps_the_old_cursor_when_nothing_is_new() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["images", "ads"]);
    let first = read(&mut sim, &cfg, &cat, None, None);
    let second = read(&mut sim, &cfg, &cat, Some(&first.state_messages()), None);
    for acct in sim.account_ids() {
        assert_eq!(first.states["images"][&acct]["updated_time"], second.states["images"][&acct]["updated_time"]);
        assert_eq!(first.states["ads"][&acct]["updated_time"], second.states["ads"][&acct]["updated_time"]);
        assert!(second.states["images"][&acct]["updated_time"].is_string(), "never null");
    }
}

#[test]
fn adding_a_status_ignores_the_stored_cursor() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ads"]);
    let first = read(&mut sim, &cfg, &cat, None, None);
    cfg["ad_statuses"] = json!(["ACTIVE", "PAUSED", "ARCHIVED"]);
    let second = read(&mut sim, &cfg, &cat, Some(&first.state_messages()), None);
    assert_eq!(second.ids("ads"), truth_ids(&sim, "ads", &["ACTIVE", "PAUSED", "ARCHIVED"], None));
    let acct = &sim.account_ids()[0];
    assert_eq!(second.states["ads"][acct]["filter_statuses"], json!(["ACTIVE", "PAUSED", "ARCHIVED"]));
}

#[test]
fn a_sync_stopped_after_any_state_message_and_resumed_misses_nothing() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let streams = ["campaigns", "ads", "images"];
    let cat = catalog(&cfg, sim.now_ms(), &streams);
    let full = read(&mut sim, &cfg, &cat, None, None);
    let state_positions = full.state_stops();
    assert!(state_positions.len() >= 3);
    for stop in state_positions {
        let mut s = common::sim("calm");
        let partial = read(&mut s, &cfg, &cat, None, Some(stop));
        let resumed = read(&mut s, &cfg, &cat, Some(&partial.state_messages()), None);
        for stream in streams {
            let mut union = partial.ids(stream);
            union.extend(resumed.ids(stream));
            assert_eq!(union, full.ids(stream), "{stream} after stopping at message {stop}");
        }
    }
}

#[test]
fn an_airbyte_state_file_is_accepted_and_filters_like_airbyte() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({"ad_statuses": ["ACTIVE"]}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let acct = sim.account_ids()[0].clone();
    // As Airbyte's connector writes it: per account, colon offset, filter_statuses.
    let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ads"},
        "stream_state": {acct.clone(): {"updated_time": "2026-06-10T00:00:00-07:00", "filter_statuses": ["ACTIVE"]}}}}]);
    let cat = catalog(&cfg, sim.now_ms(), &["ads"]);
    let out = read(&mut sim, &cfg, &cat, Some(&state.to_string()), None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let first_ads_request =
        sim.call_log().iter().find(|e| e.path.ends_with("/ads")).map(|e| e.path.clone()).expect("an ads listing");
    assert!(first_ads_request.contains(&format!("act_{acct}")));
    // 2026-06-10T07:00:00Z = 1781074800; the filter starts one second earlier.
    let since = chrono::DateTime::parse_from_rfc3339("2026-06-10T00:00:00-07:00").unwrap().timestamp();
    let q = TruthQuery {
        stream: "ads".into(),
        account_ids: vec![acct.clone()],
        statuses: vec!["ACTIVE".into()],
        updated_since: Some(since - 1),
        ..Default::default()
    };
    let expected: BTreeSet<String> =
        sim.ground_truth(&q).iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
    let got: BTreeSet<String> = out.records["ads"]
        .iter()
        .filter(|r| r["account_id"] == json!(acct))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, expected, "exactly the active ads updated since the stored cursor");
    assert!(out.states["ads"][&acct]["updated_time"].as_str().unwrap() >= "2026-06-10");
}

#[test]
fn one_failing_account_does_not_corrupt_the_others_state() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let good = sim.account_ids()[0].clone();
    cfg["account_ids"] = json!([good.clone(), "999999999"]);
    let previous = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ads"},
        "stream_state": {"999999999": {"updated_time": "2026-01-01T00:00:00+00:00", "filter_statuses": []}}}}]);
    let cat = catalog(&cfg, sim.now_ms(), &["ads"]);
    let out = read(&mut sim, &cfg, &cat, Some(&previous.to_string()), None);
    assert_eq!(out.errors.len(), 1, "the sync reports the failure");
    assert!(out.errors[0]["message"].as_str().unwrap().contains("999999999"));
    assert!(out.states["ads"][&good]["updated_time"].is_string());
    assert_eq!(out.states["ads"]["999999999"]["updated_time"], "2026-01-01T00:00:00+00:00");
    assert!(out.count("ads") > 0);
}

#[test]
fn flaky_api_still_gives_every_record() {
    let mut sim = sim("flaky");
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let streams = ["campaigns", "ad_sets", "ads", "ad_creatives", "images", "videos", "custom_audiences"];
    let cat = catalog(&cfg, sim.now_ms(), &streams);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for stream in streams {
        assert_eq!(out.ids(stream), truth_ids(&sim, stream, &[], None), "{stream}");
    }
}

#[test]
fn a_polite_client_never_trips_the_throttled_api() {
    let tight = graph_sim::SimConfig::preset("throttled").unwrap();
    let mut sim =
        graph_sim::Simulator::new(graph_sim::SimConfig { campaigns_per_account: 6, ads_per_adset: 4, ..tight });
    let mut cfg = config(&sim, 30, json!({"page_size": 1}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let streams =
        ["campaigns", "ad_sets", "ads", "ad_creatives", "images", "videos", "custom_audiences", "custom_conversions"];
    let cat = catalog(&cfg, sim.now_ms(), &streams);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for stream in streams {
        assert_eq!(out.ids(stream), truth_ids(&sim, stream, &[], None), "{stream}");
    }
    assert!(
        out.slept.iter().any(|(_, r)| *r == source_facebook_marketing::driver::TimeoutReason::ThrottlePause),
        "paused before the limit: {:?} {:?} {}",
        out.slept,
        sim.counters(),
        sim.render_call_log_tail(3)
    );
    assert_eq!(sim.counters().throttled_responses, 0, "never throttled");
}

#[test]
fn an_expired_token_ends_the_sync_with_a_config_error_in_plain_words() {
    let mut sim = sim("token_expired");
    let cfg = config(&sim, 3, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["campaigns", "ads_insights"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0]["failure_type"], "config_error");
    assert!(out.errors[0]["message"].as_str().unwrap().contains("expired"), "{}", out.errors[0]);
}

#[test]
fn thumbnails_are_fetched_into_data_urls_when_asked() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({"fetch_thumbnail_images": true}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.ids("ad_creatives"), truth_ids(&sim, "ad_creatives", &[], None));
    for r in &out.records["ad_creatives"] {
        let url = r["thumbnail_data_url"].as_str().expect("a data url");
        assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"), "{url}");
    }
    assert_eq!(sim.counters().of(&graph_sim::RequestKind::Thumbnail), out.count("ad_creatives") as u64);
}

/// The creatives' keys with the parent ad's `updated_time` as epoch seconds (Graph writes the
/// account's offset; both sides parse it the same way).
fn creatives_with_times(records: &[Value]) -> BTreeSet<(String, i64)> {
    records
        .iter()
        .map(|r| {
            let t = chrono::DateTime::parse_from_str(r["updated_time"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%z")
                .unwrap()
                .timestamp();
            (r["id"].as_str().unwrap().to_string(), t)
        })
        .collect()
}

fn creatives_truth(sim: &graph_sim::Simulator, account: &str, updated_since: Option<i64>) -> Vec<Value> {
    let q = TruthQuery {
        stream: "ad_creatives_from_ads".into(),
        account_ids: vec![account.to_string()],
        updated_since,
        ..Default::default()
    };
    sim.ground_truth(&q)
}

/// A world with enough ads per account to fill more than one batch of creatives.
fn many_ads() -> graph_sim::Simulator {
    graph_sim::Simulator::new(graph_sim::SimConfig {
        campaigns_per_account: 10,
        adsets_per_campaign: 2,
        ads_per_adset: 8,
        ..graph_sim::SimConfig::default()
    })
}

#[test]
fn creatives_from_ads_full_refresh_reads_each_listed_ads_creative_in_batches_of_fifty() {
    let mut sim = many_ads();
    // A start date and a stored state change nothing in full refresh; pages of 25 ads.
    let cfg = config(&sim, 3, json!({"page_size": 25}));
    let mut cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    cat["streams"][0]["sync_mode"] = json!("full_refresh");
    let acct = sim.account_ids()[0].clone();
    let stale = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ad_creatives_from_ads"},
        "stream_state": {acct.clone(): {"updated_time": "2030-01-01T00:00:00+00:00", "filter_statuses": []}}}}]);
    let out = read(&mut sim, &cfg, &cat, Some(&stale.to_string()), None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let truth: Vec<Value> = sim.account_ids().iter().flat_map(|a| creatives_truth(&sim, a, None)).collect();
    let records = &out.records["ad_creatives_from_ads"];
    assert_eq!(creatives_with_times(records), creatives_with_times(&truth), "ids and parent ads' updated_time");
    assert_eq!(records.len(), truth.len(), "no duplicates");
    for r in records {
        assert!(r["account_id"].is_string() && r["object_story_spec"].is_object(), "{r}");
        assert!(r.get("thumbnail_data_url").is_none(), "no thumbnails unless asked");
    }
    assert!(!out.states.contains_key("ad_creatives_from_ads"), "full refresh writes no state");
    // Requests: one ads page and ceil(n / 50) batches per account, against one GET per creative.
    let c = sim.counters();
    let batches = c.of(&graph_sim::RequestKind::Batch);
    let pages = c.of(&graph_sim::RequestKind::EdgeList("ads".into()));
    let single_reads =
        sim.call_log().iter().filter(|e| e.kind == graph_sim::RequestKind::ObjectRead && !e.in_batch).count();
    let per_account: Vec<u64> =
        sim.account_ids().iter().map(|a| creatives_truth(&sim, a, None).len().div_ceil(50) as u64).collect();
    println!(
        "ad_creatives_from_ads: {} creatives, {pages} ads pages + {batches} batch requests = {} requests (one GET per creative: {pages} + {})",
        truth.len(),
        pages + batches,
        truth.len()
    );
    assert_eq!(batches, per_account.iter().sum::<u64>(), "full batches of 50 while the listing goes on");
    assert_eq!(single_reads, 0, "creatives are read inside batches only");
    assert_eq!(c.batch_operations, truth.len() as u64, "each creative once");
    assert!(pages + batches < truth.len() as u64 / 10, "far fewer requests than creatives");
}

#[test]
fn creatives_from_ads_incremental_reads_only_creatives_of_ads_updated_since_the_cursor() {
    let mut sim = many_ads();
    // start_date lies after every ad's last update: the first sync ignores it, as Airbyte does.
    let cfg = config(&sim, 1, json!({}));
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    let first = read(&mut sim, &cfg, &cat, None, None);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let all: Vec<Value> = sim.account_ids().iter().flat_map(|a| creatives_truth(&sim, a, None)).collect();
    assert_eq!(creatives_with_times(&first.records["ad_creatives_from_ads"]), creatives_with_times(&all));
    // One checkpoint per account, each after that account's records, in Airbyte's ads format.
    let states: Vec<&(String, Value, usize)> =
        first.state_log.iter().filter(|(s, _, _)| s == "ad_creatives_from_ads").collect();
    assert_eq!(states.len(), sim.account_ids().len());
    let first_acct = &sim.account_ids()[0];
    assert_eq!(states[0].2, creatives_truth(&sim, first_acct, None).len(), "after the first account's records");
    for acct in sim.account_ids() {
        let entry = &first.states["ad_creatives_from_ads"][&acct];
        assert_eq!(entry.as_object().unwrap().len(), 2, "{entry}");
        assert_eq!(entry["filter_statuses"], json!([]));
        let cursor = entry["updated_time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(cursor).is_ok(), "colon offset: {cursor}");
        let latest = creatives_truth(&sim, &acct, None)
            .iter()
            .filter_map(|r| chrono::DateTime::parse_from_str(r["updated_time"].as_str()?, "%Y-%m-%dT%H:%M:%S%z").ok())
            .max()
            .unwrap();
        assert_eq!(chrono::DateTime::parse_from_rfc3339(cursor).unwrap(), latest, "the latest ad's updated_time");
    }
    // Ten days pass; some ads are edited.
    let before = sim.now_ms() / 1000;
    sim.advance(10 * 86_400_000);
    let second = read(&mut sim, &cfg, &cat, Some(&first.state_messages()), None);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    let mut expected = Vec::new();
    for acct in sim.account_ids() {
        let cursor = first.states["ad_creatives_from_ads"][&acct]["updated_time"].as_str().unwrap();
        let since = chrono::DateTime::parse_from_rfc3339(cursor).unwrap().timestamp();
        // Creatives of ads updated after the cursor, plus the one-second overlap at it.
        expected.extend(creatives_truth(&sim, &acct, Some(since - 1)));
        assert!(creatives_truth(&sim, &acct, Some(before)).len() < creatives_truth(&sim, &acct, None).len());
    }
    let got = &second.records["ad_creatives_from_ads"];
    assert!(!got.is_empty(), "the edited ads' creatives are read");
    assert_eq!(creatives_with_times(got), creatives_with_times(&expected));
    assert!(got.len() < all.len() / 2, "incremental did not re-read everything");
    for acct in sim.account_ids() {
        let old = &first.states["ad_creatives_from_ads"][&acct]["updated_time"];
        let new = &second.states["ad_creatives_from_ads"][&acct]["updated_time"];
        let t = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert!(t(new) > t(old), "the cursor advanced for {acct}");
    }
}

#[test]
fn creatives_from_ads_accepts_an_airbyte_state_and_its_status_filter() {
    let mut sim = many_ads();
    let mut cfg = config(&sim, 30, json!({"ad_statuses": ["ACTIVE", "PAUSED"]}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let acct = sim.account_ids()[0].clone();
    let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "ad_creatives_from_ads"},
        "stream_state": {acct.clone(): {"updated_time": "2026-05-01T00:00:00-07:00", "filter_statuses": ["ACTIVE", "PAUSED"]}}}}]);
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    let out = read(&mut sim, &cfg, &cat, Some(&state.to_string()), None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let since = chrono::DateTime::parse_from_rfc3339("2026-05-01T00:00:00-07:00").unwrap().timestamp();
    let q = |account: &str, updated_since| TruthQuery {
        stream: "ad_creatives_from_ads".into(),
        account_ids: vec![account.to_string()],
        statuses: vec!["ACTIVE".into(), "PAUSED".into()],
        updated_since,
        ..Default::default()
    };
    let mut expected = sim.ground_truth(&q(&acct, Some(since - 1)));
    // The second account has no state: all its matching ads' creatives.
    expected.extend(sim.ground_truth(&q(&sim.account_ids()[1], None)));
    assert_eq!(creatives_with_times(&out.records["ad_creatives_from_ads"]), creatives_with_times(&expected));
    assert_eq!(out.states["ad_creatives_from_ads"][&acct]["filter_statuses"], json!(["ACTIVE", "PAUSED"]));
}

#[test]
fn creatives_from_ads_resends_batch_operations_that_time_out_and_loses_nothing() {
    let mut sim = graph_sim::Simulator::new(graph_sim::SimConfig {
        faults: graph_sim::Faults { batch_null: 0.15, batch_aborted_960: 0.05, ..Default::default() },
        ..many_ads().config().clone()
    });
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(sim.counters().faults["batch_null"] > 10, "{:?}", sim.counters().faults);
    let truth: Vec<Value> = sim.account_ids().iter().flat_map(|a| creatives_truth(&sim, a, None)).collect();
    assert_eq!(creatives_with_times(&out.records["ad_creatives_from_ads"]), creatives_with_times(&truth));
    assert_eq!(out.count("ad_creatives_from_ads"), truth.len());
}

#[test]
fn creatives_from_ads_skips_creatives_that_keep_failing_and_the_next_sync_reads_them() {
    // Most batch operations time out: some creatives fail all their rounds and are skipped.
    let faulty = graph_sim::SimConfig {
        faults: graph_sim::Faults { batch_null: 0.6, ..Default::default() },
        ..many_ads().config().clone()
    };
    let mut sim = graph_sim::Simulator::new(faulty.clone());
    let mut cfg = config(&sim, 30, json!({}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    let first = read(&mut sim, &cfg, &cat, None, None);
    assert!(first.errors.is_empty(), "skipped creatives do not fail the sync: {:?}", first.errors);
    let truth: Vec<Value> = sim.account_ids().iter().flat_map(|a| creatives_truth(&sim, a, None)).collect();
    let got = creatives_with_times(&first.records["ad_creatives_from_ads"]);
    let all = creatives_with_times(&truth);
    let missed: Vec<&(String, i64)> = all.difference(&got).collect();
    assert!(!missed.is_empty() && got.len() > all.len() / 2, "{} of {} skipped", missed.len(), all.len());
    let warned =
        first.messages.iter().filter(|m| m.to_json_line().contains("could not be read and is skipped")).count();
    assert_eq!(warned, missed.len(), "each skipped creative is logged");
    // The cursor stops one second before the earliest skipped creative's ad.
    for acct in sim.account_ids() {
        let ids: BTreeSet<String> =
            creatives_truth(&sim, &acct, None).iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        let Some(earliest) = missed.iter().filter(|(id, _)| ids.contains(id)).map(|(_, t)| *t).min() else { continue };
        let cursor = first.states["ad_creatives_from_ads"][&acct]["updated_time"].as_str().unwrap();
        assert_eq!(chrono::DateTime::parse_from_rfc3339(cursor).unwrap().timestamp(), earliest - 1, "{acct}");
    }
    // The next sync, on a calm API at the same instant, reads what was skipped.
    let mut calm = graph_sim::Simulator::new(graph_sim::SimConfig { faults: Default::default(), ..faulty });
    calm.advance((sim.now_ms() - calm.now_ms()) as u64);
    let second = read(&mut calm, &cfg, &cat, Some(&first.state_messages()), None);
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    let mut union = got;
    union.extend(creatives_with_times(&second.records["ad_creatives_from_ads"]));
    assert_eq!(union, all, "nothing lost over the two syncs");
}

#[test]
fn creatives_from_ads_fetches_thumbnails_when_asked() {
    let mut sim = sim("calm");
    let mut cfg = config(&sim, 30, json!({"fetch_thumbnail_images": true}));
    cfg.as_object_mut().unwrap().remove("start_date");
    let cat = catalog(&cfg, sim.now_ms(), &["ad_creatives_from_ads"]);
    let out = read(&mut sim, &cfg, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.ids("ad_creatives_from_ads"), truth_ids(&sim, "ad_creatives_from_ads", &[], None));
    for r in &out.records["ad_creatives_from_ads"] {
        let url = r["thumbnail_data_url"].as_str().expect("a data url");
        assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"), "{url}");
    }
}
