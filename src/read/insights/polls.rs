//! One batch of status polls for the report jobs of every insights stream of a sync.
//!
//! Each stream's [`super::manager::JobManager`] decides when its jobs are due for a poll and
//! hands the polls to the sync as outputs; the sync puts them here under the stream's owner and
//! sends whatever was handed in during one input as one set of batch requests (50 operations
//! each), so that streams whose jobs run side by side share their polls' requests; each answer
//! goes back to the stream that asked, under its job.

use crate::api::Calls;
use crate::api::batch::BatchSender;
use crate::api::client::{CallId, CallOutcome};
use crate::error::ConnectorError;
use crate::read::reader::{JobId, PollResult};
use std::collections::{BTreeMap, BTreeSet};

/// The sync's shared status polls; `O` names the stream that asked for each.
#[derive(Debug)]
pub struct PollHub<O> {
    sender: BatchSender,
    /// The hub's key of each poll queued or in flight → the stream and its job.
    keys: BTreeMap<u64, (O, JobId)>,
    next_key: u64,
    /// The batch calls in flight.
    calls: BTreeSet<CallId>,
    /// Answers not yet handed to their stream.
    results: BTreeMap<O, Vec<PollResult>>,
}

impl<O: Ord + Copy> PollHub<O> {
    /// `url` is the versioned Graph root.
    pub fn new(url: String) -> Self {
        PollHub {
            sender: BatchSender::new(url).urgent(),
            keys: BTreeMap::new(),
            next_key: 0,
            calls: BTreeSet::new(),
            results: BTreeMap::new(),
        }
    }

    /// Queues a poll of `relative_url` (`<report run>/`) of `owner`'s `job`; it goes out at the
    /// next [`PollHub::flush`].
    pub fn push(&mut self, owner: O, job: JobId, relative_url: String, account: &str) {
        self.next_key += 1;
        self.keys.insert(self.next_key, (owner, job));
        self.sender.push_for(self.next_key, relative_url, account);
    }

    /// Sends every queued poll (and re-sent one), 50 to a batch request.
    pub fn flush(&mut self, calls: &mut impl Calls) {
        self.calls.extend(self.sender.flush(calls));
    }

    /// Takes the outcome of one of the hub's batch calls. A call it did not make is a
    /// contract error.
    pub fn on_outcome(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        calls: &mut impl Calls,
    ) -> Result<(), ConnectorError> {
        if !self.calls.remove(&call) {
            return Err(ConnectorError::contract(
                "a status poll answer arrived for a call the poll hub did not make; this is a bug, please report it",
                format!("call {}", call.0),
            ));
        }
        self.sender.on_outcome(call, outcome, calls)?;
        while let Some((key, result)) = self.sender.poll_result() {
            if let Some((owner, job)) = self.keys.remove(&key) {
                self.results.entry(owner).or_default().push((job, result));
            }
        }
        Ok(())
    }

    /// The answers waiting for their streams, by stream.
    pub fn take_results(&mut self) -> BTreeMap<O, Vec<PollResult>> {
        std::mem::take(&mut self.results)
    }
}
