//! One async report job: what it asks for, and where it is in its life.
//!
//! A job covers one object (the account, a campaign, an ad set or an ad), a run of consecutive
//! slices of one account, and a set of fields. It is created (`POST <object>/insights`), polled
//! until Graph says `Job Completed` at 100 %, then its result pages are read. A job that fails,
//! is skipped or outlives the timeout is started again once; after that it is split.

use crate::api::client::CallId;
use crate::api::paginator::Paginator;
use crate::model::{AccountId, Level};
use crate::time::Timestamp;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::ops::Range;

pub use crate::read::reader::JobId;

/// Identifies a group of field-split jobs whose rows are merged by primary key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u64);

/// What the job's rows are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Stream rows; merged into `group` first when the job is a field-split half.
    Rows { group: Option<GroupId> },
    /// Lists the ids of `child` objects with data, to split the job `parent`.
    ChildIds { child: Level, parent: JobId },
}

/// What one job asks Graph for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Index of the account in the reader's account list (its slices are there).
    pub account: usize,
    /// That account's id: the manager keeps no list of its own.
    pub account_id: AccountId,
    /// `act_<id>` or a campaign, ad set or ad id.
    pub object_id: String,
    pub object_level: Level,
    /// The account's slices this job covers (indexes into its slice list).
    pub slices: Range<usize>,
    /// The first and last day of each of those slices, so that the job can be split by days.
    pub spans: Vec<(NaiveDate, NaiveDate)>,
    pub since: NaiveDate,
    pub until: NaiveDate,
    /// Fields requested (primary-key fields included).
    pub fields: Vec<String>,
    pub purpose: Purpose,
    /// Why reading a report of this shape last failed, when its results could not be read (a
    /// redirect, a chain that cycles, a body that is not JSON) rather than Graph failing it: the
    /// pieces of a split inherit it, so that a split that ends names the real cause.
    pub unreadable: Option<String>,
}

/// Where a job is.
#[derive(Debug)]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    /// `POST .../insights` is under way.
    Creating { call: CallId },
    /// Graph is computing the report.
    Running { run_id: String, created_at: Timestamp, percent: u32 },
    /// Reading the result pages (`created_at` kept for the timeout, should Graph say the
    /// report is not ready after all).
    Reading { run_id: String, created_at: Timestamp, paginator: Paginator },
    /// Every row was handed over.
    Done,
    /// Replaced by its children (or waiting for the id listing that finds them).
    Split,
}

/// Why a job attempt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Failed { code: Option<i64>, subcode: Option<i64>, message: String },
    Skipped,
    TimedOut,
}

impl FailureReason {
    /// Graph's "Report Too Large": retrying the same shape cannot succeed.
    pub fn is_too_large(&self) -> bool {
        matches!(self, FailureReason::Failed { subcode, .. } if crate::api::classify::is_report_too_large(*subcode))
    }

    pub fn describe(&self) -> String {
        match self {
            FailureReason::Failed { code, subcode, message } => {
                let mut s = "Job Failed".to_string();
                if let Some(c) = code {
                    s.push_str(&format!(" (error {c}"));
                    if let Some(sc) = subcode {
                        s.push_str(&format!("/{sc}"));
                    }
                    s.push(')');
                }
                if !message.is_empty() {
                    s.push_str(&format!(": {message}"));
                }
                s
            }
            FailureReason::Skipped => "Job Skipped".into(),
            FailureReason::TimedOut => "timed out".into(),
        }
    }
}

/// One job.
#[derive(Debug)]
pub struct Job {
    pub spec: JobSpec,
    pub state: JobState,
    /// Failed attempts so far.
    pub failures: u32,
    /// Ids collected by a `ChildIds` job.
    pub child_ids: Vec<String>,
    /// The result-page cursor an earlier read of the sync stopped at: its rows are read from
    /// there.
    pub resume_after: Option<String>,
}

impl Job {
    pub fn new(spec: JobSpec) -> Self {
        Job { spec, state: JobState::Queued, failures: 0, child_ids: Vec::new(), resume_after: None }
    }

    pub fn is_in_flight(&self) -> bool {
        matches!(self.state, JobState::Creating { .. } | JobState::Running { .. })
    }

    /// Whether nothing more will happen to the job.
    pub fn is_settled(&self) -> bool {
        matches!(self.state, JobState::Done | JobState::Split)
    }

    fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running { .. })
    }
}

/// Jobs by state, kept as their states change: what scheduling asks on every step.
#[derive(Debug, Default)]
struct Counts {
    /// Jobs Graph is computing (being created or running).
    in_flight: usize,
    /// Jobs running, waiting for polls.
    running: usize,
    in_flight_by_account: BTreeMap<usize, usize>,
}

impl Counts {
    /// Counts `job` in (`add`) or out.
    fn count(&mut self, job: &Job, add: bool) {
        let step = |n: &mut usize| *n = if add { *n + 1 } else { n.saturating_sub(1) };
        if job.is_in_flight() {
            step(&mut self.in_flight);
            step(self.in_flight_by_account.entry(job.spec.account).or_default());
        }
        if job.is_running() {
            step(&mut self.running);
        }
    }
}

/// One manager's jobs not yet settled (and those a settled job still needs: a split job waiting
/// for its id listing), with the counts scheduling asks for kept as states change. A settled
/// job is removed once nothing needs it, so the map holds what is live, not the whole sync.
#[derive(Debug, Default)]
pub struct Jobs {
    map: BTreeMap<JobId, Job>,
    counts: Counts,
}

impl Jobs {
    pub fn insert(&mut self, id: JobId, job: Job) {
        self.counts.count(&job, true);
        if let Some(old) = self.map.insert(id, job) {
            self.counts.count(&old, false);
        }
    }

    pub fn get(&self, id: &JobId) -> Option<&Job> {
        self.map.get(id)
    }

    /// The job, to change anything but its state (see [`Jobs::set_state`]).
    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut Job> {
        self.map.get_mut(id)
    }

    /// Moves job `id` to `state`, counting it again.
    pub fn set_state(&mut self, id: &JobId, state: JobState) {
        if let Some(job) = self.map.get_mut(id) {
            self.counts.count(job, false);
            job.state = state;
            self.counts.count(job, true);
        }
    }

    /// Whether the counts are those of the jobs (debug builds check it as the manager runs).
    pub fn counts_hold(&self) -> bool {
        let mut fresh = Counts::default();
        for job in self.map.values() {
            fresh.count(job, true);
        }
        fresh.in_flight_by_account.retain(|_, n| *n > 0);
        let mut kept = self.counts.in_flight_by_account.clone();
        kept.retain(|_, n| *n > 0);
        fresh.in_flight == self.counts.in_flight
            && fresh.running == self.counts.running
            && fresh.in_flight_by_account == kept
    }

    pub fn remove(&mut self, id: &JobId) -> Option<Job> {
        let job = self.map.remove(id)?;
        self.counts.count(&job, false);
        Some(job)
    }

    pub fn values(&self) -> impl Iterator<Item = &Job> {
        self.map.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&JobId, &Job)> {
        self.map.iter()
    }

    /// The ids of the jobs `which` picks, in order.
    pub fn ids(&self, which: impl Fn(&Job) -> bool) -> Vec<JobId> {
        self.map.iter().filter(|(_, j)| which(j)).map(|(id, _)| *id).collect()
    }

    /// Jobs Graph is computing now (being created or running).
    pub fn in_flight(&self) -> usize {
        self.counts.in_flight
    }

    /// As [`Jobs::in_flight`], for one account.
    pub fn in_flight_for(&self, account: usize) -> usize {
        self.counts.in_flight_by_account.get(&account).copied().unwrap_or(0)
    }

    /// Whether a job is running (waiting for a poll to say it is done).
    pub fn any_running(&self) -> bool {
        self.counts.running > 0
    }
}

/// The report run id of a job creation's answer: Graph sends a string of digits (its docs show a
/// number); `None` when the answer holds neither.
pub fn report_run_id(body: &serde_json::Value) -> Option<String> {
    let r = body.get("report_run_id")?;
    r.as_str().map(str::to_string).or_else(|| r.as_u64().map(|n| n.to_string())).filter(|s| !s.is_empty())
}

/// A report run's status as Graph reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Pending { percent: u32 },
    Completed,
    Failed(FailureReason),
}

/// Reads `GET /<report_run_id>`. Only `Job Completed` at 100 % means done: Graph shows 100 %
/// while still `Job Running`, and `Job Failed` may show 100 % too.
pub fn parse_status(body: &serde_json::Value) -> Option<RunStatus> {
    let status = body.get("async_status")?.as_str()?;
    let percent = body
        .get("async_percent_completion")
        .and_then(|p| p.as_u64().or_else(|| p.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(0) as u32;
    let num = |k: &str| body.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
    Some(match status {
        "Job Completed" if percent >= 100 => RunStatus::Completed,
        "Job Failed" => RunStatus::Failed(FailureReason::Failed {
            code: num("error_code"),
            subcode: num("error_subcode"),
            message: body.get("error_message").and_then(|m| m.as_str()).unwrap_or("").to_string(),
        }),
        "Job Skipped" => RunStatus::Failed(FailureReason::Skipped),
        _ => RunStatus::Pending { percent },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_completed_at_one_hundred_percent_is_done() {
        assert_eq!(
            parse_status(&json!({"async_status": "Job Running", "async_percent_completion": 100})),
            Some(RunStatus::Pending { percent: 100 })
        );
        assert_eq!(
            parse_status(&json!({"async_status": "Job Completed", "async_percent_completion": 100})),
            Some(RunStatus::Completed)
        );
        assert_eq!(
            parse_status(&json!({"async_status": "Job Completed", "async_percent_completion": 90})),
            Some(RunStatus::Pending { percent: 90 })
        );
        let failed = parse_status(&json!({"async_status": "Job Failed", "async_percent_completion": 100, "error_code": -3, "error_subcode": 1504045})).unwrap();
        let RunStatus::Failed(reason) = failed else { panic!() };
        assert!(reason.is_too_large());
        assert_eq!(
            parse_status(&json!({"async_status": "Job Skipped"})),
            Some(RunStatus::Failed(FailureReason::Skipped))
        );
        assert_eq!(parse_status(&json!({"id": "1"})), None);
    }
}
