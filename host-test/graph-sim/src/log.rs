//! The call log and counters: what the connector asked, as the server saw it.
//!
//! Tests assert on behaviour through these ("no more than N requests", "every job was polled
//! through a batch"), so entries never contain the access token and their order is the order of
//! arrival. Batch operations are logged as their own entries right after their batch.

use std::collections::BTreeMap;
use std::fmt;

use crate::TransportFault;

/// What a request was, as routed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// `GET /act_X`.
    AccountRead,
    /// `GET /act_X/<edge>` with the edge name.
    EdgeList(String),
    /// `GET /{id}` of a world object.
    ObjectRead,
    /// `POST /` with `batch`.
    Batch,
    /// One operation inside a batch (counted in addition to its own kind).
    BatchOp,
    /// `GET /{obj}/insights`.
    InsightsSync,
    /// `POST /{obj}/insights`.
    JobCreate,
    /// `GET /{report_run_id}`.
    JobStatus,
    /// `GET /{report_run_id}/insights`.
    JobResults,
    /// A creative thumbnail from the CDN.
    Thumbnail,
    /// Anything that did not route.
    Unknown,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestKind::AccountRead => write!(f, "account_read"),
            RequestKind::EdgeList(e) => write!(f, "edge_list:{e}"),
            RequestKind::ObjectRead => write!(f, "object_read"),
            RequestKind::Batch => write!(f, "batch"),
            RequestKind::BatchOp => write!(f, "batch_op"),
            RequestKind::InsightsSync => write!(f, "insights_sync"),
            RequestKind::JobCreate => write!(f, "job_create"),
            RequestKind::JobStatus => write!(f, "job_status"),
            RequestKind::JobResults => write!(f, "job_results"),
            RequestKind::Thumbnail => write!(f, "thumbnail"),
            RequestKind::Unknown => write!(f, "unknown"),
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatus {
    /// An HTTP answer (for batch operations: the operation's `code`; 0 for a `null` entry).
    Http(u16),
    /// No answer.
    Fault(TransportFault),
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallStatus::Http(0) => write!(f, "null"),
            CallStatus::Http(s) => write!(f, "{s}"),
            CallStatus::Fault(t) => write!(f, "{t:?}"),
        }
    }
}

/// One logged call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLogEntry {
    /// Virtual time the server handled it, ms.
    pub at_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Path without query (so never a token), version prefix kept.
    pub path: String,
    /// Routed kind.
    pub kind: RequestKind,
    /// Outcome.
    pub status: CallStatus,
    /// Whether this was an operation inside a batch.
    pub in_batch: bool,
}

/// Aggregate counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests (and batch operations) by kind.
    pub requests: BTreeMap<RequestKind, u64>,
    /// Operations received inside batches.
    pub batch_operations: u64,
    /// Report runs created.
    pub jobs_created: u64,
    /// Report runs fated to end `Job Failed` (too large or scripted first attempts).
    pub jobs_failed: u64,
    /// Report runs fated to end `Job Skipped`.
    pub jobs_skipped: u64,
    /// Report runs fated to stay running forever.
    pub jobs_stuck: u64,
    /// Responses that were rate-limit errors.
    pub throttled_responses: u64,
    /// Injected faults by name (`http_500`, `timeout`, `batch_null`, ...).
    pub faults: BTreeMap<String, u64>,
}

impl Counters {
    /// Counts one request of a kind.
    pub fn request(&mut self, k: &RequestKind) {
        *self.requests.entry(k.clone()).or_insert(0) += 1;
    }

    /// Counts one injected fault.
    pub fn fault(&mut self, name: &str) {
        *self.faults.entry(name.to_string()).or_insert(0) += 1;
    }

    /// Requests of a kind so far.
    pub fn of(&self, k: &RequestKind) -> u64 {
        self.requests.get(k).copied().unwrap_or(0)
    }
}
