//! The job manager: it owns one insights stream's report jobs. It starts them while there is
//! room and the insights load of their account allows, polls the running ones (through the
//! sync's [`super::polls::PollHub`], whose batches the streams share) on an interval that grows
//! with their age, reads the results of completed ones, and retries, then splits, the ones that
//! fail. It hands its reader [`JobEvent`]s: rows to emit, slices a job
//! starts or stops covering, an account or the stream failed.
//!
//! Split order: a job above the stream's level is split into its child objects over the same
//! days (found by a small id-listing job over the 29 days before the slice); a job at the
//! stream's level covering several days is split by days; a one-day job at the stream's level,
//! or one whose id listing failed [`MAX_ID_LISTING_ATTEMPTS`] times, is split into two halves
//! of its fields, whose rows are merged by primary key. A single field that still fails ends the stream with a config error
//! naming it.
//!
//! A running job times out only when a poll answers (or fails) after the timeout has passed.
//!
//! Contract: the owner routes to [`JobManager::on_outcome`] every outcome of a call the
//! manager made (the manager's own table knows them; any other call is a contract error), to
//! [`JobManager::on_polled`] the answers of the polls it handed the hub, calls
//! [`JobManager::on_timeout`] when [`JobManager::poll_timeout`] passes, and after any input
//! drains [`JobManager::poll_event`] in order: a slice's `Covered` comes before its `Released`,
//! and an account's failure before the release of its slices.

mod results;
mod schedule;
mod split;

use super::job::{
    FailureReason, GroupId, Job, JobId, JobSpec, JobState, Jobs, Purpose, RunStatus, parse_status, report_run_id,
};
use super::params::Params;
use super::{CHILD_ID_LOOKBACK_DAYS, RETENTION_DAYS};
use crate::api::Calls;
use crate::api::client::{Call, CallError, CallFailure, CallId, CallKind, CallOutcome};
use crate::api::paginator::{Paginator, Paging, Step};
use crate::api::throttle::INSIGHTS_THROTTLE_LIMIT;
use crate::commands::graph_url;
use crate::driver::TimeoutReason;
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::model::Level;
use crate::protocol::LogLevel;
use crate::read::common::Routes;
use crate::read::fields::Answer;
pub use crate::read::reader::{JobStats, Splits};
use crate::read::reader::{PollResult, Turn};
use crate::read::transcode;
use crate::time::Timestamp;
use crate::timers::{Deadline, Timers};
use chrono::{Duration as Days, NaiveDate};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

/// 100: report runs in flight per ad account and stream (Airbyte's cap, which is per account
/// too); their polls go 50 to a batch. Graph's bounds on report runs are per account (its
/// insights load and business-use-case budget) and per app (the app's insights load, which
/// holds every account's new jobs when high).
pub const MAX_IN_FLIGHT: usize = 100;
/// 1,000: report runs in flight per stream in all: what a stream holds of them stays under a
/// megabyte, however many accounts it reads (ten at once for each of a hundred accounts).
pub const MAX_IN_FLIGHT_IN_ALL: usize = 1_000;
/// 5 s: the first poll after a job starts, and the shortest interval.
pub const MIN_POLL: Duration = Duration::from_secs(5);
/// 1 s: the shortest interval when a job's reported pace says it is about to finish.
pub const MIN_PACED_POLL: Duration = Duration::from_secs(1);
/// 30 s: the longest interval between polls (Airbyte polls at a fixed 30 s).
pub const MAX_POLL: Duration = Duration::from_secs(30);
/// 60 s: how long to wait before asking for the insights load again when it blocks new jobs.
pub const THROTTLE_RECHECK: Duration = Duration::from_secs(60);
/// 5: attempts of an id-listing report (skipped, stuck or failed) before its report is split
/// by fields instead.
pub const MAX_ID_LISTING_ATTEMPTS: u32 = 5;
/// 500: the most rows per result page. Graph documents no maximum; a page Graph finds too large
/// is halved ("reduce the amount of data"), as listings are. Five times fewer requests than
/// Airbyte's 100 for large reports of narrow rows.
pub const RESULT_PAGE_SIZE: u32 = 500;
/// 1 MiB: the size a page of stream rows aims at. A page is held whole twice on its way in
/// (the host's buffer, then the guest's copy), so its size, not the number of pages in flight,
/// sets a sync's memory: rows of the widest reports are 4 to 9 KiB, and 500 of them were a
/// 4 MiB page (DESIGN.md, "Memory").
pub const RESULT_PAGE_BYTES: u64 = 1 << 20;
/// 100: rows asked for in a stream's first result page, before any row's size is known.
pub const FIRST_RESULT_PAGE_ROWS: u32 = 100;
/// 25: the fewest rows a page is sized to, however wide its rows.
pub const MIN_RESULT_PAGE_ROWS: u32 = 25;
/// 1 s: poll deadlines are rounded up to whole seconds, so that streams whose jobs run side by
/// side poll at the same instant and share their batch requests.
pub const POLL_GRID: Duration = Duration::from_secs(1);

/// A row for the reader to emit.
#[derive(Debug, PartialEq)]
pub enum Row {
    /// A record's JSON, transcoded straight from Graph's bytes.
    Encoded(String),
    /// A record merged from the halves of a field split.
    Merged(Map<String, Value>),
}

/// What the manager tells its reader, in order.
#[derive(Debug, PartialEq)]
pub enum JobEvent {
    /// A new job covers these slices of the account.
    Covered { account: usize, slices: Range<usize> },
    /// A job no longer covers these slices (read, split or given up): a slice no job covers
    /// any more is complete.
    Released { account: usize, slices: Range<usize> },
    /// Rows of the account's jobs, to emit as records.
    Rows { account: usize, rows: Vec<Row> },
    /// The account cannot be read: its jobs are dropped, its slices will not complete.
    AccountFailed { account: usize, error: ConnectorError },
    /// The stream cannot be read at all: no job of it goes on.
    StreamFailed(ConnectorError),
}

/// Rows of field-split jobs waiting for their sibling halves.
#[derive(Debug)]
struct Group {
    rows: BTreeMap<String, Map<String, Value>>,
    remaining: u32,
    parent: Option<GroupId>,
}

/// What a call of the manager is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// `POST .../insights` of this job.
    Create(JobId),
    /// A result page of this job.
    Results(JobId),
    /// A small insights read, for the insights load in its headers.
    Ping,
}

/// The manager's deadlines; on a tie the poll goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Poll,
    ThrottleRecheck,
}

/// A report run carried from one read of a sync to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumedRun {
    pub run_id: String,
    pub created_at: Timestamp,
    /// The cursor of its first result page not yet read, when some were.
    pub after: Option<String>,
    /// Failed attempts of its job before this run: a job that keeps failing is still split.
    pub failures: u32,
}

/// Owns one stream's report jobs. See the module docs for the calling contract.
pub struct JobManager {
    params: Params,
    failed: BTreeSet<usize>,
    jobs: Jobs,
    queue: VecDeque<JobId>,
    groups: BTreeMap<GroupId, Group>,
    routes: Routes<Pending>,
    /// Polls handed to the hub whose answers have not come back.
    polls_out: usize,
    timers: Timers<Timer>,
    events: VecDeque<JobEvent>,
    next_job: u64,
    next_group: u64,
    /// A job could not be read even at a single field: nothing more of the stream is done.
    stopped: bool,
    /// Runs an earlier read of the sync left were taken on: poll them at once.
    poll_soon: bool,
    /// The bytes of a stream row as Graph sends it, from the last page read: result pages are
    /// sized to [`RESULT_PAGE_BYTES`] by it.
    row_bytes: Option<u64>,
    stats: JobStats,
}

impl JobManager {
    pub fn new(params: Params) -> Self {
        JobManager {
            params,
            failed: BTreeSet::new(),
            jobs: Jobs::default(),
            queue: VecDeque::new(),
            groups: BTreeMap::new(),
            routes: Routes::new("insights job manager"),
            polls_out: 0,
            timers: Timers::default(),
            events: VecDeque::new(),
            next_job: 0,
            next_group: 0,
            stopped: false,
            poll_soon: false,
            row_bytes: None,
            stats: JobStats::default(),
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn stats(&self) -> JobStats {
        self.stats
    }

    /// Report runs Graph is computing now.
    pub fn jobs_running(&self) -> u32 {
        self.jobs.in_flight() as u32
    }

    /// The next event for the reader.
    pub fn poll_event(&mut self) -> Option<JobEvent> {
        self.events.pop_front()
    }

    /// Whether the manager has nothing left to do and no call in flight.
    pub fn is_idle(&self) -> bool {
        self.routes.is_empty() && self.polls_out == 0 && (self.stopped || self.jobs.values().all(Job::is_settled))
    }

    pub fn poll_timeout(&self) -> Option<Deadline> {
        self.timers.soonest()
    }

    /// Queues a job; it covers its slices from now on.
    pub fn add_job(&mut self, spec: JobSpec) -> JobId {
        self.next_job += 1;
        let id = JobId(self.next_job);
        if let Purpose::Rows { .. } = spec.purpose {
            self.events.push_back(JobEvent::Covered { account: spec.account, slices: spec.slices.clone() });
        }
        self.jobs.insert(id, Job::new(spec));
        self.queue.push_back(id);
        id
    }

    /// Takes on a report run an earlier read of the sync created at `created_at` (see
    /// `read::resume`): it is polled at once, its rows read from `after` when the earlier read
    /// had read some, and it covers its slices from now on.
    pub fn add_running(&mut self, spec: JobSpec, run: ResumedRun) -> JobId {
        self.next_job += 1;
        let id = JobId(self.next_job);
        self.events.push_back(JobEvent::Covered { account: spec.account, slices: spec.slices.clone() });
        let mut job = Job::new(spec);
        // Not yet in the map: the map counts it as it goes in.
        job.state = JobState::Running { run_id: run.run_id, created_at: run.created_at, percent: 0 };
        job.resume_after = run.after;
        job.failures = run.failures;
        self.jobs.insert(id, job);
        self.poll_soon = true;
        id
    }

    /// The account-level report runs of `account` that Graph computes or whose rows are being
    /// read: what a time box hands to the next read.
    pub fn resumable_runs(&self, account: usize) -> Vec<(ResumedRun, NaiveDate, NaiveDate)> {
        self.jobs
            .values()
            .filter(|j| {
                j.spec.account == account
                    && j.spec.object_level == Level::Account
                    && j.spec.purpose == Purpose::Rows { group: None }
            })
            .filter_map(|j| {
                let run = match &j.state {
                    JobState::Running { run_id, created_at, .. } => ResumedRun {
                        run_id: run_id.clone(),
                        created_at: *created_at,
                        after: j.resume_after.clone(),
                        failures: j.failures,
                    },
                    JobState::Reading { run_id, created_at, paginator } => ResumedRun {
                        run_id: run_id.clone(),
                        created_at: *created_at,
                        after: paginator.requested_after().map(str::to_string),
                        failures: j.failures,
                    },
                    _ => return None,
                };
                Some((run, j.spec.since, j.spec.until))
            })
            .collect()
    }

    /// Drops the jobs of `account`, which its reader gave up on; answers still on their way find
    /// no job and are ignored when they come.
    pub fn drop_account(&mut self, account: usize) {
        self.failed.insert(account);
        for id in self.jobs.ids(|j| j.spec.account == account && !j.is_settled()) {
            self.jobs.remove(&id);
        }
    }

    /// Forgets job `id` once it is settled: nothing of it is asked for again.
    fn prune(&mut self, id: JobId) {
        if self.jobs.get(&id).is_some_and(Job::is_settled) {
            self.jobs.remove(&id);
        }
    }

    fn fail_account(&mut self, account: usize, error: ConnectorError) {
        if self.failed.contains(&account) {
            return;
        }
        self.drop_account(account);
        self.events.push_back(JobEvent::AccountFailed { account, error });
    }

    fn pinging(&self) -> bool {
        self.routes.values().any(|p| *p == Pending::Ping)
    }

    /// The outcome of one of the manager's calls.
    pub fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Turn) -> Result<(), ConnectorError> {
        let pending = self.routes.take(call)?;
        if self.stopped {
            // The stream failed: answers still on their way change nothing.
            return Ok(());
        }
        match pending {
            Pending::Ping => {}
            Pending::Create(id) => self.on_created(id, outcome, cx),
            Pending::Results(id) => self.on_result_page(id, call, outcome, cx)?,
        }
        self.schedule(cx);
        Ok(())
    }

    fn on_created(&mut self, id: JobId, outcome: CallOutcome, cx: &mut Turn) {
        let Some(job) = self.jobs.get(&id) else { return };
        let account = job.spec.account;
        let run_id = match &outcome {
            Ok(reply) => report_run_id(&reply.json),
            Err(_) => None,
        };
        match (run_id, outcome) {
            (Some(run_id), _) => {
                self.jobs.set_state(&id, JobState::Running { run_id, created_at: cx.now, percent: 0 });
            }
            (None, Err(e)) if self.drop_refused(id, &e, cx) => {}
            (None, Err(e)) => {
                self.jobs.set_state(&id, JobState::Done);
                // Fail the account first: its slices must not count as read when this job
                // stops covering them (regression: soak seeds 26 and 166 checkpointed days
                // whose report was never created).
                self.fail_account(account, e.error);
                self.uncover(id);
            }
            (None, Ok(_)) => self.job_failed(
                id,
                FailureReason::Failed { code: None, subcode: None, message: "no report_run_id in the answer".into() },
                cx,
            ),
        }
    }

    /// Graph refused part of a job's request. Fields and action breakdowns it no longer
    /// serves are dropped from the stream's jobs and the job is created again (a custom
    /// insight's, whose fields the user chose, ends the stream instead); a refused breakdown
    /// ends the stream. False when the refusal is no reason to drop anything.
    fn drop_refused(&mut self, id: JobId, e: &CallError, cx: &mut Turn) -> bool {
        let Some(job) = self.jobs.get(&id) else { return false };
        if !matches!(job.spec.purpose, Purpose::Rows { .. }) {
            return false;
        }
        let version = cx.config.api_version.clone();
        let in_request = job.spec.fields.clone();
        let params = &mut self.params;
        let dropped =
            match params.refusals.judge(&mut params.fields, &e.failure, &in_request, &version, e.error.detail()) {
                None | Some(Answer::Keep(_)) => return false,
                Some(Answer::Stop(error)) => {
                    self.stop(error);
                    return true;
                }
                Some(Answer::Retry(dropped)) => dropped,
            };
        if !dropped.names().is_empty() {
            cx.log(LogLevel::Info, self.params.refusals.report_again(&dropped, &version));
        }
        // The refused fields leave this job and every job not yet created; jobs already sent
        // keep theirs until Graph answers them (their refusal names what they asked for).
        let refused = self.params.fields.refused();
        for job_id in self.jobs.ids(|j| matches!(j.state, JobState::Queued)).into_iter().chain([id]) {
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.spec.fields.retain(|f| !refused.contains(f));
            }
        }
        if self.jobs.get(&id).is_some() {
            self.jobs.set_state(&id, JobState::Queued);
            self.queue.push_back(id);
        }
        true
    }

    /// Ends the stream: nothing more of it is done.
    fn stop(&mut self, e: ConnectorError) {
        self.stopped = true;
        self.timers = Timers::default();
        self.events.push_back(JobEvent::StreamFailed(e));
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
    use crate::config::Config;
    use crate::http::split_query;
    use crate::read::testing::{Delivery, Harness};
    use crate::streams::{Stream, all_streams};
    use serde_json::json;

    const T0: i64 = 1_781_517_600_000;

    /// A manager of `ads_insights` for account 1, and the world it acts in.
    struct Rig {
        h: Harness,
        mgr: JobManager,
    }

    impl Rig {
        fn new(timeout_min: u32) -> Rig {
            let now = Timestamp::from_millis(T0);
            let config = Config::parse(
                &json!({"account_ids": ["1"], "credentials": {"access_token": "t"}, "insights_job_timeout": timeout_min})
                    .to_string(),
                now,
            )
            .unwrap();
            let Some(Stream::Insight(def)) = all_streams(&config).into_iter().find(|s| s.name() == "ads_insights")
            else {
                panic!("ads_insights")
            };
            let params = Params::new(&def, crate::catalog::SyncMode::Incremental, &[], &config);
            let mgr = JobManager::new(params);
            Rig { h: Harness::new(config, now), mgr }
        }

        /// One day's job of account 0.
        fn add_day(&mut self) -> JobId {
            self.add("2026-06-14")
        }

        /// The job of `day` for account 0.
        fn add(&mut self, day: &str) -> JobId {
            let day: chrono::NaiveDate = day.parse().unwrap();
            let spec = JobSpec {
                account: 0,
                account_id: "1".into(),
                object_id: "act_1".into(),
                object_level: Level::Account,
                slices: 0..1,
                spans: vec![(day, day)],
                since: day,
                until: day,
                fields: self.mgr.params().fields.requested(),
                purpose: Purpose::Rows { group: None },
                unreadable: None,
            };
            let id = self.mgr.add_job(spec);
            self.h.turn(|cx| self.mgr.schedule(cx));
            id
        }

        /// Answers the next request with `body` (HTTP `status`) at the rig's time, hands the
        /// outcome to the manager (through the poll hub, for a poll), and returns the request.
        fn answer(&mut self, status: u16, body: serde_json::Value) -> Result<Request, ConnectorError> {
            self.answer_with(status, body, Vec::new())
        }

        fn answer_with(
            &mut self,
            status: u16,
            body: serde_json::Value,
            headers: Vec<(String, String)>,
        ) -> Result<Request, ConnectorError> {
            let (request, delivery) = self.h.answer_with(status, &body, headers);
            match delivery {
                Some(Delivery::Outcome(call, outcome)) => self.h.turn(|cx| self.mgr.on_outcome(call, outcome, cx))?,
                Some(Delivery::Polled(results)) => self.h.turn(|cx| self.mgr.on_polled(results, cx)),
                None => {}
            }
            Ok(request)
        }

        fn at(&mut self, ms_after_t0: i64) {
            self.h.now = Timestamp::from_millis(T0 + ms_after_t0);
            self.h.api.handle_timeout(self.h.now);
        }

        fn tick(&mut self) {
            self.h.turn(|cx| self.mgr.on_timeout(cx));
        }

        fn events(&mut self) -> Vec<JobEvent> {
            std::iter::from_fn(|| self.mgr.poll_event()).collect()
        }
    }

    fn batch(bodies: &[serde_json::Value]) -> serde_json::Value {
        bodies.iter().map(|b| json!({"code": 200, "body": b.to_string()})).collect()
    }

    fn polled_ids(request: &Request) -> Vec<String> {
        let (_, form) = split_query(&format!("?{}", String::from_utf8_lossy(request.body.as_deref().unwrap())));
        let ops: Vec<serde_json::Value> =
            serde_json::from_str(&form.iter().find(|(k, _)| k == "batch").unwrap().1).unwrap();
        ops.iter().map(|o| o["relative_url"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn a_job_is_created_polled_at_five_seconds_then_by_its_pace_and_read() {
        let mut r = Rig::new(60);
        r.add_day();
        let create = r.answer(200, json!({"report_run_id": "r1"})).unwrap();
        assert!(create.url.ends_with("/v25.0/act_1/insights"), "{}", create.url);
        assert_eq!(r.mgr.poll_timeout(), Some((Timestamp::from_millis(T0 + 5_000), TimeoutReason::JobPoll)));
        r.at(5_000);
        r.tick();
        let poll =
            r.answer(200, batch(&[json!({"async_status": "Job Running", "async_percent_completion": 50})])).unwrap();
        assert_eq!(polled_ids(&poll), ["r1/"]);
        // 5 s old and half done: half its age (2.5 s) is below the 5 s floor.
        assert_eq!(r.mgr.poll_timeout(), Some((Timestamp::from_millis(T0 + 10_000), TimeoutReason::JobPoll)));
        r.at(10_000);
        r.tick();
        r.answer(200, batch(&[json!({"async_status": "Job Completed", "async_percent_completion": 100})])).unwrap();
        assert_eq!(r.mgr.poll_timeout(), None, "nothing runs: no poll is due");
        let results =
            r.answer(200, json!({"data": [{"ad_id": "9", "date_start": "2026-06-14", "impressions": "3"}]})).unwrap();
        assert!(results.url.contains(&format!("/r1/insights?limit={FIRST_RESULT_PAGE_ROWS}")), "{}", results.url);
        let events = r.events();
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0], JobEvent::Covered { account: 0, slices: 0..1 });
        let JobEvent::Rows { account: 0, rows } = &events[1] else { panic!("{events:?}") };
        assert_eq!(
            rows,
            &[Row::Encoded(r#"{"ad_id":"9","date_start":"2026-06-14","impressions":3,"account_id":"1"}"#.into())]
        );
        assert_eq!(events[2], JobEvent::Released { account: 0, slices: 0..1 });
        assert!(r.mgr.is_idle());
        assert_eq!(r.mgr.stats(), JobStats { started: 1, completed: 1, ..JobStats::default() });
        assert_eq!(r.mgr.jobs.iter().count(), 0, "a job read leaves the map");
        assert_eq!((r.mgr.jobs.in_flight(), r.mgr.jobs_running()), (0, 0));
    }

    /// Regression: soak seeds 26 and 166 checkpointed days whose report was never created, as
    /// the job released its slices before its account was failed.
    #[test]
    fn a_job_whose_creation_fails_for_good_fails_its_account_before_releasing_its_slices() {
        let mut r = Rig::new(60);
        r.add_day();
        let denied = json!({"error": {"message": "(#200) Requires ads_read", "type": "OAuthException", "code": 200}});
        r.answer(403, denied).unwrap();
        let events = r.events();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(events[0], JobEvent::Covered { .. }));
        assert!(matches!(events[1], JobEvent::AccountFailed { account: 0, .. }), "{events:?}");
        assert_eq!(events[2], JobEvent::Released { account: 0, slices: 0..1 });
        assert!(r.mgr.is_idle());
    }

    /// Regression: soak seed 26 restarted reports every hour while their polls waited out
    /// 600 s quota blocks; a job is late only when a poll says it still runs.
    #[test]
    fn a_job_past_its_timeout_is_restarted_only_when_a_poll_answers() {
        let mut r = Rig::new(1);
        r.add_day();
        r.answer(200, json!({"report_run_id": "r1"})).unwrap();
        // Two hours pass with no poll (throttled): nothing happens by the clock alone.
        r.at(7_200_000);
        assert!(r.h.api.poll_transmit().is_none());
        assert_eq!(r.mgr.stats().timed_out, 0);
        r.tick();
        r.answer(200, batch(&[json!({"async_status": "Job Running", "async_percent_completion": 40})])).unwrap();
        assert_eq!(r.mgr.stats().timed_out, 1);
        assert_eq!(r.mgr.stats().retried, 1);
        let again = r.answer(200, json!({"report_run_id": "r2"})).unwrap();
        assert!(again.url.ends_with("/act_1/insights"), "a fresh report run: {}", again.url);
        assert_eq!(r.mgr.stats().started, 2);
    }

    #[test]
    fn a_job_failing_twice_at_account_level_is_split_through_a_campaign_id_listing() {
        let mut r = Rig::new(60);
        r.add_day();
        for (n, run) in ["r1", "r2"].into_iter().enumerate() {
            r.answer(200, json!({"report_run_id": run})).unwrap();
            r.at(5_000 * (n as i64 + 1));
            r.tick();
            r.answer(200, batch(&[json!({"async_status": "Job Failed", "async_percent_completion": 100})])).unwrap();
        }
        let lister = r.h.api.poll_transmit().map(|(_, req)| req).expect("the id listing is created");
        let body = String::from_utf8_lossy(lister.body.as_deref().unwrap()).into_owned();
        let (_, form) = split_query(&format!("?{body}"));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!((get("level").as_str(), get("fields").as_str()), ("campaign", r#"["campaign_id"]"#));
        assert_eq!(get("time_range"), r#"{"since":"2026-05-16","until":"2026-06-14"}"#, "29 days before the slice");
        let stats = r.mgr.stats();
        assert_eq!((stats.retried, stats.split, stats.splits.account_to_campaigns), (1, 1, 1), "{stats:?}");
    }

    #[test]
    fn new_jobs_wait_while_the_accounts_insights_load_is_at_the_limit_then_go() {
        let mut r = Rig::new(60);
        let load = |pct: u32| {
            let value = format!(r#"{{"app_id_util_pct":5,"acc_id_util_pct":{pct}}}"#);
            vec![("x-fb-ads-insights-throttle".to_string(), value)]
        };
        r.add("2026-06-13");
        r.answer_with(200, json!({"report_run_id": "r1"}), load(95)).unwrap();
        r.add("2026-06-14");
        assert!(r.h.api.poll_transmit().is_none(), "the second job waits while the load is 95 %");
        // The first job's answers tell the load again while it runs; once it is read, nothing
        // would: the load is asked for a minute later.
        r.at(5_000);
        r.tick();
        let done = json!({"async_status": "Job Completed", "async_percent_completion": 100}).to_string();
        r.answer(200, json!([{"code": 200, "body": done}])).unwrap();
        r.answer_with(200, json!({"data": []}), load(95)).unwrap();
        assert!(r.h.api.poll_transmit().is_none(), "still held");
        let said: Vec<String> = r.h.messages.iter().map(crate::protocol::Message::to_json_line).collect();
        assert!(
            said.iter().any(|l| l.contains("insights load of ad account 1 at 95 %; holding its new jobs")),
            "{said:?}"
        );
        assert_eq!(r.mgr.poll_timeout(), Some((Timestamp::from_millis(T0 + 65_000), TimeoutReason::ThrottlePause)));
        r.at(65_000);
        r.tick();
        let ping = r.answer_with(200, json!({"data": []}), load(40)).unwrap();
        assert!(ping.url.contains("/act_1/insights?fields=account_id&limit=1"), "{}", ping.url);
        let create = r.h.api.poll_transmit().map(|(_, req)| req).expect("the held job is created now");
        assert!(create.url.ends_with("/act_1/insights"), "{}", create.url);
        assert_eq!(r.mgr.stats().started, 2);
    }

    #[test]
    fn an_answer_to_a_call_the_manager_did_not_make_is_a_contract_error() {
        let mut r = Rig::new(60);
        let e = r.h.turn(|cx| {
            r.mgr.on_outcome(
                CallId(99),
                Err(crate::api::client::CallError {
                    failure: CallFailure::Other,
                    error: ConnectorError::misbehaving("x", ""),
                    graph: None,
                }),
                cx,
            )
        });
        assert!(matches!(e, Err(ConnectorError::Contract { .. })), "{e:?}");
    }
}
