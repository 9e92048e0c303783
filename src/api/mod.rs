//! The API layer: classifying Graph's answers, backing off, throttling, and the client machine
//! that puts them together for every call; plus paging and batching on top of it.

pub mod backoff;
pub mod batch;
pub mod call;
pub mod classify;
pub mod client;
pub mod paginator;
pub mod retry;
pub mod schedule;
pub mod throttle;

use client::{Call, CallId};

/// What the parts built on the client (a paginator, a batch sender) need of it: a place to
/// submit their calls, to warn about an answer, and to report the usage headers a batch
/// operation carried. The client itself is one ([`client::Api`]); a reader's outbox is another,
/// which hands each of these to the client as an output (`read::reader::Outbox`).
pub trait Calls {
    /// Queues `call`; its outcome comes back under the id returned.
    fn submit(&mut self, call: Call) -> CallId;
    /// A WARN about an answer, emitted with the client's own logs.
    fn warn(&mut self, message: String);
    /// The usage headers of one batch operation, for `account`'s pacing.
    fn observe_headers(&mut self, headers: &[(String, String)], account: Option<&str>);
}
