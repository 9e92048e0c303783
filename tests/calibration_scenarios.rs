//! The simulator answers as the recorded corpus shows Graph answering
//! (`../shared/fixtures/graph-responses/README.md`, "Peculiarities"), and the connector reads
//! those answers right: one scenario per peculiarity.

mod common;

use common::*;
use graph_sim::{SimConfig, SimRequest, Simulator};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn sim_with(f: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig { accounts: 1, ..SimConfig::default() };
    f(&mut cfg);
    Simulator::new(cfg)
}

/// A raw answer of the simulator to a GET of `path` (with the token).
fn raw(sim: &mut Simulator, path: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    sim.handle(&SimRequest::get(format!("https://graph.facebook.com/v25.0/{path}{sep}access_token=sim-token")))
        .expect("an answer")
        .json()
}

fn read_streams(sim: &mut Simulator, days: i64, streams: &[&str]) -> Output {
    let config = config(sim, days, json!({}));
    let cat = catalog(&config, sim.now_ms(), streams);
    let out = read(sim, &config, &cat, None, None);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    out
}

fn account(sim: &Simulator) -> String {
    sim.account_ids()[0].clone()
}

#[test]
fn metrics_and_budgets_come_as_strings_and_become_numbers_where_the_schema_says() {
    let mut sim = sim_with(|_| {});
    let act = account(&sim);
    let page = raw(
        &mut sim,
        &format!("act_{act}/campaigns?fields=id,daily_budget,lifetime_budget,budget_remaining&limit=100"),
    );
    let budgets: Vec<&Value> =
        page["data"].as_array().unwrap().iter().filter_map(|c| c.get("budget_remaining")).collect();
    assert!(
        !budgets.is_empty()
            && budgets.iter().all(|b| b.as_str().is_some_and(|s| s.bytes().all(|c| c.is_ascii_digit()))),
        "{page}"
    );
    let out = read_streams(&mut sim, 90, &["campaigns", "ads_insights"]);
    assert!(out.records["campaigns"].iter().all(|c| c["budget_remaining"].is_number()), "budgets become numbers");
    let row = &out.records["ads_insights"][0];
    assert!(row["impressions"].is_i64() && row["spend"].is_number(), "{row}");
}

#[test]
fn the_last_page_has_cursors_and_previous_but_no_next_and_the_listing_ends_there() {
    let mut sim = sim_with(|_| {});
    let act = account(&sim);
    let first = raw(&mut sim, &format!("act_{act}/ads?fields=id&limit=5"));
    assert!(first["paging"]["next"].is_string() && first["paging"].get("previous").is_none(), "{first}");
    let mut page = first;
    let mut ids = BTreeSet::new();
    loop {
        ids.extend(page["data"].as_array().unwrap().iter().map(|a| a["id"].to_string()));
        let Some(next) = page["paging"]["next"].as_str() else { break };
        let next = next.strip_prefix("https://graph.facebook.com/v25.0/").unwrap().to_string();
        page = raw(&mut sim, &next);
    }
    assert!(page["paging"]["cursors"]["after"].is_string() && page["paging"]["previous"].is_string(), "{page}");
    let out = read_streams(&mut sim, 90, &["ads"]);
    assert_eq!(out.ids("ads").len(), ids.len(), "every ad, and the listing stops at the page without next");
}

#[test]
fn an_empty_edge_is_data_without_paging_and_reads_as_no_records() {
    let mut sim = sim_with(|c| c.videos_per_account = 0);
    let act = account(&sim);
    let page = raw(&mut sim, &format!("act_{act}/advideos?fields=id"));
    assert_eq!(page, json!({"data": []}), "no paging at all");
    let out = read_streams(&mut sim, 90, &["videos"]);
    assert_eq!(out.count("videos"), 0);
    assert!(out.states.contains_key("videos"), "the state is still written");
}

#[test]
fn a_job_running_at_one_hundred_percent_is_not_read_before_it_completes() {
    let mut sim = sim_with(|c| c.faults.running_at_100 = 1.0);
    // Graph's quirk: at 100 % yet still running, and its results answer 2601/1815107.
    let act = account(&sim);
    let created = sim
        .handle(&SimRequest::post_form(
            format!("https://graph.facebook.com/v25.0/act_{act}/insights"),
            "access_token=sim-token&level=ad&fields=%5B%22impressions%22%5D",
        ))
        .unwrap()
        .json();
    let run = created["report_run_id"].as_str().unwrap().to_string();
    sim.advance(sim.config().job_duration_ms * 9 / 10);
    let status = raw(&mut sim, &run);
    assert_eq!(
        (status["async_status"].as_str(), status["async_percent_completion"].as_u64()),
        (Some("Job Running"), Some(100))
    );
    let early = raw(&mut sim, &format!("{run}/insights"));
    assert_eq!(
        (early["error"]["code"].as_i64(), early["error"]["error_subcode"].as_i64()),
        (Some(2601), Some(1815107))
    );
    // The connector waits for `Job Completed` and reads every row.
    let mut sim = sim_with(|c| c.faults.running_at_100 = 1.0);
    let out = read_streams(&mut sim, 3, &["ads_insights"]);
    let calm = read_streams(&mut sim_with(|_| {}), 3, &["ads_insights"]);
    assert_eq!(out.count("ads_insights"), calm.count("ads_insights"));
}

#[test]
fn reduce_data_on_a_later_result_page_halves_the_page_size_and_every_row_arrives() {
    let job = |c: &mut SimConfig| {
        c.campaigns_per_account = 4;
        c.ads_per_adset = 32;
    };
    let mut sim = sim_with(|c| {
        job(c);
        c.faults.reduce_data_on_later_result_pages = true;
    });
    let out = read_streams(&mut sim, 3, &["ads_insights"]);
    let calm = read_streams(&mut sim_with(job), 3, &["ads_insights"]);
    assert!(calm.count("ads_insights") > 500, "more than one result page: {}", calm.count("ads_insights"));
    assert_eq!(out.count("ads_insights"), calm.count("ads_insights"));
    // Pages are sized by their rows' bytes, so the halved size is not a fixed number: the log
    // names the page size the later page was asked again with.
    let halved = out.messages.iter().find_map(|m| match m {
        source_facebook_marketing::protocol::Message::Log { message, .. } => {
            message.split("page size now ").nth(1)?.split_whitespace().next()?.parse::<u32>().ok()
        }
        _ => None,
    });
    let halved = halved.expect("the later page was asked again with a smaller page");
    assert!((12..=250).contains(&halved), "half of a page of 25 to 500 rows: {halved}");
}

#[test]
fn batch_items_carry_header_lists_and_json_inside_strings() {
    let mut sim = sim_with(|_| {});
    let act = account(&sim);
    let batch = json!([{"method": "GET", "relative_url": format!("act_{act}?fields=id")}]).to_string();
    let body = format!("access_token=sim-token&batch={}", urlencode(&batch));
    let answer = sim.handle(&SimRequest::post_form("https://graph.facebook.com/v25.0/", body)).unwrap().json();
    let item = &answer[0];
    assert!(
        item["headers"].as_array().is_some_and(|h| h.iter().all(|p| p["name"].is_string() && p["value"].is_string())),
        "{item}"
    );
    let inner: Value = serde_json::from_str(item["body"].as_str().expect("the body is a string")).unwrap();
    assert_eq!(inner["id"], format!("act_{act}"));
    // The connector reads creatives through such batches.
    let out = read_streams(&mut sim_with(|_| {}), 90, &["ad_creatives_from_ads"]);
    assert!(out.count("ad_creatives_from_ads") > 0);
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    source_facebook_marketing::http::percent_encode_into(s, &mut out);
    out
}

#[test]
fn usage_goes_above_one_hundred_percent_when_calls_are_refused_and_the_connector_still_finishes() {
    let mut sim = Simulator::new(SimConfig::preset("throttled").unwrap());
    let act = sim.account_ids()[0].clone();
    let mut highest = 0u64;
    for _ in 0..400 {
        let r = sim
            .handle(&SimRequest::get(format!(
                "https://graph.facebook.com/v25.0/act_{act}/campaigns?access_token=sim-token"
            )))
            .unwrap();
        if let Some(buc) = r.header("x-business-use-case-usage") {
            let v: Value = serde_json::from_str(buc).unwrap();
            highest = highest.max(v[&act][0]["call_count"].as_u64().unwrap_or(0));
        }
    }
    assert!(highest > 100, "an impolite client sees usage above 100 %: {highest}");
    // A polite client reads every record without tripping the limits.
    let mut sim = Simulator::new(SimConfig::preset("throttled").unwrap());
    let out = read_streams(&mut sim, 30, &["campaigns", "ads"]);
    assert!(out.count("ads") > 0);
}

#[test]
fn the_insights_throttle_header_in_each_spelling_or_missing_is_read_or_ignored() {
    let mut sim = sim_with(|c| c.faults.throttle_header_variants = true);
    let act = account(&sim);
    let mut spellings = BTreeSet::new();
    for _ in 0..40 {
        let r = sim
            .handle(&SimRequest::get(format!(
                "https://graph.facebook.com/v25.0/act_{act}/insights?fields=impressions&access_token=sim-token"
            )))
            .unwrap();
        let h = r.header("x-fb-ads-insights-throttle").map(|v| {
            if v.contains(": ") {
                "spaced"
            } else if v.contains("tier") {
                "with tier"
            } else {
                "compact"
            }
        });
        spellings.insert(h.unwrap_or("missing"));
        if let Some(v) = r.header("x-fb-ads-insights-throttle") {
            let parsed = source_facebook_marketing::api::throttle::parse_insights_throttle(&[(
                "x-fb-ads-insights-throttle".into(),
                v.into(),
            )]);
            assert!(parsed.is_some(), "read: {v}");
        }
    }
    assert_eq!(spellings.len(), 4, "{spellings:?}");
    let out = read_streams(&mut sim_with(|c| c.faults.throttle_header_variants = true), 3, &["ads_insights"]);
    assert!(out.count("ads_insights") > 0);
}

#[test]
fn offsets_without_a_colon_and_the_1969_sentinel_are_read_and_the_cursor_written_with_a_colon() {
    let mut sim = sim_with(|c| c.campaigns_per_account = 10);
    let out = read_streams(&mut sim, 90, &["campaigns"]);
    let campaigns = &out.records["campaigns"];
    assert!(
        campaigns.iter().any(|c| c["start_time"] == "1969-12-31T15:59:59-0800"),
        "the sentinel is kept as Graph sent it"
    );
    let updated = campaigns[0]["updated_time"].as_str().unwrap();
    assert!(!updated[19..].contains(':'), "Graph's offset has no colon: {updated}");
    let state = out.states["campaigns"].as_object().unwrap().values().next().unwrap()["updated_time"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(state[19..].contains(':'), "the state cursor is written as Airbyte writes it: {state}");
}

#[test]
fn the_account_id_has_act_and_account_id_does_not() {
    let mut sim = sim_with(|_| {});
    let act = account(&sim);
    let out = read_streams(&mut sim, 3, &["ad_account", "ads_insights"]);
    let a = &out.records["ad_account"][0];
    assert_eq!((a["id"].as_str(), a["account_id"].as_str()), (Some(format!("act_{act}").as_str()), Some(act.as_str())));
    assert!(out.records["ads_insights"].iter().all(|r| r["account_id"] == act.as_str()));
}

#[test]
fn the_simulators_field_lists_are_the_connectors_schemas() {
    use graph_sim::fields;
    for (stream, list) in [
        ("ad_account", fields::AD_ACCOUNT),
        ("campaigns", fields::CAMPAIGN),
        ("ad_sets", fields::AD_SET),
        ("ads", fields::AD),
        ("ad_creatives", fields::AD_CREATIVE),
        ("activities", fields::ACTIVITY),
        ("images", fields::IMAGE),
        ("videos", fields::VIDEO),
        ("custom_conversions", fields::CUSTOM_CONVERSION),
        ("custom_audiences", fields::CUSTOM_AUDIENCE),
        ("ads_insights", fields::INSIGHTS),
        ("ads_insights_custom_fields", fields::INSIGHTS_CUSTOM),
        ("ads_insights_breakdowns", fields::BREAKDOWN),
        ("ads_insights_action_breakdowns", fields::ACTION_BREAKDOWN),
    ] {
        let sim: BTreeSet<&str> = list.iter().copied().collect();
        let schema: BTreeSet<&str> =
            source_facebook_marketing::schema::properties(stream).keys().map(String::as_str).collect();
        assert_eq!(sim, schema, "{stream}: the simulator's list and src/stream-fields.tsv");
    }
}
