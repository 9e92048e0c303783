//! `read`: one sync of the selected streams, stream after stream, account after account.
//!
//! The [`ReadMachine`] owns the API client and hands each stream's reader a [`Cx`] through
//! which it submits calls and emits messages. A stream that fails is reported INCOMPLETE and
//! the sync goes on with the next; an account that fails inside a stream leaves the other
//! accounts' state intact. A failed sync ends with one error trace naming what failed.

pub mod creatives_from_ads;
pub mod cursor;
pub mod entity;
pub mod insights;
pub mod transcode;

use crate::api::client::{Api, CallId, CallOutcome};
use crate::catalog::{self, Selected};
use crate::commands::Core;
use crate::config::Config;
use crate::driver::{Action, Machine, TimeoutReason};
use crate::error::{ConnectorError, FailureType};
use crate::http::{FetchError, RequestId, Response};
use crate::protocol::{LogLevel, Message, StreamStatus};
use crate::state::{self, StreamStates};
use crate::streams::{Incremental, Stream};
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// What a stream reader may touch while handling an input.
pub struct Cx<'a> {
    pub api: &'a mut Api,
    pub out: &'a mut VecDeque<Message>,
    pub config: &'a Config,
    pub now: Timestamp,
    /// What the sync has learnt of each ad account so far, shared by its streams.
    pub accounts: &'a mut AccountFacts,
}

/// Ad account id (without `act_`) → the account's fields read so far (its time zone), so that
/// the insights streams of a sync look each account up once between them.
pub type AccountFacts = BTreeMap<String, Map<String, Value>>;

/// The account fields insights need: "today" is the account's local day.
pub const ZONE_FIELDS: [&str; 2] = ["timezone_name", "timezone_offset_hours_utc"];

/// Keeps the time zone fields of account `id` found in `read` (a lookup or an ad_account record).
pub fn learn_account(facts: &mut AccountFacts, id: &str, read: &Value) {
    let found = ZONE_FIELDS.iter().filter_map(|k| Some((k.to_string(), read.get(k)?.clone())));
    facts.entry(id.to_string()).or_default().extend(found);
}

impl Cx<'_> {
    pub fn emit(&mut self, m: Message) {
        self.out.push_back(m);
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        self.out.push_back(Message::log(level, message));
    }
}

/// Where one stream of the sync stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamProgress {
    pub name: String,
    pub records: u64,
    pub status: Option<StreamStatus>,
}

/// A snapshot of a sync for people watching it: what is done, what runs, what waits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub streams: Vec<StreamProgress>,
    /// The stream being read, if any.
    pub current: Option<String>,
    pub accounts_done: u32,
    pub accounts_total: u32,
    pub jobs_running: u32,
    pub jobs_completed: u64,
    pub jobs_retried: u64,
    pub jobs_split: u64,
    pub requests: u64,
    pub retries: u64,
    pub pauses: u64,
    /// The latest throttle pause or quota wait, in words.
    pub last_pause: Option<String>,
}

/// A stream's reader.
pub enum Reader {
    Entity(Box<entity::EntityReader>),
    CreativesFromAds(Box<creatives_from_ads::CreativesFromAdsReader>),
    Insights(Box<insights::InsightsReader>),
}

impl Reader {
    fn start(&mut self, cx: &mut Cx) {
        match self {
            Reader::Entity(r) => r.start(cx),
            Reader::CreativesFromAds(r) => r.start(cx),
            Reader::Insights(r) => r.start(cx),
        }
    }

    fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Cx) {
        match self {
            Reader::Entity(r) => r.on_outcome(call, outcome, cx),
            Reader::CreativesFromAds(r) => r.on_outcome(call, outcome, cx),
            Reader::Insights(r) => r.on_outcome(call, outcome, cx),
        }
    }

    fn on_timeout(&mut self, cx: &mut Cx) {
        if let Reader::Insights(r) = self {
            r.on_timeout(cx)
        }
    }

    fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        match self {
            Reader::Entity(_) | Reader::CreativesFromAds(_) => None,
            Reader::Insights(r) => r.poll_timeout(),
        }
    }

    /// `Some` once the stream has finished: the per-account failures, if any.
    fn finished(&self) -> Option<&[ConnectorError]> {
        match self {
            Reader::Entity(r) => r.finished(),
            Reader::CreativesFromAds(r) => r.finished(),
            Reader::Insights(r) => r.finished(),
        }
    }

    /// Accounts finished (read or failed) out of all.
    fn accounts(&self) -> (u32, u32) {
        match self {
            Reader::Entity(r) => r.accounts_progress(),
            Reader::CreativesFromAds(r) => r.accounts_progress(),
            Reader::Insights(r) => r.accounts_progress(),
        }
    }

    fn records(&self) -> u64 {
        match self {
            Reader::Entity(r) => r.records,
            Reader::CreativesFromAds(r) => r.records,
            Reader::Insights(r) => r.records,
        }
    }

    /// What the stream took beyond records: report jobs, for insights.
    fn summary(&self) -> String {
        match self {
            Reader::Entity(_) => String::new(),
            Reader::CreativesFromAds(r) => format!(
                "; creatives: {} requested in {} batch requests, {} skipped",
                r.stats.creatives,
                r.batches_sent(),
                r.stats.skipped
            ),
            Reader::Insights(r) => format!(
                "; report jobs: {} started, {} read, {} retried, {} split",
                r.stats.started, r.stats.completed, r.stats.retried, r.stats.split
            ),
        }
    }
}

/// The read machine. See [`Machine`] for the calling contract.
pub struct ReadMachine {
    core: Core,
    config: Option<Config>,
    pending: VecDeque<Selected>,
    states: StreamStates,
    current: Option<(String, Reader)>,
    running_sent: bool,
    failed_streams: Vec<(String, ConnectorError)>,
    /// Streams in catalog order with their record counts so far.
    streams: Vec<StreamProgress>,
    /// Report-job counts of finished insights streams.
    jobs_done: [u64; 3],
    accounts: AccountFacts,
}

impl ReadMachine {
    /// Prepares a sync. Bad input ends it at once with a config error trace.
    pub fn new(config_text: &str, catalog_text: &str, state_text: Option<&str>, seed: u64, now: Timestamp) -> Self {
        let parsed = Config::parse(config_text, now).and_then(|config| {
            let selected = catalog::parse(catalog_text, &config)?;
            let states = state::parse(state_text.unwrap_or(""))?;
            for s in &selected {
                if let (Stream::Insight(_), Some(st)) = (&s.stream, states.get(s.stream.name())) {
                    check_insights_state(s.stream.name(), st)?;
                }
            }
            Ok((config, selected, states))
        });
        match parsed {
            Ok((config, selected, states)) => {
                let api = Api::new(config.access_token.clone(), seed, now, true);
                let streams = selected
                    .iter()
                    .map(|s| StreamProgress { name: s.stream.name().to_string(), records: 0, status: None })
                    .collect();
                let mut m = ReadMachine {
                    core: Core::new(api),
                    config: Some(config),
                    pending: selected.into(),
                    states,
                    current: None,
                    running_sent: false,
                    failed_streams: Vec::new(),
                    streams,
                    jobs_done: [0; 3],
                    accounts: AccountFacts::new(),
                };
                m.advance(now);
                m
            }
            Err(e) => {
                let mut core = Core::new(Api::new(String::new(), seed, now, true));
                core.fail(&e);
                ReadMachine {
                    core,
                    config: None,
                    pending: VecDeque::new(),
                    states: StreamStates::new(),
                    current: None,
                    running_sent: false,
                    failed_streams: Vec::new(),
                    streams: Vec::new(),
                    jobs_done: [0; 3],
                    accounts: AccountFacts::new(),
                }
            }
        }
    }

    /// Where the sync stands, for progress displays.
    pub fn progress(&self) -> Progress {
        let mut p = Progress { streams: self.streams.clone(), ..Progress::default() };
        let [mut completed, mut retried, mut split] = self.jobs_done;
        if let Some((name, reader)) = &self.current {
            p.current = Some(name.clone());
            (p.accounts_done, p.accounts_total) = reader.accounts();
            if let Some(s) = p.streams.iter_mut().find(|s| &s.name == name) {
                s.records = reader.records();
                s.status.get_or_insert(StreamStatus::Running);
            }
            if let Reader::Insights(r) = reader {
                p.jobs_running = r.jobs_running();
                completed += r.stats.completed;
                retried += r.stats.retried;
                split += r.stats.split;
            }
        }
        (p.jobs_completed, p.jobs_retried, p.jobs_split) = (completed, retried, split);
        let api = &self.core.api;
        p.requests = api.stats.total_requests();
        p.retries = api.stats.retries;
        p.pauses = api.throttle.pauses;
        p.last_pause = api.throttle.last_pause.map(|(reason, d)| format!("{} {} s", reason.as_str(), d.as_secs()));
        p
    }

    /// Requests made so far, by kind.
    pub fn api(&self) -> &Api {
        &self.core.api
    }

    /// Moves to the next stream while the current one is finished.
    fn advance(&mut self, now: Timestamp) {
        let Some(config) = self.config.as_ref() else { return };
        loop {
            if let Some((name, reader)) = &self.current {
                let Some(failures) = reader.finished() else { return };
                let status = if failures.is_empty() { StreamStatus::Complete } else { StreamStatus::Incomplete };
                self.core.emit(Message::log(
                    LogLevel::Info,
                    format!(
                        "stream {name}: {} records, {}{}",
                        reader.records(),
                        status.as_str().to_ascii_lowercase(),
                        reader.summary()
                    ),
                ));
                self.core.emit(Message::stream_status(now, name, status));
                if let Some(first) = failures.first() {
                    self.failed_streams.push((name.clone(), first.clone()));
                }
                if let Some(s) = self.streams.iter_mut().find(|s| &s.name == name) {
                    s.records = reader.records();
                    s.status = Some(status);
                }
                if let Reader::Insights(r) = reader {
                    self.jobs_done[0] += r.stats.completed;
                    self.jobs_done[1] += r.stats.retried;
                    self.jobs_done[2] += r.stats.split;
                }
                self.current = None;
            }
            let Some(selected) = self.pending.pop_front() else {
                self.finish(now);
                return;
            };
            let name = selected.stream.name().to_string();
            let state = self.states.remove(&name);
            self.core.emit(Message::stream_status(now, &name, StreamStatus::Started));
            let mut reader = match &selected.stream {
                Stream::Entity(e) if e.incremental == Incremental::ParentAdUpdatedTime => Reader::CreativesFromAds(
                    Box::new(creatives_from_ads::CreativesFromAdsReader::new(&selected, state.as_ref(), config)),
                ),
                Stream::Entity(_) => {
                    Reader::Entity(Box::new(entity::EntityReader::new(&selected, state.as_ref(), config)))
                }
                Stream::Insight(_) => {
                    Reader::Insights(Box::new(insights::InsightsReader::new(&selected, state.as_ref(), config, now)))
                }
            };
            self.running_sent = false;
            let mut cx =
                Cx { api: &mut self.core.api, out: &mut self.core.outbox, config, now, accounts: &mut self.accounts };
            reader.start(&mut cx);
            self.current = Some((name, reader));
        }
    }

    fn finish(&mut self, now: Timestamp) {
        if self.failed_streams.is_empty() {
            self.core.finish();
            return;
        }
        let names: Vec<&str> = self.failed_streams.iter().map(|(n, _)| n.as_str()).collect();
        let (first_name, first) = &self.failed_streams[0];
        let failure = if self.failed_streams.iter().any(|(_, e)| e.failure == FailureType::Config) {
            FailureType::Config
        } else {
            first.failure
        };
        let message = format!(
            "{} of the selected streams did not sync completely ({}); first error, in {first_name}: {}",
            names.len(),
            names.join(", "),
            first.message
        );
        self.core.emit(Message::error_trace(now, failure, &message, &first.internal));
        self.core.finish();
    }

    fn pump(&mut self, now: Timestamp) {
        let Some(config) = self.config.as_ref() else { return };
        while let Some((call, outcome)) = self.core.api.poll_completion() {
            if let Some((name, reader)) = self.current.as_mut() {
                let before = self.core.outbox.len();
                let mut cx = Cx {
                    api: &mut self.core.api,
                    out: &mut self.core.outbox,
                    config,
                    now,
                    accounts: &mut self.accounts,
                };
                reader.on_outcome(call, outcome, &mut cx);
                if !self.running_sent && reader.records() > 0 {
                    self.running_sent = true;
                    self.core.outbox.insert(before, Message::stream_status(now, name, StreamStatus::Running));
                }
            }
        }
        self.advance(now);
    }
}

/// Insights cursors must be dates this connector can count back from; anything else is a
/// state the user has to repair, said before any call is made.
fn check_insights_state(stream: &str, state: &Value) -> Result<(), ConnectorError> {
    let Some(map) = state.as_object() else { return Ok(()) };
    let entries: Vec<(&str, &serde_json::Value)> = if map.contains_key("date_start") {
        vec![("(all accounts)", state)]
    } else {
        map.iter().filter(|(_, v)| v.is_object()).map(|(k, v)| (k.as_str(), v)).collect()
    };
    for (account, entry) in entries {
        let Some(value) = entry.get("date_start").filter(|v| !v.is_null()) else { continue };
        let usable = value
            .as_str()
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .is_some_and(|d| (1970..=9000).contains(&chrono::Datelike::year(&d)));
        if !usable {
            return Err(ConnectorError::config(format!(
                "state: {stream}, account {account}: date_start {value} is not a usable date; remove that entry to read from start_date again"
            )));
        }
    }
    Ok(())
}

impl Machine for ReadMachine {
    fn handle_response(&mut self, id: RequestId, response: Response, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_response(id, response, now)?;
        self.pump(now);
        Ok(())
    }

    fn handle_fetch_error(&mut self, id: RequestId, error: FetchError, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_fetch_error(id, error, now)?;
        self.pump(now);
        Ok(())
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.core.api.handle_timeout(now);
        if let (Some(config), Some((_, reader))) = (self.config.as_ref(), self.current.as_mut()) {
            let mut cx =
                Cx { api: &mut self.core.api, out: &mut self.core.outbox, config, now, accounts: &mut self.accounts };
            reader.on_timeout(&mut cx);
        }
        self.pump(now);
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }

    fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        let api = self.core.api.poll_timeout();
        let reader = self.current.as_ref().and_then(|(_, r)| r.poll_timeout());
        match (api, reader) {
            (Some(a), Some(r)) => Some(if a.0 <= r.0 { a } else { r }),
            (a, r) => a.or(r),
        }
    }
}
