//! One batch of status polls for the report jobs of every insights stream of a sync.
//!
//! Each stream's [`super::manager::JobManager`] decides when its jobs are due for a poll and
//! hands the polls here, under its owner; the read machine sends whatever was handed in during
//! one input as one set of batch requests (50 operations each), so that streams whose jobs run
//! side by side share their polls' requests, and routes each answer back to the stream that
//! asked.

use crate::api::batch::BatchSender;
use crate::api::client::{Api, CallError, CallId, CallOutcome, Owner};
use crate::error::ConnectorError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One poll's answer: the key the stream gave it, and the job's status or why it failed.
pub type PollResult = (u64, Result<Value, CallError>);

/// The sync's shared status polls.
#[derive(Debug)]
pub struct PollHub {
    sender: BatchSender,
    /// The hub's key of each poll queued or in flight → the stream and the stream's key.
    keys: BTreeMap<u64, (Owner, u64)>,
    next_key: u64,
    /// The batch calls in flight.
    calls: BTreeSet<CallId>,
    /// Answers not yet handed to their stream.
    results: BTreeMap<Owner, Vec<PollResult>>,
}

impl PollHub {
    /// `url` is the versioned Graph root; `token` goes in each batch's form body.
    pub fn new(url: String, token: String) -> Self {
        PollHub {
            sender: BatchSender::new(url, token).urgent(),
            keys: BTreeMap::new(),
            next_key: 0,
            calls: BTreeSet::new(),
            results: BTreeMap::new(),
        }
    }

    /// Queues a poll of `relative_url` (`<report run>/`) for `owner`, whose answer comes back
    /// under `key`; it goes out at the next [`PollHub::flush`].
    pub fn push(&mut self, owner: Owner, key: u64, relative_url: String, account: &str) {
        self.next_key += 1;
        self.keys.insert(self.next_key, (owner, key));
        self.sender.push_for(self.next_key, relative_url, account);
    }

    /// Sends every queued poll (and re-sent one), 50 to a batch request.
    pub fn flush(&mut self, api: &mut Api) {
        self.calls.extend(self.sender.flush(api));
    }

    /// Batch requests sent so far.
    pub fn batches_sent(&self) -> u64 {
        self.sender.batches_sent
    }

    /// Takes the outcome of one of the hub's batch calls. A call it did not make is a
    /// contract error.
    pub fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, api: &mut Api) -> Result<(), ConnectorError> {
        if !self.calls.remove(&call) {
            return Err(ConnectorError::contract(
                "a status poll answer arrived for a call the poll hub did not make; this is a bug, please report it",
                format!("call {}", call.0),
            ));
        }
        self.sender.on_outcome(call, outcome, api)?;
        while let Some((key, result)) = self.sender.poll_result() {
            if let Some((owner, theirs)) = self.keys.remove(&key) {
                self.results.entry(owner).or_default().push((theirs, result));
            }
        }
        Ok(())
    }

    /// The answers waiting for their streams, by stream.
    pub fn take_results(&mut self) -> BTreeMap<Owner, Vec<PollResult>> {
        std::mem::take(&mut self.results)
    }

    pub fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.sender.is_idle() && self.results.is_empty()
    }
}
