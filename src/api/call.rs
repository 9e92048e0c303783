//! What a call is: its id, kind and shape, the account whose quota it uses, and what comes back
//! for it (a reply or a typed error). The client, the scheduler and every part that submits
//! calls share these.

use super::classify::{CallFailure, GraphError};
use crate::error::ConnectorError;
use crate::http::Request;
use crate::model::AccountId;
use serde_json::Value;
use std::fmt;

/// Identifies one logical call, across all its retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// What a call is for; counted per kind for progress and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallKind {
    Account,
    EdgePage,
    Batch,
    JobCreate,
    JobResults,
    InsightsSync,
    Thumbnail,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Account => "account",
            CallKind::EdgePage => "edge page",
            CallKind::Batch => "batch",
            CallKind::JobCreate => "job create",
            CallKind::JobResults => "job results",
            CallKind::InsightsSync => "insights sync",
            CallKind::Thumbnail => "thumbnail",
        }
    }
}

/// Where a call goes and what its answer must be: the four kinds of call the connector makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A Graph call with the token as a bearer header; its JSON body is parsed for the caller.
    Graph,
    /// As [`Shape::Graph`], but the caller reads the JSON body itself: it is only checked
    /// (well-formed, not a Graph error) and handed over as bytes, without building a `Value`.
    GraphRaw,
    /// A Graph batch request: the token travels in its form body, so no bearer header.
    GraphBatch,
    /// A call outside Graph (an image CDN): no token, and any body is handed over as bytes.
    External,
}

impl Shape {
    pub(super) fn parses_json(self) -> bool {
        matches!(self, Shape::Graph | Shape::GraphBatch)
    }
}

impl CallKind {
    /// Whether calls of this kind go before others waiting: the ones that start or end a wait
    /// on Graph (report jobs, and the account look-ups they need) are on a sync's critical path.
    fn urgent(self) -> bool {
        matches!(self, CallKind::Account | CallKind::JobCreate | CallKind::JobResults | CallKind::InsightsSync)
    }
}

/// One logical request.
#[derive(Clone, Debug)]
pub struct Call {
    pub request: Request,
    pub kind: CallKind,
    pub shape: Shape,
    /// The ad account (bare id) whose quota the call uses, if one: its usage headers and quota
    /// blocks pace that account's calls only, and it counts against the account's share of
    /// the requests in flight. Read from the URL's `act_<id>` segment unless set.
    pub account: Option<AccountId>,
    /// Goes before the calls waiting that are not.
    pub urgent: bool,
}

impl Call {
    fn new(request: Request, kind: CallKind, shape: Shape) -> Self {
        let account = account_in_url(&request.url).map(AccountId::new);
        Call { request, kind, shape, account, urgent: kind.urgent() }
    }

    pub fn graph(request: Request, kind: CallKind) -> Self {
        Call::new(request, kind, Shape::Graph)
    }

    pub fn external(request: Request, kind: CallKind) -> Self {
        Call { account: None, ..Call::new(request, kind, Shape::External) }
    }

    /// A Graph call whose body the caller transcodes itself (see [`Shape::GraphRaw`]).
    pub fn graph_raw(request: Request, kind: CallKind) -> Self {
        Call::new(request, kind, Shape::GraphRaw)
    }

    /// A Graph batch request whose form body carries the token.
    pub fn batch(request: Request) -> Self {
        Call::new(request, CallKind::Batch, Shape::GraphBatch)
    }

    /// The same call, for `account`'s quota.
    pub fn for_account(mut self, account: &str) -> Self {
        self.account = Some(AccountId::new(account));
        self
    }
}

/// The bare id of the `act_<id>` path segment of a Graph URL, if it has one.
pub fn account_in_url(url: &str) -> Option<&str> {
    let path = url.split('?').next().unwrap_or(url);
    path.split('/').find_map(|seg| seg.strip_prefix("act_")).filter(|id| !id.is_empty())
}

/// A successful answer.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The raw body, kept only when the call did not have it parsed.
    pub body: Vec<u8>,
    /// The parsed body (`Null` when the call did not have it parsed).
    pub json: Value,
}

/// A failed call: its cause, the error to report, and Graph's error if there was one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub failure: CallFailure,
    pub error: ConnectorError,
    pub graph: Option<Box<GraphError>>,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.message())
    }
}

pub type CallOutcome = Result<Reply, CallError>;
