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
    /// The read's time box (`max_duration_seconds`) ends.
    TimeBox,
}

impl TimeoutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutReason::Backoff => "backoff",
            TimeoutReason::JobPoll => "job poll",
            TimeoutReason::QuotaWait => "quota wait",
            TimeoutReason::ThrottlePause => "throttle pause",
            TimeoutReason::TimeBox => "time box",
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

/// One finished request: its id and what came of it.
pub type Completion = (RequestId, Result<Response, FetchError>);

/// The outside world as the driver needs it.
///
/// Requests run concurrently: [`Io::exchange`] starts new ones and hands back those that have
/// completed, in whatever order they completed, so that a slow answer holds back nothing else.
pub trait Io {
    /// Starts `start` and returns the requests (of all started so far) that have completed
    /// since the last call, each once. With requests in flight it returns once at least one
    /// has completed, or, when `wait` is given, once that much time passed without one (then
    /// empty). With nothing in flight it returns at once.
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion>;
    /// Waits with nothing in flight.
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

/// 100 000: steps (answers handled, and deadlines that had already passed) a machine may take
/// in a row without emitting a message, sleeping or finishing. A sync's machines emit a record,
/// a state or a log at least every few hundred steps (a listing page, a job's results, a
/// retry); one that keeps fetching silently is caught in a loop by a misbehaving server or a
/// bug, and is stopped with a contract error rather than left to run forever. (Answers arrive
/// side by side: with 32 requests in flight at 50 ms each, the budget is some 2.6 minutes of
/// silence; one request at a time, 83 minutes.)
pub const MAX_SILENT_STEPS: u64 = 100_000;

/// 10 s: the longest the connector waits in one `sleep` or `http-fetch`, and the longest a host
/// goes without a batch while the connector waits with nothing to hand over (report jobs
/// running, a quota pause): it then gets an empty one, to show progress.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// 1024: requests handed to the host in one exchange at most.
pub const MAX_STARTS_AT_ONCE: usize = 1024;

/// Runs a machine in steps that each yield a bounded batch of messages.
pub struct Driver<M> {
    machine: M,
    finished: bool,
    /// Steps since the machine last emitted, slept or finished.
    silent_steps: u64,
    budget: u64,
    /// Requests the machine asked for that the host has not been handed yet.
    to_start: Vec<(RequestId, Request)>,
    /// Requests handed to the host whose outcome has not come back.
    in_flight: usize,
}

impl<M: Machine> Driver<M> {
    pub fn new(machine: M) -> Self {
        Driver {
            machine,
            finished: false,
            silent_steps: 0,
            budget: MAX_SILENT_STEPS,
            to_start: Vec::new(),
            in_flight: 0,
        }
    }

    /// The same driver with another silent-step budget (tests).
    pub fn with_budget(mut self, budget: u64) -> Self {
        self.budget = budget;
        self
    }

    /// Counts one silent step; past the budget, ends the run with a contract error.
    fn step(&mut self, out: &mut Vec<Message>, now: Timestamp) {
        self.silent_steps += 1;
        if self.silent_steps > self.budget && !self.finished {
            let e = ConnectorError::contract(
                format!(
                    "the connector made {} requests in a row without emitting anything; it was stopped, as a loop would never end (this is a bug or a misbehaving api, please report it)",
                    self.budget
                ),
                format!("driver step budget {} exhausted", self.budget),
            );
            out.push(Message::error(now, &e));
            self.finished = true;
        }
    }

    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// Requests handed to the host whose outcome has not come back yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Runs the machine until it has produced `limit.messages` messages or `limit.bytes` of
    /// message text (at least one message whatever the limit), or until it would wait with
    /// messages in hand, or finished. Returns `None` once finished with nothing left to hand
    /// over.
    ///
    /// Each round drains the machine's actions (messages out, requests gathered), then either
    /// hands the gathered requests to the host and waits for completions (no longer than the
    /// machine's next deadline), or, with nothing in flight, sleeps until that deadline. What
    /// was read is handed over before any wait: records and their state leave within moments of
    /// being read, however long the wait that follows. A batch is empty only when the machine
    /// has waited [`HEARTBEAT`] or more with nothing to hand over, so that a host can show
    /// progress through long waits.
    pub fn next_batch(&mut self, io: &mut impl Io, limit: BatchLimit) -> Option<Vec<Message>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        // When this call first waited, by the clock read for that wait.
        let mut waiting_since: Option<Timestamp> = None;
        while !self.finished && (out.is_empty() || (out.len() < limit.messages && bytes < limit.bytes)) {
            match self.machine.poll_action() {
                Some(Action::Fetch { id, request }) => {
                    self.to_start.push((id, request));
                    // A machine bounds its own requests in flight; this only keeps one that
                    // does not from gathering requests forever.
                    if self.to_start.len() >= MAX_STARTS_AT_ONCE {
                        self.wait(io, &mut out, waiting_since);
                    }
                }
                Some(Action::Emit(message)) => {
                    self.silent_steps = 0;
                    bytes += message.text_len();
                    out.push(message);
                }
                Some(Action::Done) => self.finished = true,
                // Nothing more to do now: what is in hand goes before any wait.
                None if !out.is_empty() => break,
                None => {
                    let (began, ended) = self.wait(io, &mut out, waiting_since);
                    let since = *waiting_since.get_or_insert(began);
                    if out.is_empty() && !self.finished && ended.since(since) >= HEARTBEAT {
                        return Some(out);
                    }
                }
            }
        }
        if out.is_empty() && self.finished { None } else { Some(out) }
    }

    /// The machine has nothing to do now: start what it asked for and hand back what completes,
    /// or sleep until its deadline, or call its deadline if that has passed; never past the
    /// heartbeat counted from `since` (when this batch began waiting). Returns the clock before
    /// and after.
    fn wait(&mut self, io: &mut impl Io, out: &mut Vec<Message>, since: Option<Timestamp>) -> (Timestamp, Timestamp) {
        let now = io.now();
        let room = since.map_or(HEARTBEAT, |s| HEARTBEAT.saturating_sub(now.since(s))).max(Duration::from_millis(1));
        let deadline = self.machine.poll_timeout();
        if let Some((at, _)) = deadline
            && at <= now
        {
            self.step(out, now);
            self.machine.handle_timeout(now);
            return (now, now);
        }
        if self.to_start.is_empty() && self.in_flight == 0 {
            match deadline {
                Some((at, reason)) => {
                    self.silent_steps = 0;
                    // No sleep is longer than the heartbeat, so that a long pause still lets
                    // the host hear from the connector; the deadline is handled once it passed.
                    io.sleep(at.since(now).min(room), reason);
                    let after = io.now();
                    if at <= after {
                        self.machine.handle_timeout(after);
                    }
                    return (now, after);
                }
                None => {
                    let e = ConnectorError::contract(
                        "the connector stalled with nothing to do; this is a bug, please report it",
                        "no action and no deadline",
                    );
                    out.push(Message::error(now, &e));
                    self.finished = true;
                }
            }
            return (now, now);
        }
        let start = std::mem::take(&mut self.to_start);
        self.in_flight += start.len();
        let wait = deadline.map_or(room, |(at, _)| at.since(now).min(room));
        let done = io.exchange(start, Some(wait));
        self.in_flight = self.in_flight.saturating_sub(done.len());
        let after = io.now();
        if done.is_empty() {
            // Waited to the deadline without an answer: the deadline is handled next round.
            self.step(out, after);
            return (now, after);
        }
        for (id, outcome) in done {
            let handled = match outcome {
                Ok(response) => self.machine.handle_response(id, response, after),
                Err(error) => self.machine.handle_fetch_error(id, error, after),
            };
            if let Err(e) = handled {
                out.push(Message::error(after, &e));
                self.finished = true;
                break;
            }
            self.step(out, after);
            if self.finished {
                break;
            }
        }
        (now, after)
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

    /// A transport that performs one request at a time, start to end.
    trait Fetch {
        fn fetch(&mut self, request: &Request) -> Result<Response, FetchError>;
        fn sleep(&mut self, duration: Duration, reason: TimeoutReason);
        fn now(&mut self) -> Timestamp;
    }

    /// [`Io`] over a [`Fetch`]: each started request is performed in turn, and all of them have
    /// completed when `exchange` returns.
    struct Serial<F>(F);

    impl<F: Fetch> Io for Serial<F> {
        fn exchange(&mut self, start: Vec<(RequestId, Request)>, _wait: Option<Duration>) -> Vec<Completion> {
            start.into_iter().map(|(id, request)| (id, self.0.fetch(&request))).collect()
        }

        fn sleep(&mut self, duration: Duration, reason: TimeoutReason) {
            self.0.sleep(duration, reason)
        }

        fn now(&mut self) -> Timestamp {
            self.0.now()
        }
    }

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

    impl Fetch for NoIo {
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
        std::iter::from_fn(|| driver.next_batch(&mut Serial(NoIo), limit)).map(|b| b.len()).collect()
    }

    /// Fetches forever and never emits (a paginator a server keeps feeding new links).
    struct Looper {
        next: u64,
        answered: u64,
    }

    impl Machine for Looper {
        fn handle_response(&mut self, _: RequestId, _: Response, _: Timestamp) -> Result<(), ConnectorError> {
            self.answered += 1;
            Ok(())
        }
        fn handle_fetch_error(&mut self, _: RequestId, _: FetchError, _: Timestamp) -> Result<(), ConnectorError> {
            Ok(())
        }
        fn handle_timeout(&mut self, _: Timestamp) {}
        fn poll_action(&mut self) -> Option<Action> {
            self.next += 1;
            Some(Action::Fetch { id: RequestId(self.next), request: Request::get("https://g/x") })
        }
        fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
            None
        }
    }

    struct EmptyPages;

    impl Fetch for EmptyPages {
        fn fetch(&mut self, _: &Request) -> Result<Response, FetchError> {
            Ok(Response { status: 200, headers: vec![], body: b"{\"data\":[]}".to_vec() })
        }
        fn sleep(&mut self, _: Duration, _: TimeoutReason) {}
        fn now(&mut self) -> Timestamp {
            Timestamp::from_millis(0)
        }
    }

    #[test]
    fn a_machine_that_fetches_forever_without_emitting_is_stopped_with_a_contract_error() {
        let mut driver = Driver::new(Looper { next: 0, answered: 0 }).with_budget(1_000);
        let batch = driver.next_batch(&mut Serial(EmptyPages), BatchLimit::DEFAULT).expect("the error trace");
        assert_eq!(driver.machine().answered, 1_001, "the budget, then one step more");
        assert_eq!(batch.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&batch[0].to_json_line()).unwrap();
        assert_eq!(line["trace"]["error"]["failure_type"], "system_error");
        assert!(line["trace"]["error"]["message"].as_str().unwrap().contains("1000 requests in a row"));
        assert!(driver.next_batch(&mut Serial(EmptyPages), BatchLimit::DEFAULT).is_none(), "and it stays stopped");
    }

    /// Emits a record, then asks for one request and, once it is answered, waits a minute for a
    /// deadline; then emits again and finishes.
    struct ReadThenWait {
        step: u32,
        deadline: Option<Timestamp>,
    }

    fn record(n: u32) -> Action {
        Action::Emit(Message::Record { stream: "s".into(), data: format!("{{\"n\":{n}}}"), emitted_at: Timestamp(0) })
    }

    impl Machine for ReadThenWait {
        fn handle_response(&mut self, _: RequestId, _: Response, now: Timestamp) -> Result<(), ConnectorError> {
            self.deadline = Some(now.plus(Duration::from_secs(60)));
            Ok(())
        }
        fn handle_fetch_error(&mut self, _: RequestId, _: FetchError, _: Timestamp) -> Result<(), ConnectorError> {
            Ok(())
        }
        fn handle_timeout(&mut self, now: Timestamp) {
            if self.deadline.is_some_and(|d| d <= now) {
                self.deadline = None;
                self.step = 3;
            }
        }
        fn poll_action(&mut self) -> Option<Action> {
            self.step += 1;
            match self.step {
                1 => Some(record(1)),
                2 => Some(Action::Fetch { id: RequestId(1), request: Request::get("https://g/x") }),
                4 => Some(record(2)),
                5 => Some(Action::Done),
                _ => {
                    self.step -= 1;
                    None
                }
            }
        }
        fn poll_timeout(&self) -> Option<(Timestamp, TimeoutReason)> {
            self.deadline.map(|d| (d, TimeoutReason::JobPoll))
        }
    }

    /// A clock that moves only by sleeps; counts the waits.
    #[derive(Default)]
    struct Clocked {
        now: i64,
        fetches: u32,
        sleeps: u32,
    }

    impl Fetch for Clocked {
        fn fetch(&mut self, _: &Request) -> Result<Response, FetchError> {
            self.fetches += 1;
            self.now += 300;
            Ok(Response { status: 200, headers: vec![], body: b"{}".to_vec() })
        }
        fn sleep(&mut self, d: Duration, _: TimeoutReason) {
            self.sleeps += 1;
            self.now += d.as_millis() as i64;
        }
        fn now(&mut self) -> Timestamp {
            Timestamp(self.now)
        }
    }

    #[test]
    fn no_message_is_held_across_a_wait_and_long_waits_yield_an_empty_batch() {
        let mut driver = Driver::new(ReadThenWait { step: 0, deadline: None });
        let mut io = Serial(Clocked::default());
        let first = driver.next_batch(&mut io, BatchLimit::DEFAULT).expect("a batch");
        assert_eq!(first.len(), 1, "the record read first is handed over ...");
        assert_eq!((io.0.fetches, io.0.sleeps), (0, 0), "... before the request is even made");
        // The request, then a minute's wait with nothing in hand: slept in steps of 10 s, each
        // followed by an empty batch, for the host to show progress.
        let mut empty = 0;
        let last = loop {
            let batch = driver.next_batch(&mut io, BatchLimit::DEFAULT).expect("a batch");
            if !batch.is_empty() {
                break batch;
            }
            empty += 1;
        };
        assert_eq!(
            (io.0.fetches, io.0.sleeps, empty),
            (1, 7, 6),
            "the minute in seven sleeps, each ending 10 s after the last batch at most"
        );
        assert_eq!(last.len(), 1);
        assert!(driver.next_batch(&mut io, BatchLimit::DEFAULT).is_none());
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
