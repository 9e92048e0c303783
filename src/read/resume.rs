//! Time-boxed reads: the mark a stream's state carries between the reads of one sync.
//!
//! With `max_duration_seconds`, a read stops when its time is up and emits, for every stream, a
//! STATE whose blob carries one extra key, [`KEY`]: whether the stream was finished in this sync
//! (`done`), or how far it got (`reading`, with what its reader needs to go on). The next read,
//! given those states, skips the streams already done and lets the others go on from where
//! they stopped, so that a chain of reads is one sync cut into pieces. When a read ends the sync
//! (no time box reached), the streams finished in earlier reads get their state back without
//! the mark.
//!
//! The mark is one key among the stream's account ids, which Airbyte's connector does not look
//! at: a state with marks stays readable by it, and by this connector without a time box.

use crate::time::Timestamp;
use serde_json::{Map, Value, json};

/// The key of the mark in a stream's state blob.
pub const KEY: &str = "sfm_resume";

/// 25 days: report runs older than this are not polled again. Graph keeps a `report_run_id`
/// for 30 days (graph-api.md §4.1); a chain that old starts its jobs afresh.
pub const MAX_RUN_AGE_DAYS: i64 = 25;

/// Where a stream stood when the last read of the chain stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// The stream was read to its end in this sync.
    Done,
    /// The stream was being read; `progress` is its reader's, to go on from.
    Reading { progress: Value },
}

/// A stream's incoming state, its mark taken out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Incoming {
    /// The state without the mark (`None` when the mark was all it held).
    pub state: Option<Value>,
    pub mark: Option<Mark>,
    /// When the sync the mark belongs to began.
    pub sync_started: Option<Timestamp>,
}

/// What a reader hands over when the time box ends its read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suspended {
    /// Its state now (as its last STATE said, or newer), for incremental streams.
    pub state: Option<Value>,
    /// What it read of the sync so far, for its next read (`Value::Null`: nothing to go on
    /// from, the stream is read again from its state).
    pub progress: Value,
}

/// What a resumed reader is told: when the sync began, and its own progress.
#[derive(Clone, Copy, Debug)]
pub struct Resume<'a> {
    pub sync_started: Timestamp,
    pub progress: &'a Value,
}

/// A reader's progress by account: `{"accounts": {"<id>": "done" | {what the reader keeps}}}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accounts(pub Map<String, Value>);

impl Accounts {
    /// The accounts of a resumed reader's progress (none without one).
    pub fn of(resume: Option<Resume>) -> Self {
        let map = resume.and_then(|r| r.progress.get("accounts")?.as_object().cloned()).unwrap_or_default();
        Accounts(map)
    }

    /// Whether `account` was read to its end in this sync.
    pub fn is_done(&self, account: &str) -> bool {
        self.0.get(account).and_then(Value::as_str) == Some("done")
    }

    /// What the reader kept of `account`, read part way.
    pub fn partial(&self, account: &str) -> Option<&Map<String, Value>> {
        self.0.get(account)?.as_object()
    }

    pub fn set_done(&mut self, account: &str) {
        self.0.insert(account.to_string(), Value::from("done"));
    }

    pub fn set_partial(&mut self, account: &str, kept: Map<String, Value>) {
        self.0.insert(account.to_string(), Value::Object(kept));
    }

    /// The progress to hand over.
    pub fn into_progress(self) -> Value {
        json!({"accounts": self.0})
    }
}

/// An instant as a mark writes it (RFC 3339, UTC, whole seconds).
pub fn instant(at: Timestamp) -> String {
    at.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Takes the mark out of a stream's state.
pub fn split(state: Value) -> Incoming {
    let Value::Object(mut map) = state else { return Incoming { state: Some(state), ..Incoming::default() } };
    let Some(mark) = map.remove(KEY) else {
        return Incoming { state: Some(Value::Object(map)), ..Incoming::default() };
    };
    let sync_started = mark
        .get("sync_started_at")
        .and_then(Value::as_str)
        .and_then(crate::config::parse_date_time)
        .map(Timestamp::from_datetime);
    let mark = match mark.get("status").and_then(Value::as_str) {
        Some("done") => Some(Mark::Done),
        Some("reading") => Some(Mark::Reading { progress: mark.get("progress").cloned().unwrap_or(Value::Null) }),
        // A mark this version does not know: the stream is read again from its state.
        _ => None,
    };
    let state = (!map.is_empty()).then_some(Value::Object(map));
    Incoming { state, mark, sync_started }
}

/// `state` with `mark` added (an empty object when the stream had no state).
pub fn marked(state: Option<&Value>, mark: &Mark, sync_started: Timestamp) -> Value {
    let mut map = match state {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let started = instant(sync_started);
    let value = match mark {
        Mark::Done => json!({"status": "done", "sync_started_at": started}),
        Mark::Reading { progress } => {
            json!({"status": "reading", "sync_started_at": started, "progress": progress})
        }
    };
    map.insert(KEY.into(), value);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        Timestamp::from_datetime(crate::config::parse_date_time("2026-06-15T10:00:00Z").unwrap())
    }

    #[test]
    fn a_mark_goes_in_and_comes_out_leaving_the_state_as_it_was() {
        let state = json!({"1": {"updated_time": "2026-06-01T00:00:00+00:00"}});
        let progress = json!({"accounts": {"1": {"after": "QVFI"}}});
        let marked = marked(Some(&state), &Mark::Reading { progress: progress.clone() }, t0());
        assert_eq!(marked[KEY]["sync_started_at"], "2026-06-15T10:00:00Z");
        let back = split(marked);
        assert_eq!(back.state, Some(state));
        assert_eq!(back.mark, Some(Mark::Reading { progress }));
        assert_eq!(back.sync_started, Some(t0()));
    }

    #[test]
    fn a_mark_alone_leaves_no_state_and_an_unknown_mark_is_ignored() {
        let back = split(marked(None, &Mark::Done, t0()));
        assert_eq!((back.state, back.mark), (None, Some(Mark::Done)));
        let unknown = split(json!({"1": {}, KEY: {"status": "someday"}}));
        assert_eq!(unknown.mark, None);
        assert_eq!(unknown.state, Some(json!({"1": {}})));
        assert_eq!(split(json!({"1": {}})).mark, None);
    }
}
