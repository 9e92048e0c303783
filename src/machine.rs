//! What every API-driven machine shares: the client and an outbox, drained in the order the
//! driver's contract asks for (messages, then fetches, then `Done` once).

use crate::api::client::Api;
use crate::driver::Action;
use crate::error::ConnectorError;
use crate::protocol::Message;
use std::collections::VecDeque;

/// Where a machine is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    /// Still working.
    Running,
    /// Finished: `Done` follows once the outbox is empty.
    Finishing,
    /// `Done` was handed out; nothing more comes.
    Done,
}

/// An API client plus an outbox: what every API-driven machine polls its actions from.
pub struct Core {
    pub api: Api,
    pub outbox: VecDeque<Message>,
    lifecycle: Lifecycle,
}

impl Core {
    pub fn new(api: Api) -> Self {
        Core { api, outbox: VecDeque::new(), lifecycle: Lifecycle::Running }
    }

    pub fn emit(&mut self, m: Message) {
        self.outbox.push_back(m);
    }

    /// Marks the machine finished: `Done` follows once the outbox is empty.
    pub fn finish(&mut self) {
        if self.lifecycle == Lifecycle::Running {
            self.take_logs();
            self.lifecycle = Lifecycle::Finishing;
        }
    }

    /// The client's logs so far, into the outbox behind what is there.
    pub fn take_logs(&mut self) {
        while let Some(log) = self.api.poll_log() {
            self.outbox.push_back(log);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.lifecycle != Lifecycle::Running
    }

    /// Messages first, then fetches, then `Done` (once).
    /// Once finishing, the client's later logs are not handed over: they tell of retries and
    /// waits that will not happen (answers that came in after a time box ended the read), and
    /// the read's last messages are its states and closing line.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.lifecycle == Lifecycle::Running {
            self.take_logs();
        }
        if let Some(m) = self.outbox.pop_front() {
            return Some(Action::Emit(m));
        }
        match self.lifecycle {
            Lifecycle::Running => self.api.poll_transmit().map(|(id, request)| Action::Fetch { id, request }),
            Lifecycle::Finishing => {
                self.lifecycle = Lifecycle::Done;
                Some(Action::Done)
            }
            Lifecycle::Done => None,
        }
    }

    /// Ends with an error trace.
    pub fn fail(&mut self, e: &ConnectorError) {
        let now = self.api.now();
        self.emit(Message::error(now, e));
        self.finish();
    }
}
