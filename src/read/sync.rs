//! The sync: the read machine that drives the stream readers (what it does is in the `read`
//! module's documentation). It sits above the reader contract (`reader`) and the readers; none
//! of them imports it.

use super::insights::polls::PollHub;
use super::reader::{AccountFacts, JobStats, Outbox, Output, Snapshot, StreamReader, Suspended, Turn};
use super::resume::{self, Mark, Resume};
use super::{creatives_from_ads, entity, fields, insights};
use crate::accounts::{self, Discovery};
use crate::api::Calls;
use crate::api::call::CallError;
use crate::api::classify::CallFailure;
use crate::api::client::{Api, CallId, Concurrency, MAX_IN_FLIGHT_PER_ACCOUNT};
use crate::catalog::{self, Selected};
use crate::config::Config;
use crate::driver::{Action, Machine, TimeoutReason};
use crate::error::{ConnectorError, FailureType};
use crate::http::{FetchError, RequestId, Response};
use crate::machine::Core;
use crate::model::{AccountId, Incremental};
use crate::protocol::{LogLevel, Message, StreamStatus};
use crate::state::{self, StreamStates};
use crate::streams::Stream;
use crate::time::Timestamp;
use crate::timers::{Deadline, soonest};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// 8: streams read at once. An entity stream reads up to `max_concurrent_requests` accounts at
/// once (one listing each); the requests in flight are bounded by the client, so this bounds the
/// calls waiting and the readers' own state (DESIGN.md, "Memory").
pub const MAX_ACTIVE_STREAMS: usize = 8;

/// The owner of the shared status polls' calls; streams are 1 and up.
const POLLS: Owner = Owner(0);

/// Which part of the sync a call belongs to: a stream being read (1 and up, in the order they
/// started), or the shared status polls. Every call the client sends is entered in the sync's
/// route table under the client's id, with its owner and the owner's own id for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Owner(u32);

/// A call in flight: its owner, the owner's id for it, and the ad account whose quota it uses
/// (a discovered account that answers a permission error is skipped).
#[derive(Debug)]
struct Route {
    owner: Owner,
    theirs: CallId,
    account: Option<AccountId>,
}

/// The three readers, each a machine of the [`StreamReader`] contract, with the outbox it
/// hands its outputs back in.
struct Reader {
    kind: Kind,
    out: Outbox,
}

enum Kind {
    Entity(entity::EntityReader),
    CreativesFromAds(creatives_from_ads::CreativesFromAdsReader),
    Insights(Box<insights::InsightsReader>),
}

impl Reader {
    fn machine(&self) -> &dyn StreamReader {
        match &self.kind {
            Kind::Entity(r) => r,
            Kind::CreativesFromAds(r) => r,
            Kind::Insights(r) => r.as_ref(),
        }
    }

    fn machine_mut(&mut self) -> (&mut dyn StreamReader, &mut Outbox) {
        let machine: &mut dyn StreamReader = match &mut self.kind {
            Kind::Entity(r) => r,
            Kind::CreativesFromAds(r) => r,
            Kind::Insights(r) => r.as_mut(),
        };
        (machine, &mut self.out)
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
    /// The first of the streams being read, if any.
    pub current: Option<String>,
    /// Every stream being read now, in the order they started.
    pub active: Vec<String>,
    /// Requests in flight now.
    pub in_flight: u32,
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

/// A stream being read.
struct Active {
    name: String,
    owner: Owner,
    reader: Reader,
    /// STARTED until its first record, then RUNNING.
    status: StreamStatus,
    /// Whether it goes on from an earlier read of the sync (its incoming state had a mark).
    resumed: bool,
}

/// A sync under way.
struct Sync {
    config: Config,
    pending: VecDeque<Selected>,
    states: StreamStates,
    active: Vec<Active>,
    next_owner: u32,
    polls: PollHub<Owner>,
    /// The status polls' calls not yet handed to the client.
    poll_out: Outbox,
    /// Every call in flight: the client's id → its owner, and the owner's id for it.
    routes: BTreeMap<CallId, Route>,
    /// The account listing of a config without `account_ids`; no stream starts before it ends.
    discovery: Option<Discovery>,
    failed_streams: Vec<(String, ConnectorError)>,
    /// Streams in catalog order with their record counts so far.
    streams: Vec<StreamProgress>,
    /// What the report jobs of each finished insights stream took.
    jobs_done: BTreeMap<String, JobStats>,
    /// Fields Graph refused, by finished stream, for the closing summary.
    refused: Vec<(String, Vec<String>)>,
    accounts: AccountFacts,
    /// When the time box (`max_duration_seconds`) ends this read.
    time_box: Option<Timestamp>,
    /// When this read began.
    began: Timestamp,
    /// When the sync began: its first read's start, when this read goes on from a time box.
    sync_started: Timestamp,
    /// Marks of the last read of the sync, by stream (see [`resume`]).
    marks: BTreeMap<String, Mark>,
    /// Streams finished in this sync (in this read or an earlier one) and their state.
    done: BTreeMap<String, Option<Value>>,
    /// Streams finished in an earlier read, whose state goes back without its mark at the end.
    done_earlier: Vec<String>,
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

/// Builds the reader of one selected stream; `resume` when it goes on from a time box.
fn reader_for(selected: &Selected, state: Option<&Value>, resume: Option<Resume>, config: &Config) -> Reader {
    let (mode, fields) = (selected.sync_mode, selected.selected_fields.as_slice());
    let kind = match &selected.stream {
        Stream::Entity(def) if def.incremental == Incremental::ParentAdUpdatedTime => Kind::CreativesFromAds(
            creatives_from_ads::CreativesFromAdsReader::new(def, mode, fields, state, resume, config),
        ),
        Stream::Entity(def) => Kind::Entity(entity::EntityReader::new(def, mode, fields, state, resume, config)),
        Stream::Insight(def) => {
            Kind::Insights(Box::new(insights::InsightsReader::new(def, mode, fields, state, resume, config)))
        }
    };
    Reader { kind, out: Outbox::default() }
}

/// Hands `reader` one input with a [`Turn`] of its own, then does what it put in its outbox
/// (and puts its RUNNING trace before its first record).
fn with_reader<T>(
    core: &mut Core,
    sync: &mut Sync,
    i: usize,
    now: Timestamp,
    f: impl FnOnce(&mut dyn StreamReader, &mut Turn) -> T,
) -> T {
    let active = &mut sync.active[i];
    let before = core.outbox.len();
    let (machine, out) = active.reader.machine_mut();
    let mut turn = Turn { now, config: &sync.config, accounts: &sync.accounts, throttle: core.api.throttle(), out };
    let result = f(machine, &mut turn);
    let owner = active.owner;
    let records = dispatch(&mut active.reader.out, owner, core, &mut sync.routes, &mut sync.accounts, &mut sync.polls);
    if active.status == StreamStatus::Started && records {
        active.status = StreamStatus::Running;
        core.outbox.insert(before, Message::stream_status(now, &active.name, StreamStatus::Running));
    }
    result
}

/// Does what `owner` put in `out`, in order: its calls go to the client, entered in the route
/// table; its messages to the outbox; its polls to the hub; what it learnt of an account to
/// the facts the streams share. Whether a record was among them.
fn dispatch(
    out: &mut Outbox,
    owner: Owner,
    core: &mut Core,
    routes: &mut BTreeMap<CallId, Route>,
    accounts: &mut AccountFacts,
    polls: &mut PollHub<Owner>,
) -> bool {
    let mut records = false;
    while let Some(output) = out.pop() {
        match output {
            Output::Submit(theirs, call) => {
                let account = call.account.clone();
                routes.insert(core.api.submit(call), Route { owner, theirs, account });
            }
            Output::Emit(m) => {
                records |= matches!(m, Message::Record { .. });
                core.emit(m);
            }
            Output::Warn(m) => core.api.warn(m),
            Output::Usage { headers, account } => core.api.observe_headers(&headers, account.as_deref()),
            Output::Poll { job, relative_url, account } => polls.push(owner, job, relative_url, &account),
            Output::Learned { account, zone } => accounts.learn(account, zone),
        }
    }
    records
}

impl ReadMachine {
    /// Prepares a sync. Bad input ends it at once with a config error trace.
    pub fn new(config_text: &str, catalog_text: &str, state_text: Option<&str>, seed: u64, now: Timestamp) -> Self {
        let parsed = Config::parse(config_text, now).and_then(|config| {
            let selected = catalog::parse(catalog_text, &config)?;
            let (states, marks, sync_started) = take_marks(state::parse(state_text.unwrap_or(""))?);
            for s in &selected {
                if let (Stream::Insight(_), Some(st)) = (&s.stream, states.get(s.stream.name())) {
                    check_insights_state(s.stream.name(), st)?;
                }
            }
            Ok((config, selected, states, marks, sync_started))
        });
        match parsed {
            Ok((config, selected, states, marks, sync_started)) => {
                let api = Api::new(config.access_token.clone(), seed, now, true)
                    .with_max_response_bytes(config.max_response_bytes)
                    .with_concurrency(Concurrency {
                        total: config.max_concurrent_requests,
                        per_account: MAX_IN_FLIGHT_PER_ACCOUNT,
                    });
                let time_box = config.max_duration.map(|d| now.plus(d));
                // Marks say this read goes on with a sync an earlier read began (its start is
                // the earliest a mark names); without any, this read begins a sync.
                let (marks, sync_started) = match sync_started {
                    Some(at) if !marks.is_empty() => (marks, at),
                    _ => (BTreeMap::new(), now),
                };
                let streams = selected
                    .iter()
                    .map(|s| StreamProgress { name: s.stream.name().to_string(), records: 0, status: None })
                    .collect();
                let polls = PollHub::new(crate::commands::graph_url(&config.api_version, ""));
                let sync = Sync {
                    config,
                    pending: selected.into(),
                    states,
                    active: Vec::new(),
                    next_owner: POLLS.0 + 1,
                    polls,
                    poll_out: Outbox::default(),
                    routes: BTreeMap::new(),
                    discovery: None,
                    failed_streams: Vec::new(),
                    streams,
                    jobs_done: BTreeMap::new(),
                    refused: Vec::new(),
                    accounts: AccountFacts::new(),
                    time_box,
                    began: now,
                    sync_started,
                    marks,
                    done: BTreeMap::new(),
                    done_earlier: Vec::new(),
                };
                let mut core = Core::new(api);
                let mut sync = Box::new(sync);
                if sync.config.discovers_accounts {
                    sync.discovery = Some(Discovery::start(&sync.config.api_version, &mut core.api));
                }
                let mut m = ReadMachine { core, phase: Phase::Reading(sync) };
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
            in_flight: api.in_flight() as u32,
            ..Progress::default()
        };
        let Phase::Reading(sync) = &self.phase else { return p };
        p.streams = sync.streams.clone();
        let mut jobs = JobStats::default();
        for j in sync.jobs_done.values() {
            jobs += *j;
        }
        p.current = sync.active.first().map(|a| a.name.clone());
        for active in &sync.active {
            p.active.push(active.name.clone());
            let snap = active.reader.machine().snapshot();
            (p.accounts_done, p.accounts_total) =
                (p.accounts_done + snap.accounts_done, p.accounts_total + snap.accounts_total);
            if let Some(s) = p.streams.iter_mut().find(|s| s.name == active.name) {
                s.records = snap.records;
                s.status.get_or_insert(StreamStatus::Running);
            }
            if let Some((running, j)) = snap.jobs {
                p.jobs_running += running;
                jobs += j;
            }
        }
        (p.jobs_completed, p.jobs_retried, p.jobs_split) = (jobs.completed, jobs.retried, jobs.split);
        p
    }

    /// What the report jobs of each insights stream took so far, by stream.
    pub fn job_stats(&self) -> BTreeMap<String, JobStats> {
        let Phase::Reading(sync) = &self.phase else { return BTreeMap::new() };
        let mut all = sync.jobs_done.clone();
        for active in &sync.active {
            if let Some((_, j)) = active.reader.machine().snapshot().jobs {
                all.insert(active.name.clone(), j);
            }
        }
        all
    }

    /// Requests made so far, by kind.
    pub fn api(&self) -> &Api {
        &self.core.api
    }

    /// Closes the streams that finished and starts pending ones while there is room; ends the
    /// sync once nothing is pending or active.
    fn advance(&mut self, now: Timestamp) {
        let Phase::Reading(sync) = &mut self.phase else { return };
        let core = &mut self.core;
        if core.is_finished() || sync.discovery.is_some() {
            return;
        }
        loop {
            let mut changed = false;
            while let Some(i) = sync.active.iter().position(|a| a.reader.machine().finished().is_some()) {
                let done = sync.active.remove(i);
                close(core, sync, done, now);
                changed = true;
            }
            while sync.active.len() < MAX_ACTIVE_STREAMS {
                let learning = sync.active.iter().any(|a| a.reader.machine().learning_accounts());
                let Some(k) = sync.pending.iter().position(|s| !matches!(s.stream, Stream::Insight(_)) || !learning)
                else {
                    break;
                };
                let Some(selected) = sync.pending.remove(k) else { break };
                let name = selected.stream.name().to_string();
                let state = sync.states.remove(&name);
                let mark = sync.marks.remove(&name);
                if mark == Some(Mark::Done) {
                    // Read to its end by an earlier read of this sync.
                    sync.done.insert(name.clone(), state);
                    sync.done_earlier.push(name);
                    changed = true;
                    continue;
                }
                core.emit(Message::stream_status(now, &name, StreamStatus::Started));
                let resume = match &mark {
                    Some(Mark::Reading { progress }) => Some(Resume { sync_started: sync.sync_started, progress }),
                    _ => None,
                };
                let reader = reader_for(&selected, state.as_ref(), resume, &sync.config);
                let owner = Owner(sync.next_owner);
                sync.next_owner += 1;
                let resumed = mark.is_some();
                sync.active.push(Active { name, owner, reader, status: StreamStatus::Started, resumed });
                let i = sync.active.len() - 1;
                with_reader(core, sync, i, now, |r, cx| r.handle_start(cx));
                changed = true;
            }
            flush_polls(core, sync);
            if sync.active.is_empty() && sync.pending.is_empty() {
                finish(core, sync, now);
                return;
            }
            if !changed {
                return;
            }
        }
    }

    /// Hands every completed call to the stream (or the poll hub) that made it, then moves on.
    fn pump(&mut self, now: Timestamp) -> Result<(), ConnectorError> {
        let Phase::Reading(sync) = &mut self.phase else { return Ok(()) };
        let core = &mut self.core;
        if core.is_finished() {
            // Stopped: answers still on their way change nothing.
            while core.api.poll_completion().is_some() {}
            return Ok(());
        }
        if let Some(fatal) = core.api.fatal().cloned() {
            stop(core, sync, &fatal, now);
            return Ok(());
        }
        if sync.time_box.is_some_and(|at| now >= at) {
            suspend(core, sync, now);
            return Ok(());
        }
        if sync.discovery.is_some() {
            discover(core, sync)?;
        }
        while let Some((call, outcome)) = core.api.poll_completion() {
            let Some(Route { owner, theirs, account }) = sync.routes.remove(&call) else {
                return Err(ConnectorError::contract(
                    "an answer arrived for a call no part of the sync made; this is a bug, please report it",
                    format!("call {}", call.0),
                ));
            };
            if let (Err(e), Some(account)) = (&outcome, account) {
                skip_if_unreadable(core, sync, account, e);
            }
            if owner == POLLS {
                sync.polls.on_outcome(theirs, outcome, &mut sync.poll_out)?;
                dispatch(&mut sync.poll_out, POLLS, core, &mut sync.routes, &mut sync.accounts, &mut sync.polls);
                for (owner, results) in sync.polls.take_results() {
                    // A stream is finished only once its polls are answered: none can be late.
                    let Some(i) = sync.active.iter().position(|a| a.owner == owner) else {
                        return Err(ConnectorError::contract(
                            "a status poll's answer arrived for a stream that is not being read; this is a bug, please report it",
                            format!("owner {}", owner.0),
                        ));
                    };
                    with_reader(core, sync, i, now, |r, cx| r.handle_polled(results, cx));
                }
                continue;
            }
            let Some(i) = sync.active.iter().position(|a| a.owner == owner) else {
                return Err(ConnectorError::contract(
                    "an answer arrived for a stream that is not being read; this is a bug, please report it",
                    format!("call {} of owner {}", call.0, owner.0),
                ));
            };
            with_reader(core, sync, i, now, |r, cx| r.handle_outcome(theirs, outcome, cx))?;
        }
        flush_polls(core, sync);
        if let Some(fatal) = core.api.fatal().cloned() {
            stop(core, sync, &fatal, now);
            return Ok(());
        }
        self.advance(now);
        Ok(())
    }
}

/// Takes the account listing's answers; once it has them all, the active accounts are the
/// sync's (and none is a config error).
fn discover(core: &mut Core, sync: &mut Sync) -> Result<(), ConnectorError> {
    while let Some(listing) = &mut sync.discovery {
        let Some((call, outcome)) = core.api.poll_completion() else { return Ok(()) };
        if call != listing.awaiting() {
            return Err(ConnectorError::contract(
                "an answer arrived for a call the account discovery did not make; this is a bug, please report it",
                format!("call {}", call.0),
            ));
        }
        match listing.on_outcome(call, outcome, &mut core.api) {
            Ok(None) => {}
            Ok(Some(found)) => {
                sync.discovery = None;
                core.emit(Message::log(LogLevel::Info, found.summary()));
                match found.to_read() {
                    Ok(accounts) => sync.config.account_ids = accounts,
                    Err(e) => core.fail(&e),
                }
            }
            Err(e) => {
                sync.discovery = None;
                core.fail(&e.error.context(accounts::LISTING));
            }
        }
    }
    Ok(())
}

/// A discovered account that answers a permission error is skipped for the rest of the sync,
/// with one WARN: the token lists it but may no longer read it (a client removed an agency's
/// access). Its state is kept. A named account's failure fails its stream, as it always did.
fn skip_if_unreadable(core: &mut Core, sync: &mut Sync, account: AccountId, e: &CallError) {
    if !sync.config.discovers_accounts || e.failure != CallFailure::PermissionDenied {
        return;
    }
    let id = account.to_string();
    if !sync.accounts.skip(account) {
        return;
    }
    let graph = e.graph.as_ref().map(|g| format!(" (facebook: {})", g.message)).unwrap_or_default();
    core.emit(Message::log(
        LogLevel::Warn,
        format!(
            "ad account {id}: the token lists it but may not read it{graph}; skipped for this sync, its state kept (it was discovered, not named in account_ids)"
        ),
    ));
}

/// Sends the status polls the streams handed over during this input, as the hub's calls.
fn flush_polls(core: &mut Core, sync: &mut Sync) {
    sync.polls.flush(&mut sync.poll_out);
    dispatch(&mut sync.poll_out, POLLS, core, &mut sync.routes, &mut sync.accounts, &mut sync.polls);
}

/// Reports a finished stream: its closing log lines, refused fields, status and failure.
fn close(core: &mut Core, sync: &mut Sync, done: Active, now: Timestamp) {
    let machine = done.reader.machine();
    let Some(failures) = machine.finished() else { return };
    let snap: Snapshot = machine.snapshot();
    let name = &done.name;
    let status = if failures.is_empty() { StreamStatus::Complete } else { StreamStatus::Incomplete };
    core.emit(Message::log(
        LogLevel::Info,
        format!("stream {name}: {} records, {}{}", snap.records, status.as_str().to_ascii_lowercase(), snap.summary),
    ));
    let refused = snap.refused;
    if !refused.is_empty() {
        core.emit(Message::log(LogLevel::Warn, fields::refused_warning(name, &refused, &sync.config.api_version)));
        sync.refused.push((name.clone(), refused));
    }
    core.emit(Message::stream_status(now, name, status));
    if let Some(first) = failures.first() {
        sync.failed_streams.push((name.clone(), first.clone()));
    }
    if let Some(s) = sync.streams.iter_mut().find(|s| &s.name == name) {
        s.records = snap.records;
        s.status = Some(status);
    }
    if let Some((_, j)) = snap.jobs {
        sync.jobs_done.insert(name.clone(), j);
    }
    let state = machine.state();
    if done.resumed && state.is_none() {
        // A full refresh writes no state, but the mark of the read before must go.
        core.emit(Message::stream_state(name, &Value::Object(Map::new())));
    }
    if failures.is_empty() {
        sync.done.insert(name.clone(), state);
    }
}

/// The time box is up: every stream's STATE, marked with how far the sync got, then a success.
/// Streams being read say where they stopped; streams finished in this sync say so; streams not
/// begun keep the state they came with. Answers still on their way are not waited for.
fn suspend(core: &mut Core, sync: &mut Sync, now: Timestamp) {
    if core.is_finished() {
        return;
    }
    // What the client has to say so far goes before the states: they and the closing line end
    // the read.
    core.take_logs();
    let started = sync.sync_started;
    let mut unfinished = Vec::new();
    for active in sync.active.drain(..) {
        let machine = active.reader.machine();
        if let Some((_, j)) = machine.snapshot().jobs {
            sync.jobs_done.insert(active.name.clone(), j);
        }
        let Suspended { state, progress } = machine.suspend();
        let mark = Mark::Reading { progress };
        core.emit(Message::stream_state(&active.name, &resume::marked(state.as_ref(), &mark, started)));
        core.emit(Message::stream_status(now, &active.name, StreamStatus::Incomplete));
        unfinished.push(active.name);
    }
    for (name, state) in &sync.done {
        core.emit(Message::stream_state(name, &resume::marked(state.as_ref(), &Mark::Done, started)));
    }
    for selected in sync.pending.drain(..) {
        let name = selected.stream.name();
        let state = sync.states.get(name);
        let value = match sync.marks.get(name) {
            Some(mark) => resume::marked(state, mark, started),
            None => match state {
                Some(s) => s.clone(),
                None => continue,
            },
        };
        core.emit(Message::stream_state(name, &value));
        unfinished.push(name.to_string());
    }
    core.emit(Message::log(
        LogLevel::Info,
        format!(
            "time budget reached: stopped after {} s (max_duration_seconds {}) with {} of {} streams finished{}{}; resume with the last state",
            now.since(sync.began).as_secs(),
            sync.config.max_duration.map_or(0, |d| d.as_secs()),
            sync.done.len(),
            sync.done.len() + unfinished.len() + sync.failed_streams.len(),
            if unfinished.is_empty() { String::new() } else { format!(" ({} to go on)", unfinished.join(", ")) },
            if sync.failed_streams.is_empty() {
                String::new()
            } else {
                let failed: Vec<&str> = sync.failed_streams.iter().map(|(n, _)| n.as_str()).collect();
                format!(", {} incomplete and read again by the next read ({})", failed.len(), failed.join(", "))
            }
        ),
    ));
    core.finish();
}

/// Each stream's state without its mark, the marks, and when the sync they belong to began
/// (the earliest a mark names).
fn take_marks(states: StreamStates) -> (StreamStates, BTreeMap<String, Mark>, Option<Timestamp>) {
    let (mut out, mut marks, mut started) = (StreamStates::new(), BTreeMap::new(), None::<Timestamp>);
    for (name, value) in states {
        let incoming = resume::split(value);
        if let Some(mark) = incoming.mark {
            marks.insert(name.clone(), mark);
            if let Some(at) = incoming.sync_started {
                started = Some(started.map_or(at, |t| t.min(at)));
            }
        }
        if let Some(state) = incoming.state {
            out.insert(name, state);
        }
    }
    (out, marks, started)
}

/// Ends the sync at once after a failure no call can get past (see [`Api::fatal`]): the
/// streams being read are INCOMPLETE, the STATE already emitted stands, and one error says why.
fn stop(core: &mut Core, sync: &mut Sync, fatal: &ConnectorError, now: Timestamp) {
    if core.is_finished() {
        return;
    }
    for active in sync.active.drain(..) {
        core.emit(Message::stream_status(now, &active.name, StreamStatus::Incomplete));
    }
    sync.pending.clear();
    core.fail(&fatal.clone().context("the sync stopped"));
}

/// Ends the sync: done, or one error trace naming the streams that did not sync completely.
/// Streams an earlier read of the sync finished get their state back without its mark.
fn finish(core: &mut Core, sync: &Sync, now: Timestamp) {
    for name in &sync.done_earlier {
        let state = sync.done.get(name).cloned().flatten().unwrap_or_else(|| Value::Object(Map::new()));
        core.emit(Message::stream_state(name, &state));
    }
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
    let skipped: Vec<String> = sync.accounts.skipped().map(ToString::to_string).collect();
    if !skipped.is_empty() {
        core.emit(Message::log(
            LogLevel::Info,
            format!(
                "skipped {} discovered ad account(s) the token may not read: {}; their state is kept",
                skipped.len(),
                skipped.join(", ")
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
            && sync.time_box.is_some_and(|at| now >= at)
        {
            suspend(&mut self.core, sync, now);
        }
        if let Phase::Reading(sync) = &mut self.phase
            && !self.core.is_finished()
        {
            for i in 0..sync.active.len() {
                if sync.active[i].reader.machine().poll_timeout().is_some_and(|(at, _)| at <= now) {
                    with_reader(&mut self.core, sync, i, now, |r, cx| r.handle_timeout(cx));
                }
            }
            flush_polls(&mut self.core, sync);
        }
        if let Err(e) = self.pump(now) {
            self.core.fail(&e);
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.core.poll_action()
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        let readers = match &self.phase {
            Phase::Reading(sync) if !self.core.is_finished() => soonest(
                sync.active
                    .iter()
                    .map(|a| a.reader.machine().poll_timeout())
                    .chain([sync.time_box.map(|at| (at, TimeoutReason::TimeBox))]),
            ),
            _ => None,
        };
        soonest([self.core.api.poll_timeout(), readers])
    }
}
