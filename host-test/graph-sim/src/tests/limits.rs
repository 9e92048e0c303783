use super::*;

fn util(r: &SimResponse) -> f64 {
    header_json(r, "x-ad-account-usage")["acc_id_util_pct"].as_f64().unwrap_or(-1.0)
}

#[test]
fn usage_headers_rise_with_calls_and_decay_with_virtual_time() {
    let mut s = sim("throttled");
    let a = act(&s);
    let first = get(&mut s, &a);
    for _ in 0..20 {
        get(&mut s, &a);
    }
    let busy = get(&mut s, &a);
    assert!(util(&busy) > util(&first), "{} vs {}", util(&busy), util(&first));
    let buc = header_json(&busy, "x-business-use-case-usage");
    let entry = &buc[s.account_ids()[0].as_str()][0];
    assert_eq!(entry["type"].as_str(), Some("ads_management"));
    assert!(entry["call_count"].as_u64().unwrap_or(0) > 0);
    assert!(header_json(&busy, "x-app-usage")["call_count"].is_number());
    s.advance(300_000);
    let rested = get(&mut s, &a);
    assert!(util(&rested) < util(&busy));
}

#[test]
fn past_the_limit_the_account_is_blocked_until_the_advertised_time() {
    let mut s = sim("throttled");
    let a = act(&s);
    let mut blocked = None;
    for _ in 0..200 {
        let r = get(&mut s, &a);
        if r.status != 200 {
            blocked = Some(r);
            break;
        }
    }
    let r = blocked.expect("an impolite client trips the throttled preset");
    let e = &r.json()["error"];
    assert_eq!((r.status, e["code"].as_i64(), e["error_subcode"].as_i64()), (400, Some(17), Some(2_446_079)));
    let buc = header_json(&r, "x-business-use-case-usage");
    let wait = buc[s.account_ids()[0].as_str()][0]["estimated_time_to_regain_access"].as_u64().unwrap_or(0);
    assert!(wait >= 1);
    assert!(s.counters().throttled_responses >= 1);
    s.advance(wait * 60_000);
    assert_eq!(get(&mut s, &a).status, 200);
}

#[test]
fn a_polite_client_never_trips_the_throttled_preset() {
    let mut s = sim("throttled");
    let a = act(&s);
    for _ in 0..300 {
        let r = get(&mut s, &a);
        assert_eq!(r.status, 200, "{}", s.render_call_log_tail(3));
        let buc = header_json(&r, "x-business-use-case-usage");
        let e = &buc[s.account_ids()[0].as_str()][0];
        let worst = util(&r).max(e["call_count"].as_f64().unwrap_or(0.0));
        if worst >= 85.0 {
            let wait = e["estimated_time_to_regain_access"].as_u64().unwrap_or(0).max(2);
            s.advance(wait * 60_000);
        }
    }
}

#[test]
fn the_calm_default_does_not_trip_a_fast_client() {
    let mut s = sim("calm");
    let a = act(&s);
    for _ in 0..1000 {
        assert_eq!(get(&mut s, &format!("{a}/campaigns")).status, 200);
    }
    assert_eq!(s.counters().throttled_responses, 0);
}

#[test]
fn running_jobs_raise_the_insights_throttle_until_the_new_job_is_refused() {
    let mut s = sim("throttled");
    let a = act(&s);
    let mut refused = None;
    for _ in 0..10 {
        let r = post(&mut s, &format!("{a}/insights"), super::jobs::DAY_FORM);
        if r.status != 200 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("four running jobs saturate the throttled account");
    let e = &r.json()["error"];
    assert_eq!((e["code"].as_i64(), e["error_subcode"].as_i64()), (Some(4), Some(1_504_022)));
    assert!(header_json(&r, "x-fb-ads-insights-throttle")["acc_id_util_pct"].as_f64().unwrap_or(0.0) >= 100.0);
    s.advance(30_000);
    assert_eq!(post(&mut s, &format!("{a}/insights"), super::jobs::DAY_FORM).status, 200);
}
