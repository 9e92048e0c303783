//! Unit tests' stand-in for the sync: one reader (or job manager) driven against a real client,
//! its outputs done as the sync does them. Compiled for tests only (`#[cfg(test)]` in
//! `read/mod.rs`): its `expect`s are the tests' assertions that the reader did what they drive.

use super::insights::polls::PollHub;
use super::reader::{AccountFacts, Outbox, Output, PollResult, Turn};
use crate::api::Calls;
use crate::api::client::{Api, CallId, CallOutcome};
use crate::config::Config;
use crate::http::{Request, Response};
use crate::protocol::Message;
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Whose call the client sent.
#[derive(Clone, Copy, Debug)]
enum Route {
    /// The reader's, under its own id.
    Reader(CallId),
    /// The poll hub's, under its own id.
    Polls(CallId),
}

/// What an answer became for the reader.
pub enum Delivery {
    /// The outcome of one of its calls, under its own id.
    Outcome(CallId, CallOutcome),
    /// The answers of its status polls.
    Polled(Vec<PollResult>),
}

pub struct Harness {
    pub api: Api,
    pub config: Config,
    pub facts: AccountFacts,
    pub now: Timestamp,
    /// Every message the reader emitted, in order.
    pub messages: VecDeque<Message>,
    out: Outbox,
    polls: PollHub<()>,
    poll_out: Outbox,
    routes: BTreeMap<CallId, Route>,
}

impl Harness {
    pub fn new(config: Config, now: Timestamp) -> Self {
        let polls = PollHub::new(crate::commands::graph_url(&config.api_version, ""));
        Harness {
            api: Api::new(config.access_token.clone(), 0, now, true),
            config,
            facts: AccountFacts::new(),
            now,
            messages: VecDeque::new(),
            out: Outbox::default(),
            polls,
            poll_out: Outbox::default(),
            routes: BTreeMap::new(),
        }
    }

    /// One input to the reader (`f` calls it with a turn), then what it put in its outbox.
    pub fn turn<T>(&mut self, f: impl FnOnce(&mut Turn) -> T) -> T {
        let mut turn = Turn {
            now: self.now,
            config: &self.config,
            accounts: &self.facts,
            throttle: self.api.throttle(),
            out: &mut self.out,
        };
        let result = f(&mut turn);
        while let Some(output) = self.out.pop() {
            match output {
                Output::Submit(theirs, call) => {
                    self.routes.insert(self.api.submit(call), Route::Reader(theirs));
                }
                Output::Emit(m) => self.messages.push_back(m),
                Output::Warn(m) => self.api.warn(m),
                Output::Usage { headers, account } => self.api.observe_headers(&headers, account.as_deref()),
                Output::Poll { job, relative_url, account } => self.polls.push((), job, relative_url, &account),
                Output::Learned { account, zone } => self.facts.learn(account, zone),
            }
        }
        self.polls.flush(&mut self.poll_out);
        self.submit_polls();
        result
    }

    fn submit_polls(&mut self) {
        while let Some(output) = self.poll_out.pop() {
            match output {
                Output::Submit(theirs, call) => {
                    self.routes.insert(self.api.submit(call), Route::Polls(theirs));
                }
                Output::Warn(m) => self.api.warn(m),
                Output::Usage { headers, account } => self.api.observe_headers(&headers, account.as_deref()),
                other => panic!("the poll hub does not {other:?}"),
            }
        }
    }

    /// Answers the next request the client sends with `body` (HTTP `status`) at the harness's
    /// time: the request, and what it became for the reader (`None`: a poll answer that holds
    /// nothing for it yet).
    pub fn answer(&mut self, status: u16, body: &Value) -> (Request, Option<Delivery>) {
        self.answer_with(status, body, Vec::new())
    }

    /// As [`Harness::answer`], with these response headers.
    pub fn answer_with(
        &mut self,
        status: u16,
        body: &Value,
        headers: Vec<(String, String)>,
    ) -> (Request, Option<Delivery>) {
        let (id, request) = self.api.poll_transmit().expect("a request");
        let response = Response { status, headers, body: body.to_string().into_bytes() };
        self.api.handle_response(id, response, self.now).expect("an answer to a request sent");
        let (call, outcome) = self.api.poll_completion().expect("an outcome");
        let delivery = match self.routes.remove(&call).expect("a call of the reader or its polls") {
            Route::Reader(theirs) => Some(Delivery::Outcome(theirs, outcome)),
            Route::Polls(theirs) => {
                self.polls.on_outcome(theirs, outcome, &mut self.poll_out).expect("a poll call");
                self.submit_polls();
                self.polls.take_results().remove(&()).map(Delivery::Polled)
            }
        };
        (request, delivery)
    }

    /// As [`Harness::answer`], for a call of the reader's own: its id and outcome.
    pub fn answer_call(&mut self, body: &Value) -> (CallId, CallOutcome, Request) {
        match self.answer(200, body) {
            (request, Some(Delivery::Outcome(call, outcome))) => (call, outcome, request),
            _ => panic!("the request answered was not one of the reader's own calls"),
        }
    }
}
