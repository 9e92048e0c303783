//! The one driver loop: pops a machine's actions, performs its fetches and sleeps, and feeds the
//! outcomes back. Written once, generic over [`Io`], so the wasm glue and native tests share it.

use crate::error::ConnectorError;
use crate::http::{FetchError, Request, RequestId, Response};
use crate::protocol::Message;
use crate::time::Timestamp;
use std::time::Duration;

/// What a machine wants done next.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Perform this request and report the outcome under `id`.
    Fetch { id: RequestId, request: Request },
    /// Hand this message to the host.
    Emit(Message),
    /// The machine has finished; it will produce nothing more.
    Done,
}

/// Why a machine wants to be woken at a deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReason {
    /// Waiting before retrying a failed request.
    Backoff,
    /// Waiting before polling report jobs again.
    JobPoll,
    /// Waiting for a rate-limit quota to come back.
    QuotaWait,
    /// Pausing because usage is close to the limit.
    ThrottlePause,
}

impl TimeoutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutReason::Backoff => "backoff",
            TimeoutReason::JobPoll => "job poll",
            TimeoutReason::QuotaWait => "quota wait",
            TimeoutReason::ThrottlePause => "throttle pause",
        }
    }
}

/// A sans-IO state machine in the house vocabulary.
///
/// Contract: after any input (`handle_*`), the caller drains [`Machine::poll_action`] until it
/// returns `None`; only then does it consult [`Machine::poll_timeout`] and, when that deadline
/// passes, call [`Machine::handle_timeout`]. A machine that has neither an action nor a deadline
/// and has not said `Done` is stuck, which the driver reports as a contract error.
pub trait Machine {
    /// A response arrived for `id`. An unknown id is a contract error.
    fn handle_response(&mut self, id: RequestId, response: Response, now: Timestamp) -> Result<(), ConnectorError>;
    /// The request `id` produced no response.
    fn handle_fetch_error(&mut self, id: RequestId, error: FetchError, now: Timestamp) -> Result<(), ConnectorError>;
    /// The deadline from `poll_timeout` has passed.
    fn handle_timeout(&mut self, now: Timestamp);
    /// The next thing to do, if any.
    fn poll_action(&mut self) -> Option<Action>;
    /// When the machine next wants `handle_timeout`, and why.
    fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)>;
}

/// The outside world as the driver needs it.
pub trait Io {
    fn fetch(&mut self, request: &Request) -> Result<Response, FetchError>;
    fn sleep(&mut self, duration: Duration, reason: TimeoutReason);
    fn now(&mut self) -> Timestamp;
}

/// Runs a machine in steps that each yield a bounded batch of messages.
pub struct Driver<M> {
    machine: M,
    finished: bool,
}

impl<M: Machine> Driver<M> {
    pub fn new(machine: M) -> Self {
        Driver { machine, finished: false }
    }

    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Runs the machine until it has produced `max` messages or finished. Returns `None` once
    /// finished with nothing left to hand over; never returns an empty batch.
    pub fn next_batch(&mut self, io: &mut impl Io, max: usize) -> Option<Vec<Message>> {
        let mut out = Vec::new();
        while !self.finished && out.len() < max {
            match self.machine.poll_action() {
                Some(Action::Fetch { id, request }) => {
                    let outcome = io.fetch(&request);
                    let now = io.now();
                    let handled = match outcome {
                        Ok(response) => self.machine.handle_response(id, response, now),
                        Err(error) => self.machine.handle_fetch_error(id, error, now),
                    };
                    if let Err(e) = handled {
                        out.push(Message::error_trace(now, e.failure, &e.message, &e.internal));
                        self.finished = true;
                    }
                }
                Some(Action::Emit(message)) => out.push(message),
                Some(Action::Done) => self.finished = true,
                None => match self.machine.poll_timeout() {
                    Some((deadline, reason)) => {
                        let now = io.now();
                        if deadline > now {
                            io.sleep(deadline.since(now), reason);
                        }
                        let now = io.now();
                        self.machine.handle_timeout(now);
                    }
                    None => {
                        let e = ConnectorError::contract(
                            "the connector stalled with nothing to do; this is a bug, please report it",
                        );
                        out.push(Message::error_trace(io.now(), e.failure, &e.message, "no action and no deadline"));
                        self.finished = true;
                    }
                },
            }
        }
        if out.is_empty() { None } else { Some(out) }
    }

    /// Runs the machine to the end, handing every message to `sink`.
    pub fn run_to_end(&mut self, io: &mut impl Io, mut sink: impl FnMut(Message)) {
        while let Some(batch) = self.next_batch(io, 256) {
            batch.into_iter().for_each(&mut sink);
        }
    }
}
