//! A pure, deterministic, seeded simulator of Meta's Graph Marketing API (v25.0) on a virtual
//! clock, for testing the connector without a network.
//!
//! The simulator has no sockets, threads or wall clock: [`Simulator::handle`] takes a request,
//! advances the virtual clock by the configured latency and returns a response (or a transport
//! fault). Everything it says is a pure function of the [`SimConfig`] (seed included), the request
//! sequence and the virtual time, so the same inputs give byte-identical responses and call logs.
//!
//! What it models (wire facts from `graph-api.md`): object reads and account edges with field
//! selection, filtering, visibility and cursor paging; the Batch API; sync insights and async
//! report runs with breakdowns and consistent aggregation; the rate-limit headers and errors;
//! token and version errors; and seeded fault presets. [`Simulator::ground_truth`] gives the
//! records a correct sync must emit.
//!
//! Module map: `world` (generated objects and their edit schedule), `render` (Graph JSON and
//! field selection), `params` (URL and parameter parsing), `edges` (listings), `paging`
//! (cursors), `batch`, `insights` + `metrics` (the report engine), `jobs` (report runs),
//! `ratelimit`, `errors`, `log` (call log and counters), `truth` (the oracle) and `sim` (routing).

#![recursion_limit = "256"]

mod batch;
mod config;
mod edges;
mod errors;
pub mod fields;
mod insights;
mod jobs;
mod log;
mod metrics;
mod paging;
mod params;
mod ratelimit;
mod render;
mod rng;
mod sim;
mod time;
mod truth;
mod world;

#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_START_MS, Faults, OVERSIZED_BYTES, RateLimits, RefusalForm, RemovedField, SimConfig, UNLIMITED,
};
pub use log::{CallLogEntry, CallStatus, Counters, RequestKind};
pub use sim::{Completed, Simulator};
pub use truth::{ENTITY_STREAMS, INSIGHT_STREAMS, InsightsQuery, TruthQuery};

/// One HTTP request as the host sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Absolute or path-only URL; the host is ignored.
    pub url: String,
    /// Request headers (`Authorization: Bearer` is honoured).
    pub headers: Vec<(String, String)>,
    /// Body (form-encoded for POSTs).
    pub body: Vec<u8>,
}

impl SimRequest {
    /// A GET of `url` with no headers.
    pub fn get(url: impl Into<String>) -> Self {
        SimRequest { method: "GET".into(), url: url.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// A form POST of `body` to `url`.
    pub fn post_form(url: impl Into<String>, body: impl Into<String>) -> Self {
        SimRequest {
            method: "POST".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
            body: body.into().into_bytes(),
        }
    }
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, lower-case names as over HTTP/2.
    pub headers: Vec<(String, String)>,
    /// Body bytes (JSON unless a thumbnail or an injected malformed body).
    pub body: Vec<u8>,
}

impl SimResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportFault {
    /// The client's patience ran out.
    Timeout,
    /// The connection dropped mid-request.
    ConnectionReset,
    /// Nothing listened (never injected by presets; available to harnesses).
    ConnectionRefused,
}

/// `body` with every `from` replaced by `to`, byte for byte (unchanged, and not copied, when it
/// holds none).
pub fn replace_bytes(body: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() || !body.windows(from.len()).any(|w| w == from) {
        return body;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}
