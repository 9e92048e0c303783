use super::*;

/// Creates a report run and returns its id.
pub fn create_job(s: &mut Simulator, node: &str, form: &str) -> String {
    let r = post(s, &format!("{node}/insights"), form);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["report_run_id"].as_str().unwrap_or_default().to_string()
}

/// Polls until the status is terminal (or `limit` polls), 1 s apart.
pub fn wait_job(s: &mut Simulator, id: &str, limit: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..limit {
        last = get(s, &format!("{id}/")).json();
        if matches!(last["async_status"].as_str(), Some("Job Completed" | "Job Failed" | "Job Skipped")) {
            return last;
        }
        s.advance(1000);
    }
    last
}

pub const DAY_FORM: &str = "level=ad&fields=[\"ad_id\",\"impressions\",\"spend\"]&time_range={\"since\":\"2026-06-01\",\"until\":\"2026-06-07\"}&time_increment=1";

#[test]
fn a_job_goes_from_not_started_through_running_to_completed_on_virtual_time() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let id = create_job(&mut s, &a, DAY_FORM);
    let st = get(&mut s, &format!("{id}/")).json();
    assert_eq!(st["async_status"].as_str(), Some("Job Not Started"));
    assert_eq!(st["id"].as_str(), Some(id.as_str()));
    assert_eq!(st["account_id"].as_str(), Some(s.account_ids()[0].as_str()));
    s.advance(3000);
    assert_eq!(get(&mut s, &format!("{id}/")).json()["async_status"].as_str(), Some("Job Started"));
    s.advance(7000);
    let st = get(&mut s, &format!("{id}/")).json();
    assert_eq!(st["async_status"].as_str(), Some("Job Running"));
    let pct = st["async_percent_completion"].as_u64().unwrap_or(0);
    assert!((1..100).contains(&pct));
    s.advance(10_000);
    let st = get(&mut s, &format!("{id}/")).json();
    assert_eq!(
        (st["async_status"].as_str(), st["async_percent_completion"].as_u64()),
        (Some("Job Completed"), Some(100))
    );
    let rows = page_all(&mut s, &format!("{id}/insights?limit=100"));
    assert!(!rows.is_empty());
}

#[test]
fn reading_results_before_completion_gives_2601_1815107() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let id = create_job(&mut s, &a, DAY_FORM);
    let r = get(&mut s, &format!("{id}/insights"));
    let e = &r.json()["error"];
    assert_eq!((r.status, e["code"].as_i64(), e["error_subcode"].as_i64()), (400, Some(2601), Some(1_815_107)));
    assert_eq!(e["is_transient"].as_bool(), Some(true));
    assert_eq!(e["message"].as_str(), Some("Error accessing adreport job."));
}

#[test]
fn huge_account_fails_account_jobs_as_too_large_but_passes_ad_jobs() {
    let mut s = sim("huge_account");
    let a = act(&s);
    let fields = crate::fields::INSIGHTS
        .iter()
        .filter(|f| !f.contains("7d_view"))
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(",");
    let form = format!(
        "level=ad&fields=[{fields}]&time_range={{\"since\":\"2026-06-10\",\"until\":\"2026-06-10\"}}&time_increment=1"
    );
    let id = create_job(&mut s, &a, &form);
    let st = wait_job(&mut s, &id, 60);
    assert_eq!(st["async_status"].as_str(), Some("Job Failed"));
    assert_eq!((st["error_code"].as_i64(), st["error_subcode"].as_i64()), (Some(-3), Some(1_504_045)));
    let ad = page_all(&mut s, &format!("{a}/ads?fields=id&limit=1"))[0]["id"].as_str().unwrap_or_default().to_string();
    let id = create_job(&mut s, &ad, &form);
    assert_eq!(wait_job(&mut s, &id, 60)["async_status"].as_str(), Some("Job Completed"));
    // And paging results with all fields fails at limit 100 but passes at 50.
    assert_eq!(get(&mut s, &format!("{id}/insights?limit=100")).status, 500);
    assert_eq!(get(&mut s, &format!("{id}/insights?limit=50")).status, 200);
}

#[test]
fn stuck_jobs_stay_running_at_100_forever() {
    let mut s = sim("stuck_jobs");
    let a = act(&s);
    let mut stuck = None;
    for _ in 0..20 {
        let id = create_job(&mut s, &a, DAY_FORM);
        s.advance(25_000);
        let st = get(&mut s, &format!("{id}/")).json();
        if st["async_status"].as_str() == Some("Job Running") {
            stuck = Some(id);
            break;
        }
    }
    let id = stuck.expect("some job is stuck");
    s.advance(3_600_000);
    let st = get(&mut s, &format!("{id}/")).json();
    assert_eq!(
        (st["async_status"].as_str(), st["async_percent_completion"].as_u64()),
        (Some("Job Running"), Some(100))
    );
    assert!(s.counters().jobs_stuck > 0);
}

#[test]
fn failing_jobs_fail_the_first_attempt_then_succeed_and_some_are_skipped() {
    let mut s = sim("failing_jobs");
    let a = act(&s);
    let first = create_job(&mut s, &a, DAY_FORM);
    let st = wait_job(&mut s, &first, 60);
    assert_eq!(st["async_status"].as_str(), Some("Job Failed"));
    assert_eq!(st["error_code"].as_i64(), Some(-2));
    let mut outcomes = Vec::new();
    for _ in 0..30 {
        let id = create_job(&mut s, &a, DAY_FORM);
        outcomes.push(wait_job(&mut s, &id, 60)["async_status"].as_str().unwrap_or("").to_string());
    }
    assert!(outcomes.iter().any(|o| o == "Job Completed"));
    assert!(outcomes.iter().any(|o| o == "Job Skipped"));
    assert!(!outcomes.iter().any(|o| o == "Job Failed"), "only the first attempt per query fails");
}

#[test]
fn report_runs_can_be_polled_through_a_batch() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let id = create_job(&mut s, &a, DAY_FORM);
    s.advance(30_000);
    let batch = format!("[{{\"method\":\"GET\",\"relative_url\":\"{id}/\"}}]");
    let enc: String = form_urlencoded::byte_serialize(batch.as_bytes()).collect();
    let b = post(&mut s, "", &format!("batch={enc}")).json();
    let inner: Value = serde_json::from_str(b[0]["body"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(inner["async_status"].as_str(), Some("Job Completed"));
}
