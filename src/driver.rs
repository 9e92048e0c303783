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

/// How much one batch of messages may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimit {
    pub messages: usize,
    /// Message text (record data, state, logs), summed; a batch ends with the message that
    /// reaches it.
    pub bytes: usize,
}

impl BatchLimit {
    /// 500 messages or 256 KiB: large enough to amortise a boundary crossing, small enough
    /// that a batch of wide insights rows (8 KiB each) does not grow the guest's memory by
    /// megabytes (4 MiB per batch before the byte bound).
    pub const DEFAULT: BatchLimit = BatchLimit { messages: 500, bytes: 256 * 1024 };
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

    /// Runs the machine until it has produced `limit.messages` messages or `limit.bytes` of
    /// message text (at least one message whatever the limit), or finished. Returns `None` once finished with nothing left to hand over;
    /// never returns an empty batch.
    pub fn next_batch(&mut self, io: &mut impl Io, limit: BatchLimit) -> Option<Vec<Message>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while !self.finished && (out.is_empty() || (out.len() < limit.messages && bytes < limit.bytes)) {
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
                Some(Action::Emit(message)) => {
                    bytes += message.text_len();
                    out.push(message);
                }
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
        while let Some(batch) = self.next_batch(io, BatchLimit::DEFAULT) {
            batch.into_iter().for_each(&mut sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Emits `left` records of `size` bytes, then says Done.
    struct Emitter {
        left: usize,
        size: usize,
    }

    impl Machine for Emitter {
        fn handle_response(&mut self, _: RequestId, _: Response, _: Timestamp) -> Result<(), ConnectorError> {
            unreachable!("the emitter fetches nothing")
        }
        fn handle_fetch_error(&mut self, _: RequestId, _: FetchError, _: Timestamp) -> Result<(), ConnectorError> {
            unreachable!("the emitter fetches nothing")
        }
        fn handle_timeout(&mut self, _: Timestamp) {}
        fn poll_action(&mut self) -> Option<Action> {
            if self.left == 0 {
                return Some(Action::Done);
            }
            self.left -= 1;
            let data = "x".repeat(self.size);
            Some(Action::Emit(Message::Record { stream: "s".into(), data, emitted_at: Timestamp::from_millis(0) }))
        }
        fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
            None
        }
    }

    struct NoIo;

    impl Io for NoIo {
        fn fetch(&mut self, _: &Request) -> Result<Response, FetchError> {
            unreachable!("the emitter fetches nothing")
        }
        fn sleep(&mut self, _: Duration, _: TimeoutReason) {}
        fn now(&mut self) -> Timestamp {
            Timestamp::from_millis(0)
        }
    }

    fn batch_sizes(records: usize, size: usize, limit: BatchLimit) -> Vec<usize> {
        let mut driver = Driver::new(Emitter { left: records, size });
        std::iter::from_fn(|| driver.next_batch(&mut NoIo, limit)).map(|b| b.len()).collect()
    }

    #[test]
    fn a_batch_ends_at_its_message_count_or_at_the_message_crossing_its_byte_bound() {
        assert_eq!(batch_sizes(1200, 100, BatchLimit::DEFAULT), vec![500, 500, 200], "small records: by count");
        // 8 KiB insights rows: the 32nd reaches 256 KiB.
        assert_eq!(batch_sizes(100, 8 * 1024, BatchLimit::DEFAULT), vec![32, 32, 32, 4]);
        // One record above the bound still travels, alone; a zero limit still moves.
        assert_eq!(batch_sizes(2, 1024 * 1024, BatchLimit::DEFAULT), vec![1, 1]);
        assert_eq!(batch_sizes(2, 10, BatchLimit { messages: 0, bytes: 0 }), vec![1, 1]);
    }
}
