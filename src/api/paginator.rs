//! Follows a Graph listing page by page: `paging.next` until it is absent.
//!
//! The stop rule is Graph's own: a page may be empty or short and still have a `next`, so
//! only a missing `next` ends the listing. A stale cursor restarts the listing from its first
//! page (a bounded number of times); a `next` that repeats is a loop and ends it with an error.

use super::client::{Api, Call, CallError, CallFailure, CallId, CallKind, CallOutcome};
use crate::error::ConnectorError;
use crate::http::{Request, redact_token_params};
use serde_json::Value;
use std::collections::BTreeSet;

/// 3: a listing whose cursors keep going stale is not converging.
pub const MAX_RESTARTS: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Idle,
    AwaitingPage {
        call: CallId,
    },
    /// A page was handed over and another follows at this URL.
    HasNext {
        url: String,
    },
    Done,
}

/// What a page's outcome gave.
#[derive(Debug)]
pub enum Step<T> {
    /// The page's items; `has_next` says whether another page follows (request it with
    /// [`Paginator::request_next`]).
    Items { items: T, has_next: bool },
    /// The cursor went stale: the listing starts over from its first page under this call, and
    /// items already handed over may come again.
    Restarted(CallId),
}

/// The paginator for one listing.
#[derive(Debug)]
pub struct Paginator {
    first_url: String,
    state: State,
    seen_next: BTreeSet<String>,
    restarts: u32,
    kind: CallKind,
    /// Pages are handed over as bytes for the caller to transcode ([`Paginator::on_raw_outcome`]).
    raw: bool,
    pub pages: u64,
}

impl Paginator {
    pub fn new(first_url: String, kind: CallKind) -> Self {
        Paginator { first_url, state: State::Idle, seen_next: BTreeSet::new(), restarts: 0, kind, raw: false, pages: 0 }
    }

    /// A paginator whose pages the caller transcodes from bytes.
    pub fn new_raw(first_url: String, kind: CallKind) -> Self {
        Paginator { raw: true, ..Paginator::new(first_url, kind) }
    }

    fn submit(&mut self, api: &mut Api, url: String) -> CallId {
        let request = Request::get(url);
        let call =
            api.submit(if self.raw { Call::graph_raw(request, self.kind) } else { Call::graph(request, self.kind) });
        self.state = State::AwaitingPage { call };
        call
    }

    /// Requests the first page; the caller routes the call's outcome back here.
    pub fn start(&mut self, api: &mut Api) -> CallId {
        self.submit(api, self.first_url.clone())
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Requests the page that follows the last one handed over; `None` if there is none.
    pub fn request_next(&mut self, api: &mut Api) -> Option<CallId> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::HasNext { url } => Some(self.submit(api, url)),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Stops the listing early: no further page is requested.
    pub fn stop(&mut self) {
        self.state = State::Done;
    }

    /// Takes the outcome of the awaited page `call` and returns its items. The next page, if
    /// any, is requested only by [`Paginator::request_next`].
    pub fn on_outcome(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut Api,
    ) -> Result<Step<Vec<Value>>, CallError> {
        self.take(call, outcome, api, |reply| {
            let Value::Object(mut body) = reply.json else {
                return Err(ConnectorError::misbehaving(
                    "the graph api answered a listing with something other than an object; try again later",
                    String::new(),
                ));
            };
            let items = match body.remove("data") {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(ConnectorError::misbehaving(
                        "the graph api answered a listing whose data is not a list; try again later",
                        String::new(),
                    ));
                }
            };
            let next = body.get("paging").and_then(|p| p.get("next")).and_then(Value::as_str).map(str::to_string);
            Ok((items, next))
        })
    }

    /// As [`Paginator::on_outcome`] for a raw paginator: `read` turns the page's bytes into the
    /// caller's items and the `paging.next` link.
    pub fn on_raw_outcome<T>(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut Api,
        read: impl FnOnce(&[u8]) -> Result<(T, Option<String>), ConnectorError>,
    ) -> Result<Step<T>, CallError> {
        self.take(call, outcome, api, |reply| read(&reply.body))
    }

    /// The shared part: restart on a stale cursor, stop on errors and repeating links.
    fn take<T>(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut Api,
        read: impl FnOnce(super::client::Reply) -> Result<(T, Option<String>), ConnectorError>,
    ) -> Result<Step<T>, CallError> {
        if self.state != (State::AwaitingPage { call }) {
            return Err(failed(ConnectorError::contract(
                "a listing page arrived that the paginator was not waiting for; this is a bug, please report it",
                format!("call {} in state {:?}", call.0, self.state),
            )));
        }
        let reply = match outcome {
            Ok(r) => r,
            Err(e) if e.failure == CallFailure::StaleCursor && self.restarts < MAX_RESTARTS => {
                self.restarts += 1;
                self.seen_next.clear();
                return Ok(Step::Restarted(self.start(api)));
            }
            Err(e) => {
                self.state = State::Done;
                return Err(e);
            }
        };
        self.pages += 1;
        let (items, next) = match read(reply) {
            Ok(x) => x,
            Err(e) => {
                self.state = State::Done;
                return Err(failed(e));
            }
        };
        match next {
            Some(next) if !self.seen_next.insert(next.clone()) => {
                self.state = State::Done;
                return Err(failed(ConnectorError::misbehaving(
                    "the graph api returned the same next page twice; stopping to avoid a loop",
                    redact_token_params(&next),
                )));
            }
            Some(next) => self.state = State::HasNext { url: next },
            None => self.state = State::Done,
        }
        let has_next = matches!(self.state, State::HasNext { .. });
        Ok(Step::Items { items, has_next })
    }
}

/// A listing's own failure (not an answer's): no cause a caller branches on.
fn failed(error: ConnectorError) -> CallError {
    CallError { failure: CallFailure::Other, error, graph: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Response;
    use crate::time::Timestamp;
    use serde_json::json;

    fn answer(api: &mut Api, body: Value) -> (CallId, CallOutcome) {
        let (id, _) = api.poll_transmit().expect("a page request");
        api.handle_response(
            id,
            Response { status: 200, headers: vec![], body: body.to_string().into_bytes() },
            Timestamp(0),
        )
        .unwrap();
        api.poll_completion().unwrap()
    }

    #[test]
    fn follows_next_through_an_empty_middle_page_and_stops_without_next() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut p = Paginator::new("https://g/act_1/ads?limit=2".into(), CallKind::EdgePage);
        let mut call = p.start(&mut api);
        let mut seen = Vec::new();
        let bodies = [
            json!({"data": [{"id": "1"}, {"id": "2"}], "paging": {"cursors": {"after": "a"}, "next": "https://g/act_1/ads?after=a"}}),
            json!({"data": [], "paging": {"cursors": {"after": "b"}, "next": "https://g/act_1/ads?after=b"}}),
            json!({"data": [{"id": "3"}], "paging": {"cursors": {"after": "c"}}}),
        ];
        for body in bodies {
            let (answered, out) = answer(&mut api, body);
            assert_eq!(answered, call);
            let Step::Items { items, has_next } = p.on_outcome(call, out, &mut api).unwrap() else {
                panic!("restarted")
            };
            seen.extend(items);
            match p.request_next(&mut api) {
                Some(next) => call = next,
                None => assert!(!has_next),
            }
        }
        assert!(p.is_done());
        assert_eq!(seen.len(), 3);
        assert!(api.poll_transmit().is_none());
    }

    #[test]
    fn a_repeating_next_is_an_error_not_a_loop() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut p = Paginator::new("https://g/x".into(), CallKind::EdgePage);
        let call = p.start(&mut api);
        let body = json!({"data": [], "paging": {"next": "https://g/x?after=a"}});
        let (_, out) = answer(&mut api, body.clone());
        p.on_outcome(call, out, &mut api).unwrap();
        let call = p.request_next(&mut api).expect("a next page");
        let (_, out) = answer(&mut api, body);
        assert!(p.on_outcome(call, out, &mut api).is_err());
    }

    #[test]
    fn an_outcome_the_paginator_did_not_wait_for_is_a_contract_error() {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut p = Paginator::new("https://g/x".into(), CallKind::EdgePage);
        let call = p.start(&mut api);
        let (_, out) = answer(&mut api, json!({"data": []}));
        let e = p.on_outcome(CallId(call.0 + 1), out, &mut api).unwrap_err();
        assert!(matches!(e.error, ConnectorError::Contract { .. }), "{e:?}");
    }
}
