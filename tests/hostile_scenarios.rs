//! Answers that must not hurt, on the simulator's virtual clock: each test tampers with the
//! simulator's answers to one kind of request (a listing, a batch, a report's result pages) and
//! checks that the sync reads what can be read, never takes another origin's answer as its own,
//! and ends in a bounded number of requests with an error that names the cause.

mod common;

use common::*;
use graph_sim::{SimConfig, Simulator};
use serde_json::Value;
use source_facebook_marketing::driver::{Completion, Io, TimeoutReason};
use source_facebook_marketing::http::{FetchError, Request, RequestId, Response};
use source_facebook_marketing::protocol::Message;
use source_facebook_marketing::time::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a tamperer makes of an answer: the simulator's response (or fetch error) for a request.
type Tamper = Box<dyn FnMut(&Request, Result<Response, FetchError>) -> Result<Response, FetchError>>;

/// The simulator, with every answer passed through `tamper`; every URL requested is kept.
struct Tampered<'a> {
    inner: SimIo<'a>,
    tamper: Tamper,
    sent: BTreeMap<RequestId, Request>,
    urls: Vec<String>,
}

impl Io for Tampered<'_> {
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion> {
        for (id, r) in &start {
            self.urls.push(r.url.clone());
            self.sent.insert(*id, r.clone());
        }
        let done = self.inner.exchange(start, wait);
        done.into_iter()
            .map(|(id, outcome)| {
                let request = self.sent.remove(&id).expect("a request that was sent");
                (id, (self.tamper)(&request, outcome))
            })
            .collect()
    }

    fn sleep(&mut self, duration: Duration, reason: TimeoutReason) {
        self.inner.sleep(duration, reason)
    }

    fn now(&mut self) -> Timestamp {
        self.inner.now()
    }
}

fn cfg() -> SimConfig {
    SimConfig { accounts: 2, ..SimConfig::default() }
}

/// The second account: the one whose answers are tampered with.
fn victim() -> String {
    Simulator::new(cfg()).account_ids()[1].clone()
}

struct Run {
    out: Output,
    urls: Vec<String>,
}

fn sync(streams: &[&str], tamper: Tamper) -> Run {
    sync_with(streams, serde_json::json!({}), tamper)
}

fn sync_with(streams: &[&str], extra: Value, tamper: Tamper) -> Run {
    let mut sim = Simulator::new(cfg());
    // Entities updated in the last year; insights of the last three days (their jobs are many).
    let days = if streams.iter().any(|s| s.contains("insights")) { 3 } else { 400 };
    let config = config(&sim, days, extra);
    let cat = catalog(&config, sim.now_ms(), streams);
    let mut io = Tampered { inner: SimIo::new(&mut sim), tamper, sent: BTreeMap::new(), urls: Vec::new() };
    let out = read_through(&mut io, &config, &cat, None, None);
    Run { out, urls: io.urls }
}

fn clean(streams: &[&str]) -> Output {
    sync(streams, Box::new(|_, outcome| outcome)).out
}

/// Whether `request` is a page of `victim`'s listing of `edge`.
fn is_listing(request: &Request, victim: &str, edge: &str) -> bool {
    request.url.split('?').next().unwrap_or("").ends_with(&format!("act_{victim}/{edge}"))
}

/// Whether `request` reads a report's results.
fn is_result_page(request: &Request) -> bool {
    let path = request.url.split('?').next().unwrap_or("");
    path.ends_with("/insights") && !path.contains("/act_")
}

fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    graph_sim::replace_bytes(body.to_vec(), from, to)
}

fn edit(outcome: Result<Response, FetchError>, f: impl FnOnce(&[u8]) -> Vec<u8>) -> Result<Response, FetchError> {
    outcome.map(|mut r| {
        r.body = f(&r.body);
        r
    })
}

/// The victim's listing of `edge` answered with `status`, `headers` and `body`, whatever it asked.
fn victim_listing_answers(
    edge: &'static str,
    status: u16,
    headers: Vec<(String, String)>,
    body: &'static [u8],
) -> (String, Tamper) {
    let v = victim();
    let who = v.clone();
    let tamper: Tamper = Box::new(move |req, outcome| {
        if !is_listing(req, &who, edge) {
            return outcome;
        }
        Ok(Response { status, headers: headers.clone(), body: body.to_vec() })
    });
    (v, tamper)
}

fn of_account<'a>(out: &'a Output, stream: &str, account: &str) -> Vec<&'a Value> {
    out.records.get(stream).into_iter().flatten().filter(|r| r["account_id"] == account).collect()
}

#[test]
fn unpaired_surrogates_and_invalid_utf8_in_a_listing_read_as_replacement_characters() {
    let v = victim();
    let who = v.clone();
    let run = sync(
        &["ads"],
        Box::new(move |req, outcome| {
            if !is_listing(req, &who, "ads") {
                return outcome;
            }
            // A name Graph cut inside a surrogate pair, and a byte that is not UTF-8.
            edit(outcome, |b| replace(b, b"\"name\":\"", b"\"name\":\"\\ud83d\xFF"))
        }),
    );
    let before = clean(&["ads"]);
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    assert_eq!(run.out.ids("ads"), before.ids("ads"), "every record read");
    let ads = of_account(&run.out, "ads", &v);
    assert!(!ads.is_empty());
    for ad in ads {
        assert!(ad["name"].as_str().unwrap().starts_with("\u{FFFD}\u{FFFD}"), "{}", ad["name"]);
    }
    assert!(run.urls.len() <= clean_requests(&["ads"]), "no retry: {} requests", run.urls.len());
}

/// Every batch answer's body passed through `f`.
fn batches_edited(f: impl Fn(&[u8]) -> Vec<u8> + 'static) -> Tamper {
    Box::new(move |req, outcome| if req.method == http::Method::POST { edit(outcome, &f) } else { outcome })
}

/// How many requests a clean sync of `streams` makes.
fn clean_requests(streams: &[&str]) -> usize {
    sync(streams, Box::new(|_, outcome| outcome)).urls.len()
}

#[test]
fn unpaired_surrogates_in_a_batch_body_read_as_replacement_characters() {
    // Inside a batch element's body (a JSON string), and in the batch's own text.
    let run = sync(
        &["ad_creatives_from_ads"],
        batches_edited(|b| {
            let b = replace(b, br#"\"name\":\""#, br#"\"name\":\"\\udc00"#);
            replace(&b, br#""code":200"#, br#""code":200,"note":"\ud83d""#)
        }),
    );
    let before = clean(&["ad_creatives_from_ads"]);
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    assert_eq!(run.out.ids("ad_creatives_from_ads"), before.ids("ad_creatives_from_ads"), "every creative read");
    let names: Vec<&str> = run.out.records["ad_creatives_from_ads"].iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(!names.is_empty() && names.iter().all(|n| n.starts_with('\u{FFFD}')), "{names:?}");
    assert_eq!(run.urls.len(), clean_requests(&["ad_creatives_from_ads"]), "no batch made again");
}

#[test]
fn unpaired_surrogates_and_invalid_utf8_in_report_rows_read_as_replacement_characters() {
    let run = sync(
        &["ads_insights"],
        Box::new(|req, outcome| {
            if !is_result_page(req) {
                return outcome;
            }
            edit(outcome, |b| replace(b, b"\"ad_name\":\"", b"\"ad_name\":\"\\udc00\xFF"))
        }),
    );
    let before = clean(&["ads_insights"]);
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    assert_eq!(run.out.count("ads_insights"), before.count("ads_insights"), "every row read");
    assert!(before.count("ads_insights") > 0);
    assert_eq!(run.out.jobs("ads_insights").retried, 0, "no job retried");
    for row in &run.out.records["ads_insights"] {
        assert!(row["ad_name"].as_str().unwrap().starts_with("\u{FFFD}\u{FFFD}"), "{}", row["ad_name"]);
    }
    assert_eq!(run.urls.len(), clean_requests(&["ads_insights"]), "no request made again");
}

#[test]
fn a_body_that_fails_to_parse_the_same_way_twice_fails_after_two_attempts_naming_where() {
    let (v, tamper) = victim_listing_answers("campaigns", 200, vec![], br#"{"data":[{"id":"1","name":"x",}]}"#);
    let run = sync(&["campaigns"], tamper);
    let tries = run.urls.iter().filter(|u| u.contains(&format!("act_{v}/campaigns"))).count();
    assert_eq!(tries, 2, "asked twice, not five times with backoff");
    assert_eq!(run.out.errors.len(), 1, "{:?}", run.out.errors);
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("campaigns of ad account {v}")), "{message}");
    assert!(message.contains("not valid JSON") && message.contains("at byte 30 of 33"), "{message}");
    assert!(message.contains("/campaigns"), "names the request: {message}");
    let good = &Simulator::new(cfg()).account_ids()[0];
    assert!(!of_account(&run.out, "campaigns", good).is_empty(), "the other account is read");
}

const EVIL: &str = "https://evil.example";

#[test]
fn a_redirect_fails_its_request_naming_where_it_pointed_and_never_becomes_records() {
    let (v, tamper) = victim_listing_answers(
        "ads",
        302,
        vec![("location".into(), format!("{EVIL}/ads?access_token=secret"))],
        br#"{"data":[{"id":"6660001","name":"not an ad of this account"}]}"#,
    );
    let run = sync(&["ads"], tamper);
    assert!(!run.out.ids("ads").contains("6660001"), "a redirect's body is no record");
    assert!(run.urls.iter().all(|u| !u.starts_with(EVIL)), "never followed");
    assert_eq!(run.out.errors.len(), 1, "{:?}", run.out.errors);
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("ads of ad account {v}")), "{message}");
    assert!(message.contains("http 302, a redirect to https://evil.example/ads"), "{message}");
    assert!(!message.contains("secret"), "{message}");
    let tries = run.urls.iter().filter(|u| u.contains(&format!("act_{v}/ads"))).count();
    assert_eq!(tries, 1, "a redirect is not retried");
    let good = &Simulator::new(cfg()).account_ids()[0];
    assert_eq!(of_account(&run.out, "ads", good).len(), of_account(&clean(&["ads"]), "ads", good).len());
}

#[test]
fn a_redirected_result_page_is_never_taken_as_the_report() {
    let run = sync(
        &["ads_insights"],
        Box::new(|req, outcome| {
            if !is_result_page(req) {
                return outcome;
            }
            Ok(Response {
                status: 307,
                headers: vec![("location".into(), format!("{EVIL}/insights"))],
                body: br#"{"data":[{"ad_id":"666","date_start":"2026-01-01","date_stop":"2026-01-01"}]}"#.to_vec(),
            })
        }),
    );
    assert_eq!(run.out.count("ads_insights"), 0, "no row from a redirect");
    assert!(run.urls.iter().all(|u| !u.starts_with(EVIL)));
    assert_eq!(run.out.errors.len(), 1, "the stream fails");
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains("ads_insights of ad account"), "{message}");
    assert!(
        message.contains("could not be read") && message.contains("a redirect to https://evil.example/insights"),
        "the redirect is named, no field blamed: {message}"
    );
    assert_eq!(run.out.errors[0]["failure_type"], "system_error");
    assert!(run.urls.len() < 5_000, "bounded: {} requests", run.urls.len());
}

/// The victim's `ads` pages with their `next` on another origin, with or without the cursor.
fn foreign_next(keep_cursor: bool) -> (Run, String) {
    let v = victim();
    let who = v.clone();
    // Pages of two ads: every account's listing has several.
    let run = sync_with(
        &["ads"],
        serde_json::json!({"page_size": 2}),
        Box::new(move |req, outcome| {
            if !is_listing(req, &who, "ads") {
                return outcome;
            }
            edit(outcome, |b| {
                let mut page: Value = serde_json::from_slice(b).unwrap();
                if let Some(next) = page["paging"]["next"].as_str() {
                    page["paging"]["next"] = Value::from(next.replace("https://graph.facebook.com", EVIL));
                    if !keep_cursor {
                        page["paging"].as_object_mut().unwrap().remove("cursors");
                    }
                }
                page.to_string().into_bytes()
            })
        }),
    );
    (run, v)
}

#[test]
fn a_next_link_on_another_origin_goes_on_from_graphs_origin_with_the_cursor() {
    let (run, v) = foreign_next(true);
    assert!(run.urls.iter().all(|u| !u.starts_with(EVIL)), "never requested");
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    let before = clean(&["ads"]);
    assert_eq!(run.out.ids("ads"), before.ids("ads"), "every record read");
    assert!(of_account(&run.out, "ads", &v).len() > 1, "more than one page's worth");
    let said: Vec<String> = warnings(&run.out).into_iter().filter(|w| w.contains("another origin")).collect();
    assert_eq!(said.len(), 1, "one WARN: {said:?}");
    assert!(said[0].contains(EVIL), "{}", said[0]);
}

#[test]
fn a_next_link_on_another_origin_without_a_cursor_fails_that_account_naming_the_origin() {
    let (run, v) = foreign_next(false);
    assert!(run.urls.iter().all(|u| !u.starts_with(EVIL)), "never requested");
    assert_eq!(run.out.errors.len(), 1, "{:?}", run.out.errors);
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("ads of ad account {v}")) && message.contains(EVIL), "{message}");
    let good = &Simulator::new(cfg()).account_ids()[0];
    assert!(!of_account(&run.out, "ads", good).is_empty(), "the other account is read");
}

#[test]
fn a_report_result_chain_that_cycles_ends_its_job_and_the_sync() {
    // Every result page points to a "next" page under a fresh cursor, which holds the same rows.
    let mut first_pages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut n = 0;
    let run = sync(
        &["ads_insights"],
        Box::new(move |req, outcome| {
            if !is_result_page(req) {
                return outcome;
            }
            let path = req.url.split('?').next().unwrap_or("").to_string();
            n += 1;
            let next = format!("{path}?after=cycle{n}");
            let body = match (req.url.contains("after=cycle"), first_pages.get(&path)) {
                (true, Some(b)) => b.clone(),
                _ => match &outcome {
                    Ok(r) if r.status == 200 => r.body.clone(),
                    _ => return outcome,
                },
            };
            let mut page: Value = serde_json::from_slice(&body).unwrap();
            page["paging"] = serde_json::json!({"cursors": {"after": format!("cycle{n}")}, "next": next});
            let body = page.to_string().into_bytes();
            first_pages.entry(path).or_insert_with(|| body.clone());
            Ok(Response { status: 200, headers: vec![], body })
        }),
    );
    assert!(run.urls.len() < 20_000, "bounded: {} requests", run.urls.len());
    assert!(run.out.jobs("ads_insights").retried > 0, "the job failed and was retried");
    assert_eq!(run.out.errors.len(), 1);
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains("ads_insights of ad account") && message.contains("only items already read"), "{message}");
    // No row of a cycling page is handed over twice within one reading of a job.
    let rows = &run.out.records.get("ads_insights").cloned().unwrap_or_default();
    let distinct: std::collections::BTreeSet<String> = rows.iter().map(Value::to_string).collect();
    assert!(rows.len() <= distinct.len() * (run.out.jobs("ads_insights").retried as usize + 1));
}

#[test]
fn a_refusal_that_names_a_field_already_dropped_fails_the_request_and_never_restarts_it() {
    // Whatever the request asks for, the same field is refused.
    let (v, tamper) = victim_listing_answers(
        "ads",
        400,
        vec![],
        br#"{"error":{"message":"(#100) Tried accessing nonexisting field (bid_amount) on node type (Ad)","type":"OAuthException","code":100}}"#,
    );
    let run = sync(&["ads"], tamper);
    let tries = run.urls.iter().filter(|u| u.contains(&format!("act_{v}/ads"))).count();
    assert_eq!(tries, 2, "dropped once and asked again, then failed: {tries}");
    assert_eq!(run.out.errors.len(), 1, "{:?}", run.out.errors);
    let message = run.out.errors[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("ads of ad account {v}")) && message.contains("bid_amount"), "{message}");
    let said = warnings(&run.out);
    assert!(said.iter().any(|w| w.contains("dropped already")), "{said:?}");
}

fn logs_with(out: &Output, text: &str) -> Vec<String> {
    out.messages
        .iter()
        .filter_map(|m| match m {
            Message::Log { message, .. } if message.contains(text) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_object_without_its_key_is_skipped_with_one_warn_and_the_account_read() {
    let v = victim();
    let who = v.clone();
    let run = sync(
        &["ads"],
        Box::new(move |req, outcome| {
            if !is_listing(req, &who, "ads") || req.url.contains("after=") {
                return outcome;
            }
            edit(outcome, |b| {
                let mut page: Value = serde_json::from_slice(b).unwrap();
                page["data"][0].as_object_mut().unwrap().remove("id");
                page.to_string().into_bytes()
            })
        }),
    );
    let before = clean(&["ads"]);
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    assert_eq!(of_account(&run.out, "ads", &v).len() + 1, of_account(&before, "ads", &v).len(), "all but one");
    let said = logs_with(&run.out, "skipped an object without an id");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains(&format!("ads of ad account {v}")), "{}", said[0]);
    assert_eq!(logs_with(&run.out, "1 objects without an id skipped").len(), 1, "in the closing summary");
}

#[test]
fn a_batch_item_graph_refuses_for_good_is_skipped_and_the_rest_read() {
    let run = sync(
        &["ad_creatives_from_ads"],
        batches_edited(|b| {
            let mut items: Value = serde_json::from_slice(b).unwrap();
            let forbidden = r#"{"error":{"message":"(#10) Application does not have permission for this action","type":"OAuthException","code":10}}"#;
            if let Some(first) = items.get_mut(0).filter(|i| i["code"] == 200) {
                *first = serde_json::json!({"code": 403, "body": forbidden});
            }
            items.to_string().into_bytes()
        }),
    );
    let before = clean(&["ad_creatives_from_ads"]);
    assert!(run.out.errors.is_empty(), "{:?}", run.out.errors);
    let batches = run.urls.iter().filter(|u| !u.contains('?') || u.ends_with("/v25.0/")).count();
    let (got, all) = (run.out.count("ad_creatives_from_ads"), before.count("ad_creatives_from_ads"));
    assert!(got < all && got > 0, "{got} of {all}");
    let said = logs_with(&run.out, "could not be read and is skipped");
    assert_eq!(got + said.len(), all, "each skipped creative named once: {said:?}");
    assert!(logs_with(&run.out, &format!("{} skipped", said.len())).len() == 1, "in the closing summary");
    assert!(batches > 0);
}
