//! The client machine: every Graph call goes through it. It adds the token, classifies the
//! answer, retries transient failures with backoff, waits out quota blocks, halves page sizes
//! when Graph asks for less data, and reads the usage headers of every answer into the throttle.
//!
//! Callers `submit` a [`Call`] and later collect exactly one [`CallOutcome`] for it from
//! `poll_completion`. The owning machine forwards the driver's inputs (`handle_response`,
//! `handle_fetch_error`, `handle_timeout`) and drains `poll_transmit` for fetches to perform.

use super::backoff::Backoff;
pub use super::classify::CallFailure;
use super::classify::{GraphError, Refusal, Verdict, classify_fetch_error, classify_graph_error, classify_response};
use super::throttle::Throttle;
use crate::driver::TimeoutReason;
use crate::error::ConnectorError;
use crate::http::{
    FetchError, Request, RequestId, Response, header, redact_token_params, split_query, with_query_param,
};
use crate::protocol::{LogLevel, Message};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timers::{Deadline, soonest};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Identifies one logical call, across all its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// What a call is for; counted per kind for progress and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    Account,
    EdgePage,
    Batch,
    JobCreate,
    JobResults,
    InsightsSync,
    Thumbnail,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Account => "account",
            CallKind::EdgePage => "edge page",
            CallKind::Batch => "batch",
            CallKind::JobCreate => "job create",
            CallKind::JobResults => "job results",
            CallKind::InsightsSync => "insights sync",
            CallKind::Thumbnail => "thumbnail",
        }
    }
}

/// Where a call goes and what its answer must be: the four kinds of call the connector makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A Graph call with the token as a bearer header; its JSON body is parsed for the caller.
    Graph,
    /// As [`Shape::Graph`], but the caller reads the JSON body itself: it is only checked
    /// (well-formed, not a Graph error) and handed over as bytes, without building a `Value`.
    GraphRaw,
    /// A Graph batch request: the token travels in its form body, so no bearer header.
    GraphBatch,
    /// A call outside Graph (an image CDN): no token, and any body is handed over as bytes.
    External,
}

impl Shape {
    fn bearer(self) -> bool {
        matches!(self, Shape::Graph | Shape::GraphRaw)
    }

    fn parses_json(self) -> bool {
        matches!(self, Shape::Graph | Shape::GraphBatch)
    }
}

impl CallKind {
    /// Whether calls of this kind go before others waiting: the ones that start or end a wait
    /// on Graph (report jobs, and the account look-ups they need) are on a sync's critical path.
    fn urgent(self) -> bool {
        matches!(self, CallKind::Account | CallKind::JobCreate | CallKind::JobResults | CallKind::InsightsSync)
    }
}

/// One logical request.
#[derive(Clone, Debug)]
pub struct Call {
    pub request: Request,
    pub kind: CallKind,
    pub shape: Shape,
    /// The ad account (bare id) whose quota the call uses, if one: its usage headers and quota
    /// blocks pace that account's calls only, and it counts against the account's share of
    /// the requests in flight. Read from the URL's `act_<id>` segment unless set.
    pub account: Option<String>,
    /// Goes before the calls waiting that are not.
    pub urgent: bool,
}

impl Call {
    fn new(request: Request, kind: CallKind, shape: Shape) -> Self {
        let account = account_in_url(&request.url).map(str::to_string);
        Call { request, kind, shape, account, urgent: kind.urgent() }
    }

    pub fn graph(request: Request, kind: CallKind) -> Self {
        Call::new(request, kind, Shape::Graph)
    }

    pub fn external(request: Request, kind: CallKind) -> Self {
        Call { account: None, ..Call::new(request, kind, Shape::External) }
    }

    /// A Graph call whose body the caller transcodes itself (see [`Shape::GraphRaw`]).
    pub fn graph_raw(request: Request, kind: CallKind) -> Self {
        Call::new(request, kind, Shape::GraphRaw)
    }

    /// A Graph batch request whose form body carries the token.
    pub fn batch(request: Request) -> Self {
        Call::new(request, CallKind::Batch, Shape::GraphBatch)
    }

    /// The same call, for `account`'s quota.
    pub fn for_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_string());
        self
    }

    /// The same call, ahead of calls that are not urgent.
    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }
}

/// The bare id of the `act_<id>` path segment of a Graph URL, if it has one.
pub fn account_in_url(url: &str) -> Option<&str> {
    let path = url.split('?').next().unwrap_or(url);
    path.split('/').find_map(|seg| seg.strip_prefix("act_")).filter(|id| !id.is_empty())
}

/// A successful answer.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The raw body, kept only when the call did not have it parsed.
    pub body: Vec<u8>,
    /// The parsed body (`Null` when the call did not have it parsed).
    pub json: Value,
}

/// A failed call: its cause, the error to report, and Graph's error if there was one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub failure: CallFailure,
    pub error: ConnectorError,
    pub graph: Option<Box<GraphError>>,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.message())
    }
}

pub type CallOutcome = Result<Reply, CallError>;

#[derive(Clone, Debug)]
struct Entry {
    id: CallId,
    call: Call,
    /// Failed attempts that count against the backoff budget.
    failures: u32,
    /// How the last answer's body failed to parse, if it did: the same failure twice is the
    /// body's own, which no retry changes.
    malformed: Option<String>,
    /// Its answer passed the cap of a share of the budget: it goes again alone, with the whole
    /// cap its shape allows.
    large: bool,
    /// The response-size cap it was sent with (counted against the budget while in flight).
    cap: u64,
}

/// 192 MiB: the most answer bytes the host may hold for the guest at once, the sum of the caps
/// of the requests in flight (DESIGN.md, "Memory": with the guest's 512 MiB this leaves room to
/// parse the largest answer).
pub const IN_FLIGHT_BYTES: u64 = 192 << 20;

/// 4 MiB: the cap of an answer whose JSON is parsed whole into a tree (an account or a job, a
/// batch of 50 operations, a thumbnail): Graph's are kilobytes, and a tree may be many times its
/// text. Listings and result pages are read item by item and may be as large as
/// `response_size_limit_mb`.
pub const TREE_ANSWER_BYTES: u64 = 4 << 20;

/// How many requests may be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// In all (config `max_concurrent_requests`).
    pub total: usize,
    /// For any one ad account.
    pub per_account: usize,
}

/// 32: requests in flight at once when the config does not say (`max_concurrent_requests`).
/// Graph limits calls by count and cost per hour, not by connection; 32 round trips of 0.3 to
/// 3 s keep a sync of tens of accounts close to its report jobs' time.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 32;

/// 4: requests in flight at once for one ad account. Graph's business-use-case quota and the
/// ad account score are per account: a few at a time keep one account from spending its quota
/// in a burst, while tens of accounts still run side by side.
pub const MAX_IN_FLIGHT_PER_ACCOUNT: usize = 4;

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency { total: DEFAULT_MAX_CONCURRENT_REQUESTS, per_account: MAX_IN_FLIGHT_PER_ACCOUNT }
    }
}

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

/// The client machine.
pub struct Api {
    token: String,
    pause_on_rate_limit: bool,
    backoff: Backoff,
    rng: Rng,
    now: Timestamp,
    next_request: u64,
    next_call: u64,
    ready: VecDeque<Entry>,
    /// Calls waiting out a backoff, in the order they failed.
    delayed: Vec<(Timestamp, Entry)>,
    sent: BTreeMap<RequestId, Entry>,
    /// Requests in flight by ad account.
    sent_by_account: BTreeMap<String, usize>,
    concurrency: Concurrency,
    done: VecDeque<(CallId, CallOutcome)>,
    logs: VecDeque<Message>,
    throttle: Throttle,
    stats: ApiStats,
    /// The first failure that no call of the sync can get past (the token, the API version).
    fatal: Option<ConnectorError>,
    /// Whether Meta's word that it served another API version was passed on (once a sync).
    version_warned: bool,
    /// The most body bytes any answer may have (config `response_size_limit_mb`).
    max_response_bytes: u64,
    /// The sum of the caps of the requests in flight (at most [`IN_FLIGHT_BYTES`]).
    reserved: u64,
    /// Requests made again alone, with the whole cap, after passing a share of the budget.
    pub escalations: u64,
}

impl Api {
    /// `pause_on_rate_limit` is off for `check`, which must answer quickly.
    pub fn new(token: String, seed: u64, now: Timestamp, pause_on_rate_limit: bool) -> Self {
        Api {
            token,
            pause_on_rate_limit,
            backoff: Backoff::default(),
            rng: Rng::new(seed),
            now,
            next_request: 0,
            next_call: 0,
            ready: VecDeque::new(),
            delayed: Vec::new(),
            sent: BTreeMap::new(),
            sent_by_account: BTreeMap::new(),
            concurrency: Concurrency::default(),
            done: VecDeque::new(),
            logs: VecDeque::new(),
            throttle: Throttle::default(),
            stats: ApiStats::default(),
            fatal: None,
            version_warned: false,
            max_response_bytes: crate::http::DEFAULT_MAX_RESPONSE_BYTES,
            reserved: 0,
            escalations: 0,
        }
    }

    /// The same client with other bounds on requests in flight (at least one of each).
    pub fn with_concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = Concurrency { total: concurrency.total.max(1), per_account: concurrency.per_account.max(1) };
        self
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.sent.len()
    }

    /// The same client with another response-size cap, in bytes.
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
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
        self.ready.push_back(Entry { id, call, failures: 0, malformed: None, large: false, cap: 0 });
        id
    }

    /// The next request to perform: the first urgent call waiting that may go, else the first
    /// call that may go. A call may go unless the requests in flight are at their bound (in
    /// all, or for its account) or the throttle holds its account (or the app).
    pub fn poll_transmit(&mut self) -> Option<(RequestId, Request)> {
        self.promote_due();
        if self.sent.len() >= self.concurrency.total {
            return None;
        }
        let pick = self.pick_ready()?;
        let mut entry = self.ready.remove(pick)?;
        if let Some(a) = &entry.call.account {
            *self.sent_by_account.entry(a.clone()).or_default() += 1;
        }
        entry.cap = self.cap_of(&entry);
        self.reserved += entry.cap;
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let mut request = entry.call.request.clone();
        request.max_response_bytes = entry.cap;
        if entry.call.shape.bearer() {
            request.headers.push(("authorization".to_string(), format!("Bearer {}", self.token)));
        }
        *self.stats.requests.entry(entry.call.kind).or_default() += 1;
        self.sent.insert(id, entry);
        Some((id, request))
    }

    /// The most an answer of this shape may have: listings and result pages (read item by
    /// item) the config's cap, answers parsed whole [`TREE_ANSWER_BYTES`].
    fn shape_cap(&self, entry: &Entry) -> u64 {
        match entry.call.shape {
            Shape::GraphRaw => self.max_response_bytes,
            Shape::Graph | Shape::GraphBatch | Shape::External => self.max_response_bytes.min(TREE_ANSWER_BYTES),
        }
    }

    /// The cap `entry` goes with: its share of the budget ([`IN_FLIGHT_BYTES`] over the
    /// requests that may be in flight), or, once an answer passed that, the whole cap of its
    /// shape. Real answers are far below a share: a share is 6 MiB at 32 in flight.
    fn cap_of(&self, entry: &Entry) -> u64 {
        let whole = self.shape_cap(entry);
        if entry.large {
            return whole;
        }
        whole.min(IN_FLIGHT_BYTES / self.concurrency.total as u64).max(1)
    }

    /// Whether `entry`'s cap fits in what the requests in flight leave of the budget.
    fn fits(&self, entry: &Entry) -> bool {
        self.reserved + self.cap_of(entry) <= IN_FLIGHT_BYTES
    }

    /// Whether `entry` may be sent now.
    fn may_go(&self, entry: &Entry) -> bool {
        let account = entry.call.account.as_deref();
        if self.pause_on_rate_limit && self.throttle.paused_until(account, self.now).is_some() {
            return false;
        }
        account.is_none_or(|a| self.sent_by_account.get(a).copied().unwrap_or(0) < self.concurrency.per_account)
    }

    /// The position of the call to send next, if any may go.
    fn pick_ready(&self) -> Option<usize> {
        let mut first = None;
        for (i, entry) in self.ready.iter().enumerate() {
            if !self.may_go(entry) {
                continue;
            }
            if !self.fits(entry) {
                // A request that needs the whole cap waits for the budget to drain, and holds
                // back the others until it goes (else a stream of small ones could starve it).
                if entry.large {
                    return None;
                }
                continue;
            }
            if entry.call.urgent {
                return Some(i);
            }
            first.get_or_insert(i);
        }
        first
    }

    fn promote_due(&mut self) {
        let now = self.now;
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, e) = self.delayed.remove(i);
                self.ready.push_back(e);
            } else {
                i += 1;
            }
        }
    }

    /// The next deadline: a backoff ending, or a pause lifting that holds a call waiting.
    pub fn poll_timeout(&self) -> Option<Deadline> {
        let backoff = self.delayed.iter().map(|(t, _)| *t).min().map(|t| (t, TimeoutReason::Backoff));
        let pause = if self.pause_on_rate_limit {
            self.ready
                .iter()
                .filter_map(|e| self.throttle.paused_until(e.call.account.as_deref(), self.now))
                .min_by_key(|(at, _)| *at)
        } else {
            None
        };
        soonest([backoff, pause])
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
        self.note_version(&entry.call, &response.headers);
        if entry.call.shape != Shape::External {
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
            // One pass that allocates nothing: well-formed, and not an error in disguise.
            match serde_json::from_slice::<TopLevel>(&response.body) {
                Ok(TopLevel { error: None }) => {}
                Ok(_) => {
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
            Verdict::Transient(reason) => self.retry(entry, &reason, graph),
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
                            self.ready.push_front(entry);
                        }
                        None => self.fail(entry, CallFailure::Exhausted, ConnectorError::exhausted(
                            "the ad account stayed over its api quota for an hour; try again later or reduce how often syncs run",
                            graph.as_ref().map(GraphError::summary).unwrap_or_default(),
                        ), graph),
                    }
                } else {
                    let reason = graph.as_ref().map(GraphError::summary).unwrap_or_else(|| "rate limited".into());
                    self.retry(entry, &reason, graph)
                }
            }
            Verdict::ReduceData => self.reduce_data(entry, graph),
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
            if !entry.large && cap < self.shape_cap(&entry) {
                // Past its share of the budget, not past the cap: asked again alone, with the
                // whole cap, first among the calls waiting (no failure, no page halved).
                entry.large = true;
                self.escalations += 1;
                self.ready.push_front(entry);
                return Ok(());
            }
            // An absurd answer is this request's failure: like "reduce the amount of data".
            self.too_large(entry, cap);
            return Ok(());
        }
        match classify_fetch_error(&error) {
            Verdict::Permanent(Refusal { cause, error }) => self.fail(entry, cause, error, None),
            _ => self.retry(entry, &error.to_string(), None),
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
        let entry = self.sent.remove(&id);
        if let Some(e) = &entry {
            self.reserved = self.reserved.saturating_sub(e.cap);
        }
        if let Some(a) = entry.as_ref().and_then(|e| e.call.account.as_ref())
            && let Some(n) = self.sent_by_account.get_mut(a)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sent_by_account.remove(a);
            }
        }
        entry.ok_or_else(|| {
            ConnectorError::contract(
                format!("the host answered {id}, which was never sent or was already answered"),
                String::new(),
            )
        })
    }

    fn retry(&mut self, mut entry: Entry, reason: &str, graph: Option<GraphError>) {
        entry.failures += 1;
        match self.backoff.delay(entry.failures, &mut self.rng) {
            Some(wait) => {
                self.stats.retries += 1;
                self.log(
                    LogLevel::Warn,
                    format!(
                        "retrying {} in {:.1} s (attempt {} failed: {})",
                        describe(&entry.call.request),
                        wait.as_secs_f64(),
                        entry.failures,
                        redact_token_params(reason)
                    ),
                );
                self.delayed.push((self.now.plus(wait), entry));
            }
            None => {
                let e = ConnectorError::exhausted(
                    format!(
                        "the graph api kept failing after {} attempts ({}); try again later",
                        entry.failures,
                        redact_token_params(reason)
                    ),
                    describe(&entry.call.request),
                );
                self.fail(entry, CallFailure::Exhausted, e, graph)
            }
        }
    }

    /// Halves the request's `limit`; false when it has none left to halve.
    fn halve_limit(&mut self, entry: &mut Entry) -> Option<String> {
        let (_, params) = split_query(&entry.call.request.url);
        let limit = params.iter().find(|(k, _)| k == "limit").and_then(|(_, v)| v.parse::<u32>().ok());
        match limit {
            Some(l) if l > 1 => {
                let halved = (l / 2).to_string();
                entry.call.request.url = with_query_param(&entry.call.request.url, "limit", &halved);
                self.stats.page_size_halvings += 1;
                Some(halved)
            }
            _ => None,
        }
    }

    /// An answer past the response-size cap: halve the page size and retry, as for "reduce the
    /// amount of data"; with nothing to halve, the call fails (its account, not the sync).
    fn too_large(&mut self, mut entry: Entry, cap: u64) {
        if entry.call.shape == Shape::GraphBatch {
            // A batch is made smaller by its sender (fewer operations to a call), not retried.
            let e = ConnectorError::misbehaving(
                format!("a batch answer passed {} MiB", cap >> 20),
                format!("response larger than {cap} bytes"),
            );
            return self.fail(entry, CallFailure::TooLarge, e, None);
        }
        match self.halve_limit(&mut entry) {
            Some(halved) => {
                // Smaller pages are the cure, not waiting: retried at once, and not counted
                // against the retries (it ends at a page size of one).
                self.log(
                    LogLevel::Warn,
                    format!(
                        "{} answered more than {} MiB; asking again with page size {halved}",
                        describe(&entry.call.request),
                        cap >> 20
                    ),
                );
                self.ready.push_back(entry);
            }
            // Nothing to halve: a passing fault is retried; one that stays fails the call.
            None => {
                entry.failures += 1;
                match self.backoff.delay(entry.failures, &mut self.rng) {
                    Some(wait) => {
                        self.stats.retries += 1;
                        self.log(
                            LogLevel::Warn,
                            format!(
                                "retrying {} in {:.1} s (its answer passed {} MiB)",
                                describe(&entry.call.request),
                                wait.as_secs_f64(),
                                cap >> 20
                            ),
                        );
                        self.delayed.push((self.now.plus(wait), entry));
                    }
                    None => {
                        let e = ConnectorError::misbehaving(
                            format!(
                                "{} answered more than {} MiB even at the smallest page size, and the host stopped reading it; raise response_size_limit_mb if such answers are expected, or report it",
                                describe(&entry.call.request),
                                cap >> 20
                            ),
                            format!("response larger than {cap} bytes"),
                        );
                        self.fail(entry, CallFailure::TooLarge, e, None)
                    }
                }
            }
        }
    }

    /// Halves `limit` and asks again at once, as Graph asks; without a limit to halve, the
    /// request is simply too large for Graph. Halvings do not count against the retries: they
    /// end at a page size of one (nine halvings from 500).
    fn reduce_data(&mut self, mut entry: Entry, graph: Option<GraphError>) {
        match self.halve_limit(&mut entry) {
            Some(halved) => {
                self.stats.retries += 1;
                self.log(
                    LogLevel::Warn,
                    format!(
                        "{}: graph asked for less data; asking again with page size now {halved}",
                        describe(&entry.call.request)
                    ),
                );
                self.ready.push_back(entry);
            }
            None => {
                let e = ConnectorError::rejected(
                    "meta asks to reduce the amount of data even for the smallest request; unselect some fields of this stream in the catalog or lower page_size",
                    graph.as_ref().map(GraphError::summary).unwrap_or_default(),
                );
                self.fail(entry, CallFailure::ReduceData, e, graph)
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
    fn adds_the_token_as_a_bearer_header_only_for_graph_calls() {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1"), CallKind::Account));
        a.submit(Call::external(Request::get("https://cdn/x.png"), CallKind::Thumbnail));
        let (_, r1) = a.poll_transmit().unwrap();
        let (_, r2) = a.poll_transmit().unwrap();
        assert!(r1.headers.contains(&("authorization".into(), "Bearer tok".into())));
        assert!(r2.headers.iter().all(|(k, _)| k != "authorization"));
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
    fn the_caps_of_the_requests_in_flight_never_sum_past_the_budget() {
        for total in [1, 7, 32, 256] {
            let mut a = api().with_concurrency(Concurrency { total, per_account: 256 });
            for n in 0..300 {
                a.submit(Call::graph_raw(
                    Request::get(format!("https://g/v25.0/{n}/insights?limit=500")),
                    CallKind::JobResults,
                ));
            }
            let caps: Vec<u64> = std::iter::from_fn(|| a.poll_transmit()).map(|(_, r)| r.max_response_bytes).collect();
            assert_eq!(caps.len(), total, "the count bound");
            assert!(caps.iter().sum::<u64>() <= IN_FLIGHT_BYTES, "{total}: {caps:?}");
            let share = (IN_FLIGHT_BYTES / total as u64).min(64 << 20);
            assert!(caps.iter().all(|&c| c == share), "{total}: each its share");
        }
        // An answer parsed whole has a cap of its own.
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1"), CallKind::Account));
        assert_eq!(a.poll_transmit().unwrap().1.max_response_bytes, TREE_ANSWER_BYTES);
    }

    #[test]
    fn an_answer_past_its_share_goes_again_alone_with_the_whole_cap_when_the_budget_allows() {
        let mut a = api();
        for n in 0..32 {
            a.submit(Call::graph_raw(
                Request::get(format!("https://g/v25.0/{n}/insights?limit=500")),
                CallKind::JobResults,
            ));
        }
        let sent: Vec<(RequestId, Request)> = std::iter::from_fn(|| a.poll_transmit()).collect();
        let share = IN_FLIGHT_BYTES / 32;
        assert_eq!(sent.len(), 32);
        a.handle_fetch_error(sent[0].0, FetchError::TooLarge(share), Timestamp(0)).unwrap();
        assert!(a.poll_completion().is_none(), "no failure");
        assert!(a.poll_transmit().is_none(), "31 shares in flight leave no room for 64 MiB");
        let ok = || Response { status: 200, headers: vec![], body: b"{\"data\":[]}".to_vec() };
        for (id, _) in &sent[1..22] {
            a.handle_response(*id, ok(), Timestamp(0)).unwrap();
        }
        let (_, again) = a.poll_transmit().expect("now it fits");
        assert_eq!(again.max_response_bytes, 64 << 20);
        assert_eq!(again.url, sent[0].1.url, "the same page, not halved");
        assert_eq!(a.escalations, 1);
        assert_eq!(a.stats().page_size_halvings, 0);
    }

    fn sent_per_account(a: &mut Api) -> BTreeMap<String, usize> {
        let mut sent = BTreeMap::new();
        while let Some((_, r)) = a.poll_transmit() {
            *sent.entry(account_in_url(&r.url).unwrap_or("-").to_string()).or_insert(0) += 1;
        }
        sent
    }

    #[test]
    fn in_flight_stays_within_the_total_and_each_accounts_limit() {
        let mut a = api().with_concurrency(Concurrency { total: 6, per_account: 4 });
        for i in 0..6 {
            a.submit(Call::graph(Request::get(format!("https://g/v25.0/act_1/ads?p={i}")), CallKind::EdgePage));
        }
        for i in 0..3 {
            a.submit(Call::graph(Request::get(format!("https://g/v25.0/act_2/ads?p={i}")), CallKind::EdgePage));
        }
        let sent = sent_per_account(&mut a);
        assert_eq!(sent, BTreeMap::from([("1".to_string(), 4), ("2".to_string(), 2)]));
        assert_eq!(a.in_flight(), 6);
    }

    /// An act_1 call answered at 1 s with `header`, while one call of act_1 and one of act_2
    /// wait to be sent.
    fn answered_with_two_waiting(header: (&str, &str)) -> Api {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/ads"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/campaigns"), CallKind::EdgePage));
        a.submit(Call::graph(Request::get("https://g/v25.0/act_2/campaigns"), CallKind::EdgePage));
        let mut resp = ok(json!({"data": []}));
        resp.headers.push((header.0.into(), header.1.into()));
        a.handle_response(id, resp, Timestamp(1_000)).unwrap();
        a
    }

    #[test]
    fn an_accounts_usage_pauses_that_account_only_while_others_go_on() {
        // The answer came in before either waiting call was sent.
        let mut a =
            answered_with_two_waiting(("x-ad-account-usage", r#"{"acc_id_util_pct":90,"reset_time_duration":20}"#));
        let sent = sent_per_account(&mut a);
        assert_eq!(sent, BTreeMap::from([("2".to_string(), 1)]), "act_1 waits, act_2 goes");
        assert_eq!(a.poll_timeout(), Some((Timestamp(121_000), TimeoutReason::ThrottlePause)));
        a.handle_timeout(Timestamp(121_000));
        assert_eq!(sent_per_account(&mut a), BTreeMap::from([("1".to_string(), 1)]));
    }

    #[test]
    fn app_usage_pauses_every_account() {
        let mut a =
            answered_with_two_waiting(("x-app-usage", r#"{"call_count":95,"total_cputime":10,"total_time":10}"#));
        assert!(a.poll_transmit().is_none(), "every account waits for the app");
        let (deadline, reason) = a.poll_timeout().unwrap();
        assert_eq!(reason, TimeoutReason::ThrottlePause);
        a.handle_timeout(deadline);
        assert_eq!(sent_per_account(&mut a).len(), 2);
    }

    #[test]
    fn urgent_calls_go_before_calls_waiting_longer() {
        let mut a = api().with_concurrency(Concurrency { total: 1, per_account: 1 });
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/ads"), CallKind::EdgePage));
        a.submit(Call::graph(Request::get("https://g/v25.0/act_2/insights"), CallKind::JobCreate).urgent());
        let (_, first) = a.poll_transmit().unwrap();
        assert!(first.url.contains("insights"), "{}", first.url);
        assert!(a.poll_transmit().is_none(), "one in flight at most");
    }

    #[test]
    fn unknown_request_ids_are_a_contract_error() {
        let mut a = api();
        assert!(a.handle_response(RequestId(99), ok(json!({})), Timestamp(0)).is_err());
    }
}
