use std::collections::BTreeMap;

use super::jobs::{create_job, wait_job};
use super::*;
use crate::{InsightsQuery, TruthQuery};

const STATUSES: &str = "[\"ACTIVE\",\"PAUSED\",\"DELETED\",\"PENDING_REVIEW\",\"DISAPPROVED\",\"PREAPPROVED\",\"PENDING_BILLING_INFO\",\"CAMPAIGN_PAUSED\",\"ARCHIVED\",\"ADSET_PAUSED\",\"IN_PROCESS\",\"WITH_ISSUES\"]";

fn run_job(s: &mut Simulator, node: &str, form: &str) -> Vec<Value> {
    let id = create_job(s, node, form);
    assert_eq!(wait_job(s, &id, 100)["async_status"].as_str(), Some("Job Completed"));
    page_all(s, &format!("{id}/insights?limit=100"))
}

fn form(level: &str, extra: &str) -> String {
    format!(
        "level={level}&fields=[\"account_id\",\"campaign_id\",\"adset_id\",\"ad_id\",\"impressions\",\"clicks\",\"spend\",\"actions\",\"cpc\"]&time_range={{\"since\":\"2026-06-01\",\"until\":\"2026-06-10\"}}&time_increment=1&filtering=[{{\"field\":\"ad.effective_status\",\"operator\":\"IN\",\"value\":{STATUSES}}}]{extra}"
    )
}

fn sums(rows: &[Value], key: &str) -> BTreeMap<(String, String), (u64, u64, u64, u64)> {
    let mut m = BTreeMap::new();
    for r in rows {
        let k = (r["date_start"].as_str().unwrap_or("").to_string(), r[key].as_str().unwrap_or("").to_string());
        let e = m.entry(k).or_insert((0, 0, 0, 0));
        let n = |f: &str| r[f].as_str().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        e.0 += n("impressions");
        e.1 += n("clicks");
        e.2 += (r["spend"].as_str().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) * 100.0).round() as u64;
        e.3 += r["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["value"].as_str()?.parse::<u64>().ok()).sum())
            .unwrap_or(0);
    }
    m
}

#[test]
fn ad_level_rows_sum_to_adset_campaign_and_account_rows() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let ads = run_job(&mut s, &a, &form("ad", ""));
    assert!(!ads.is_empty());
    for (level, key) in [("adset", "adset_id"), ("campaign", "campaign_id"), ("account", "account_id")] {
        let rows = run_job(&mut s, &a, &form(level, ""));
        assert_eq!(sums(&ads, key), sums(&rows, key), "level {level}");
    }
    let r = &ads[0];
    assert!(r["impressions"].is_string() && r["spend"].is_string(), "metrics are strings: {r}");
    assert_eq!(r["date_start"], r["date_stop"]);
}

#[test]
fn level_ad_hides_deleted_and_archived_ads_unless_filtered() {
    let mut s = Simulator::new(SimConfig { campaigns_per_account: 8, ..SimConfig::default() });
    let a = act(&s);
    let plain =
        "level=ad&fields=[\"ad_id\",\"impressions\"]&time_range={\"since\":\"2026-06-01\",\"until\":\"2026-06-10\"}";
    let visible = run_job(&mut s, &a, plain);
    let all = run_job(&mut s, &a, &form("ad", ""));
    assert!(all.len() > visible.len());
}

#[test]
fn breakdown_rows_carry_their_keys_and_add_up_to_the_unbroken_rows() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let plain = run_job(&mut s, &a, &form("ad", ""));
    let broken = run_job(&mut s, &a, &form("ad", "&breakdowns=[\"age\",\"gender\"]"));
    assert!(broken.iter().all(|r| r["age"].is_string() && r["gender"].is_string()));
    let imp = |rows: &[Value]| rows.iter().filter_map(|r| r["impressions"].as_str()?.parse::<u64>().ok()).sum::<u64>();
    assert_eq!(imp(&plain), imp(&broken));
    let hourly = run_job(&mut s, &a, &form("ad", "&breakdowns=hourly_stats_aggregated_by_advertiser_time_zone"));
    assert!(
        hourly
            .iter()
            .all(|r| r["hourly_stats_aggregated_by_advertiser_time_zone"].as_str().is_some_and(|h| h.contains(" - ")))
    );
    let placements = run_job(
        &mut s,
        &a,
        &form("ad", "&breakdowns=[\"publisher_platform\",\"platform_position\",\"impression_device\"]"),
    );
    assert!(placements.iter().all(|r| r["platform_position"].is_string()));
}

#[test]
fn action_breakdowns_and_attribution_windows_add_keys_to_action_entries() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let rows = run_job(
        &mut s,
        &a,
        &form(
            "ad",
            "&action_breakdowns=[\"action_type\",\"action_device\"]&action_attribution_windows=[\"1d_click\",\"7d_click\",\"28d_click\",\"1d_view\"]",
        ),
    );
    let entry = rows.iter().find_map(|r| r["actions"].as_array().and_then(|a| a.first().cloned())).unwrap_or_default();
    assert!(
        entry["action_type"].is_string() && entry["action_device"].is_string() && entry["value"].is_string(),
        "{entry}"
    );
    assert!(entry["28d_click"].is_string(), "{entry}");
}

#[test]
fn invalid_breakdowns_are_rejected_like_graph() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let r = post(&mut s, &format!("{a}/insights"), &form("ad", "&breakdowns=[\"dma\"]"));
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(100));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("breakdowns[0] must be one of the following values")
    );
    for b in ["[\"platform_position\"]", "[\"impression_device\"]"] {
        let r = post(&mut s, &format!("{a}/insights"), &form("ad", &format!("&breakdowns={b}")));
        let e = &r.json()["error"];
        assert_eq!((e["code"].as_i64(), e["error_subcode"].as_i64()), (Some(2), Some(1_504_041)), "{b}");
    }
    let r = post(&mut s, &format!("{a}/insights"), "level=ad&fields=[\"nope\"]");
    assert!(r.json()["error"]["message"].as_str().unwrap_or("").contains("nonexisting field (nope)"));
}

#[test]
fn a_start_date_beyond_37_months_is_rejected_with_3018() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let r = post(
        &mut s,
        &format!("{a}/insights"),
        "level=ad&time_range={\"since\":\"2023-01-01\",\"until\":\"2023-01-31\"}",
    );
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(3018));
    let ok = post(
        &mut s,
        &format!("{a}/insights"),
        "level=ad&time_range={\"since\":\"2023-06-01\",\"until\":\"2023-06-30\"}",
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn sync_insights_answer_with_the_throttle_header_and_campaign_scoped_reports_work() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/insights"));
    assert_eq!(r.status, 200);
    let t = header_json(&r, "x-fb-ads-insights-throttle");
    assert!(t["acc_id_util_pct"].is_number() && t["app_id_util_pct"].is_number());
    let camp = page_all(&mut s, &format!("{a}/campaigns?fields=id"))[0]["id"].as_str().unwrap_or_default().to_string();
    let rows = run_job(&mut s, &camp, &form("ad", ""));
    assert!(rows.iter().all(|r| r["campaign_id"].as_str() == Some(camp.as_str())));
}

#[test]
fn ground_truth_equals_paging_through_the_job_results() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let extra = "&breakdowns=[\"country\"]&action_attribution_windows=[\"1d_click\",\"7d_click\"]";
    let rows = run_job(&mut s, &a, &form("ad", extra));
    let q = TruthQuery {
        stream: "insights".into(),
        account_ids: vec![s.account_ids()[0].clone()],
        insights: Some(InsightsQuery {
            level: "ad".into(),
            breakdowns: vec!["country".into()],
            since: chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default(),
            until: chrono::NaiveDate::from_ymd_opt(2026, 6, 10).unwrap_or_default(),
            fields: [
                "account_id",
                "campaign_id",
                "adset_id",
                "ad_id",
                "impressions",
                "clicks",
                "spend",
                "actions",
                "cpc",
            ]
            .iter()
            .map(|f| f.to_string())
            .collect(),
            ad_statuses: serde_json::from_str(STATUSES).unwrap_or_default(),
            action_attribution_windows: vec!["1d_click".into(), "7d_click".into()],
            ..InsightsQuery::default()
        }),
        ..TruthQuery::default()
    };
    assert_eq!(rows, s.ground_truth(&q));
}
