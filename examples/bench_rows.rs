//! Core cost per insights row, natively: parse a result page, transform, serialise.
//! `cargo run --release --example bench_rows`

// Benchmarks measure real time.
#![allow(clippy::disallowed_methods)]

use graph_sim::{SimConfig, SimRequest, Simulator};
use serde_json::Value;
use source_facebook_marketing::schema;
use std::time::Instant;

fn main() {
    let mut sim = Simulator::new(SimConfig::default());
    let acct = sim.account_ids()[0].clone();
    let fields: Vec<String> = schema::properties("ads_insights").keys().cloned().collect();
    let fields = serde_json::to_string(&fields).unwrap();
    let body = format!(
        "access_token=sim-token&level=ad&time_increment=1&fields={}&time_range={}&action_breakdowns=%5B%22action_type%22%5D&action_attribution_windows=%5B%221d_click%22%2C%227d_click%22%5D",
        urlencode(&fields),
        urlencode(r#"{"since":"2026-06-01","until":"2026-06-14"}"#)
    );
    let run: Value = sim
        .handle(&SimRequest::post_form(format!("https://graph.facebook.com/v25.0/act_{acct}/insights"), body))
        .unwrap()
        .json();
    let id = run["report_run_id"].as_str().unwrap().to_string();
    sim.advance(60_000);
    let page = sim
        .handle(&SimRequest::get(format!(
            "https://graph.facebook.com/v25.0/{id}/insights?limit=100&access_token=sim-token"
        )))
        .unwrap();
    let bytes = page.body;
    let props = schema::properties("ads_insights");
    let n_rows = serde_json::from_slice::<Value>(&bytes).unwrap()["data"].as_array().unwrap().len();
    println!("page {} bytes, {n_rows} rows, {} bytes/row", bytes.len(), bytes.len() / n_rows.max(1));
    let iters = 200;
    let (mut parse, mut norm, mut ser) = (0.0, 0.0, 0.0);
    let mut out_bytes = 0;
    for _ in 0..iters {
        let t = Instant::now();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        parse += t.elapsed().as_secs_f64();
        let Value::Object(mut m) = v else { panic!() };
        let Some(Value::Array(rows)) = m.remove("data") else { panic!() };
        for row in rows {
            let Value::Object(mut row) = row else { continue };
            let t = Instant::now();
            schema::normalise(&mut row, props);
            norm += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let s = serde_json::to_string(&row).unwrap();
            ser += t.elapsed().as_secs_f64();
            out_bytes += s.len();
        }
    }
    let rules = source_facebook_marketing::read::transcode::RowRules {
        props,
        required: &[],
        object_breakdowns: &[],
        account_id: &acct,
        rename_results: false,
    };
    let (mut validate, mut transcode) = (0.0, 0.0);
    for _ in 0..iters {
        let t = Instant::now();
        let _: serde::de::IgnoredAny = serde_json::from_slice(&bytes).unwrap();
        validate += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let page = source_facebook_marketing::read::transcode::page(&bytes, &rules).unwrap();
        transcode += t.elapsed().as_secs_f64();
        assert_eq!(page.rows.len(), n_rows);
    }
    let per = |x: f64| x * 1e6 / (iters * n_rows) as f64;
    println!("per row, one pass: validate {:.1} us, transcode {:.1} us", per(validate), per(transcode));
    println!(
        "per row: parse {:.1} us, normalise {:.1} us, serialise {:.1} us ({} bytes out)",
        per(parse),
        per(norm),
        per(ser),
        out_bytes / (iters * n_rows)
    );
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    source_facebook_marketing::http::percent_encode_into(s, &mut out);
    out
}
