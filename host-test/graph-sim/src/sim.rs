//! The simulator: request handling, routing, auth, version checks and response assembly.
//!
//! `handle` serves one request: it advances the virtual clock by the configured latency, then
//! `receive`s it. Several requests in flight are [`Simulator::start`]ed and
//! [`Simulator::complete`]d instead: each arrives one latency after it started, and requests
//! arrive in that order (ties in the order they started), so overlapping latencies stay
//! deterministic. `receive` draws this request's fault from the seeded fault stream, and then serves the request exactly
//! as a batch operation would be served (`serve`), so both paths share auth, rate limits and
//! routing. Faults are injected before any state changes (or, for corrupted bodies, only on
//! reads), so retrying after a fault always gets the right answer.

mod execute;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::config::SimConfig;
use crate::edges::{Edge, edge, list_activities, list_objects, list_query};
use crate::errors::ApiError;
use crate::insights;
use crate::jobs::{Jobs, Outcome, RUN_EXPIRY_MS, ReportRun};
use crate::log::{CallLogEntry, CallStatus, Counters, RequestKind};
use crate::paging::Listing;
use crate::params::{FieldSpec, Params, parse_fields, split_url};
use crate::ratelimit::{CallClass, RateLimiter};
use crate::render::{
    ACCOUNT_NODE, ACTIVITY_NODE, check_fields, render_account, render_activity, render_object, select,
};
use crate::rng::{SplitMix64, mix, unit};
use crate::time::utc_human;
use crate::world::{Kind, World};
use crate::{SimRequest, SimResponse, TransportFault};

/// The node type of insights rows, as Graph names it in errors.
const INSIGHTS_NODE: &str = "AdsInsights";

/// A 1×1 transparent PNG served for creative thumbnails.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Salt mixed into the seed for the fault stream, so faults and world facts are independent.
const FAULT_STREAM: u64 = 0xFA17_5EED;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    Batch,
    Thumbnail,
    Account(usize),
    Edge(usize, Edge, String),
    Object(usize),
    Insights {
        account: usize,
        object: Option<usize>,
        node: String,
    },
    ReportStatus(String),
    ReportResults(String),
    /// A fixed answer (the token's user and its businesses).
    Static(Value),
    /// `GET /me/adaccounts`: every account the token reaches, paged.
    AdAccounts,
    Error(ApiError),
}

/// A served request before transport concerns.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub kind: RequestKind,
    pub content_type: &'static str,
}

/// An error chosen by the fault stream for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    Http500,
    Transient,
    Malformed,
    Truncated,
}

/// A deterministic, seeded Graph Marketing API on a virtual clock.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub(crate) cfg: SimConfig,
    pub(crate) world: World,
    pub(crate) now_ms: i64,
    pub(crate) faults: SplitMix64,
    pub(crate) seq: u64,
    pub(crate) jobs: Jobs,
    pub(crate) limiter: RateLimiter,
    pub(crate) log: Vec<CallLogEntry>,
    pub(crate) counters: Counters,
    /// Requests started and not yet arrived, by (arrival time, start order), with their tags.
    in_flight: BTreeMap<(i64, u64), (u64, SimRequest)>,
    started: u64,
}

/// One arrived request's answer, under the tag it was started with.
pub type Completed = (u64, Result<SimResponse, TransportFault>);

impl Simulator {
    /// Builds the world of `cfg` with the clock at `cfg.start_time_ms`.
    pub fn new(cfg: SimConfig) -> Simulator {
        let world = World::generate(&cfg);
        let limiter = RateLimiter::new(cfg.effective_limits());
        Simulator {
            now_ms: cfg.start_time_ms,
            faults: SplitMix64::new(mix(cfg.seed, &[FAULT_STREAM])),
            world,
            seq: 0,
            jobs: Jobs::default(),
            limiter,
            log: Vec::new(),
            counters: Counters::default(),
            in_flight: BTreeMap::new(),
            started: 0,
            cfg,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The virtual clock, UTC ms.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Moves the virtual clock forward (the host's `sleep`).
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms as i64;
    }

    /// Every call so far, in arrival order.
    pub fn call_log(&self) -> &[CallLogEntry] {
        &self.log
    }

    /// Aggregate counts.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Bare numeric ids of the accounts.
    pub fn account_ids(&self) -> Vec<String> {
        self.world.accounts.iter().map(|a| a.id.clone()).collect()
    }

    /// The accounts a config without `account_ids` reads: those `/me/adaccounts` lists as
    /// active (status 1) that the token may read.
    pub fn discoverable_account_ids(&self) -> Vec<String> {
        let revoked = &self.cfg.faults.revoked_accounts;
        self.world.accounts.iter().filter(|a| a.status == 1 && !revoked.contains(&a.id)).map(|a| a.id.clone()).collect()
    }

    /// Takes the token's access to account `id` away (`true`) or gives it back, from now on.
    pub fn set_revoked(&mut self, id: &str, revoked: bool) {
        let list = &mut self.cfg.faults.revoked_accounts;
        list.retain(|a| a != id);
        if revoked {
            list.push(id.to_string());
        }
    }

    /// The last `n` log lines, one call per line, for test failure messages.
    pub fn render_call_log_tail(&self, n: usize) -> String {
        let start = self.log.len().saturating_sub(n);
        self.log[start..]
            .iter()
            .map(|e| {
                format!(
                    "{:>12} {}{} {} [{}] -> {}",
                    e.at_ms - self.cfg.start_time_ms,
                    if e.in_batch { "  batch-op " } else { "" },
                    e.method,
                    e.path,
                    e.kind,
                    e.status
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `GET /me`: the system user behind the token.
    fn me(&self) -> Value {
        json!({"id": (100_000_000_000_000u64 + self.cfg.seed % 1000).to_string(), "name": "Sim System User"})
    }

    /// `GET /me/business_users`: one business per account, the token's user an admin of each.
    fn business_users(&self) -> Value {
        let me = self.me();
        let data: Vec<Value> = (0..self.world.accounts.len())
            .map(|a| {
                json!({
                    "id": me["id"], "name": me["name"], "role": "ADMIN",
                    "business": {"id": (900_000_000_000_000u64 + a as u64).to_string(), "name": format!("Sim Business {}", a + 1)},
                })
            })
            .collect();
        json!({ "data": data })
    }

    /// `GET /act_X/assigned_users`: the token's user with full tasks.
    fn assigned_users(&self) -> Value {
        let me = self.me();
        json!({"data": [{"id": me["id"], "name": me["name"], "tasks": ["MANAGE", "ADVERTISE", "ANALYZE", "DRAFT"]}]})
    }

    /// A trace id unique to (request, operation).
    pub(crate) fn trace_id(&self, op: u64) -> String {
        let h = mix(self.cfg.seed, &[800, self.seq, op]);
        format!("A{}", URL_SAFE_NO_PAD.encode(h.to_be_bytes()))
    }

    /// The virtual time `req` takes to arrive: the latency, plus any extra for its path.
    fn latency_of(&self, req: &SimRequest) -> u64 {
        let path = req.url.split('?').next().unwrap_or("");
        let extra = self.cfg.extra_latency.iter().find(|(p, _)| path.contains(p.as_str())).map_or(0, |(_, ms)| *ms);
        self.cfg.latency_ms + extra
    }

    /// Handles one HTTP request: one latency passes, then it is [`Simulator::receive`]d.
    pub fn handle(&mut self, req: &SimRequest) -> Result<SimResponse, TransportFault> {
        self.now_ms += self.latency_of(req) as i64;
        self.receive(req)
    }

    /// Starts `req` under `tag`: it arrives one latency from now, and is answered then by
    /// [`Simulator::complete`].
    pub fn start(&mut self, tag: u64, req: SimRequest) {
        self.started += 1;
        let at = self.now_ms + self.latency_of(&req) as i64;
        self.in_flight.insert((at, self.started), (tag, req));
    }

    /// Forgets the requests started and not yet arrived: a client that stopped (or crashed)
    /// with them on their way; they never reach the simulator.
    pub fn abandon_in_flight(&mut self) {
        self.in_flight.clear();
    }

    /// Requests started and not yet arrived.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Moves the clock to the next arrival and answers every request that has arrived by then,
    /// in arrival order. With `wait_ms`, an arrival further off than that is not waited for:
    /// the clock moves by `wait_ms` and nothing is answered. With nothing in flight, nothing
    /// happens.
    pub fn complete(&mut self, wait_ms: Option<u64>) -> Vec<Completed> {
        let Some(&(next, _)) = self.in_flight.keys().next() else { return Vec::new() };
        if let Some(w) = wait_ms
            && next > self.now_ms.saturating_add(w as i64)
        {
            self.now_ms += w as i64;
            return Vec::new();
        }
        self.now_ms = self.now_ms.max(next);
        let mut out = Vec::new();
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now_ms {
                break;
            }
            let (tag, req) = entry.remove();
            out.push((tag, self.receive(&req)));
        }
        out
    }

    /// Answers one HTTP request at the current time. The host part of the URL is ignored.
    pub fn receive(&mut self, req: &SimRequest) -> Result<SimResponse, TransportFault> {
        self.seq += 1;
        let method = req.method.to_ascii_uppercase();
        let target = split_url(&req.url);
        let mut params = Params::parse(&target.query);
        if !req.body.is_empty() && method != "GET" {
            params.extend(Params::parse(&String::from_utf8_lossy(&req.body)));
        }
        let bearer = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|s| s.trim().to_string());
        let log_path = log_path(target.version.as_deref(), &target.segments);

        let f = self.cfg.faults.clone();
        let r = self.faults.next_f64();
        let mut edge = f.connection_reset;
        let transport = if r < edge {
            Some(TransportFault::ConnectionReset)
        } else if r < {
            edge += f.timeout;
            edge
        } {
            Some(TransportFault::Timeout)
        } else {
            None
        };
        if let Some(t) = transport {
            let (_, kind, _) = self.classify(&method, &target.segments);
            self.counters.request(&kind);
            self.counters.fault(match t {
                TransportFault::Timeout => "timeout",
                TransportFault::ConnectionReset => "connection_reset",
                TransportFault::ConnectionRefused => "connection_refused",
            });
            self.log.push(CallLogEntry {
                at_ms: self.now_ms,
                method,
                path: log_path,
                kind,
                status: CallStatus::Fault(t),
                in_batch: false,
            });
            return Err(t);
        }
        let mut injected = Injected::None;
        for (p, kind) in [
            (f.http_500, Injected::Http500),
            (f.transient_code, Injected::Transient),
            (f.malformed_body, Injected::Malformed),
            (f.truncated_body, Injected::Truncated),
        ] {
            edge += p;
            if r < edge {
                injected = kind;
                break;
            }
        }
        let token = params.get("access_token").map(str::to_string).or(bearer);
        let mut served =
            self.serve(&method, target.version.as_deref(), &target.segments, &params, token.as_deref(), injected, 0);
        if served.status == 200 && method == "GET" && served.content_type.starts_with("application/json") {
            match injected {
                Injected::Malformed => {
                    self.counters.fault("malformed_body");
                    served.body = b"<html><head><title>Service Unavailable</title></head><body>Sorry, something went wrong.</body></html>".to_vec();
                }
                Injected::Truncated => {
                    self.counters.fault("truncated_body");
                    let keep = (served.body.len() / 2).max(1);
                    served.body.truncate(keep);
                }
                _ => {}
            }
            // Drawn from a stream of its own, so that adding it changed no other fault's draws.
            if injected == Injected::None && unit(mix(self.cfg.seed, &[805, self.seq])) < f.oversized_answers {
                self.counters.fault("oversized_answer");
                served.body.resize(crate::OVERSIZED_BYTES.max(served.body.len() + 1), b' ');
            }
            if injected == Injected::None
                && unit(mix(self.cfg.seed, &[806, self.seq])) < f.bad_text
                && let Some(mangled) = mangle_names(&served.body)
            {
                self.counters.fault("bad_text");
                served.body = mangled;
            }
        }
        if method == "GET"
            && let [account, edge] = target.segments.as_slice()
            && f.redirected_listings.iter().any(|(a, e)| account.strip_prefix("act_") == Some(a.as_str()) && e == edge)
        {
            self.counters.fault("redirect");
            served.status = 302;
            served.content_type = "application/json; charset=UTF-8";
            served.body = br#"{"data":[{"id":"666000000000001","name":"not an object of this account"}]}"#.to_vec();
            served.headers.push(("location".into(), format!("https://elsewhere.example/{account}/{edge}")));
        }
        self.log.push(CallLogEntry {
            at_ms: self.now_ms,
            method,
            path: log_path,
            kind: served.kind.clone(),
            status: CallStatus::Http(served.status),
            in_batch: false,
        });
        let version = target.version.clone().unwrap_or_else(|| self.cfg.default_version().to_string());
        let mut headers = vec![
            ("content-type".to_string(), served.content_type.to_string()),
            ("facebook-api-version".to_string(), version),
            ("x-fb-trace-id".to_string(), self.trace_id(0)),
            ("x-fb-rev".to_string(), (1_020_000_000 + mix(self.cfg.seed, &[801]) % 10_000_000).to_string()),
            ("x-fb-debug".to_string(), URL_SAFE_NO_PAD.encode(mix(self.cfg.seed, &[802, self.seq]).to_le_bytes())),
        ];
        if served.status >= 400 {
            headers.push(("cache-control".into(), "private, no-cache, no-store, must-revalidate".into()));
        }
        headers.extend(served.headers);
        Ok(SimResponse { status: served.status, headers, body: served.body })
    }

    /// Routes a path to a [`Route`], its [`RequestKind`] and the account it concerns.
    pub(crate) fn classify(&self, method: &str, seg: &[String]) -> (Route, RequestKind, Option<usize>) {
        let post = method == "POST";
        match seg {
            [] if post => (Route::Batch, RequestKind::Batch, None),
            [] => (Route::Error(ApiError::unknown_path("")), RequestKind::Unknown, None),
            [first, ..] if first == "sim-cdn" => (Route::Thumbnail, RequestKind::Thumbnail, None),
            [me] if me == "me" && !post => (Route::Static(self.me()), RequestKind::ObjectRead, None),
            [me, e] if me == "me" && e == "adaccounts" && !post => {
                (Route::AdAccounts, RequestKind::EdgeList(e.clone()), None)
            }
            [me, e] if me == "me" && e == "business_users" && !post => {
                (Route::Static(self.business_users()), RequestKind::EdgeList(e.clone()), None)
            }
            [node, e] if e == "assigned_users" && node.starts_with("act_") && !post => {
                match self.world.account_index(node) {
                    Some(a) => (Route::Static(self.assigned_users()), RequestKind::EdgeList(e.clone()), Some(a)),
                    None => (Route::Error(ApiError::unsupported_get(node)), RequestKind::EdgeList(e.clone()), None),
                }
            }
            [node] => {
                if node.starts_with("act_") {
                    return match self.world.account_index(node) {
                        Some(a) if !post => (Route::Account(a), RequestKind::AccountRead, Some(a)),
                        Some(a) => (Route::Error(ApiError::unsupported_post(node)), RequestKind::AccountRead, Some(a)),
                        None => (Route::Error(ApiError::unsupported_get(node)), RequestKind::AccountRead, None),
                    };
                }
                if let Some(&i) = self.world.by_id.get(node.as_str()) {
                    let a = self.world.objs[i].account;
                    if post {
                        return (Route::Error(ApiError::unsupported_post(node)), RequestKind::ObjectRead, Some(a));
                    }
                    return (Route::Object(i), RequestKind::ObjectRead, Some(a));
                }
                if let Some(run) = self.jobs.runs.get(node.as_str()) {
                    if post {
                        return (
                            Route::Error(ApiError::unsupported_post(node)),
                            RequestKind::JobStatus,
                            Some(run.account),
                        );
                    }
                    return (Route::ReportStatus(node.clone()), RequestKind::JobStatus, Some(run.account));
                }
                (Route::Error(ApiError::unsupported_get(node)), RequestKind::Unknown, None)
            }
            [node, e] if e == "insights" => {
                let kind = if post { RequestKind::JobCreate } else { RequestKind::InsightsSync };
                if node.starts_with("act_") {
                    return match self.world.account_index(node) {
                        Some(a) => (Route::Insights { account: a, object: None, node: node.clone() }, kind, Some(a)),
                        None => (Route::Error(ApiError::unsupported_get(node)), kind, None),
                    };
                }
                if let Some(&i) = self.world.by_id.get(node.as_str()) {
                    let o = &self.world.objs[i];
                    if matches!(o.kind, Kind::Campaign | Kind::AdSet | Kind::Ad) {
                        return (
                            Route::Insights { account: o.account, object: Some(i), node: node.clone() },
                            kind,
                            Some(o.account),
                        );
                    }
                    let err = ApiError::nonexisting_field("insights", o.kind.node_type());
                    return (Route::Error(err), kind, Some(o.account));
                }
                if let Some(run) = self.jobs.runs.get(node.as_str()) {
                    if post {
                        return (
                            Route::Error(ApiError::unsupported_post(node)),
                            RequestKind::JobResults,
                            Some(run.account),
                        );
                    }
                    return (Route::ReportResults(node.clone()), RequestKind::JobResults, Some(run.account));
                }
                (Route::Error(ApiError::unsupported_get(node)), kind, None)
            }
            [node, e] if node.starts_with("act_") => {
                let kind = RequestKind::EdgeList(e.clone());
                match (self.world.account_index(node), edge(e)) {
                    (Some(a), Some(ed)) if !post => (Route::Edge(a, ed, e.clone()), kind, Some(a)),
                    (Some(a), Some(_)) => (Route::Error(ApiError::unsupported_post(node)), kind, Some(a)),
                    (Some(a), None) => {
                        (Route::Error(ApiError::nonexisting_field(e, ACCOUNT_NODE)), RequestKind::Unknown, Some(a))
                    }
                    (None, _) => (Route::Error(ApiError::unsupported_get(node)), kind, None),
                }
            }
            _ => (Route::Error(ApiError::unknown_path(&seg.join("/"))), RequestKind::Unknown, None),
        }
    }

    /// Serves a request or batch operation: auth, version, rate limits, injected errors, routing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve(
        &mut self,
        method: &str,
        version: Option<&str>,
        seg: &[String],
        params: &Params,
        token: Option<&str>,
        injected: Injected,
        op: u64,
    ) -> Served {
        let (route, kind, account) = self.classify(method, seg);
        self.counters.request(&kind);
        if route == Route::Thumbnail {
            return Served {
                status: 200,
                headers: Vec::new(),
                body: PNG_1X1.to_vec(),
                kind,
                content_type: "image/png",
            };
        }
        let insights_call = matches!(
            kind,
            RequestKind::InsightsSync | RequestKind::JobCreate | RequestKind::JobStatus | RequestKind::JobResults
        );
        let class = CallClass { account, insights: insights_call, job_create: kind == RequestKind::JobCreate };
        let auth = if self.cfg.faults.token_expired {
            Err(ApiError::token_expired(&utc_human(self.now_ms)))
        } else {
            match token {
                None | Some("") => Err(ApiError::token_missing()),
                Some(t) if t == self.cfg.access_token => Ok(()),
                Some(t) if t.len() < 8 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
                    Err(ApiError::token_garbage())
                }
                Some(_) => Err(ApiError::token_invalid()),
            }
        };
        if let Err(e) = auth {
            return self.error(e, kind, class, op);
        }
        if let Some(a) = account
            && self.cfg.faults.revoked_accounts.contains(&self.world.accounts[a].id)
        {
            self.counters.fault("revoked_account");
            return self.error(ApiError::account_permission(), kind, class, op);
        }
        if let Some(v) = version
            && !self.cfg.api_versions.iter().any(|x| x == v)
        {
            let latest = self.cfg.default_version().to_string();
            return self.error(ApiError::deprecated_version(&latest), kind, class, op);
        }
        let (acc_load, _) = self.loads(account);
        if let Err(e) = self.limiter.admit(class, acc_load, self.now_ms) {
            self.counters.throttled_responses += 1;
            return self.error(e, kind, class, op);
        }
        match injected {
            Injected::Http500 => {
                self.counters.fault("http_500");
                let e = ApiError::new(500, 2, "An unexpected error has occurred. Please retry your request later.")
                    .transient(true);
                return self.error(e, kind, class, op);
            }
            Injected::Transient => {
                self.counters.fault("transient_code");
                let e = match mix(self.cfg.seed, &[803, self.seq]) % 3 {
                    0 => ApiError::new(500, 1, "An unknown error has occurred.").transient(true),
                    1 => ApiError::new(500, 1, "An unknown error occurred").sub(99).transient(false),
                    _ => ApiError::new(503, 2, "Service temporarily unavailable").transient(true),
                };
                return self.error(e, kind, class, op);
            }
            _ => {}
        }
        let v = version.unwrap_or(self.cfg.default_version()).to_string();
        let result = match route {
            Route::Batch => {
                if op > 0 {
                    Err(ApiError::invalid_param("batch requests cannot be nested"))
                } else {
                    self.batch(params, token)
                }
            }
            other => self.execute(other, method, &v, seg, params),
        };
        match result {
            Ok(body) => {
                let headers = self.usage_headers(class);
                Served {
                    status: 200,
                    headers,
                    body: body.to_string().into_bytes(),
                    kind,
                    content_type: "application/json; charset=UTF-8",
                }
            }
            Err(e) => self.error(e, kind, class, op),
        }
    }

    /// Insights loads (account, app) in percent at the current instant.
    fn loads(&self, account: Option<usize>) -> (f64, f64) {
        let l = self.cfg.effective_limits();
        let acc = account.map_or(0, |a| self.jobs.loading(Some(a), self.now_ms)) as f64 * l.insights_load_per_job_pct;
        let app = self.jobs.loading(None, self.now_ms) as f64 * l.app_insights_load_per_job_pct;
        (acc, app)
    }

    fn usage_headers(&self, class: CallClass) -> Vec<(String, String)> {
        let (acc_load, app_load) = self.loads(class.account);
        let id = class.account.map(|a| self.world.accounts[a].id.clone());
        let spelling = self.cfg.faults.throttle_header_variants.then(|| mix(self.cfg.seed, &[804, self.seq]) % 4);
        self.limiter.headers(class, id.as_deref(), acc_load, app_load, self.now_ms, spelling)
    }

    fn error(&self, e: ApiError, kind: RequestKind, class: CallClass, op: u64) -> Served {
        let mut headers = vec![("www-authenticate".to_string(), e.www_authenticate())];
        headers.extend(self.usage_headers(class));
        Served {
            status: e.http,
            headers,
            body: e.body(&self.trace_id(op)).to_string().into_bytes(),
            kind,
            content_type: "application/json; charset=UTF-8",
        }
    }
}

/// The logged path: version (if any) and segments, never the query.
fn log_path(version: Option<&str>, seg: &[String]) -> String {
    let mut p = String::new();
    if let Some(v) = version {
        p.push('/');
        p.push_str(v);
    }
    for s in seg {
        p.push('/');
        p.push_str(s);
    }
    if p.is_empty() { String::from("/") } else { p }
}

/// `body` with every `"name":"` followed by an escaped unpaired surrogate and a raw 0xFF byte
/// (`None` when it has no name).
fn mangle_names(body: &[u8]) -> Option<Vec<u8>> {
    const NAME: &[u8] = b"\"name\":\"";
    let mangled = crate::replace_bytes(body.to_vec(), NAME, b"\"name\":\"\\ud83d\xFF");
    (mangled.len() != body.len()).then_some(mangled)
}
