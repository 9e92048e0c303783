//! Many requests in flight: bounds, determinism on the virtual clock, slow answers beside fast
//! ones, and output that stays correct while streams and accounts interleave.

mod common;

use common::{Output, catalog, config, read};
use graph_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const STREAMS: [&str; 5] = ["ad_account", "campaigns", "ads", "ad_creatives", "ads_insights"];

/// A calm world of `accounts` accounts, 300 ms a round trip.
fn world(accounts: usize) -> SimConfig {
    let mut c = SimConfig::preset("calm").unwrap();
    c.accounts = accounts;
    c.latency_ms = 300;
    c
}

/// A full sync from 3 days back, or 60 for entity streams alone (whose listings the start
/// date filters by `updated_time`).
fn sync(cfg: SimConfig, streams: &[&str], extra: Value) -> (Simulator, Output) {
    let mut sim = Simulator::new(cfg);
    let days = if streams.iter().any(|s| s.contains("insights")) { 3 } else { 60 };
    let conf = config(&sim, days, extra);
    let cat = catalog(&conf, sim.now_ms(), streams);
    let out = read(&mut sim, &conf, &cat, None, None);
    (sim, out)
}

fn lines(out: &Output) -> Vec<String> {
    out.messages.iter().map(|m| m.to_json_line()).collect()
}

/// The stream of each RECORD message, in the order emitted.
fn record_streams(out: &Output) -> Vec<String> {
    lines(out)
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["type"] == "RECORD").then(|| v["record"]["stream"].as_str().unwrap().to_string())
        })
        .collect()
}

/// A record's identity: its id, or for insights rows the account, ad and day.
fn keys(out: &Output, stream: &str) -> BTreeSet<String> {
    let rows = out.records.get(stream).into_iter().flatten();
    rows.map(|r| match r["id"].as_str() {
        Some(id) => id.to_string(),
        None => format!("{}|{}|{}", r["account_id"], r["ad_id"], r["date_start"]),
    })
    .collect()
}

/// Each stream's STREAM_STATUS traces in order.
fn statuses(out: &Output) -> BTreeMap<String, Vec<String>> {
    let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines(out) {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "TRACE" && v["trace"]["type"] == "STREAM_STATUS" {
            let s = &v["trace"]["stream_status"];
            let name = s["stream_descriptor"]["name"].as_str().unwrap().to_string();
            by_stream.entry(name).or_default().push(s["status"].as_str().unwrap().to_string());
        }
    }
    by_stream
}

#[test]
fn the_same_seed_gives_byte_identical_output_with_many_requests_in_flight() {
    let mut flaky = SimConfig::preset("flaky").unwrap();
    flaky.accounts = 4;
    flaky.latency_ms = 300;
    let (_, a) = sync(flaky.clone(), &STREAMS, json!({}));
    let (_, b) = sync(flaky, &STREAMS, json!({}));
    assert!(a.peak_in_flight > 4, "requests overlapped: {}", a.peak_in_flight);
    assert_eq!(lines(&a), lines(&b));
    for (stream, seen) in statuses(&a) {
        assert_eq!(seen, ["STARTED", "RUNNING", "COMPLETE"], "{stream}");
    }
}

#[test]
fn in_flight_never_passes_max_concurrent_requests_and_one_at_a_time_reads_the_same() {
    let (_, wide) = sync(world(6), &STREAMS, json!({}));
    let (_, five) = sync(world(6), &STREAMS, json!({"max_concurrent_requests": 5}));
    let (_, one) = sync(world(6), &STREAMS, json!({"max_concurrent_requests": 1}));
    assert!(wide.peak_in_flight > 5 && wide.peak_in_flight <= 32, "{}", wide.peak_in_flight);
    assert!(five.peak_in_flight <= 5 && five.peak_in_flight > 1, "{}", five.peak_in_flight);
    assert_eq!(one.peak_in_flight, 1);
    for stream in STREAMS {
        assert!(!keys(&wide, stream).is_empty(), "{stream}");
        assert_eq!(keys(&one, stream), keys(&wide, stream), "{stream}");
        assert_eq!(keys(&five, stream), keys(&wide, stream), "{stream}");
    }
    assert!(wide.errors.is_empty() && one.errors.is_empty(), "{:?} {:?}", wide.errors, one.errors);
}

#[test]
fn accounts_read_concurrently_take_about_the_time_of_one() {
    let (one_sim, one) = sync(world(1), &["campaigns", "ads"], json!({}));
    let (many_sim, many) = sync(world(20), &["campaigns", "ads"], json!({}));
    let one_ms = one_sim.now_ms() - SimConfig::default().start_time_ms;
    let many_ms = many_sim.now_ms() - SimConfig::default().start_time_ms;
    assert!(many.errors.is_empty(), "{:?}", many.errors);
    assert!(many.ids("campaigns").len() > one.ids("campaigns").len());
    // Twenty accounts, all at once per stream (up to max_concurrent_requests, 32, and four
    // requests in flight per account): a few rounds of the one-account chain, not 20.
    assert!(many_ms < 6 * one_ms, "20 accounts took {many_ms} ms, one took {one_ms} ms");
}

#[test]
fn a_slow_answer_does_not_hold_back_a_stream_whose_answers_came() {
    let mut cfg = world(2);
    // Every campaigns listing takes a minute; ads listings come in 300 ms.
    cfg.extra_latency = vec![("/campaigns".to_string(), 60_000)];
    let (sim, out) = sync(cfg, &["campaigns", "ads"], json!({}));
    let order = record_streams(&out);
    let last_ads = order.iter().rposition(|s| s == "ads").unwrap();
    let first_campaign = order.iter().position(|s| s == "campaigns").unwrap();
    assert!(last_ads < first_campaign, "every ad came before the slow campaigns");
    let took = sim.now_ms() - SimConfig::default().start_time_ms;
    assert!(took < 2 * 60_000, "the slow listings overlapped the fast ones: {took} ms");
    assert!(!out.ids("campaigns").is_empty() && out.errors.is_empty(), "{:?}", out.errors);
}

#[test]
fn stream_status_traces_stay_in_order_per_stream_while_streams_interleave() {
    // Entity streams of 60 days in pages of 5, so that every listing takes several round trips.
    let entities = &STREAMS[..4];
    let (_, out) = sync(world(3), entities, json!({"page_size": 5}));
    let order = record_streams(&out);
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    // One stream after the other would switch streams 3 times.
    assert!(switches > entities.len() - 1, "records of different streams interleave ({switches} switches)");
    let statuses = statuses(&out);
    for stream in entities {
        assert_eq!(statuses[*stream], ["STARTED", "RUNNING", "COMPLETE"], "{stream}");
    }
}

#[test]
fn a_concurrent_sync_stopped_at_any_state_message_and_resumed_misses_nothing() {
    let streams = ["campaigns", "ads", "ads_insights"];
    let (_, full) = sync(world(3), &streams, json!({}));
    let stops = full.state_stops();
    assert!(stops.len() >= 6, "{}", stops.len());
    // Every third stop, and the last: each replayed from a fresh world.
    for stop in stops.iter().step_by(3).chain(stops.last()) {
        let mut sim = Simulator::new(world(3));
        let conf = config(&sim, 3, json!({}));
        let cat = catalog(&conf, sim.now_ms(), &streams);
        let partial = read(&mut sim, &conf, &cat, None, Some(*stop));
        let resumed = read(&mut sim, &conf, &cat, Some(&partial.state_messages()), None);
        for stream in streams {
            let mut union = keys(&partial, stream);
            union.extend(keys(&resumed, stream));
            assert_eq!(union, keys(&full, stream), "{stream} after stopping at message {stop}");
        }
    }
}

#[test]
fn a_twenty_second_report_is_read_within_two_seconds_of_its_end() {
    let mut cfg = SimConfig::preset("calm").unwrap();
    cfg.accounts = 1;
    cfg.job_duration_ms = 20_000;
    let (sim, out) = sync(cfg, &["ads_insights"], json!({}));
    assert!(out.errors.is_empty() && out.count("ads_insights") > 0, "{:?}", out.errors);
    assert_eq!(out.jobs("ads_insights").started, 1);
    let took = sim.now_ms() - SimConfig::default().start_time_ms;
    // The job's 20 s, the round trips around it, and a poll that lands at most ~1.5 s late.
    assert!(took <= 22_000, "the sync took {took} ms for one 20 s report: {:?}", out.slept);
}
