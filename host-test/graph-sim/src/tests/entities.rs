use super::*;
use crate::{CallStatus, RequestKind, TruthQuery};

const ALL: &str = "[\"ACTIVE\",\"PAUSED\",\"ARCHIVED\",\"DELETED\",\"WITH_ISSUES\",\"IN_PROCESS\",\"CAMPAIGN_PAUSED\"]";

fn many() -> Simulator {
    Simulator::new(SimConfig { campaigns_per_account: 20, ..SimConfig::default() })
}

#[test]
fn unknown_field_is_rejected_with_100_naming_the_node_type() {
    let mut s = many();
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/campaigns?fields=id,foo"));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"].as_str(),
        Some("(#100) Tried accessing nonexisting field (foo) on node type (Campaign)")
    );
    assert!(r.json()["error"]["fbtrace_id"].is_string());
    assert!(r.header("www-authenticate").is_some_and(|h| h.contains("invalid_request")));
}

#[test]
fn field_selection_returns_only_requested_fields_and_id() {
    let mut s = many();
    let a = act(&s);
    let b = get(&mut s, &format!("{a}/ads?fields=name,updated_time,creative")).json();
    let row = &b["data"][0];
    let mut keys: Vec<&str> = row.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    keys.sort();
    assert_eq!(keys, vec!["creative", "id", "name", "updated_time"]);
    assert!(row["creative"]["id"].is_string());
    let t = row["updated_time"].as_str().unwrap_or("");
    assert!(t.len() == 24 && (t.ends_with("-0700") || t.ends_with("+0100")), "{t}");
}

#[test]
fn fields_accept_the_json_array_form_and_nested_expansion() {
    let mut s = many();
    let a = act(&s);
    let b = get(&mut s, &format!("{a}/ads?fields=[\"id\",\"creative{{id,name}}\"]")).json();
    assert!(b["data"][0]["creative"]["name"].is_string(), "{b}");
}

#[test]
fn account_node_and_objects_by_id_are_readable() {
    let mut s = many();
    let a = act(&s);
    let acc = get(&mut s, &format!("{a}?fields=timezone_name,currency,account_id")).json();
    assert_eq!(acc["id"].as_str(), Some(a.as_str()));
    assert_eq!(acc["timezone_name"].as_str(), Some("America/Los_Angeles"));
    let ad = get(&mut s, &format!("{a}/ads?fields=creative&limit=1")).json();
    let cid = ad["data"][0]["creative"]["id"].as_str().unwrap_or_default().to_string();
    let cr = get(&mut s, &format!("{cid}/?fields=id,name,thumbnail_url")).json();
    assert_eq!(cr["id"].as_str(), Some(cid.as_str()));
    let thumb = cr["thumbnail_url"].as_str().unwrap_or_default().to_string();
    let png = get_abs(&mut s, &thumb);
    assert_eq!((png.status, png.header("content-type")), (200, Some("image/png")));
    let bad = get(&mut s, &format!("{cid}?fields=nope"));
    assert!(bad.json()["error"]["message"].as_str().unwrap_or("").contains("node type (AdCreative)"));
}

#[test]
fn default_listing_hides_archived_and_deleted_until_asked_for() {
    let mut s = many();
    let a = act(&s);
    let default = page_all(&mut s, &format!("{a}/campaigns?fields=effective_status&limit=100"));
    assert!(default.iter().all(|r| !matches!(r["effective_status"].as_str(), Some("ARCHIVED" | "DELETED"))));
    let filter = format!("[{{\"field\":\"campaign.effective_status\",\"operator\":\"IN\",\"value\":{ALL}}}]");
    let all = page_all(&mut s, &format!("{a}/campaigns?fields=effective_status&limit=100&filtering={filter}"));
    assert!(all.len() > default.len());
    assert!(all.iter().any(|r| matches!(r["effective_status"].as_str(), Some("ARCHIVED" | "DELETED"))));
    let param = page_all(&mut s, &format!("{a}/campaigns?fields=effective_status&limit=100&effective_status={ALL}"));
    assert_eq!(param.len(), all.len());
}

#[test]
fn updated_time_filter_is_strictly_greater_and_later_syncs_find_edits() {
    let mut s = many();
    let a = act(&s);
    let start = s.now_ms() / 1000;
    let f = |t: i64| {
        format!(
            "[{{\"field\":\"ad.updated_time\",\"operator\":\"GREATER_THAN\",\"value\":{t}}},{{\"field\":\"ad.effective_status\",\"operator\":\"IN\",\"value\":{ALL}}}]"
        )
    };
    let before = page_all(&mut s, &format!("{a}/ads?fields=updated_time&filtering={}", f(start)));
    assert!(before.is_empty(), "nothing was edited after the start yet");
    s.advance(10 * 86_400_000);
    let after = page_all(&mut s, &format!("{a}/ads?fields=updated_time,name&limit=100&filtering={}", f(start)));
    assert!(!after.is_empty(), "the world evolves over ten virtual days");
    let truth = s.ground_truth(&TruthQuery {
        stream: "ads".into(),
        account_ids: vec![s.account_ids()[0].clone()],
        statuses: serde_json::from_str(ALL).unwrap_or_default(),
        updated_since: Some(start),
        insights: None,
    });
    let ids = |v: &[Value]| v.iter().map(|r| r["id"].to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&after), ids(&truth));
}

#[test]
fn unsupported_filtering_is_rejected_with_1487390() {
    let mut s = many();
    let a = act(&s);
    let r = get(
        &mut s,
        &format!("{a}/campaigns?filtering=[{{\"field\":\"campaign.id\",\"operator\":\"IN\",\"value\":[\"1\"]}}]"),
    );
    assert_eq!(r.json()["error"]["error_subcode"].as_i64(), Some(1_487_390));
}

#[test]
fn images_come_newest_first_and_activities_respect_since() {
    let mut s = many();
    let a = act(&s);
    let imgs = page_all(&mut s, &format!("{a}/adimages?fields=updated_time,hash"));
    let times: Vec<String> = imgs.iter().filter_map(|r| r["updated_time"].as_str().map(String::from)).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(times, sorted);
    let all = page_all(&mut s, &format!("{a}/activities?fields=event_time,event_type"));
    let since = s.now_ms() / 1000 - 30 * 86_400;
    let recent = page_all(&mut s, &format!("{a}/activities?fields=event_time&since={since}"));
    assert!(recent.len() <= all.len() && !all.is_empty());
}

#[test]
fn auth_errors_follow_graph() {
    let mut s = many();
    let a = act(&s);
    let none = s.handle(&SimRequest::get(format!("/v25.0/{a}"))).expect("answer");
    assert_eq!((none.status, none.json()["error"]["code"].as_i64()), (400, Some(190)));
    assert!(none.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")));
    let garbage = s.handle(&SimRequest::get(format!("/v25.0/{a}?access_token=%25%25"))).expect("answer");
    assert_eq!(garbage.status, 401);
    let wrong = s.handle(&SimRequest::get(format!("/v25.0/{a}?access_token=EAAwrongtoken"))).expect("answer");
    assert_eq!((wrong.status, wrong.json()["error"]["error_subcode"].as_i64()), (400, Some(460)));
    let mut bearer = SimRequest::get(format!("https://graph.facebook.com/v25.0/{a}"));
    bearer.headers.push(("Authorization".into(), format!("Bearer {TOKEN}")));
    assert_eq!(s.handle(&bearer).map(|r| r.status), Ok(200));
}

#[test]
fn unknown_versions_get_2635_and_common_headers_are_always_present() {
    let mut s = many();
    let a = act(&s);
    let r = s.handle(&SimRequest::get(format!("/v19.0/{a}?access_token={TOKEN}"))).expect("answer");
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(2635));
    for h in ["content-type", "facebook-api-version", "x-fb-trace-id", "x-fb-rev"] {
        assert!(r.header(h).is_some(), "{h}");
    }
    let ok = s.handle(&SimRequest::get(format!("/{a}?access_token={TOKEN}"))).expect("answer");
    assert_eq!(ok.header("facebook-api-version"), Some("v25.0"));
    assert_eq!(ok.header("content-type"), Some("application/json; charset=UTF-8"));
}

#[test]
fn the_call_log_never_contains_the_token() {
    let mut s = many();
    let a = act(&s);
    get(&mut s, &format!("{a}/campaigns"));
    let e = &s.call_log()[0];
    assert_eq!(e.path, format!("/v25.0/{a}/campaigns"));
    assert_eq!(e.kind, RequestKind::EdgeList("campaigns".into()));
    assert_eq!(e.status, CallStatus::Http(200));
    assert!(!s.render_call_log_tail(5).contains(TOKEN));
}

#[test]
fn permission_lookups_answer_with_a_managing_user() {
    let mut s = many();
    let a = act(&s);
    let b = get(&mut s, "me/business_users").json();
    let bid = b["data"][0]["business"]["id"].as_str().unwrap_or_default().to_string();
    let u = get(&mut s, &format!("{a}/assigned_users?business={bid}")).json();
    assert!(u["data"][0]["tasks"].as_array().is_some_and(|t| t.iter().any(|x| x == "MANAGE")));
}

#[test]
fn creatives_from_ads_truth_is_the_creatives_the_ads_listing_names() {
    let mut s = many();
    let a = act(&s);
    let ads = page_all(&mut s, &format!("{a}/ads?fields=id,updated_time,creative{{id}}&limit=100"));
    assert!(ads.iter().all(|ad| ad["creative"].as_object().is_some_and(|c| c.len() == 1 && c["id"].is_string())));
    let truth = s.ground_truth(&TruthQuery {
        stream: "ad_creatives_from_ads".into(),
        account_ids: vec![s.account_ids()[0].clone()],
        ..TruthQuery::default()
    });
    let named: Vec<&Value> = ads.iter().map(|ad| &ad["creative"]["id"]).collect();
    let ids: Vec<&Value> = truth.iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, named, "one creative per ad, in listing order");
    for (creative, ad) in truth.iter().zip(&ads) {
        assert_eq!(creative["updated_time"], ad["updated_time"], "the ad's updated_time");
        assert!(creative["object_story_spec"].is_object(), "the creative's own fields");
    }
}
