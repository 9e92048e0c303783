//! Async report runs (AdReportRun) on the virtual clock.
//!
//! A run's fate is decided when it is created — complete, too large, failed (first attempts),
//! skipped or stuck — from the config and the seed, and its rows are computed at that instant, so
//! later world edits cannot change a finished report. Its visible status is then a pure function
//! of the elapsed virtual time: `Job Not Started` → `Job Started` → `Job Running` (percent rising)
//! → the final state at `job_duration_ms`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::insights::Spec;
use crate::rng::mix;
use crate::time::date_str;

/// Report run ids expire after 30 days (Graph's documented retention).
pub const RUN_EXPIRY_MS: i64 = 30 * 86_400_000;

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Job Completed`, results readable.
    Completed,
    /// `Job Failed` with -3/1504045 "Report Too Large".
    TooLarge,
    /// `Job Failed` with -2/2490547 (scripted first-attempt failure).
    Failed,
    /// `Job Skipped`.
    Skipped,
    /// `Job Running` at 100 % forever.
    Stuck,
}

/// One report run.
#[derive(Debug, Clone)]
pub struct ReportRun {
    /// Report run id (a numeric string).
    pub id: String,
    /// Account index.
    pub account: usize,
    /// The validated query.
    pub spec: Spec,
    /// Creation instant, virtual ms.
    pub created_ms: i64,
    /// Time to the final state, ms.
    pub duration_ms: i64,
    /// Fate.
    pub outcome: Outcome,
    /// Result rows (empty unless completed).
    pub rows: Vec<Value>,
    /// Says `Job Running` at 100 % for the last fifth of its time (Graph's quirk).
    pub running_at_100: bool,
}

/// The visible state of a run at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// `async_status`.
    pub status: &'static str,
    /// `async_percent_completion`.
    pub percent: u64,
    /// Whether results may be read.
    pub completed: bool,
}

impl ReportRun {
    /// The state at `now_ms`.
    pub fn status(&self, now_ms: i64) -> Status {
        let elapsed = (now_ms - self.created_ms).max(0);
        let d = self.duration_ms.max(1);
        if elapsed < d / 10 {
            return Status { status: "Job Not Started", percent: 0, completed: false };
        }
        if elapsed < d / 5 {
            return Status { status: "Job Started", percent: 0, completed: false };
        }
        if elapsed < d {
            let pct =
                if self.running_at_100 && elapsed >= d * 4 / 5 { 100 } else { (elapsed * 100 / d).clamp(1, 99) as u64 };
            return Status { status: "Job Running", percent: pct, completed: false };
        }
        match self.outcome {
            Outcome::Completed => Status { status: "Job Completed", percent: 100, completed: true },
            Outcome::TooLarge | Outcome::Failed => Status { status: "Job Failed", percent: 100, completed: false },
            Outcome::Skipped => Status { status: "Job Skipped", percent: 100, completed: false },
            Outcome::Stuck => Status { status: "Job Running", percent: 100, completed: false },
        }
    }

    /// Whether the run still loads the insights backend at `now_ms` (stuck runs count for three
    /// durations, after which Graph has abandoned them).
    pub fn is_loading(&self, now_ms: i64) -> bool {
        let end = match self.outcome {
            Outcome::Stuck => self.created_ms + 3 * self.duration_ms,
            _ => self.created_ms + self.duration_ms,
        };
        now_ms >= self.created_ms && now_ms < end
    }

    /// The `GET /{report_run_id}` body.
    pub fn status_body(&self, account_id: &str, now_ms: i64) -> Value {
        let st = self.status(now_ms);
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("account_id".into(), json!(account_id));
        m.insert("time_ref".into(), json!(self.created_ms.div_euclid(1000)));
        m.insert("async_status".into(), json!(st.status));
        m.insert("async_percent_completion".into(), json!(st.percent));
        m.insert("date_start".into(), json!(date_str(self.spec.since)));
        m.insert("date_stop".into(), json!(date_str(self.spec.until)));
        m.insert(
            "is_running".into(),
            json!(st.status != "Job Completed" && st.status != "Job Failed" && st.status != "Job Skipped"),
        );
        if st.completed {
            m.insert("time_completed".into(), json!((self.created_ms + self.duration_ms).div_euclid(1000)));
        }
        if st.status == "Job Failed" {
            let (code, sub, title, msg) = match self.outcome {
                Outcome::TooLarge => (
                    -3,
                    1_504_045,
                    "Report Too Large",
                    "Your report was too large to be processed. Please reduce the date range, the number of fields or query a lower level.",
                ),
                _ => (-2, 2_490_547, "Report Failed", "Your report failed to run. Please try again later."),
            };
            m.insert("error_code".into(), json!(code));
            m.insert("error_subcode".into(), json!(sub));
            m.insert("error_message".into(), json!(msg));
            m.insert("error_user_title".into(), json!(title));
            m.insert("error_user_msg".into(), json!(msg));
        }
        Value::Object(m)
    }
}

/// All report runs and the per-query attempt counters.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    /// Runs by id.
    pub runs: BTreeMap<String, ReportRun>,
    /// Runs created so far for each (object, range, level) key.
    pub attempts: BTreeMap<String, u32>,
    /// Runs created so far (drives ids and fate draws).
    pub seq: u64,
}

impl Jobs {
    /// A fresh run id: a 15-digit numeric string, unique per sequence number.
    pub fn next_id(&mut self, seed: u64) -> (u64, String) {
        self.seq += 1;
        let id = 604_400_000_000_000u64 + self.seq * 1000 + mix(seed, &[700, self.seq]) % 1000;
        (self.seq, id.to_string())
    }

    /// Counts an attempt for a query key and returns how many came before it.
    pub fn attempt(&mut self, key: String) -> u32 {
        let e = self.attempts.entry(key).or_insert(0);
        let before = *e;
        *e += 1;
        before
    }

    /// Runs of an account loading the backend at `now_ms`.
    pub fn loading(&self, account: Option<usize>, now_ms: i64) -> usize {
        self.runs.values().filter(|r| account.is_none_or(|a| r.account == a) && r.is_loading(now_ms)).count()
    }
}
