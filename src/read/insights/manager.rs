//! The job manager: starts jobs while there is room and the insights load allows, polls the
//! running ones in batches of at most 50 on an interval that grows with their age, reads the
//! results of completed ones, and retries, then splits, the ones that fail.
//!
//! Split order: a job covering several days is split by days; a one-day job above the stream's
//! level is split into its child objects (found by a small id-listing job over the 29 days
//! before the slice); a one-day job at the stream's level, or one whose id listing failed
//! [`MAX_ID_LISTING_ATTEMPTS`] times, is split into two halves of its fields, whose rows are
//! merged by primary key. A single field that still fails ends the stream with a config error
//! naming it.
//!
//! A running job times out only when a poll answers (or fails) after the timeout has passed.

use super::InsightsReader;
use super::job::{FailureReason, GroupId, Job, JobId, JobSpec, JobState, Purpose, RunStatus, parse_status};
use super::{CHILD_ID_LOOKBACK_DAYS, Cx, RETENTION_DAYS};
use crate::api::client::{Call, CallFailure, CallId, CallKind, CallOutcome};
use crate::api::paginator::Paginator;
use crate::api::throttle::INSIGHTS_THROTTLE_LIMIT;
use crate::commands::graph_url;
use crate::config::Level;
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::protocol::{LogLevel, Message};
use crate::read::transcode::{self, RowRules};
use crate::time::Timestamp;
use chrono::Duration as Days;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// 100: report runs in flight per stream (Airbyte's cap); their polls go 50 to a batch.
pub const MAX_IN_FLIGHT: usize = 100;
/// 5 s: the first poll after a job starts, and the shortest interval.
pub const MIN_POLL: Duration = Duration::from_secs(5);
/// 30 s: the longest interval between polls (Airbyte polls at a fixed 30 s).
pub const MAX_POLL: Duration = Duration::from_secs(30);
/// 60 s: how long to wait before asking for the insights load again when it blocks new jobs.
pub const THROTTLE_RECHECK: Duration = Duration::from_secs(60);
/// 5: attempts of an id-listing report (skipped, stuck or failed) before its report is split
/// by fields instead.
pub const MAX_ID_LISTING_ATTEMPTS: u32 = 5;
/// 100: rows per result page.
pub const RESULT_PAGE_SIZE: u32 = 100;

/// Rows of field-split jobs waiting for their sibling halves.
#[derive(Debug)]
pub struct Group {
    pub rows: BTreeMap<String, Map<String, Value>>,
    pub remaining: u32,
    pub parent: Option<GroupId>,
}

/// Counts for progress reports and benchmarks.
#[derive(Clone, Debug, Default)]
pub struct JobStats {
    pub started: u64,
    pub completed: u64,
    pub retried: u64,
    pub split: u64,
}

impl InsightsReader {
    pub(crate) fn add_job(&mut self, spec: JobSpec) -> JobId {
        self.next_job += 1;
        let id = JobId(self.next_job);
        if let Purpose::Rows { .. } = spec.purpose {
            let acct = &mut self.accounts[spec.account];
            for s in spec.slices.clone() {
                acct.outstanding[s] += 1;
            }
        }
        self.jobs.insert(id, Job::new(spec));
        self.queue.push_back(id);
        id
    }

    fn in_flight(&self) -> usize {
        self.jobs.values().filter(|j| j.is_in_flight()).count()
    }

    /// Starts what may start and arranges the next poll.
    pub(crate) fn schedule(&mut self, cx: &mut Cx) {
        if self.stream_failed {
            return;
        }
        let load = cx.api.throttle.insights_load();
        if load >= INSIGHTS_THROTTLE_LIMIT {
            if self.in_flight() == 0 && self.ping.is_none() && self.throttle_wait.is_none() && !self.queue.is_empty() {
                cx.log(LogLevel::Info, format!("{}: insights load at {load:.0} %; holding new jobs", self.params.name));
                self.throttle_wait = Some(cx.now.plus(THROTTLE_RECHECK));
            }
        } else {
            while self.in_flight() < MAX_IN_FLIGHT {
                let Some(id) = self.queue.pop_front() else { break };
                let Some(job) = self.jobs.get(&id) else { continue };
                if self.accounts[job.spec.account].failed {
                    continue;
                }
                let request = self.create_request(&job.spec, cx.config);
                let call = cx.api.submit(Call::graph(request, CallKind::JobCreate));
                self.creating.insert(call, id);
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.state = JobState::Creating { call };
                }
                self.stats.started += 1;
            }
        }
        let running = self.jobs.values().any(|j| matches!(j.state, JobState::Running { .. }));
        let polling = self.polls.as_ref().is_some_and(|p| !p.is_idle());
        if running && !polling && self.next_poll.is_none() {
            self.next_poll = Some(cx.now.plus(self.poll_interval(cx.now)));
        }
        if !running {
            self.next_poll = None;
        }
    }

    /// When to poll next, within [MIN_POLL, MAX_POLL]: for each running job, half its age (young
    /// jobs are polled often, old ones rarely), or sooner if its last reported percentage says it
    /// should be done by then; the soonest of them.
    fn poll_interval(&self, now: Timestamp) -> Duration {
        self.jobs
            .values()
            .filter_map(|j| match j.state {
                JobState::Running { created_at, percent, .. } => {
                    Some(job_poll_interval(now.since(created_at), percent))
                }
                _ => None,
            })
            .min()
            .unwrap_or(Duration::ZERO)
            .clamp(MIN_POLL, MAX_POLL)
    }

    /// A deadline passed: poll, time jobs out, or ping for the insights load.
    pub(crate) fn on_tick(&mut self, cx: &mut Cx) {
        if self.throttle_wait.is_some_and(|t| t <= cx.now) {
            self.throttle_wait = None;
            if let Some(acct) = self.accounts.iter().find(|a| a.ready && !a.failed) {
                let url = format!(
                    "{}?{}",
                    graph_url(&cx.config.api_version, &format!("act_{}/insights", acct.id)),
                    encode_query(&[("fields", "account_id"), ("limit", "1")])
                );
                self.ping = Some(cx.api.submit(Call::graph(Request::get(url), CallKind::InsightsSync)));
            }
        }
        if self.next_poll.is_some_and(|t| t <= cx.now) {
            self.next_poll = None;
            let Some(polls) = self.polls.as_mut() else { return };
            for (id, job) in &self.jobs {
                if let JobState::Running { run_id, .. } = &job.state {
                    polls.push(id.0, format!("{run_id}/"));
                }
            }
            polls.flush(cx.api);
        }
    }

    pub(crate) fn on_job_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Cx) {
        if self.ping == Some(call) {
            self.ping = None;
            return;
        }
        if let Some(id) = self.creating.remove(&call) {
            return self.on_created(id, outcome, cx);
        }
        if self.polls.as_ref().is_some_and(|p| p.owns(call)) {
            if let Some(polls) = self.polls.as_mut() {
                polls.on_outcome(call, outcome, cx.api);
            }
            return self.drain_polls(cx);
        }
        let reader = self.jobs.iter().find_map(|(id, j)| match &j.state {
            JobState::Reading { paginator, .. } if paginator.owns(call) => Some(*id),
            _ => None,
        });
        if let Some(id) = reader {
            self.on_result_page(id, outcome, cx);
        }
    }

    fn on_created(&mut self, id: JobId, outcome: CallOutcome, cx: &mut Cx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let run_id = match &outcome {
            Ok(reply) => reply
                .json
                .get("report_run_id")
                .and_then(|r| r.as_str().map(str::to_string).or_else(|| r.as_u64().map(|n| n.to_string()))),
            Err(_) => None,
        };
        match (run_id, outcome) {
            (Some(run_id), _) => job.state = JobState::Running { run_id, created_at: cx.now, percent: 0 },
            (None, Err(e)) => {
                let account = job.spec.account;
                job.state = JobState::Done;
                // Fail the account first: its slices must not count as read when this job
                // stops covering them (regression: soak seeds 26 and 166 checkpointed days
                // whose report was never created).
                self.fail_account(account, e.error, cx);
                self.uncover(id, cx);
            }
            (None, Ok(_)) => self.job_failed(
                id,
                FailureReason::Failed { code: None, subcode: None, message: "no report_run_id in the answer".into() },
                cx,
            ),
        }
    }

    fn drain_polls(&mut self, cx: &mut Cx) {
        let mut results = Vec::new();
        if let Some(polls) = self.polls.as_mut() {
            while let Some(r) = polls.poll_result() {
                results.push(r);
            }
            polls.flush(cx.api);
        }
        for (key, result) in results {
            let id = JobId(key);
            // A failed poll leaves the job running, like one still pending.
            match result.ok().as_ref().and_then(parse_status) {
                Some(RunStatus::Completed) => self.start_reading(id, cx),
                Some(RunStatus::Failed(reason)) => self.job_failed(id, reason, cx),
                status => {
                    if let Some(Job { state: JobState::Running { percent, .. }, .. }) = self.jobs.get_mut(&id)
                        && let Some(RunStatus::Pending { percent: p }) = status
                    {
                        *percent = p;
                    }
                    self.time_out_if_overdue(id, cx);
                }
            }
        }
    }

    /// Restarts a running job older than the timeout. Only a poll's answer (or its failure)
    /// decides this, never the clock alone: while throttling holds the polls back, a job is not
    /// known to be late, and restarting it would only add load to an account already over its
    /// quota (soak seed 26: reports restarted every hour while polls waited on 600 s blocks).
    fn time_out_if_overdue(&mut self, id: JobId, cx: &mut Cx) {
        let timeout = self.params.job_timeout;
        if let Some(Job { state: JobState::Running { created_at, .. }, .. }) = self.jobs.get(&id)
            && cx.now.since(*created_at) > timeout
        {
            self.job_failed(id, FailureReason::TimedOut, cx);
        }
    }

    fn start_reading(&mut self, id: JobId, cx: &mut Cx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let JobState::Running { run_id, created_at, .. } = &job.state else { return };
        let (run_id, created_at) = (run_id.clone(), *created_at);
        let url = format!(
            "{}?{}",
            graph_url(&cx.config.api_version, &format!("{run_id}/insights")),
            encode_query(&[("limit", RESULT_PAGE_SIZE.to_string())])
        );
        // Stream rows, the bulk of a sync, are transcoded from bytes; the rest goes through `Value`.
        let mut paginator = if job.spec.purpose == (Purpose::Rows { group: None }) {
            Paginator::new_raw(url, CallKind::JobResults)
        } else {
            Paginator::new(url, CallKind::JobResults)
        };
        paginator.start(cx.api);
        job.state = JobState::Reading { run_id, created_at, paginator };
    }

    fn on_result_page(&mut self, id: JobId, outcome: CallOutcome, cx: &mut Cx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        let JobState::Reading { run_id, created_at, paginator } = &mut job.state else { return };
        if let Err(e) = &outcome
            && e.failure == CallFailure::ReportNotReady
        {
            // Read too early: back to polling, with the timeout still running from the start.
            job.state = JobState::Running { run_id: run_id.clone(), created_at: *created_at, percent: 0 };
            return;
        }
        if job.spec.purpose == (Purpose::Rows { group: None }) {
            let params = &self.params;
            let rules = RowRules {
                props: &params.props,
                required: &params.breakdowns,
                object_breakdowns: &params.object_breakdowns,
                account_id: &self.accounts[job.spec.account].id,
                rename_results: params.custom && params.wants_objective_results,
            };
            let read = |bytes: &[u8]| match transcode::page(bytes, &rules) {
                Ok(p) if !p.error => Ok((p.rows, p.next)),
                Ok(_) => Err(ConnectorError::misbehaving("a result page held an error instead of rows", String::new())),
                Err(e) => Err(ConnectorError::misbehaving("a result page could not be read", e.to_string())),
            };
            let (rows, more) = match paginator.on_raw_outcome(outcome, cx.api, read) {
                // Restarted on a stale cursor: the first page is on its way again.
                Ok((None, _)) => (None, true),
                Ok((rows, _)) => (rows, paginator.request_next(cx.api)),
                Err(e) => {
                    let reason = FailureReason::Failed { code: None, subcode: None, message: e.message.clone() };
                    return self.job_failed(id, reason, cx);
                }
            };
            for data in rows.into_iter().flatten() {
                self.records += 1;
                cx.emit(Message::Record { stream: self.params.name.clone(), data, emitted_at: cx.now });
            }
            if !more {
                self.job_read(id, cx);
            }
            return;
        }
        let page = match paginator.on_outcome(outcome, cx.api) {
            Ok(p) => p,
            Err(e) => {
                let reason = FailureReason::Failed { code: None, subcode: None, message: e.message.clone() };
                return self.job_failed(id, reason, cx);
            }
        };
        let more = paginator.request_next(cx.api) || page.restarted;
        let spec = job.spec.clone();
        let account_id = self.accounts[spec.account].id.clone();
        match &spec.purpose {
            Purpose::ChildIds { child, .. } => {
                let field = child.id_field().unwrap_or("id");
                let ids: Vec<String> =
                    page.items.iter().filter_map(|r| r.get(field)?.as_str().map(str::to_string)).collect();
                if let Some(job) = self.jobs.get_mut(&id) {
                    for i in ids {
                        if !job.child_ids.contains(&i) {
                            job.child_ids.push(i);
                        }
                    }
                }
            }
            Purpose::Rows { group: None } => {
                for row in page.items {
                    if let Some(r) = self.record(row, &account_id) {
                        self.emit_row(r, cx);
                    }
                }
            }
            Purpose::Rows { group: Some(g) } => {
                for row in page.items {
                    if let Some(r) = self.record(row, &account_id) {
                        let key = self.key(&r);
                        if let Some(group) = self.groups.get_mut(g) {
                            group.rows.entry(key).or_default().extend(r);
                        }
                    }
                }
            }
        }
        if !more {
            self.job_read(id, cx);
        }
    }

    /// Every row of the job was handed over.
    fn job_read(&mut self, id: JobId, cx: &mut Cx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.state = JobState::Done;
        self.stats.completed += 1;
        let spec = job.spec.clone();
        match spec.purpose {
            Purpose::ChildIds { child, parent } => {
                let ids = std::mem::take(&mut job.child_ids);
                self.spawn_children(parent, child, ids, cx);
            }
            Purpose::Rows { group } => {
                if let Some(g) = group {
                    self.member_done(g, cx);
                }
                self.uncover(id, cx);
            }
        }
    }

    /// A member of `g` finished: when it was the last, merge the group upwards or emit it.
    fn member_done(&mut self, g: GroupId, cx: &mut Cx) {
        let Some(group) = self.groups.get_mut(&g) else { return };
        group.remaining = group.remaining.saturating_sub(1);
        if group.remaining > 0 {
            return;
        }
        let Some(group) = self.groups.remove(&g) else { return };
        match group.parent {
            Some(p) => {
                if let Some(parent) = self.groups.get_mut(&p) {
                    for (k, row) in group.rows {
                        parent.rows.entry(k).or_default().extend(row);
                    }
                }
                self.member_done(p, cx);
            }
            None => {
                for (_, row) in group.rows {
                    self.emit_row(row, cx);
                }
            }
        }
    }

    /// The job no longer covers its slices; any slice left uncovered is complete.
    fn uncover(&mut self, id: JobId, cx: &mut Cx) {
        let Some(job) = self.jobs.get(&id) else { return };
        if !matches!(job.spec.purpose, Purpose::Rows { .. }) {
            return;
        }
        let (account, range) = (job.spec.account, job.spec.slices.clone());
        let mut finished = Vec::new();
        {
            let acct = &mut self.accounts[account];
            for s in range {
                acct.outstanding[s] = acct.outstanding[s].saturating_sub(1);
                if acct.outstanding[s] == 0 {
                    finished.push(s);
                }
            }
        }
        for s in finished {
            self.slice_done(account, s, cx);
        }
    }

    /// A job attempt failed: start it again once, then split it.
    pub(crate) fn job_failed(&mut self, id: JobId, reason: FailureReason, cx: &mut Cx) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.failures += 1;
        let retry = job.failures < 2 && !reason.is_too_large();
        let what = describe(&job.spec);
        if let Purpose::ChildIds { parent, .. } = job.spec.purpose {
            if job.failures >= MAX_ID_LISTING_ATTEMPTS {
                job.state = JobState::Done;
                let account = job.spec.account;
                if !self.jobs.get(&parent).is_some_and(|p| self.splittable_fields(&p.spec)) {
                    let e = ConnectorError::exhausted(
                        format!(
                            "could not list the objects needed to split a failing report ({}); try again later",
                            reason.describe()
                        ),
                        what,
                    );
                    return self.fail_account(account, e, cx);
                }
                cx.log(
                    LogLevel::Warn,
                    format!(
                        "{}: {what} {} {MAX_ID_LISTING_ATTEMPTS} times; splitting the report by fields instead",
                        self.params.name,
                        reason.describe()
                    ),
                );
                return self.split_fields(parent, cx);
            }
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: {what} {} (attempt {} of {MAX_ID_LISTING_ATTEMPTS}); starting it again",
                    self.params.name,
                    reason.describe(),
                    job.failures
                ),
            );
            job.state = JobState::Queued;
            self.queue.push_back(id);
            self.stats.retried += 1;
            return;
        }
        if retry {
            cx.log(LogLevel::Info, format!("{}: {what} {}; starting it again", self.params.name, reason.describe()));
            job.state = JobState::Queued;
            self.queue.push_back(id);
            self.stats.retried += 1;
        } else {
            cx.log(LogLevel::Info, format!("{}: {what} {}; splitting it", self.params.name, reason.describe()));
            job.state = JobState::Split;
            self.stats.split += 1;
            self.split(id, cx);
        }
    }

    fn split(&mut self, id: JobId, cx: &mut Cx) {
        let Some(job) = self.jobs.get(&id) else { return };
        let spec = job.spec.clone();
        match spec.purpose {
            Purpose::Rows { group: None } => {}
            // Half of a field split (one day, one object): only its fields can be halved again,
            // since its merge group counts exactly two members.
            Purpose::Rows { group: Some(_) } => return self.split_fields(id, cx),
            Purpose::ChildIds { .. } => return,
        }
        if spec.slices.len() > 1 {
            let mid = spec.slices.start + spec.slices.len() / 2;
            for range in [spec.slices.start..mid, mid..spec.slices.end] {
                let acct = &self.accounts[spec.account];
                let child = JobSpec {
                    since: acct.starts[range.start],
                    until: acct.ends[range.end - 1],
                    slices: range,
                    ..spec.clone()
                };
                self.add_job(child);
            }
            return self.uncover(id, cx);
        }
        if let Some(child) = spec.object_level.child().filter(|_| spec.object_level < self.params.level) {
            let earliest = cx.now.date_utc() - Days::days(RETENTION_DAYS - 1);
            let lister = JobSpec {
                slices: spec.slices.start..spec.slices.start,
                since: (spec.since - Days::days(CHILD_ID_LOOKBACK_DAYS)).max(earliest),
                fields: vec![child.id_field().unwrap_or("id").to_string()],
                purpose: Purpose::ChildIds { child, parent: id },
                ..spec.clone()
            };
            self.add_job(lister);
            return;
        }
        self.split_fields(id, cx);
    }

    /// Replaces a failing job by two with half of its non-key fields each, merged on the key;
    /// a job down to one such field cannot be split, and its stream fails with a config error.
    /// Whether a job asks for two or more fields outside the primary key, so that halving its
    /// fields leaves something on each side.
    fn splittable_fields(&self, spec: &JobSpec) -> bool {
        spec.fields.iter().filter(|f| !self.params.pk.contains(f)).count() > 1
    }

    fn split_fields(&mut self, id: JobId, cx: &mut Cx) {
        let Some(job) = self.jobs.get(&id) else { return };
        let spec = job.spec.clone();
        let Purpose::Rows { group } = spec.purpose.clone() else { return };
        let pk = &self.params.pk;
        let (keys, rest): (Vec<String>, Vec<String>) = spec.fields.iter().cloned().partition(|f| pk.contains(f));
        if rest.len() <= 1 {
            let field = rest.first().cloned().unwrap_or_default();
            let hint = if self.params.windows.iter().any(|w| w == "incrementality") {
                " or turn off include_incrementality"
            } else {
                ""
            };
            let e = ConnectorError::config(format!(
                "{}: meta cannot build the report even for the single field '{field}' ({}); unselect '{field}' in the catalog{hint}",
                self.params.name,
                describe(&spec)
            ));
            cx.log(LogLevel::Error, e.message.clone());
            self.failures.push(e);
            self.stream_failed = true;
            return;
        }
        self.next_group += 1;
        let g = GroupId(self.next_group);
        self.groups.insert(g, Group { rows: BTreeMap::new(), remaining: 2, parent: group });
        let half = rest.len() / 2;
        for part in [&rest[..half], &rest[half..]] {
            let mut fields = keys.clone();
            fields.extend(part.iter().cloned());
            self.add_job(JobSpec { fields, purpose: Purpose::Rows { group: Some(g) }, ..spec.clone() });
        }
        self.uncover(id, cx);
    }

    /// The id listing for `parent` finished: one job per child object replaces it.
    fn spawn_children(&mut self, parent: JobId, child: Level, ids: Vec<String>, cx: &mut Cx) {
        let Some(job) = self.jobs.get(&parent) else { return };
        let spec = job.spec.clone();
        if ids.is_empty() {
            cx.log(
                LogLevel::Info,
                format!(
                    "{}: {} has no {} with data; nothing to read",
                    self.params.name,
                    describe(&spec),
                    child.as_str()
                ),
            );
        }
        for object_id in ids {
            self.add_job(JobSpec { object_id, object_level: child, ..spec.clone() });
        }
        self.uncover(parent, cx);
    }
}

/// Half of `age`, or the time a job `percent` done after `age` needs to finish at the same pace
/// if that is sooner (but no less than a quarter of `age`).
fn job_poll_interval(age: Duration, percent: u32) -> Duration {
    let half = age / 2;
    if (1..100).contains(&percent) {
        let remaining = age.mul_f64(f64::from(100 - percent) / f64::from(percent));
        // Never sooner than a quarter of the age: a job that sits at 99 % is not polled every
        // 5 s (at most twice the polls of the half-age rule).
        half.min(remaining.max(age / 4))
    } else {
        half
    }
}

fn describe(spec: &JobSpec) -> String {
    let days =
        if spec.since == spec.until { spec.since.to_string() } else { format!("{}..{}", spec.since, spec.until) };
    let what = match &spec.purpose {
        Purpose::ChildIds { child, .. } => format!("{} id listing", child.as_str()),
        Purpose::Rows { group: Some(_), .. } => format!("report of {} fields", spec.fields.len()),
        Purpose::Rows { .. } => "report".to_string(),
    };
    format!("the {what} of {} {} for {days}", spec.object_level.as_str(), spec.object_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_polled_at_half_its_age_or_when_its_pace_says_it_is_done() {
        let s = Duration::from_secs;
        assert_eq!(job_poll_interval(s(10), 0), s(5), "no percentage yet: half the age");
        assert_eq!(job_poll_interval(s(10), 50), s(5), "half done in 10 s: done in 10 s more, half the age is sooner");
        assert_eq!(job_poll_interval(s(15), 75), s(5), "three quarters in 15 s: done in 5 s");
        assert_eq!(job_poll_interval(s(40), 100), s(20), "100 % but not completed: half the age");
        assert_eq!(job_poll_interval(s(40), 99), s(10), "99 %: a quarter of the age, not 0.4 s");
    }
}
