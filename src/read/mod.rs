//! `read`: one sync of the selected streams, stream after stream, account after account.
//!
//! The [`ReadMachine`] owns the API client and hands each stream's reader a [`Cx`] through
//! which it submits calls and emits messages. A stream that fails is reported INCOMPLETE and
//! the sync goes on with the next; an account that fails inside a stream leaves the other
//! accounts' state intact. A failed sync ends with one error trace naming what failed.

pub mod common;
pub mod creatives_from_ads;
pub mod cursor;
pub mod entity;
pub mod fields;
pub mod insights;
pub mod transcode;

use crate::api::client::{Api, CallId, CallOutcome};
use crate::catalog::{self, Selected};
use crate::config::Config;
use crate::driver::{Action, Machine};
use crate::error::{ConnectorError, FailureType};
use crate::http::{FetchError, RequestId, Response};
use crate::machine::Core;
use crate::model::Incremental;
use crate::protocol::{LogLevel, Message, StreamStatus};
use crate::state::{self, StreamStates};
use crate::streams::Stream;
use crate::time::Timestamp;
use crate::timers::{Deadline, soonest};
use insights::JobStats;
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

/// One stream's reader, as the read machine drives it.
///
/// Contract: the read machine calls `start` once, then routes to `on_outcome` the outcome of
/// every call the reader submitted through its [`Cx`] (a reader keeps a table of them: any
/// other call is a contract error) and calls `on_timeout` when `poll_timeout` passes. A reader
/// is `finished` only when none of its calls is in flight.
pub trait StreamReader {
    fn start(&mut self, cx: &mut Cx);
    fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Cx) -> Result<(), ConnectorError>;
    fn on_timeout(&mut self, _cx: &mut Cx) {}
    fn poll_timeout(&self) -> Option<Deadline> {
        None
    }
    /// `Some` once the stream has finished: the per-account failures, if any.
    fn finished(&self) -> Option<&[ConnectorError]>;
    /// Accounts finished (read or failed) out of all.
    fn accounts_progress(&self) -> (u32, u32);
    fn records(&self) -> u64;
    /// What the stream took beyond records, for its closing log line.
    fn summary(&self) -> String {
        String::new()
    }
    /// Fields (and insights action breakdowns) Graph refused in this sync, which the stream no
    /// longer requests.
    fn refused_fields(&self) -> Vec<String> {
        Vec::new()
    }
    /// For insights streams: report runs Graph is computing now, and what the jobs took.
    fn jobs(&self) -> Option<(u32, JobStats)> {
        None
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

/// The stream being read.
struct Current {
    name: String,
    reader: Box<dyn StreamReader>,
    /// STARTED until its first record, then RUNNING.
    status: StreamStatus,
}

/// A sync under way.
struct Sync {
    config: Config,
    pending: VecDeque<Selected>,
    states: StreamStates,
    current: Option<Current>,
    failed_streams: Vec<(String, ConnectorError)>,
    /// Streams in catalog order with their record counts so far.
    streams: Vec<StreamProgress>,
    /// What the report jobs of each finished insights stream took.
    jobs_done: BTreeMap<String, JobStats>,
    /// Fields Graph refused, by finished stream, for the closing summary.
    refused: Vec<(String, Vec<String>)>,
    accounts: AccountFacts,
}

/// Whether the sync is reading, or was refused before it began.
enum Phase {
    /// Bad config, catalog or state: the error trace is in the outbox, nothing is read.
    Refused,
    Reading(Box<Sync>),
}

/// The read machine. See [`Machine`] for the calling contract.
pub struct ReadMachine {
    core: Core,
    phase: Phase,
}

/// Builds the reader of one selected stream.
fn reader_for(selected: &Selected, state: Option<&Value>, config: &Config) -> Box<dyn StreamReader> {
    let (mode, fields) = (selected.sync_mode, selected.selected_fields.as_slice());
    match &selected.stream {
        Stream::Entity(def) if def.incremental == Incremental::ParentAdUpdatedTime => {
            Box::new(creatives_from_ads::CreativesFromAdsReader::new(def, mode, fields, state, config))
        }
        Stream::Entity(def) => Box::new(entity::EntityReader::new(def, mode, fields, state, config)),
        Stream::Insight(def) => Box::new(insights::InsightsReader::new(def, mode, fields, state, config)),
    }
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
                let api = Api::new(config.access_token.clone(), seed, now, true)
                    .with_max_response_bytes(config.max_response_bytes);
                let streams = selected
                    .iter()
                    .map(|s| StreamProgress { name: s.stream.name().to_string(), records: 0, status: None })
                    .collect();
                let sync = Sync {
                    config,
                    pending: selected.into(),
                    states,
                    current: None,
                    failed_streams: Vec::new(),
                    streams,
                    jobs_done: BTreeMap::new(),
                    refused: Vec::new(),
                    accounts: AccountFacts::new(),
                };
                let mut m = ReadMachine { core: Core::new(api), phase: Phase::Reading(Box::new(sync)) };
                m.advance(now);
                m
            }
            Err(e) => {
                let mut core = Core::new(Api::new(String::new(), seed, now, true));
                core.fail(&e);
                ReadMachine { core, phase: Phase::Refused }
            }
        }
    }

    /// Where the sync stands, for progress displays.
    pub fn progress(&self) -> Progress {
        let api = &self.core.api;
        let mut p = Progress {
            requests: api.stats().total_requests(),
            retries: api.stats().retries,
            pauses: api.throttle().pauses,
            last_pause: api.throttle().last_pause.map(|(reason, d)| format!("{} {} s", reason.as_str(), d.as_secs())),
            ..Progress::default()
        };
        let Phase::Reading(sync) = &self.phase else { return p };
        p.streams = sync.streams.clone();
        for j in sync.jobs_done.values() {
            (p.jobs_completed, p.jobs_retried, p.jobs_split) =
                (p.jobs_completed + j.completed, p.jobs_retried + j.retried, p.jobs_split + j.split);
        }
        if let Some(current) = &sync.current {
            p.current = Some(current.name.clone());
            (p.accounts_done, p.accounts_total) = current.reader.accounts_progress();
            if let Some(s) = p.streams.iter_mut().find(|s| s.name == current.name) {
                s.records = current.reader.records();
                s.status.get_or_insert(StreamStatus::Running);
            }
            if let Some((running, j)) = current.reader.jobs() {
                p.jobs_running = running;
                (p.jobs_completed, p.jobs_retried, p.jobs_split) =
                    (p.jobs_completed + j.completed, p.jobs_retried + j.retried, p.jobs_split + j.split);
            }
        }
        p
    }

    /// What the report jobs of each insights stream took so far, by stream.
    pub fn job_stats(&self) -> BTreeMap<String, JobStats> {
        let Phase::Reading(sync) = &self.phase else { return BTreeMap::new() };
        let mut all = sync.jobs_done.clone();
        if let Some(current) = &sync.current
            && let Some((_, j)) = current.reader.jobs()
        {
            all.insert(current.name.clone(), j);
        }
        all
    }

    /// Requests made so far, by kind.
    pub fn api(&self) -> &Api {
        &self.core.api
    }

    /// Moves to the next stream while the current one is finished.
    fn advance(&mut self, now: Timestamp) {
        let Phase::Reading(sync) = &mut self.phase else { return };
        let core = &mut self.core;
        loop {
            if let Some(current) = &sync.current {
                let Some(failures) = current.reader.finished() else { return };
                let name = &current.name;
                let status = if failures.is_empty() { StreamStatus::Complete } else { StreamStatus::Incomplete };
                core.emit(Message::log(
                    LogLevel::Info,
                    format!(
                        "stream {name}: {} records, {}{}",
                        current.reader.records(),
                        status.as_str().to_ascii_lowercase(),
                        current.reader.summary()
                    ),
                ));
                let refused = current.reader.refused_fields();
                if !refused.is_empty() {
                    core.emit(Message::log(
                        LogLevel::Warn,
                        fields::refused_warning(name, &refused, &sync.config.api_version),
                    ));
                    sync.refused.push((name.clone(), refused));
                }
                core.emit(Message::stream_status(now, name, status));
                if let Some(first) = failures.first() {
                    sync.failed_streams.push((name.clone(), first.clone()));
                }
                if let Some(s) = sync.streams.iter_mut().find(|s| &s.name == name) {
                    s.records = current.reader.records();
                    s.status = Some(status);
                }
                if let Some((_, j)) = current.reader.jobs() {
                    sync.jobs_done.insert(name.clone(), j);
                }
                sync.current = None;
            }
            let Some(selected) = sync.pending.pop_front() else {
                finish(core, sync, now);
                return;
            };
            let name = selected.stream.name().to_string();
            let state = sync.states.remove(&name);
            core.emit(Message::stream_status(now, &name, StreamStatus::Started));
            let mut reader = reader_for(&selected, state.as_ref(), &sync.config);
            let mut cx = Cx {
                api: &mut core.api,
                out: &mut core.outbox,
                config: &sync.config,
                now,
                accounts: &mut sync.accounts,
            };
            reader.start(&mut cx);
            sync.current = Some(Current { name, reader, status: StreamStatus::Started });
        }
    }

    /// Hands every completed call to the current reader, then moves on if it finished.
    fn pump(&mut self, now: Timestamp) -> Result<(), ConnectorError> {
        let Phase::Reading(sync) = &mut self.phase else { return Ok(()) };
        let core = &mut self.core;
        if let Some(fatal) = core.api.fatal().cloned() {
            stop(core, sync, &fatal, now);
            return Ok(());
        }
        while let Some((call, outcome)) = core.api.poll_completion() {
            let Some(current) = sync.current.as_mut() else {
                return Err(ConnectorError::contract(
                    "an answer arrived when no stream was being read; this is a bug, please report it",
                    format!("call {}", call.0),
                ));
            };
            let before = core.outbox.len();
            let mut cx = Cx {
                api: &mut core.api,
                out: &mut core.outbox,
                config: &sync.config,
                now,
                accounts: &mut sync.accounts,
            };
            current.reader.on_outcome(call, outcome, &mut cx)?;
            if current.status == StreamStatus::Started && current.reader.records() > 0 {
                current.status = StreamStatus::Running;
                core.outbox.insert(before, Message::stream_status(now, &current.name, StreamStatus::Running));
            }
        }
        if let Some(fatal) = core.api.fatal().cloned() {
            stop(core, sync, &fatal, now);
            return Ok(());
        }
        self.advance(now);
        Ok(())
    }
}

/// Ends the sync at once after a failure no call can get past (see [`Api::fatal`]): the
/// current stream is INCOMPLETE, the STATE already emitted stands, and one error says why.
fn stop(core: &mut Core, sync: &mut Sync, fatal: &ConnectorError, now: Timestamp) {
    if core.is_finished() {
        return;
    }
    if let Some(current) = sync.current.take() {
        core.emit(Message::stream_status(now, &current.name, StreamStatus::Incomplete));
    }
    sync.pending.clear();
    core.fail(&fatal.clone().context("the sync stopped"));
}

/// Ends the sync: done, or one error trace naming the streams that did not sync completely.
fn finish(core: &mut Core, sync: &Sync, now: Timestamp) {
    if !sync.refused.is_empty() {
        let by_stream: Vec<String> = sync.refused.iter().map(|(s, f)| format!("{s}: {}", f.join(", "))).collect();
        core.emit(Message::log(
            LogLevel::Info,
            format!(
                "fields meta refused in api {} and this sync dropped: {}",
                sync.config.api_version,
                by_stream.join("; ")
            ),
        ));
    }
    let Some((first_name, first)) = sync.failed_streams.first() else {
        core.finish();
        return;
    };
    let names: Vec<&str> = sync.failed_streams.iter().map(|(n, _)| n.as_str()).collect();
    let failure = if sync.failed_streams.iter().any(|(_, e)| e.failure_type() == FailureType::Config) {
        FailureType::Config
    } else {
        first.failure_type()
    };
    let message = format!(
        "{} of the selected streams did not sync completely ({}); first error, in {first_name}: {}",
        names.len(),
        names.join(", "),
        first.message()
    );
    core.emit(Message::error_trace(now, failure, &message, first.detail()));
    core.finish();
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
        self.pump(now)
    }

    fn handle_fetch_error(&mut self, id: RequestId, error: FetchError, now: Timestamp) -> Result<(), ConnectorError> {
        self.core.api.handle_fetch_error(id, error, now)?;
        self.pump(now)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.core.api.handle_timeout(now);
        if let Phase::Reading(sync) = &mut self.phase
            && let Some(current) = sync.current.as_mut()
        {
            let mut cx = Cx {
                api: &mut self.core.api,
                out: &mut self.core.outbox,
                config: &sync.config,
                now,
                accounts: &mut sync.accounts,
            };
            current.reader.on_timeout(&mut cx);
        }
        if let Err(e) = self.pump(now) {
            self.core.fail(&e);
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        let reader = match &self.phase {
            Phase::Reading(sync) => sync.current.as_ref().and_then(|c| c.reader.poll_timeout()),
            Phase::Refused => None,
        };
        soonest([self.core.api.poll_timeout(), reader])
    }
}
