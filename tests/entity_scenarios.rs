//! Entity streams against the simulator, on virtual time.

mod common;

use common::*;
use graph_sim::TruthQuery;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ENTITY_STREAMS: &[&str] = &[
    "ad_account",
    "campaigns",
    "ad_sets",
    "ads",
    "ad_creatives",
    "activities",
    "images",
    "videos",
    "custom_conversions",
    "custom_audiences",
];

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
    let mut cat = catalog(&cfg_all, sim.now_ms(), ENTITY_STREAMS);
    for s in cat["streams"].as_array_mut().unwrap() {
        s["sync_mode"] = json!("full_refresh");
    }
    let out = read(&mut sim, &cfg_all, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    for stream in ENTITY_STREAMS {
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
