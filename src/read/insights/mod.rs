//! Insights streams, read through async report jobs.
//!
//! The reader turns each account's date range into slices (one per `time_increment`), asks its
//! [`manager::JobManager`] to cover them with report jobs, and advances the account's cursor
//! over the contiguous run of slices whose every job (split descendants included) has been
//! read. State is emitted as slices complete, so a checkpoint never claims a day that was only
//! partly read.

pub mod job;
pub mod manager;
pub mod params;
pub mod polls;
pub use super::reader::{JobStats, Splits};
pub use manager::MAX_ID_LISTING_ATTEMPTS;

use super::common::{AccountStates, Routes};
use super::reader::{PollResult, Snapshot, StreamReader, Suspended, TimeZone, Turn, ZONE_FIELDS};
use super::resume::{self, Resume};
use crate::api::Calls;
use crate::api::client::{Call, CallId, CallKind, CallOutcome};
use crate::catalog::SyncMode;
use crate::commands::graph_url;
use crate::config::Config;
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::model::{Level, TimeIncrement};
use crate::protocol::{LogLevel, Message};
use crate::state::InsightsEntry;
use crate::streams::InsightStream;
use crate::time::Timestamp;
use crate::timers::Deadline;
use chrono::{Datelike, Duration as Days, NaiveDate};
use manager::{JobEvent, JobManager, ResumedRun, Row};
use params::Params;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::ops::Range;

/// 1123 days: the fewest days 37 months can have; Meta serves no insights older than that.
pub const RETENTION_DAYS: i64 = 1123;
/// 730 days: how far back insights start when no start date is configured (Airbyte's default).
pub const DEFAULT_HISTORY_DAYS: i64 = 730;
/// 7 days: consecutive daily slices one report job covers at first; a job that proves too
/// large is split into objects over the same days, and by days only at the stream's level.
pub const WINDOW_DAYS: usize = 7;
/// 28 + 1 days: how far before a slice the id-listing job looks for objects with data.
pub const CHILD_ID_LOOKBACK_DAYS: i64 = 29;

/// One slice of an account's date range: its days, the jobs still covering it, and whether
/// all of them were read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub outstanding: u32,
    pub done: bool,
}

/// Where an account is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccountPhase {
    /// Its time zone is being looked up (its "today" depends on it).
    LookingUp,
    /// Its slices are planned and being read.
    Reading,
    /// It cannot be read; it keeps its old state.
    Failed,
}

/// One account's slices and cursor.
#[derive(Debug)]
struct Account {
    id: crate::model::AccountId,
    phase: AccountPhase,
    slices: Vec<Slice>,
    /// How many slices are done (kept, not counted, as progress asks for it often).
    completed: usize,
    cursor: Option<NaiveDate>,
    /// Completed slice starts newer than the cursor (state's `slices`).
    done_after_cursor: BTreeSet<NaiveDate>,
}

/// What a call of the reader itself is for (the manager routes its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// The time zone lookup of this account.
    Lookup(usize),
}

/// Reads one insights stream for every configured account.
pub struct InsightsReader {
    accounts: Vec<Account>,
    states: AccountStates,
    routes: Routes<Pending>,
    manager: JobManager,
    failures: Vec<ConnectorError>,
    records: u64,
    /// The last row estimate sent in an ESTIMATE trace.
    last_estimate: Option<u64>,
    /// What earlier reads of this sync did, by account (see [`InsightsReader::suspend`]).
    resumed: resume::Accounts,
    /// When the sync began, when this read goes on from an earlier one.
    sync_started: Option<Timestamp>,
}

impl InsightsReader {
    pub fn new(
        def: &InsightStream,
        sync_mode: SyncMode,
        selected_fields: &[String],
        state: Option<&Value>,
        resume: Option<Resume>,
        config: &Config,
    ) -> Self {
        let params = Params::new(def, sync_mode, selected_fields, config);
        let increment_matches = state.is_some_and(|s| state_increment_matches(s, def.time_increment));
        let states = if params.incremental && increment_matches {
            AccountStates::new(state, config, "date_start")
        } else {
            AccountStates::default()
        };
        let accounts = config
            .account_ids
            .iter()
            .map(|id| Account {
                id: id.clone(),
                phase: AccountPhase::LookingUp,
                slices: Vec::new(),
                completed: 0,
                cursor: None,
                done_after_cursor: BTreeSet::new(),
            })
            .collect();
        InsightsReader {
            accounts,
            states,
            routes: Routes::new("insights"),
            manager: JobManager::new(params),
            failures: Vec::new(),
            records: 0,
            last_estimate: None,
            resumed: resume::Accounts::of(resume),
            sync_started: resume.map(|r| r.sync_started),
        }
    }

    /// Builds the account's slices from its local "today" and its stored cursor.
    fn plan_account(&mut self, i: usize, zone: &TimeZone, cx: &mut Turn) {
        let today_local = Timestamp::from_millis(cx.now.as_millis().saturating_add(utc_offset_millis(zone))).date_utc();
        let today_utc = cx.now.date_utc();
        let earliest = today_utc - Days::days(RETENTION_DAYS - 1);
        let params = self.manager.params();
        let end = match params.end {
            Some(e) if e < today_utc => e,
            // An end in the future (a custom insight's own end_date) reads up to "today".
            Some(_) => today_utc.max(today_local),
            None => today_local,
        };
        let stream_start = params.start.unwrap_or(today_utc - Days::days(DEFAULT_HISTORY_DAYS));
        let acct_id = self.accounts[i].id.clone();
        let (cursor, done_after_cursor) = self.stored_cursor(i);
        let mut start = match cursor {
            // A cursor too far in the past for date arithmetic is as good as none.
            Some(c) => c
                .checked_sub_days(chrono::Days::new(u64::from(params.lookback_days)))
                .map_or(stream_start, |d| d.max(stream_start)),
            None => stream_start,
        };
        if start < earliest {
            cx.log(LogLevel::Warn, format!(
                "{}: start {start} of ad account {acct_id} is more than 37 months ago; reading from {earliest}, the oldest day meta serves",
                params.name
            ));
            start = earliest;
        }
        let increment = params.increment;
        let fields = params.fields.requested();
        let acct = &mut self.accounts[i];
        acct.cursor = cursor;
        acct.done_after_cursor = done_after_cursor;
        acct.slices = slices(start, end, increment)
            .into_iter()
            .map(|(start, end)| Slice { start, end, outstanding: 0, done: false })
            .collect();
        acct.completed = 0;
        acct.phase = AccountPhase::Reading;
        let n = acct.slices.len();
        self.queue_jobs(i, &fields, &BTreeSet::new());
        if n == 0 {
            self.emit_state(cx);
        }
    }

    /// The account's cursor and the slices done after it, from its incoming state.
    fn stored_cursor(&self, i: usize) -> (Option<NaiveDate>, BTreeSet<NaiveDate>) {
        let stored = InsightsEntry::of(self.states.incoming(&self.accounts[i].id));
        let cursor = stored.date_start;
        let done = stored.slices.into_iter().filter(|d| cursor.is_none_or(|c| *d > c)).collect();
        (cursor, done)
    }

    /// Queues report jobs over the account's slices that are neither done nor in `covered`:
    /// each job covers a run of consecutive such slices, [`WINDOW_DAYS`] daily slices at most.
    fn queue_jobs(&mut self, i: usize, fields: &[String], covered: &BTreeSet<usize>) {
        let acct = &self.accounts[i];
        let window = if self.manager.params().increment == TimeIncrement::Days(1) { WINDOW_DAYS } else { 1 };
        let open: Vec<usize> =
            (0..acct.slices.len()).filter(|&k| !acct.slices[k].done && !covered.contains(&k)).collect();
        let mut specs = Vec::new();
        let mut k = 0;
        while k < open.len() {
            let mut e = k + 1;
            while e < open.len() && e - k < window && open[e] == open[e - 1] + 1 {
                e += 1;
            }
            specs.push(self.account_job(i, open[k]..open[e - 1] + 1, fields));
            k = e;
        }
        for spec in specs {
            self.manager.add_job(spec);
        }
    }

    /// An account-level job over the account's `range` of slices.
    fn account_job(&self, i: usize, range: Range<usize>, fields: &[String]) -> job::JobSpec {
        let spans: Vec<(NaiveDate, NaiveDate)> =
            self.accounts[i].slices[range.clone()].iter().map(|sl| (sl.start, sl.end)).collect();
        job::JobSpec {
            account: i,
            account_id: self.accounts[i].id.clone(),
            object_id: format!("act_{}", self.accounts[i].id),
            object_level: Level::Account,
            slices: range,
            since: spans[0].0,
            until: spans[spans.len() - 1].1,
            spans,
            fields: fields.to_vec(),
            purpose: job::Purpose::Rows { group: None },
            unreadable: None,
        }
    }

    /// Goes on with an account an earlier read of the sync planned: its slices from the first
    /// not done to the planned end, those done skipped, the report runs it left polled rather
    /// than created again; then jobs over the rest. `false` when it kept nothing usable.
    fn resume_account(&mut self, i: usize, cx: &mut Turn) -> bool {
        let id = self.accounts[i].id.clone();
        if self.resumed.is_done(&id) {
            let (cursor, done) = self.stored_cursor(i);
            let acct = &mut self.accounts[i];
            (acct.cursor, acct.done_after_cursor, acct.phase) = (cursor, done, AccountPhase::Reading);
            return true;
        }
        let Some(kept) = self.resumed.partial(&id).cloned() else { return false };
        let date = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|d| d.parse::<NaiveDate>().ok());
        let (Some(from), Some(to)) = (date(kept.get("from")), date(kept.get("to"))) else { return false };
        // A plan no sync could have made (a state edited by hand) is planned afresh instead.
        if to < from || (to - from).num_days() > RETENTION_DAYS + 31 {
            return false;
        }
        let done: BTreeSet<NaiveDate> =
            kept.get("done").and_then(Value::as_array).into_iter().flatten().filter_map(|d| date(Some(d))).collect();
        let (cursor, done_after_cursor) = self.stored_cursor(i);
        let increment = self.manager.params().increment;
        let acct = &mut self.accounts[i];
        acct.cursor = cursor;
        acct.done_after_cursor = done_after_cursor;
        acct.slices = slices(from, to, increment)
            .into_iter()
            .map(|(start, end)| Slice { start, end, outstanding: 0, done: done.contains(&start) })
            .collect();
        acct.completed = acct.slices.iter().filter(|s| s.done).count();
        acct.phase = AccountPhase::Reading;
        let fields = self.manager.params().fields.requested();
        let runs = kept.get("jobs").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut covered = BTreeSet::new();
        let mut stale = 0;
        for run in &runs {
            let (Some(run_id), Some(since), Some(until)) =
                (run.get("run").and_then(Value::as_str), date(run.get("since")), date(run.get("until")))
            else {
                continue;
            };
            let created_at = run
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(crate::config::parse_date_time)
                .map(Timestamp::from_datetime)
                .or(self.sync_started)
                .unwrap_or(cx.now);
            if cx.now.since(created_at).as_secs() >= resume::MAX_RUN_AGE_DAYS as u64 * 86_400 {
                stale += 1;
                continue;
            }
            let after = run.get("after").and_then(Value::as_str).map(str::to_string);
            let failures = run.get("failures").and_then(Value::as_u64).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32);
            let slices = &self.accounts[i].slices;
            let (Some(s), Some(e)) =
                (slices.iter().position(|sl| sl.start == since), slices.iter().position(|sl| sl.end == until))
            else {
                continue;
            };
            if e < s || (s..=e).any(|k| slices[k].done || covered.contains(&k)) {
                continue;
            }
            covered.extend(s..=e);
            let spec = self.account_job(i, s..e + 1, &fields);
            self.manager.add_running(spec, ResumedRun { run_id: run_id.to_string(), created_at, after, failures });
        }
        if stale > 0 {
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: {stale} report run(s) of ad account {id} an earlier read left are older than {} days (graph keeps them 30); their days are asked for again",
                    self.manager.params().name,
                    resume::MAX_RUN_AGE_DAYS
                ),
            );
        }
        self.queue_jobs(i, &fields, &covered);
        true
    }

    fn fail_account(&mut self, i: usize, e: ConnectorError, cx: &mut Turn) {
        let acct = &mut self.accounts[i];
        if acct.phase == AccountPhase::Failed {
            return;
        }
        acct.phase = AccountPhase::Failed;
        // A skipped account (discovered, and the token may not read it) fails nothing: the sync
        // has said so once.
        if !cx.accounts.is_skipped(&acct.id) {
            let e = e.context(&format!("{} of ad account {}", self.manager.params().name, acct.id));
            cx.log(LogLevel::Error, e.message().to_string());
            self.failures.push(e);
        }
        self.manager.drop_account(i);
    }

    /// Handles what the manager reported, in order.
    fn drain_events(&mut self, cx: &mut Turn) {
        while let Some(event) = self.manager.poll_event() {
            match event {
                JobEvent::Covered { account, slices } => {
                    for s in &mut self.accounts[account].slices[slices] {
                        s.outstanding += 1;
                    }
                }
                JobEvent::Released { account, slices } => self.release(account, slices, cx),
                JobEvent::Rows { rows, .. } => {
                    let name = &self.manager.params().name;
                    for row in rows {
                        self.records += 1;
                        cx.emit(match row {
                            Row::Encoded(data) => Message::Record { stream: name.clone(), data, emitted_at: cx.now },
                            Row::Merged(map) => Message::record(name, map, cx.now),
                        });
                    }
                }
                JobEvent::AccountFailed { account, error } => self.fail_account(account, error, cx),
                JobEvent::StreamFailed(e) => {
                    cx.log(LogLevel::Error, e.message().to_string());
                    self.failures.push(e);
                }
            }
        }
    }

    /// A job no longer covers `slices`: those no job covers any more are complete.
    fn release(&mut self, account: usize, slices: Range<usize>, cx: &mut Turn) {
        let mut finished = Vec::new();
        for (k, s) in self.accounts[account].slices[slices.clone()].iter_mut().enumerate() {
            s.outstanding = s.outstanding.saturating_sub(1);
            if s.outstanding == 0 {
                finished.push(slices.start + k);
            }
        }
        for s in finished {
            self.slice_done(account, s, cx);
        }
    }

    /// A slice's last job was read: walk the cursor forward and checkpoint.
    fn slice_done(&mut self, i: usize, slice: usize, cx: &mut Turn) {
        let acct = &mut self.accounts[i];
        if acct.phase == AccountPhase::Failed || acct.slices[slice].done {
            return;
        }
        acct.slices[slice].done = true;
        acct.completed += 1;
        acct.done_after_cursor.insert(acct.slices[slice].start);
        // The cursor is the start of the last slice in the unbroken run of completed ones;
        // it never moves backwards.
        for s in acct.slices.iter().take_while(|s| s.done) {
            if acct.cursor.is_none_or(|c| s.start > c) {
                acct.cursor = Some(s.start);
            }
        }
        if let Some(c) = acct.cursor {
            acct.done_after_cursor.retain(|d| *d > c);
        }
        self.emit_state(cx);
        self.estimate(cx);
    }

    /// Sends an ESTIMATE trace of the stream's rows, from the rows per completed slice so far,
    /// once every account's slices are known, and again whenever it moves by a tenth or more.
    fn estimate(&mut self, cx: &mut Turn) {
        let live = || self.accounts.iter().filter(|a| a.phase != AccountPhase::Failed);
        if !live().all(|a| a.phase == AccountPhase::Reading) {
            return;
        }
        let total: usize = live().map(|a| a.slices.len()).sum();
        let done: usize = live().map(|a| a.completed).sum();
        if done == 0 {
            return;
        }
        let rows = (self.records as f64 * total as f64 / done as f64).round() as u64;
        let moved = self.last_estimate.is_none_or(|last| rows.abs_diff(last) * 10 >= last.max(1));
        if moved || (done == total && self.last_estimate != Some(rows)) {
            self.last_estimate = Some(rows);
            cx.emit(Message::estimate(cx.now, &self.manager.params().name, rows));
        }
    }

    fn emit_state(&mut self, cx: &mut Turn) {
        let params = self.manager.params();
        if !params.incremental {
            return;
        }
        for acct in &self.accounts {
            if acct.cursor.is_none() && acct.done_after_cursor.is_empty() {
                continue;
            }
            let entry =
                InsightsEntry { date_start: acct.cursor, slices: acct.done_after_cursor.iter().copied().collect() };
            self.states.set(&acct.id, entry.to_map());
        }
        if let Some(state) = self.state_now() {
            cx.emit(Message::stream_state(&self.manager.params().name, &state));
        }
    }

    /// The stream's state as the last checkpoint left it (`None` for a full refresh).
    fn state_now(&self) -> Option<Value> {
        let params = self.manager.params();
        if !params.incremental {
            return None;
        }
        let top: Vec<(String, Value)> = match params.increment {
            TimeIncrement::Days(n) => vec![("time_increment".into(), Value::from(n))],
            TimeIncrement::Weekly => {
                vec![("time_increment".into(), Value::from(7)), ("time_increment_period".into(), Value::from("weekly"))]
            }
            TimeIncrement::Monthly => vec![
                ("time_increment".into(), Value::from(1)),
                ("time_increment_period".into(), Value::from("monthly")),
            ],
        };
        Some(self.states.snapshot(top))
    }

    /// After any input: the manager's events, then whatever may start now.
    fn settle(&mut self, cx: &mut Turn) {
        self.drain_events(cx);
        self.manager.schedule(cx);
        self.drain_events(cx);
    }
}

impl StreamReader for InsightsReader {
    fn handle_start(&mut self, cx: &mut Turn) {
        for i in 0..self.accounts.len() {
            if self.resume_account(i, cx) {
                continue;
            }
            let id = self.accounts[i].id.clone();
            if cx.accounts.is_skipped(&id) {
                self.accounts[i].phase = AccountPhase::Failed;
                continue;
            }
            // Another stream of this sync has looked the account up already.
            if let Some(known) = cx.accounts.zone(&id).cloned() {
                self.plan_account(i, &known, cx);
                continue;
            }
            let url = format!(
                "{}?{}",
                graph_url(&cx.config.api_version, &format!("act_{id}")),
                encode_query(&[("fields", &ZONE_FIELDS.join(","))])
            );
            let call = cx.out.submit(Call::graph(Request::get(url), CallKind::Account));
            self.routes.insert(call, Pending::Lookup(i));
        }
        self.settle(cx);
    }

    fn handle_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Turn) -> Result<(), ConnectorError> {
        if self.routes.contains(call) {
            let Pending::Lookup(i) = self.routes.take(call)?;
            match outcome {
                Ok(reply) => {
                    cx.out.learned(&self.accounts[i].id, &reply.json);
                    self.plan_account(i, &TimeZone::of(&reply.json), cx)
                }
                Err(e) => self.fail_account(i, e.error, cx),
            }
        } else {
            // Not the reader's own: the manager's table knows it, or it is a contract error.
            self.manager.on_outcome(call, outcome, cx)?;
        }
        self.settle(cx);
        Ok(())
    }

    fn handle_timeout(&mut self, cx: &mut Turn) {
        self.manager.on_timeout(cx);
        self.settle(cx);
    }

    fn handle_polled(&mut self, results: Vec<PollResult>, cx: &mut Turn) {
        self.manager.on_polled(results, cx);
        self.settle(cx);
    }

    fn learning_accounts(&self) -> bool {
        self.accounts.iter().any(|a| a.phase == AccountPhase::LookingUp)
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        self.manager.poll_timeout()
    }

    fn finished(&self) -> Option<&[ConnectorError]> {
        (self.routes.is_empty() && self.manager.is_idle()).then_some(self.failures.as_slice())
    }

    fn snapshot(&self) -> Snapshot {
        let accounts_done = self
            .accounts
            .iter()
            .filter(|a| match a.phase {
                AccountPhase::Failed => true,
                AccountPhase::Reading => a.completed == a.slices.len(),
                AccountPhase::LookingUp => false,
            })
            .count();
        let params = self.manager.params();
        let s = self.manager.stats();
        let refused = params.refusals.refused(&params.fields);
        Snapshot {
            records: self.records,
            accounts_done: accounts_done as u32,
            accounts_total: self.accounts.len() as u32,
            jobs: Some((self.manager.jobs_running(), s)),
            summary: format!(
                "; report jobs: {} started, {} read, {} retried, {} split",
                s.started, s.completed, s.retried, s.split
            ),
            refused,
        }
    }

    fn state(&self) -> Option<Value> {
        self.state_now()
    }

    /// By account: `done` once every slice was read; for an account part way through, its
    /// slices from the first not read to the planned end (`from`, `to`), those read after it
    /// (`done`), and the account-level report runs Graph was computing or whose rows were being
    /// read (`jobs`: run id and days), which the next read polls instead of creating again
    /// (rows of a run read part way come again). Accounts still looking up their time zone, or
    /// failed, are planned afresh.
    fn suspend(&self) -> Suspended {
        let mut progress = resume::Accounts::default();
        for (i, acct) in self.accounts.iter().enumerate() {
            if acct.phase != AccountPhase::Reading {
                continue;
            }
            let Some(first) = acct.slices.iter().position(|s| !s.done) else {
                progress.set_done(&acct.id);
                continue;
            };
            let Some(last) = acct.slices.last() else { continue };
            let done: Vec<String> =
                acct.slices[first..].iter().filter(|s| s.done).map(|s| s.start.to_string()).collect();
            let jobs: Vec<Value> = self
                .manager
                .resumable_runs(i)
                .into_iter()
                .map(|(run, since, until)| {
                    let mut job = Map::new();
                    job.insert("run".into(), Value::from(run.run_id));
                    job.insert("since".into(), Value::from(since.to_string()));
                    job.insert("until".into(), Value::from(until.to_string()));
                    job.insert("created_at".into(), Value::from(resume::instant(run.created_at)));
                    if let Some(after) = run.after {
                        job.insert("after".into(), Value::from(after));
                    }
                    if run.failures > 0 {
                        job.insert("failures".into(), Value::from(run.failures));
                    }
                    Value::Object(job)
                })
                .collect();
            let mut kept = Map::new();
            kept.insert("from".into(), Value::from(acct.slices[first].start.to_string()));
            kept.insert("to".into(), Value::from(last.end.to_string()));
            kept.insert("done".into(), Value::from(done));
            kept.insert("jobs".into(), Value::from(jobs));
            progress.set_partial(&acct.id, kept);
        }
        Suspended { state: self.state_now(), progress: progress.into_progress() }
    }
}

/// The account's offset from UTC as the account lookup gives it. Real offsets lie within
/// -12..+14 hours; anything outside a day either way (or not a number) is not one and counts as
/// UTC, so a garbled answer cannot move "today" by centuries.
fn utc_offset_millis(zone: &TimeZone) -> i64 {
    const MAX_HOURS: f64 = 24.0;
    match zone.offset().and_then(Value::as_f64) {
        Some(h) if h.abs() <= MAX_HOURS => (h * 3_600_000.0) as i64,
        _ => 0,
    }
}

/// Whether stored insights state was written with the same slice width (else it is ignored).
fn state_increment_matches(state: &Value, inc: TimeIncrement) -> bool {
    let stored = state.get("time_increment").and_then(Value::as_u64);
    let period = state.get("time_increment_period").and_then(Value::as_str);
    match (inc, period) {
        (TimeIncrement::Weekly, Some("weekly")) | (TimeIncrement::Monthly, Some("monthly")) => true,
        (TimeIncrement::Days(n), None | Some("daily")) => stored.is_none_or(|s| s == u64::from(n)),
        _ => false,
    }
}

/// Slices from `start` to `end` inclusive, as (first day, last day). Weekly slices start on
/// Mondays, monthly ones on the 1st; no slice ends after `end`.
pub fn slices(start: NaiveDate, end: NaiveDate, inc: TimeIncrement) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut s = match inc {
        TimeIncrement::Weekly => start - Days::days(i64::from(start.weekday().num_days_from_monday())),
        TimeIncrement::Monthly => start.with_day(1).unwrap_or(start),
        TimeIncrement::Days(_) => start,
    };
    while s <= end {
        let next = match inc {
            TimeIncrement::Days(n) => s + Days::days(i64::from(n.max(1))),
            TimeIncrement::Weekly => s + Days::days(7),
            TimeIncrement::Monthly => s.checked_add_months(chrono::Months::new(1)).unwrap_or(end + Days::days(1)),
        };
        out.push((s, (next - Days::days(1)).min(end)));
        s = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The first and last days of each slice.
    fn starts_ends(s: Vec<(NaiveDate, NaiveDate)>) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        s.into_iter().unzip()
    }

    #[test]
    fn an_offset_beyond_a_day_counts_as_utc() {
        assert_eq!(
            utc_offset_millis(&TimeZone::of(&serde_json::json!({"timezone_offset_hours_utc": -7}))),
            -7 * 3_600_000
        );
        assert_eq!(
            utc_offset_millis(&TimeZone::of(&serde_json::json!({"timezone_offset_hours_utc": 5.5}))),
            19_800_000
        );
        for garbled in [serde_json::json!(1e9), serde_json::json!(18446744073709551615u64), serde_json::json!("3")] {
            assert_eq!(utc_offset_millis(&TimeZone::of(&serde_json::json!({"timezone_offset_hours_utc": garbled}))), 0);
        }
    }

    #[test]
    fn daily_slices_cover_every_day_once() {
        let (s, e) = starts_ends(slices(d("2024-01-30"), d("2024-02-02"), TimeIncrement::Days(1)));
        assert_eq!(s, vec![d("2024-01-30"), d("2024-01-31"), d("2024-02-01"), d("2024-02-02")]);
        assert_eq!(s, e);
    }

    #[test]
    fn weekly_slices_snap_to_monday_and_monthly_to_the_first() {
        let (s, e) = starts_ends(slices(d("2024-01-03"), d("2024-01-20"), TimeIncrement::Weekly));
        assert_eq!(s[0], d("2024-01-01"));
        assert_eq!(e[0], d("2024-01-07"));
        assert_eq!(*e.last().unwrap(), d("2024-01-20"));
        let (s, e) = starts_ends(slices(d("2023-12-15"), d("2024-02-10"), TimeIncrement::Monthly));
        assert_eq!(s, vec![d("2023-12-01"), d("2024-01-01"), d("2024-02-01")]);
        assert_eq!(e, vec![d("2023-12-31"), d("2024-01-31"), d("2024-02-10")]);
    }

    #[test]
    fn state_with_another_increment_is_ignored() {
        assert!(state_increment_matches(&json!({"time_increment": 1}), TimeIncrement::Days(1)));
        assert!(!state_increment_matches(&json!({"time_increment": 7}), TimeIncrement::Days(1)));
        assert!(!state_increment_matches(
            &json!({"time_increment": 7, "time_increment_period": "weekly"}),
            TimeIncrement::Days(7)
        ));
        assert!(state_increment_matches(
            &json!({"time_increment": 7, "time_increment_period": "weekly"}),
            TimeIncrement::Weekly
        ));
    }
}
