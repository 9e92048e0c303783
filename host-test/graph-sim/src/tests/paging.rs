use super::*;
use crate::Faults;

fn wide() -> Simulator {
    Simulator::new(SimConfig { campaigns_per_account: 60, ..SimConfig::default() })
}

#[test]
fn edge_listing_defaults_to_25_rows_per_page() {
    let mut s = wide();
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/campaigns?fields=id,name"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(25));
}

#[test]
fn next_url_is_absolute_and_echoes_every_param_including_the_token() {
    let mut s = wide();
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/campaigns?fields=id,name&limit=10&summary=true"));
    let next = r.json()["paging"]["next"].as_str().unwrap_or_default().to_string();
    assert!(next.starts_with(&format!("https://graph.facebook.com/v25.0/{a}/campaigns?")), "{next}");
    for part in ["fields=id%2Cname", "limit=10", "summary=true", "access_token=sim-token", "after="] {
        assert!(next.contains(part), "{part} missing from {next}");
    }
}

#[test]
fn last_page_has_cursors_but_no_next() {
    let mut s = Simulator::new(SimConfig::default());
    let a = act(&s);
    let r = get(
        &mut s,
        &format!(
            "{a}/campaigns?limit=100&effective_status=[\"ACTIVE\",\"PAUSED\",\"ARCHIVED\",\"DELETED\",\"WITH_ISSUES\"]"
        ),
    );
    let b = r.json();
    assert!(b["paging"]["cursors"]["after"].is_string());
    assert!(b["paging"]["cursors"]["before"].is_string());
    assert!(b["paging"].get("next").is_none());
}

#[test]
fn following_next_visits_every_row_exactly_once() {
    let mut s = wide();
    let a = act(&s);
    let rows = page_all(&mut s, &format!("{a}/campaigns?fields=id&limit=7"));
    let mut ids: Vec<String> = rows.iter().filter_map(|r| r["id"].as_str().map(String::from)).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    let truth = s.ground_truth(&crate::TruthQuery {
        stream: "campaigns".into(),
        account_ids: vec![s.account_ids()[0].clone()],
        ..Default::default()
    });
    assert_eq!(n, truth.len());
}

#[test]
fn a_garbled_or_foreign_cursor_is_rejected_with_2642() {
    let mut s = wide();
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/campaigns?after=garbage!!"));
    assert_eq!((r.status, r.json()["error"]["code"].as_i64()), (400, Some(2642)));
    let first = get(&mut s, &format!("{a}/campaigns?limit=5")).json();
    let cursor = first["paging"]["cursors"]["after"].as_str().unwrap_or_default().to_string();
    let r = get(&mut s, &format!("{a}/adsets?after={cursor}"));
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(2642), "a cursor of another listing is stale");
}

#[test]
fn empty_middle_pages_carry_next_and_lose_no_rows() {
    let cfg = SimConfig {
        campaigns_per_account: 60,
        faults: Faults { empty_middle_pages: true, ..Faults::default() },
        ..SimConfig::default()
    };
    let mut s = Simulator::new(cfg);
    let a = act(&s);
    let mut url = format!("https://graph.facebook.com/v25.0/{a}/campaigns?limit=5&access_token={TOKEN}");
    let (mut empties, mut rows) = (0, 0);
    loop {
        let b = get_abs(&mut s, &url).json();
        let n = b["data"].as_array().map(Vec::len).unwrap_or(0);
        if n == 0 {
            empties += 1;
            assert!(b["paging"]["next"].is_string(), "an empty middle page still has next");
        }
        rows += n;
        match b["paging"]["next"].as_str() {
            Some(u) => url = u.to_string(),
            None => break,
        }
    }
    assert!(empties > 0);
    let mut calm = wide();
    assert_eq!(rows, page_all(&mut calm, &format!("{a}/campaigns?limit=5")).len());
}

#[test]
fn summary_true_reports_the_total_count() {
    let mut s = wide();
    let a = act(&s);
    let b = get(&mut s, &format!("{a}/campaigns?summary=true&limit=3")).json();
    assert!(b["summary"]["total_count"].as_u64().unwrap_or(0) > 3);
}

#[test]
fn pages_over_the_cell_limit_answer_500_reduce_the_amount_of_data() {
    let mut s = Simulator::new(SimConfig { page_size_cells_limit: 100, ..SimConfig::default() });
    let a = act(&s);
    let r = get(&mut s, &format!("{a}/ads?fields=id,name,status,updated_time&limit=50"));
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["code"].as_i64(), Some(1));
    assert!(r.json()["error"]["message"].as_str().unwrap_or("").starts_with("Please reduce the amount of data"));
    let r = get(&mut s, &format!("{a}/ads?fields=id,name,status,updated_time&limit=25"));
    assert_eq!(r.status, 200);
}
