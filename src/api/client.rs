//! The client machine: every Graph call goes through it. It adds the token, classifies the
//! answer, retries transient failures with backoff, waits out quota blocks, halves page sizes
//! when Graph asks for less data, and reads the usage headers of every answer into the throttle.
//!
//! Callers `submit` a [`Call`] and later collect exactly one [`CallOutcome`] for it from
//! `poll_completion`. The owning machine forwards the driver's inputs (`handle_response`,
//! `handle_fetch_error`, `handle_timeout`) and drains `poll_transmit` for fetches to perform.

pub use super::classify::CallFailure;
use super::classify::{GraphError, Refusal, Verdict, classify_fetch_error, classify_graph_error, classify_response};
use super::retry::{Ladder, Rung, Step};
use super::schedule::{Entry, Scheduler};
use super::throttle::Throttle;
use crate::error::ConnectorError;
use crate::http::{FetchError, Request, RequestId, Response, encode_query, header, redact_token_params};
use crate::protocol::{LogLevel, Message};
use crate::time::Timestamp;
use crate::timers::{Deadline, soonest};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

pub use super::call::{Call, CallError, CallId, CallKind, CallOutcome, Reply, Shape, account_in_url};
pub use super::schedule::{
    Concurrency, DEFAULT_MAX_CONCURRENT_REQUESTS, IN_FLIGHT_BYTES, MAX_IN_FLIGHT_PER_ACCOUNT, TREE_ANSWER_BYTES,
};

/// Counters of what the client did, for progress lines and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct ApiStats {
    pub requests: BTreeMap<CallKind, u64>,
    pub retries: u64,
    pub quota_waits: u64,
    pub page_size_halvings: u64,
    /// Characters that were not valid Unicode (invalid UTF-8, unpaired surrogates) read as
    /// U+FFFD.
    pub text_repairs: u64,
}

impl ApiStats {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
}

/// The client machine: a façade over the scheduler (which call goes when) and the retry ladder
/// (what a failed attempt leads to); it adds the token, classifies every answer, and keeps the
/// throttle, the stats and the logs.
pub struct Api {
    token: String,
    pause_on_rate_limit: bool,
    ladder: Ladder,
    now: Timestamp,
    next_call: u64,
    schedule: Scheduler,
    done: VecDeque<(CallId, CallOutcome)>,
    logs: VecDeque<Message>,
    throttle: Throttle,
    stats: ApiStats,
    /// The first failure that no call of the sync can get past (the token, the API version).
    fatal: Option<ConnectorError>,
    /// Whether Meta's word that it served another API version was passed on (once a sync).
    version_warned: bool,
    /// Requests made again alone, with the whole cap, after passing a share of the budget.
    pub escalations: u64,
}

impl Api {
    /// `pause_on_rate_limit` is off for `check`, which must answer quickly.
    pub fn new(token: String, seed: u64, now: Timestamp, pause_on_rate_limit: bool) -> Self {
        Api {
            token,
            pause_on_rate_limit,
            ladder: Ladder::new(seed),
            now,
            next_call: 0,
            schedule: Scheduler::new(crate::http::DEFAULT_MAX_RESPONSE_BYTES),
            done: VecDeque::new(),
            logs: VecDeque::new(),
            throttle: Throttle::default(),
            stats: ApiStats::default(),
            fatal: None,
            version_warned: false,
            escalations: 0,
        }
    }

    /// The same client with other bounds on requests in flight (at least one of each).
    pub fn with_concurrency(mut self, concurrency: Concurrency) -> Self {
        self.schedule.set_concurrency(concurrency);
        self
    }

    /// Requests in flight now.
    /// The answer bytes that may be expected in flight now (see [`Scheduler::answer_budget`]).
    pub fn answer_budget(&self) -> u64 {
        self.schedule.answer_budget()
    }

    pub fn in_flight(&self) -> usize {
        self.schedule.in_flight()
    }

    /// The same client with another response-size cap, in bytes.
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.schedule.set_max_response_bytes(bytes);
        self
    }

    /// The first failure that ends the whole sync, if one happened: an invalid, expired or
    /// revoked token, or an API version Meta no longer serves. Every other call would fail the
    /// same way, so the owner stops instead of trying each stream and account in turn.
    pub fn fatal(&self) -> Option<&ConnectorError> {
        self.fatal.as_ref()
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The pacing state: usage seen, pauses taken, the insights load.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// What the client did so far.
    pub fn stats(&self) -> &ApiStats {
        &self.stats
    }

    /// Queues a call; its outcome comes out of [`Api::poll_completion`].
    pub fn submit(&mut self, call: Call) -> CallId {
        self.next_call += 1;
        let id = CallId(self.next_call);
        self.schedule.queue(Entry::new(id, call));
        id
    }

    /// The next request to perform (see [`Scheduler::send_next`]), with the token added: as a
    /// bearer header to Graph calls, in the form body of batch calls, to no other.
    pub fn poll_transmit(&mut self) -> Option<(RequestId, Request)> {
        let (throttle, now) = (&self.throttle, self.now);
        let pause = self.pause_on_rate_limit;
        let (id, entry) =
            self.schedule.send_next(now, |account| pause && throttle.paused_until(account, now).is_some())?;
        let mut request = entry.call.request.clone();
        request.max_response_bytes = entry.cap;
        match entry.call.shape {
            Shape::Graph | Shape::GraphRaw => {
                request.headers.push(("authorization".to_string(), format!("Bearer {}", self.token)));
            }
            Shape::GraphBatch => {
                let token = encode_query(&[("access_token", self.token.as_str())]);
                let form = request.body.take().unwrap_or_default();
                let mut body = token.into_bytes();
                if !form.is_empty() {
                    body.push(b'&');
                    body.extend_from_slice(&form);
                }
                request.body = Some(body);
            }
            Shape::External => {}
        }
        *self.stats.requests.entry(entry.call.kind).or_default() += 1;
        Some((id, request))
    }

    /// The next deadline: a backoff ending, or a pause lifting that holds a call waiting.
    pub fn poll_timeout(&self) -> Option<Deadline> {
        let pause = if self.pause_on_rate_limit {
            self.schedule
                .waiting()
                .filter_map(|e| self.throttle.paused_until(e.call.account.as_deref(), self.now))
                .min_by_key(|(at, _)| *at)
        } else {
            None
        };
        soonest([self.schedule.backoff_deadline(), pause])
    }

    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    /// The next outcome: exactly one for each call submitted.
    pub fn poll_completion(&mut self) -> Option<(CallId, CallOutcome)> {
        self.done.pop_front()
    }

    /// Log messages about retries and waits, for the owner to emit.
    pub fn poll_log(&mut self) -> Option<Message> {
        self.logs.pop_front()
    }

    pub fn handle_response(&mut self, id: RequestId, response: Response, now: Timestamp) -> Result<(), ConnectorError> {
        self.now = self.now.max(now);
        let mut entry = self.take(id)?;
        let mut response = response;
        self.schedule.observe_answer(&entry, response.body.len(), now);
        self.note_version(&entry.call, &response.headers);
        // A result page is scanned once, and that scan tells whether it needs repairing (rare);
        // any other body is repaired first, then parsed.
        let mut raw_check = None;
        if entry.call.shape == Shape::GraphRaw
            && let Some(checked) = check_page(&response.body)
            && !checked.surrogates
        {
            raw_check = Some(checked.error);
        }
        if entry.call.shape != Shape::External && raw_check.is_none() {
            self.repair_text(&mut response.body);
        }
        if (300..400).contains(&response.status) {
            // No redirect is followed: a Graph answer never points elsewhere, and whatever
            // another origin serves is not this call's answer.
            let error = redirect_error(&entry.call.request, response.status, response.header("location"));
            self.fail(entry, CallFailure::Redirect, error, None);
            return Ok(());
        }
        let mut verdict = classify_response(response.status, &response.body);
        // A quota block names its own wait; every other answer's usage headers may call for a
        // pause, errors included (ignoring them there is what made Airbyte re-run syncs).
        let quota_block = matches!(verdict, Verdict::RateLimited { quota_block: true });
        let account = entry.call.account.clone();
        if self.pause_on_rate_limit && !quota_block {
            self.throttle.observe(&response.headers, account.as_deref(), now);
        }
        let mut json = Value::Null;
        if verdict == Verdict::Success && entry.call.shape == Shape::GraphRaw {
            // One pass that allocates nothing: well-formed, and not an error in disguise. The
            // scanner says so for nearly every page; what it refuses, serde_json names.
            let has_error = match raw_check {
                Some(error) => Ok(error),
                None => match check_page(&response.body) {
                    Some(checked) => Ok(checked.error),
                    None => serde_json::from_slice::<TopLevel>(&response.body).map(|t| t.error.is_some()),
                },
            };
            match has_error {
                Ok(false) => {}
                Ok(true) => {
                    verdict = match GraphError::parse(&response.body) {
                        Some(g) => classify_graph_error(response.status, &g),
                        None => Verdict::Transient("a 200 answer held a malformed error".into()),
                    }
                }
                Err(e) => verdict = malformed(&mut entry, &response.body, &e),
            }
        } else if verdict == Verdict::Success && entry.call.shape.parses_json() {
            match serde_json::from_slice::<Value>(&response.body) {
                // A 200 that carries a Graph error is an error.
                Ok(v) if v.get("error").is_some() => {
                    verdict = match GraphError::from_value(&v) {
                        Some(g) => classify_graph_error(response.status, &g),
                        None => Verdict::Transient("a 200 answer held a malformed error".into()),
                    }
                }
                Ok(v) => json = v,
                Err(e) => verdict = malformed(&mut entry, &response.body, &e),
            }
        }
        // Only an error body is parsed as a Graph error; success bodies were parsed once above.
        let graph = if verdict == Verdict::Success { None } else { GraphError::parse(&response.body) };
        match verdict {
            Verdict::Success => {
                self.throttle.on_success(account.as_deref());
                // A parsed answer lives on as `json` only: no second copy of a large page.
                let body = if entry.call.shape.parses_json() { Vec::new() } else { response.body };
                self.done.push_back((
                    entry.id,
                    Ok(Reply { status: response.status, headers: response.headers, body, json }),
                ));
            }
            Verdict::Transient(reason) => self.climb(entry, Rung::Transient(reason), graph),
            Verdict::RateLimited { quota_block } => {
                if quota_block && self.pause_on_rate_limit {
                    match self.throttle.on_quota_block(&response.headers, account.as_deref(), now) {
                        Some(wait) => {
                            self.stats.quota_waits += 1;
                            self.log(LogLevel::Warn, format!(
                                "the ad account is over its quota; waiting {} s before retrying {}",
                                wait.as_secs(),
                                describe(&entry.call.request)
                            ));
                            self.schedule.queue_first(entry);
                        }
                        None => self.fail(entry, CallFailure::Exhausted, ConnectorError::exhausted(
                            "the ad account stayed over its api quota for an hour; try again later or reduce how often syncs run",
                            graph.as_ref().map(GraphError::summary).unwrap_or_default(),
                        ), graph),
                    }
                } else {
                    let reason = graph.as_ref().map(GraphError::summary).unwrap_or_else(|| "rate limited".into());
                    self.climb(entry, Rung::Transient(reason), graph)
                }
            }
            Verdict::ReduceData => self.climb(entry, Rung::ReduceData, graph),
            Verdict::StaleCursor => {
                let e = ConnectorError::misbehaving("the paging cursor went stale", String::new());
                self.fail(entry, CallFailure::StaleCursor, e, graph)
            }
            Verdict::ReportNotReady => {
                let e = ConnectorError::misbehaving("the report was read before it was ready", String::new());
                self.fail(entry, CallFailure::ReportNotReady, e, graph)
            }
            Verdict::Permanent(Refusal { cause, error }) => self.fail(entry, cause, error, graph),
        }
        Ok(())
    }

    pub fn handle_fetch_error(
        &mut self,
        id: RequestId,
        error: FetchError,
        now: Timestamp,
    ) -> Result<(), ConnectorError> {
        self.now = self.now.max(now);
        let mut entry = self.take(id)?;
        if let FetchError::TooLarge(cap) = error {
            if !entry.large && cap < self.schedule.shape_cap(&entry) {
                // Past its share of the budget, not past the cap: asked again alone, with the
                // whole cap, first among the calls waiting (no failure, no page halved).
                entry.large = true;
                self.escalations += 1;
                self.schedule.queue_first(entry);
                return Ok(());
            }
            if entry.call.shape == Shape::GraphBatch {
                // A batch is made smaller by its sender (fewer operations to a call), not retried.
                let e = ConnectorError::misbehaving(
                    format!("a batch answer passed {} MiB", cap >> 20),
                    format!("response larger than {cap} bytes"),
                );
                self.fail(entry, CallFailure::TooLarge, e, None);
                return Ok(());
            }
            // An absurd answer is this request's failure: like "reduce the amount of data".
            self.climb(entry, Rung::TooLarge(cap), None);
            return Ok(());
        }
        match classify_fetch_error(&error) {
            Verdict::Permanent(Refusal { cause, error }) => self.fail(entry, cause, error, None),
            _ => self.climb(entry, Rung::Transient(error.to_string()), None),
        }
        Ok(())
    }

    /// Repairs text that is not valid Unicode in place (see [`crate::text`]); says so once a
    /// sync.
    fn repair_text(&mut self, body: &mut Vec<u8>) {
        let (fixed, repairs) = crate::text::repair_json(body);
        let fixed = match fixed {
            std::borrow::Cow::Owned(b) => b,
            std::borrow::Cow::Borrowed(_) => return,
        };
        *body = fixed;
        if self.stats.text_repairs == 0 {
            self.log(
                LogLevel::Info,
                "graph sent text that is not valid unicode (a name cut inside an emoji, or bytes that are not utf-8); those characters are read as U+FFFD".into(),
            );
        }
        self.stats.text_repairs += repairs.count() as u64;
    }

    /// Passes on, once a sync, Meta's word that it served another API version than the one
    /// asked for: `X-Ad-Api-Version-Warning` ("auto-upgraded"), or a `facebook-api-version`
    /// that differs from the request's.
    fn note_version(&mut self, call: &Call, headers: &[(String, String)]) {
        if self.version_warned || call.shape == Shape::External {
            return;
        }
        let asked = api_version(&call.request.url);
        let served = header(headers, "facebook-api-version").filter(|v| !v.eq_ignore_ascii_case(asked));
        let warning = header(headers, "x-ad-api-version-warning").or_else(|| header(headers, "x-api-version-warning"));
        let said = match (warning, served) {
            (Some(w), _) => format!("meta says: \"{}\"", w.trim_matches('"')),
            (None, Some(v)) => format!("meta answered with api {v}"),
            (None, None) => return,
        };
        self.version_warned = true;
        self.log(
            LogLevel::Warn,
            format!(
                "graph api {asked} is deprecated or no longer served as asked ({said}); remove api_version from the config to use the connector's default, or set a current version (see the README on api_version)"
            ),
        );
    }

    fn take(&mut self, id: RequestId) -> Result<Entry, ConnectorError> {
        self.schedule.take(id).ok_or_else(|| {
            ConnectorError::contract(
                format!("the host answered {id}, which was never sent or was already answered"),
                String::new(),
            )
        })
    }

    /// Takes `entry` one step up the retry ladder (see [`super::retry`]) for `rung`: asked
    /// again at once with a smaller page, after a backoff, or failed, each said in a log line.
    fn climb(&mut self, mut entry: Entry, rung: Rung, graph: Option<GraphError>) {
        let what = describe(&entry.call.request);
        match (self.ladder.step(&mut entry, &rung), &rung) {
            (Step::Halved(halved), _) => {
                self.stats.page_size_halvings += 1;
                let message = match rung {
                    Rung::TooLarge(cap) => {
                        format!("{what} answered more than {} MiB; asking again with page size {halved}", cap >> 20)
                    }
                    _ => format!("{what}: graph asked for less data; asking again with page size now {halved}"),
                };
                self.log(LogLevel::Warn, message);
                self.schedule.queue(entry);
            }
            (Step::Wait(wait), _) => {
                self.stats.retries += 1;
                let why = match &rung {
                    Rung::Transient(reason) => {
                        format!("attempt {} failed: {}", entry.failures, redact_token_params(reason))
                    }
                    Rung::TooLarge(cap) => format!("its answer passed {} MiB", cap >> 20),
                    Rung::ReduceData => "graph asked for less data".to_string(),
                };
                self.log(LogLevel::Warn, format!("retrying {what} in {:.1} s ({why})", wait.as_secs_f64()));
                self.schedule.delay(entry, self.now.plus(wait));
            }
            (Step::GiveUp, Rung::Transient(reason)) => {
                let e = ConnectorError::exhausted(
                    format!(
                        "the graph api kept failing after {} attempts ({}); try again later",
                        entry.failures,
                        redact_token_params(reason)
                    ),
                    what,
                );
                self.fail(entry, CallFailure::Exhausted, e, graph)
            }
            (Step::GiveUp, Rung::ReduceData) => {
                let e = ConnectorError::rejected(
                    "meta asks to reduce the amount of data even for the smallest request; unselect some fields of this stream in the catalog or lower page_size",
                    graph.as_ref().map(GraphError::summary).unwrap_or_default(),
                );
                self.fail(entry, CallFailure::ReduceData, e, graph)
            }
            (Step::GiveUp, Rung::TooLarge(cap)) => {
                let e = ConnectorError::misbehaving(
                    format!(
                        "{what} answered more than {} MiB even at the smallest page size, and the host stopped reading it; raise response_size_limit_mb if such answers are expected, or report it",
                        cap >> 20
                    ),
                    format!("response larger than {cap} bytes"),
                );
                self.fail(entry, CallFailure::TooLarge, e, None)
            }
        }
    }

    fn fail(&mut self, entry: Entry, failure: CallFailure, error: ConnectorError, graph: Option<GraphError>) {
        if matches!(failure, CallFailure::Token | CallFailure::Version) && self.fatal.is_none() {
            let error = match failure {
                CallFailure::Version => {
                    error.clone().context(&format!("api version {}", api_version(&entry.call.request.url)))
                }
                _ => error.clone(),
            };
            self.fatal = Some(error);
        }
        self.done.push_back((entry.id, Err(CallError { failure, error, graph: graph.map(Box::new) })));
    }

    fn log(&mut self, level: LogLevel, message: String) {
        self.logs.push_back(Message::log(level, message));
    }
}

impl super::Calls for Api {
    fn submit(&mut self, call: Call) -> CallId {
        Api::submit(self, call)
    }

    fn warn(&mut self, message: String) {
        self.log(LogLevel::Warn, message);
    }

    /// Feeds usage headers seen elsewhere (inside batch elements, for `account` if known) to
    /// the throttle.
    fn observe_headers(&mut self, headers: &[(String, String)], account: Option<&str>) {
        if self.pause_on_rate_limit {
            self.throttle.observe(headers, account, self.now);
        }
    }
}

/// What a body that does not parse makes of its call: a retry the first time (it may have been
/// cut short on its way), a failure naming the problem and where when the same body fails the
/// same way again.
fn malformed(entry: &mut Entry, body: &[u8], e: &serde_json::Error) -> Verdict {
    let failure = crate::text::ParseFailure::of(body, e);
    let what = &failure.what;
    if failure.repeats(entry.malformed.as_deref()) {
        return Verdict::Permanent(Refusal {
            cause: CallFailure::Malformed,
            error: ConnectorError::misbehaving(
                format!(
                    "the graph api answered {} twice with a body that is not valid JSON ({what}); retrying will not change it, please report it",
                    describe(&entry.call.request)
                ),
                near(body, failure.offset),
            ),
        });
    }
    let reason = format!("the answer was not valid JSON ({what})");
    entry.malformed = Some(failure.what);
    Verdict::Transient(reason)
}

/// Up to 40 bytes either side of `offset`, as text, to show where a body goes wrong.
fn near(body: &[u8], offset: usize) -> String {
    let from = offset.saturating_sub(40);
    let to = (offset + 40).min(body.len());
    format!("near: {}", String::from_utf8_lossy(&body[from..to]))
}

/// A 3xx answer: the connector follows no redirect, so it is that request's failure.
fn redirect_error(request: &Request, status: u16, location: Option<&str>) -> ConnectorError {
    let to = match location {
        Some(l) => format!("to {}", redact_token_params(l)),
        None => "without a location".to_string(),
    };
    ConnectorError::misbehaving(
        format!(
            "{} answered http {status}, a redirect {to}; the connector follows no redirect (the graph api never redirects its calls: check graph_url and any proxy in between)",
            describe(request)
        ),
        String::new(),
    )
}

/// A result page's scan: one JSON object, whether it holds an error, whether it needs repairing;
/// `None` when the scanner refuses it (serde_json then names what is wrong).
fn check_page(body: &[u8]) -> Option<crate::scan::Checked> {
    std::str::from_utf8(body).ok().and_then(|text| crate::scan::check_object(text).ok())
}

/// The top level of a JSON object, values skipped: enough to tell a Graph error from data.
#[derive(serde::Deserialize)]
struct TopLevel {
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// The `vNN.N` segment of a Graph URL (`unknown` if it has none).
fn api_version(url: &str) -> &str {
    url.split(['/', '?'])
        .find(|seg| seg.len() > 1 && seg.starts_with('v') && seg[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .unwrap_or("unknown")
}

/// `GET https://graph.facebook.com/v25.0/act_1/ads` without the query (which may hold tokens).
pub fn describe(request: &Request) -> String {
    let path = request.url.split('?').next().unwrap_or("");
    format!("{} {}", request.method, redact_token_params(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::TimeoutReason;
    use serde_json::json;
    use std::time::Duration;

    fn api() -> Api {
        Api::new("tok".into(), 1, Timestamp(0), true)
    }

    fn ok(body: Value) -> Response {
        Response { status: 200, headers: vec![], body: body.to_string().into_bytes() }
    }

    fn graph_err(status: u16, code: i64, sub: Option<i64>, msg: &str) -> Response {
        let mut e = json!({"message": msg, "type": "OAuthException", "code": code, "fbtrace_id": "x"});
        if let Some(s) = sub {
            e["error_subcode"] = json!(s);
        }
        Response { status, headers: vec![], body: json!({"error": e}).to_string().into_bytes() }
    }

    #[test]
    fn adds_the_token_to_graph_calls_as_a_bearer_header_to_batches_in_the_form_and_to_nothing_else() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1"), CallKind::Account));
        a.submit(Call::external(Request::get("https://cdn/x.png"), CallKind::Thumbnail));
        let mut batch = Request::post_form("https://g/v25.0/".to_string(), &[]);
        batch.body = Some(b"batch=%5B%5D&include_headers=true".to_vec());
        a.submit(Call::batch(batch));
        let (_, r1) = a.poll_transmit().unwrap();
        let (_, r2) = a.poll_transmit().unwrap();
        let (_, r3) = a.poll_transmit().unwrap();
        assert!(r1.headers.contains(&("authorization".into(), "Bearer tok".into())));
        assert!(r2.headers.iter().all(|(k, _)| k != "authorization"));
        assert!(r3.headers.iter().all(|(k, _)| k != "authorization"));
        assert_eq!(r3.body.as_deref(), Some(&b"access_token=tok&batch=%5B%5D&include_headers=true"[..]));
    }

    #[test]
    fn rate_limit_80000_then_success_retries_once_after_five_seconds() {
        let mut a = api();
        let call = a.submit(Call::graph(Request::get("https://g/x"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        a.handle_response(id, graph_err(400, 80000, Some(2446079), "too many calls"), Timestamp(0)).unwrap();
        assert!(a.poll_transmit().is_none());
        let (deadline, reason) = a.poll_timeout().unwrap();
        assert_eq!(reason, TimeoutReason::Backoff);
        assert!(deadline >= Timestamp(5_000) && deadline < Timestamp(5_500), "{deadline:?}");
        a.handle_timeout(deadline);
        let (id2, _) = a.poll_transmit().unwrap();
        a.handle_response(id2, ok(json!({"data": []})), deadline).unwrap();
        let (cid, out) = a.poll_completion().unwrap();
        assert_eq!(cid, call);
        assert!(out.is_ok());
        assert_eq!(a.stats().total_requests(), 2);
    }

    #[test]
    fn five_failures_in_a_row_end_as_a_transient_error() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/x"), CallKind::EdgePage));
        let mut now = Timestamp(0);
        for _ in 0..5 {
            a.handle_timeout(now);
            let (id, _) = a.poll_transmit().expect("a retry is due");
            a.handle_response(id, graph_err(500, 2, None, "Service temporarily unavailable"), now).unwrap();
            if let Some((t, _)) = a.poll_timeout() {
                now = t;
            }
        }
        let (_, out) = a.poll_completion().unwrap();
        let e = out.unwrap_err();
        assert_eq!(e.error.failure_type(), crate::error::FailureType::Transient);
        assert_eq!(e.failure, CallFailure::Exhausted);
        assert!(e.error.message().contains("after 5 attempts"));
    }

    #[test]
    fn reduce_data_halves_the_page_size_at_once_down_to_one_then_fails_the_call() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/act_1/ads?fields=id&limit=500"), CallKind::EdgePage));
        let mut limits = Vec::new();
        let outcome = loop {
            let (id, req) = a.poll_transmit().expect("asked again at once, without a wait");
            limits.push(req.url.rsplit("limit=").next().unwrap().to_string());
            let reduce =
                graph_err(500, 1, None, "Please reduce the amount of data you're asking for, then retry your request");
            a.handle_response(id, reduce, Timestamp(0)).unwrap();
            if let Some((_, outcome)) = a.poll_completion() {
                break outcome;
            }
        };
        assert_eq!(limits, ["500", "250", "125", "62", "31", "15", "7", "3", "1"]);
        assert_eq!(outcome.unwrap_err().failure, CallFailure::ReduceData);
    }

    #[test]
    fn quota_block_waits_the_advertised_time_without_using_a_retry() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/x"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        let mut resp = graph_err(400, 17, Some(2446079), "User request limit reached");
        resp.headers.push((
            "x-business-use-case-usage".into(),
            r#"{"1":[{"type":"ads_management","call_count":100,"estimated_time_to_regain_access":2}]}"#.into(),
        ));
        a.handle_response(id, resp, Timestamp(0)).unwrap();
        assert!(a.poll_transmit().is_none());
        let (t, reason) = a.poll_timeout().unwrap();
        assert_eq!(reason, TimeoutReason::QuotaWait);
        assert_eq!(t, Timestamp(0).plus(Duration::from_secs(120)));
    }

    #[test]
    fn usage_at_ninety_percent_pauses_two_minutes_before_the_next_call() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/1"), CallKind::EdgePage));
        a.submit(Call::graph(Request::get("https://g/2"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        let mut resp = ok(json!({"data": []}));
        resp.headers.push(("x-ad-account-usage".into(), r#"{"acc_id_util_pct":90,"reset_time_duration":20}"#.into()));
        a.handle_response(id, resp, Timestamp(1_000)).unwrap();
        assert!(a.poll_transmit().is_none(), "the second call waits");
        assert_eq!(a.poll_timeout(), Some((Timestamp(121_000), TimeoutReason::ThrottlePause)));
        a.handle_timeout(Timestamp(121_000));
        assert!(a.poll_transmit().is_some());
    }

    #[test]
    fn malformed_success_bodies_are_retried() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/x"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        a.handle_response(id, Response { status: 200, headers: vec![], body: b"{\"data\":[".to_vec() }, Timestamp(0))
            .unwrap();
        assert!(a.poll_completion().is_none());
        assert_eq!(a.poll_timeout().unwrap().1, TimeoutReason::Backoff);
    }

    #[test]
    fn a_version_warning_is_passed_on_once_a_sync() {
        let mut a = api();
        for _ in 0..2 {
            a.submit(Call::graph(Request::get("https://g/v25.0/act_1"), CallKind::Account));
            let (id, _) = a.poll_transmit().unwrap();
            let mut resp = ok(json!({"id": "act_1"}));
            resp.headers.push((
                "x-ad-api-version-warning".into(),
                "The call has been auto-upgraded to v26.0 as v25.0 has been deprecated".into(),
            ));
            a.handle_response(id, resp, Timestamp(0)).unwrap();
        }
        let logs: Vec<Message> = std::iter::from_fn(|| a.poll_log()).collect();
        assert_eq!(logs.len(), 1, "{logs:?}");
        let Message::Log { message, .. } = &logs[0] else { panic!() };
        assert!(message.contains("v25.0") && message.contains("auto-upgraded to v26.0"), "{message}");
    }

    #[test]
    fn an_answer_past_the_size_cap_halves_the_page_then_fails_the_call_naming_request_and_size() {
        let mut a = api().with_max_response_bytes(1 << 20);
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/ads?fields=id&limit=4"), CallKind::EdgePage));
        let mut limits = Vec::new();
        let outcome = loop {
            if let Some((t, _)) = a.poll_timeout() {
                a.handle_timeout(t);
            }
            let (id, req) = a.poll_transmit().expect("asked again");
            assert_eq!(req.max_response_bytes, 1 << 20, "the cap travels with every request");
            limits.push(req.url.rsplit("limit=").next().unwrap().to_string());
            a.handle_fetch_error(id, FetchError::TooLarge(1 << 20), Timestamp(0)).unwrap();
            if let Some((_, outcome)) = a.poll_completion() {
                break outcome;
            }
        };
        assert_eq!(limits, ["4", "2", "1", "1", "1", "1", "1"], "halved, then retried at one");
        let e = outcome.unwrap_err();
        assert_eq!(e.failure, CallFailure::TooLarge);
        assert_eq!(e.error.failure_type(), crate::error::FailureType::System);
        assert!(e.error.message().contains("GET https://g/v25.0/act_1/ads") && e.error.message().contains("1 MiB"));
    }

    #[test]
    fn unknown_request_ids_are_a_contract_error() {
        let mut a = api();
        assert!(a.handle_response(RequestId(99), ok(json!({})), Timestamp(0)).is_err());
    }
}
