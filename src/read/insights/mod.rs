//! Insights streams, read through async report jobs.
//!
//! The reader turns each account's date range into slices (one per `time_increment`), asks the
//! [`manager`] to cover them with report jobs, and advances the account's cursor over the
//! contiguous run of slices whose every job (split descendants included) has been read. State
//! is emitted as slices complete, so a checkpoint never claims a day that was only partly read.

pub mod job;
mod manager;
pub use manager::MAX_ID_LISTING_ATTEMPTS;

use super::{Cx, ZONE_FIELDS, learn_account};
use crate::api::batch::BatchSender;
use crate::api::client::{Call, CallId, CallKind, CallOutcome};
use crate::catalog::{Selected, SyncMode};
use crate::commands::graph_url;
use crate::config::{AD_STATUSES, Config, Level, NEVER_REQUESTED_INSIGHT_FIELDS};
use crate::driver::TimeoutReason;
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::protocol::{LogLevel, Message};
use crate::schema::Properties;
use crate::state;
use crate::streams::{OBJECT_BREAKDOWNS, Stream, TimeIncrement};
use crate::time::Timestamp;
use chrono::{Datelike, Duration as Days, NaiveDate};
use job::{GroupId, Job, JobId};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// 1123 days: the fewest days 37 months can have; Meta serves no insights older than that.
pub const RETENTION_DAYS: i64 = 1123;
/// 730 days: how far back insights start when no start date is configured (Airbyte's default).
pub const DEFAULT_HISTORY_DAYS: i64 = 730;
/// 7 days: consecutive daily slices one report job covers at first; a job that proves too
/// large is split by days before it is split by objects.
pub const WINDOW_DAYS: usize = 7;
/// 28 + 1 days: how far before a slice the id-listing job looks for objects with data.
pub const CHILD_ID_LOOKBACK_DAYS: i64 = 29;
/// The attribution windows of every insights stream.
pub const DEFAULT_WINDOWS: &[&str] = &["1d_click", "7d_click", "28d_click", "1d_view"];

/// What every job of the stream shares.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub name: String,
    pub level: Level,
    pub breakdowns: Vec<String>,
    /// The breakdowns that report an object (their `<name>_id` joins the key).
    pub object_breakdowns: Vec<String>,
    pub action_breakdowns: Vec<String>,
    pub windows: Vec<String>,
    pub increment: TimeIncrement,
    pub filtering: Option<String>,
    pub pk: Vec<String>,
    pub props: Properties,
    /// Fields requested for rows (primary-key fields included).
    pub fields: Vec<String>,
    pub lookback_days: u32,
    pub job_timeout: Duration,
    pub custom: bool,
    pub wants_objective_results: bool,
}

/// One account's slices and cursor.
#[derive(Debug)]
pub(crate) struct Account {
    pub id: String,
    pub starts: Vec<NaiveDate>,
    pub ends: Vec<NaiveDate>,
    /// Jobs still covering each slice.
    pub outstanding: Vec<u32>,
    pub complete: Vec<bool>,
    /// How many of `complete` are true.
    pub completed: usize,
    /// Where each slice stands in the cursor walk.
    pub cursor: Option<NaiveDate>,
    /// Completed slice starts newer than the cursor (state's `slices`).
    pub done_after_cursor: BTreeSet<NaiveDate>,
    pub lookup: Option<CallId>,
    pub ready: bool,
    pub failed: bool,
}

/// Reads one insights stream for every configured account.
pub struct InsightsReader {
    pub(crate) params: Params,
    pub(crate) accounts: Vec<Account>,
    pub(crate) jobs: BTreeMap<JobId, Job>,
    pub(crate) queue: std::collections::VecDeque<JobId>,
    pub(crate) groups: BTreeMap<GroupId, manager::Group>,
    pub(crate) creating: BTreeMap<CallId, JobId>,
    pub(crate) polls: Option<BatchSender>,
    pub(crate) next_poll: Option<Timestamp>,
    pub(crate) throttle_wait: Option<Timestamp>,
    pub(crate) ping: Option<CallId>,
    pub(crate) next_job: u64,
    pub(crate) next_group: u64,
    incremental: bool,
    incoming: BTreeMap<String, Map<String, Value>>,
    other_state: Map<String, Value>,
    pub(crate) failures: Vec<ConnectorError>,
    pub(crate) stream_failed: bool,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    pub records: u64,
    /// The last row estimate sent in an ESTIMATE trace.
    last_estimate: Option<u64>,
    pub stats: manager::JobStats,
}

fn json_list(items: &[String]) -> String {
    Value::from(items.to_vec()).to_string()
}

impl InsightsReader {
    pub fn new(selected: &Selected, state: Option<&Value>, config: &Config, now: Timestamp) -> Self {
        let Stream::Insight(def) = &selected.stream else {
            unreachable!("the read machine builds insights readers only for insights streams")
        };
        let props = def.properties();
        let pk = def.primary_key();
        let custom = def.custom.as_ref();
        let mut fields: Vec<String> = if !selected.selected_fields.is_empty() {
            selected.selected_fields.clone()
        } else if !def.fields.is_empty() {
            def.fields.clone()
        } else {
            props.keys().cloned().collect()
        };
        let breakdown_ids: Vec<String> = OBJECT_BREAKDOWNS.iter().map(|b| format!("{b}_id")).collect();
        fields.retain(|f| {
            !def.breakdowns.contains(f)
                && !def.action_breakdowns.contains(f)
                && !breakdown_ids.contains(f)
                && !NEVER_REQUESTED_INSIGHT_FIELDS.contains(&f.as_str())
        });
        // The level id and the account id are part of the key: always ask for them.
        for must in ["account_id"].into_iter().chain(def.level.id_field()) {
            if !fields.iter().any(|f| f == must) {
                fields.push(must.to_string());
            }
        }
        let mut windows: Vec<String> = DEFAULT_WINDOWS.iter().map(|s| s.to_string()).collect();
        let (incrementality, engaged) = match custom {
            Some(c) => (c.include_incrementality, c.include_engaged_view),
            None => (config.include_incrementality, config.include_engaged_view),
        };
        if incrementality {
            windows.push("incrementality".into());
        }
        if engaged {
            windows.push("1d_ev".into());
        }
        let filtering = def
            .status_filtered
            .then(|| json!([{"field": "ad.effective_status", "operator": "IN", "value": AD_STATUSES}]).to_string());
        let lookback_days = custom.and_then(|c| c.insights_lookback_window).unwrap_or(config.insights_lookback_window);
        let timeout_min = custom.and_then(|c| c.insights_job_timeout).unwrap_or(config.insights_job_timeout);
        let start = custom.and_then(|c| c.start_date).or(config.start_date).map(|d| d.date_naive());
        let end = custom.and_then(|c| c.end_date).or(config.end_date).map(|d| d.date_naive());
        let incremental = selected.sync_mode == SyncMode::Incremental;
        let increment_matches = state.is_some_and(|s| state_increment_matches(s, def.time_increment));
        let incoming = if incremental && increment_matches {
            state::per_account(state, &config.account_ids, "date_start")
        } else {
            BTreeMap::new()
        };
        let other_state = match state {
            Some(Value::Object(m)) if incremental && increment_matches => m
                .iter()
                .filter(|(k, v)| v.is_object() && !config.account_ids.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Map::new(),
        };
        let _ = now;
        InsightsReader {
            params: Params {
                name: def.name.clone(),
                level: def.level,
                breakdowns: def.breakdowns.clone(),
                object_breakdowns: def
                    .breakdowns
                    .iter()
                    .filter(|b| OBJECT_BREAKDOWNS.contains(&b.as_str()))
                    .cloned()
                    .collect(),
                action_breakdowns: def.action_breakdowns.clone(),
                windows,
                increment: def.time_increment,
                filtering,
                pk,
                props,
                wants_objective_results: fields.iter().any(|f| f == "objective_results"),
                fields,
                lookback_days,
                job_timeout: Duration::from_secs(u64::from(timeout_min) * 60),
                custom: custom.is_some(),
            },
            accounts: config
                .account_ids
                .iter()
                .map(|id| Account {
                    id: id.clone(),
                    starts: Vec::new(),
                    ends: Vec::new(),
                    outstanding: Vec::new(),
                    complete: Vec::new(),
                    completed: 0,
                    cursor: None,
                    done_after_cursor: BTreeSet::new(),
                    lookup: None,
                    ready: false,
                    failed: false,
                })
                .collect(),
            jobs: BTreeMap::new(),
            queue: Default::default(),
            groups: BTreeMap::new(),
            creating: BTreeMap::new(),
            polls: None,
            next_poll: None,
            throttle_wait: None,
            ping: None,
            next_job: 0,
            next_group: 0,
            incremental,
            incoming,
            other_state,
            failures: Vec::new(),
            stream_failed: false,
            start,
            end,
            records: 0,
            last_estimate: None,
            stats: manager::JobStats::default(),
        }
    }

    pub fn start(&mut self, cx: &mut Cx) {
        self.polls = Some(BatchSender::new(graph_url(&cx.config.api_version, ""), cx.config.access_token.clone()));
        for i in 0..self.accounts.len() {
            let id = &self.accounts[i].id;
            // Another stream of this sync has looked the account up already.
            if let Some(known) = cx.accounts.get(id).filter(|a| a.contains_key(ZONE_FIELDS[1])).cloned() {
                self.plan_account(i, &Value::Object(known), cx);
                continue;
            }
            let url = format!(
                "{}?{}",
                graph_url(&cx.config.api_version, &format!("act_{id}")),
                encode_query(&[("fields", &ZONE_FIELDS.join(","))])
            );
            self.accounts[i].lookup = Some(cx.api.submit(Call::graph(Request::get(url), CallKind::Account)));
        }
        self.schedule(cx);
    }

    /// Accounts finished (every slice read, or failed) out of all.
    pub fn accounts_progress(&self) -> (u32, u32) {
        let done = self.accounts.iter().filter(|a| a.failed || (a.ready && a.completed == a.complete.len())).count();
        (done as u32, self.accounts.len() as u32)
    }

    /// Report runs Graph is computing now.
    pub fn jobs_running(&self) -> u32 {
        self.jobs.values().filter(|j| j.is_in_flight()).count() as u32
    }

    pub fn finished(&self) -> Option<&[ConnectorError]> {
        let lookups_done = self.accounts.iter().all(|a| a.ready || a.failed);
        let jobs_done = self.stream_failed
            || self.jobs.values().all(|j| {
                matches!(j.state, job::JobState::Done | job::JobState::Split) || self.accounts[j.spec.account].failed
            });
        (lookups_done && jobs_done && self.ping.is_none()).then_some(self.failures.as_slice())
    }

    pub fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Cx) {
        if let Some(i) = self.accounts.iter().position(|a| a.lookup == Some(call)) {
            self.accounts[i].lookup = None;
            match outcome {
                Ok(reply) => {
                    learn_account(cx.accounts, &self.accounts[i].id, &reply.json);
                    self.plan_account(i, &reply.json, cx)
                }
                Err(e) => self.fail_account(i, e.error, cx),
            }
        } else {
            self.on_job_outcome(call, outcome, cx);
        }
        self.schedule(cx);
    }

    pub fn on_timeout(&mut self, cx: &mut Cx) {
        self.on_tick(cx);
        self.schedule(cx);
    }

    pub fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
        let poll = self.next_poll.map(|t| (t, TimeoutReason::JobPoll));
        let throttle = self.throttle_wait.map(|t| (t, TimeoutReason::ThrottlePause));
        match (poll, throttle) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Builds the account's slices from its local "today" and its stored cursor.
    fn plan_account(&mut self, i: usize, body: &Value, cx: &mut Cx) {
        let today_local = Timestamp::from_millis(cx.now.as_millis().saturating_add(utc_offset_millis(body))).date_utc();
        let today_utc = cx.now.date_utc();
        let earliest = today_utc - Days::days(RETENTION_DAYS - 1);
        let end = match self.end {
            Some(e) if e < today_utc => e,
            // An end in the future (a custom insight's own end_date) reads up to "today".
            Some(_) => today_utc.max(today_local),
            None => today_local,
        };
        let stream_start = self.start.unwrap_or(today_utc - Days::days(DEFAULT_HISTORY_DAYS));
        let acct_id = self.accounts[i].id.clone();
        let stored = self.incoming.get(&acct_id);
        let cursor =
            stored.and_then(|s| s.get("date_start")).and_then(Value::as_str).and_then(|d| d.parse::<NaiveDate>().ok());
        let mut start = match cursor {
            // A cursor too far in the past for date arithmetic is as good as none.
            Some(c) => c
                .checked_sub_days(chrono::Days::new(u64::from(self.params.lookback_days)))
                .map_or(stream_start, |d| d.max(stream_start)),
            None => stream_start,
        };
        if start < earliest {
            cx.log(LogLevel::Warn, format!(
                "{}: start {start} of ad account {acct_id} is more than 37 months ago; reading from {earliest}, the oldest day meta serves",
                self.params.name
            ));
            start = earliest;
        }
        let (starts, ends) = slices(start, end, self.params.increment);
        let acct = &mut self.accounts[i];
        acct.cursor = cursor;
        acct.done_after_cursor = stored
            .and_then(|s| s.get("slices"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter().filter_map(|d| d.as_str()?.parse().ok()).filter(|d| cursor.is_none_or(|c| *d > c)).collect()
            })
            .unwrap_or_default();
        acct.outstanding = vec![0; starts.len()];
        acct.complete = vec![false; starts.len()];
        acct.completed = 0;
        acct.starts = starts;
        acct.ends = ends;
        acct.ready = true;
        let n = acct.starts.len();
        let window = if self.params.increment == TimeIncrement::Days(1) { WINDOW_DAYS } else { 1 };
        let mut s = 0;
        while s < n {
            let e = (s + window).min(n);
            let spec = job::JobSpec {
                account: i,
                object_id: format!("act_{acct_id}"),
                object_level: Level::Account,
                slices: s..e,
                since: self.accounts[i].starts[s],
                until: self.accounts[i].ends[e - 1],
                fields: self.params.fields.clone(),
                purpose: job::Purpose::Rows { group: None },
            };
            self.add_job(spec);
            s = e;
        }
        if n == 0 {
            self.emit_state(cx);
        }
    }

    pub(crate) fn fail_account(&mut self, i: usize, e: ConnectorError, cx: &mut Cx) {
        let acct = &mut self.accounts[i];
        if acct.failed {
            return;
        }
        acct.failed = true;
        let e = e.context(&format!("{} of ad account {}", self.params.name, acct.id));
        cx.log(LogLevel::Error, e.message.clone());
        self.failures.push(e);
    }

    /// A slice's last job was read: walk the cursor forward and checkpoint.
    pub(crate) fn slice_done(&mut self, i: usize, slice: usize, cx: &mut Cx) {
        let acct = &mut self.accounts[i];
        if acct.failed || acct.complete[slice] {
            return;
        }
        acct.complete[slice] = true;
        acct.completed += 1;
        acct.done_after_cursor.insert(acct.starts[slice]);
        // The cursor is the start of the last slice in the unbroken run of completed ones;
        // it never moves backwards.
        for (k, start) in acct.starts.iter().enumerate() {
            if !acct.complete[k] {
                break;
            }
            if acct.cursor.is_none_or(|c| *start > c) {
                acct.cursor = Some(*start);
            }
        }
        if let Some(c) = acct.cursor {
            acct.done_after_cursor.retain(|d| *d > c);
        }
        if self.incremental {
            self.emit_state(cx);
        }
        self.estimate(cx);
    }

    /// Sends an ESTIMATE trace of the stream's rows, from the rows per completed slice so far,
    /// once every account's slices are known, and again whenever it moves by a tenth or more.
    fn estimate(&mut self, cx: &mut Cx) {
        let live = || self.accounts.iter().filter(|a| !a.failed);
        if !live().all(|a| a.ready) {
            return;
        }
        let total: usize = live().map(|a| a.starts.len()).sum();
        let done: usize = live().map(|a| a.completed).sum();
        if done == 0 {
            return;
        }
        let rows = (self.records as f64 * total as f64 / done as f64).round() as u64;
        let moved = self.last_estimate.is_none_or(|last| rows.abs_diff(last) * 10 >= last.max(1));
        if moved || (done == total && self.last_estimate != Some(rows)) {
            self.last_estimate = Some(rows);
            cx.emit(Message::estimate(cx.now, &self.params.name, rows));
        }
    }

    fn emit_state(&self, cx: &mut Cx) {
        if !self.incremental {
            return;
        }
        let mut state = self.other_state.clone();
        for acct in &self.accounts {
            let mut entry = Map::new();
            if let Some(c) = acct.cursor {
                entry.insert("date_start".into(), Value::from(c.to_string()));
            }
            entry.insert(
                "slices".into(),
                Value::from(acct.done_after_cursor.iter().map(|d| d.to_string()).collect::<Vec<_>>()),
            );
            if acct.cursor.is_some() || !acct.done_after_cursor.is_empty() {
                state.insert(acct.id.clone(), Value::Object(entry));
            } else if let Some(old) = self.incoming.get(&acct.id) {
                state.insert(acct.id.clone(), Value::Object(old.clone()));
            }
        }
        match self.params.increment {
            TimeIncrement::Days(n) => {
                state.insert("time_increment".into(), Value::from(n));
            }
            TimeIncrement::Weekly => {
                state.insert("time_increment".into(), Value::from(7));
                state.insert("time_increment_period".into(), Value::from("weekly"));
            }
            TimeIncrement::Monthly => {
                state.insert("time_increment".into(), Value::from(1));
                state.insert("time_increment_period".into(), Value::from("monthly"));
            }
        }
        cx.emit(Message::stream_state(&self.params.name, &Value::Object(state)));
    }

    /// Turns a result row into a record; `None` drops it (a breakdown key is missing).
    pub(crate) fn record(&self, row: Value, account: &str) -> Option<Map<String, Value>> {
        let Value::Object(mut row) = row else { return None };
        if !self.params.breakdowns.iter().all(|b| row.contains_key(b)) {
            return None;
        }
        if !row.contains_key("account_id") {
            row.insert("account_id".into(), Value::from(account));
        }
        for b in &self.params.breakdowns {
            if OBJECT_BREAKDOWNS.contains(&b.as_str())
                && let Some(id) = row.get(b).and_then(|o| o.get("id")).cloned()
            {
                row.insert(format!("{b}_id"), id);
            }
        }
        if self.params.custom
            && self.params.wants_objective_results
            && !row.contains_key("objective_results")
            && let Some(r) = row.remove("results")
        {
            row.insert("objective_results".into(), r);
        }
        crate::schema::normalise(&mut row, &self.params.props);
        Some(row)
    }

    /// The primary key of a record as one string.
    pub(crate) fn key(&self, row: &Map<String, Value>) -> String {
        let parts: Vec<String> =
            self.params.pk.iter().map(|k| row.get(k).map(Value::to_string).unwrap_or_default()).collect();
        parts.join("\u{1f}")
    }

    pub(crate) fn emit_row(&mut self, row: Map<String, Value>, cx: &mut Cx) {
        self.records += 1;
        cx.emit(Message::record(&self.params.name, row, cx.now));
    }

    /// The `POST <object>/insights` that creates a job.
    pub(crate) fn create_request(&self, spec: &job::JobSpec, config: &Config) -> Request {
        let mut form: Vec<(&str, String)> = Vec::new();
        let range = json!({"since": spec.since.to_string(), "until": spec.until.to_string()}).to_string();
        match &spec.purpose {
            job::Purpose::ChildIds { child, .. } => {
                form.push(("level", child.as_str().to_string()));
                form.push(("fields", json_list(&spec.fields)));
                form.push(("time_increment", "all_days".into()));
            }
            job::Purpose::Rows { .. } => {
                form.push(("level", self.params.level.as_str().to_string()));
                form.push(("fields", json_list(&spec.fields)));
                form.push(("time_increment", increment_param(self.params.increment)));
                if !self.params.breakdowns.is_empty() {
                    form.push(("breakdowns", json_list(&self.params.breakdowns)));
                }
                form.push(("action_breakdowns", json_list(&self.params.action_breakdowns)));
                form.push(("action_attribution_windows", json_list(&self.params.windows)));
            }
        }
        form.push(("time_range", range));
        if let Some(f) = &self.params.filtering {
            form.push(("filtering", f.clone()));
        }
        let url = graph_url(&config.api_version, &format!("{}/insights", spec.object_id));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Request::post_form(url, &pairs)
    }
}

fn increment_param(inc: TimeIncrement) -> String {
    match inc {
        TimeIncrement::Days(n) => n.to_string(),
        TimeIncrement::Weekly => "7".into(),
        TimeIncrement::Monthly => "monthly".into(),
    }
}

/// The account's offset from UTC as the account lookup gives it. Real offsets lie within
/// -12..+14 hours; anything outside a day either way (or not a number) is not one and counts as
/// UTC, so a garbled answer cannot move "today" by centuries.
fn utc_offset_millis(account: &Value) -> i64 {
    const MAX_HOURS: f64 = 24.0;
    match account.get("timezone_offset_hours_utc").and_then(Value::as_f64) {
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

/// Slices from `start` to `end` inclusive: `(starts, ends)`. Weekly slices start on Mondays,
/// monthly ones on the 1st; no slice ends after `end`.
pub fn slices(start: NaiveDate, end: NaiveDate, inc: TimeIncrement) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
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
        starts.push(s);
        ends.push((next - Days::days(1)).min(end));
        s = next;
    }
    (starts, ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_offset_beyond_a_day_counts_as_utc() {
        assert_eq!(utc_offset_millis(&serde_json::json!({"timezone_offset_hours_utc": -7})), -7 * 3_600_000);
        assert_eq!(utc_offset_millis(&serde_json::json!({"timezone_offset_hours_utc": 5.5})), 19_800_000);
        for garbled in [serde_json::json!(1e9), serde_json::json!(18446744073709551615u64), serde_json::json!("3")] {
            assert_eq!(utc_offset_millis(&serde_json::json!({"timezone_offset_hours_utc": garbled})), 0);
        }
    }

    #[test]
    fn daily_slices_cover_every_day_once() {
        let (s, e) = slices(d("2024-01-30"), d("2024-02-02"), TimeIncrement::Days(1));
        assert_eq!(s, vec![d("2024-01-30"), d("2024-01-31"), d("2024-02-01"), d("2024-02-02")]);
        assert_eq!(s, e);
    }

    #[test]
    fn weekly_slices_snap_to_monday_and_monthly_to_the_first() {
        let (s, e) = slices(d("2024-01-03"), d("2024-01-20"), TimeIncrement::Weekly);
        assert_eq!(s[0], d("2024-01-01"));
        assert_eq!(e[0], d("2024-01-07"));
        assert_eq!(*e.last().unwrap(), d("2024-01-20"));
        let (s, e) = slices(d("2023-12-15"), d("2024-02-10"), TimeIncrement::Monthly);
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
