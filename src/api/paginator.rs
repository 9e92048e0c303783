//! Follows a Graph listing page by page: `paging.next` until it is absent.
//!
//! The stop rule is Graph's own: a page may be empty or short and still have a `next`, so
//! only a missing `next` ends the listing. A stale cursor restarts the listing from its first
//! page (a bounded number of times). Every listing ends: a `next` that repeats, pages that
//! bring back only items already read ([`MAX_REPEATED_PAGES`] running), empty pages
//! ([`MAX_EMPTY_PAGES`] running) and a listing past [`MAX_PAGES`] each end it with an error that
//! names the cause; the caller fails that account. Items without an `id` (report rows) are
//! told apart by their content, so a result chain that cycles ends the same way.
//!
//! A `next` link is followed only on Graph's own origin (the first page's): one that names
//! another is never requested. Where the page carries `paging.cursors.after`, the listing goes on
//! from its first URL with that cursor (one WARN); otherwise it fails, naming the origin.

use super::Calls;
use super::client::{Call, CallError, CallFailure, CallId, CallKind, CallOutcome};
use crate::error::ConnectorError;
use crate::http::{Request, redact_token_params, with_query_param};
use serde_json::Value;
use std::collections::BTreeSet;

/// 3: a listing whose cursors keep going stale is not converging.
pub const MAX_RESTARTS: u32 = 3;
/// 100 000 pages: ten million objects at a page size of 100, far past any real ad account;
/// a listing that long is a server feeding new links forever.
pub const MAX_PAGES: u64 = 100_000;
/// 100: Graph may hand out an empty page with a `next` (its docs say so), but not a hundred in
/// a row.
pub const MAX_EMPTY_PAGES: u32 = 100;
/// 3: pages running whose every item was read already in this listing: a `next` chain that
/// cycles under fresh cursors.
pub const MAX_REPEATED_PAGES: u32 = 3;
/// 1 000 000: item ids remembered per listing to see repeats (about 40 MiB at most); past it,
/// repeats are no longer looked for, and the page budget still ends any loop.
pub const MAX_IDS_REMEMBERED: usize = 1_000_000;
/// 10 000: items in one page at most (the largest page size the connector asks for); a page
/// with more is no Graph answer, and its records would cost memory past the bound.
pub const MAX_ITEMS_PER_PAGE: usize = 10_000;
/// 4 MiB: the largest single object read from a listing; Graph objects are kilobytes, and one
/// object's tree is built whole, so its size bounds that tree (DESIGN.md, "Memory").
pub const MAX_ITEM_BYTES: usize = 4 << 20;

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
    /// The ad account whose quota the pages use, when the URL does not name it.
    account: Option<String>,
    pub pages: u64,
    /// Fingerprints of the item ids read in this listing.
    seen_ids: BTreeSet<u64>,
    empty_run: u32,
    repeated_run: u32,
    /// Whether a `next` on another origin was replaced by Graph's cursor (warned once).
    warned_origin: bool,
    /// The `after` cursor of the page last requested (`None` for the first page).
    requested_after: Option<String>,
}

/// Where a page says the listing goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    pub next: Option<String>,
    /// `paging.cursors.after`.
    pub after: Option<String>,
}

/// `cursors.after` of a `paging` object.
pub fn after_cursor(paging: &Value) -> Option<String> {
    paging.get("cursors")?.get("after")?.as_str().filter(|a| !a.is_empty()).map(str::to_string)
}

/// The `after` query parameter of `url`, decoded.
fn after_param(url: &str) -> Option<String> {
    crate::http::split_query(url).1.into_iter().find(|(k, _)| k == "after").map(|(_, v)| v)
}

/// The scheme and authority of an absolute URL, lower case (`https://graph.facebook.com`).
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    Some(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

impl Paginator {
    pub fn new(first_url: String, kind: CallKind) -> Self {
        Paginator {
            first_url,
            state: State::Idle,
            seen_next: BTreeSet::new(),
            restarts: 0,
            kind,
            account: None,
            pages: 0,
            seen_ids: BTreeSet::new(),
            empty_run: 0,
            repeated_run: 0,
            warned_origin: false,
            requested_after: None,
        }
    }

    /// A paginator that goes on from the cursor `after` (kept by an earlier read of the sync):
    /// its first call is [`Paginator::request_next`]'s. Should Graph find the cursor stale, the
    /// listing starts over from `first_url`.
    pub fn resuming(first_url: String, kind: CallKind, after: &str) -> Self {
        let url = crate::http::with_query_param(&first_url, "after", after);
        Paginator { state: State::HasNext { url }, ..Paginator::new(first_url, kind) }
    }

    /// The `after` cursor of the next page to request, if the listing goes on.
    pub fn next_after(&self) -> Option<String> {
        let State::HasNext { url } = &self.state else { return None };
        after_param(url)
    }

    /// The `after` cursor of the page last requested (`None` for the first page): while that
    /// page is awaited, where a later read goes on without losing or repeating an item.
    pub fn requested_after(&self) -> Option<&str> {
        self.requested_after.as_deref()
    }

    /// The same paginator, whose pages use `account`'s quota (a report run's results).
    pub fn for_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_string());
        self
    }

    fn submit(&mut self, api: &mut impl Calls, url: String) -> CallId {
        self.requested_after = after_param(&url);
        let request = Request::get(url);
        // Pages arrive as bytes: no tree of the whole page is ever built (see [`Items`]). An
        // account node is one object, read whole (its caller takes `Reply::json`).
        let mut call = match self.kind {
            CallKind::Account => Call::graph(request, self.kind),
            _ => Call::graph_raw(request, self.kind),
        };
        if let Some(a) = &self.account {
            call = call.for_account(a);
        }
        let call = api.submit(call);
        self.state = State::AwaitingPage { call };
        call
    }

    /// Requests the first page; the caller routes the call's outcome back here.
    pub fn start(&mut self, api: &mut impl Calls) -> CallId {
        self.submit(api, self.first_url.clone())
    }

    /// Requests the first page, or for a [`Paginator::resuming`] one, the page it goes on from.
    pub fn begin(&mut self, api: &mut impl Calls) -> CallId {
        match self.request_next(api) {
            Some(call) => call,
            None => self.start(api),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Requests the page that follows the last one handed over; `None` if there is none.
    pub fn request_next(&mut self, api: &mut impl Calls) -> Option<CallId> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::HasNext { url } => Some(self.submit(api, url)),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Asks for `limit` items in the next page (its link keeps the cursor, and Graph pages by
    /// cursor, so a page of another size goes on where the last one ended).
    pub fn set_next_limit(&mut self, limit: u32) {
        if let State::HasNext { url } = &mut self.state {
            *url = crate::http::with_query_param(url, "limit", &limit.to_string());
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
        api: &mut impl Calls,
    ) -> Result<Step<Items>, CallError> {
        self.take(call, outcome, api, |reply| Items::parse(reply.body)).and_then(|step| match step {
            Step::Items { items, has_next } => {
                let repeats = self.check_progress(items.len(), items.fingerprints())?;
                // A page of nothing but items already handed over is a cycle's: not handed
                // over again, so that a cycling chain floods no duplicates before it ends.
                let items = if repeats { Items::default() } else { items };
                if items.oversized > 0 {
                    api.warn(format!(
                        "{}: skipped {} object(s) larger than {} MiB each (no graph object is that large); the rest of the page is read",
                        redact_token_params(self.first_url.split('?').next().unwrap_or("")),
                        items.oversized,
                        MAX_ITEM_BYTES >> 20
                    ));
                }
                Ok(Step::Items { items, has_next })
            }
            restarted => Ok(restarted),
        })
    }

    /// Ends a listing that goes nowhere: too many pages, empty pages running, or pages that
    /// only repeat items already read.
    fn check_progress(&mut self, items: usize, ids: Vec<u64>) -> Result<bool, CallError> {
        let stop = |this: &mut Self, message: String| {
            this.state = State::Done;
            Err(failed(ConnectorError::misbehaving(message, format!("after {} pages", this.pages))))
        };
        if self.pages > MAX_PAGES {
            return stop(
                self,
                format!("the graph api kept a listing going past {MAX_PAGES} pages; stopping, as it would never end"),
            );
        }
        self.empty_run = if items == 0 { self.empty_run + 1 } else { 0 };
        if self.empty_run >= MAX_EMPTY_PAGES && !self.is_done() {
            return stop(
                self,
                format!(
                    "the graph api answered {MAX_EMPTY_PAGES} empty pages in a row, each with a next page; stopping to avoid a loop"
                ),
            );
        }
        if !ids.is_empty() {
            let room = self.seen_ids.len() < MAX_IDS_REMEMBERED;
            let mut new = 0;
            for id in ids {
                let unseen = if room { self.seen_ids.insert(id) } else { !self.seen_ids.contains(&id) };
                new += usize::from(unseen);
            }
            self.repeated_run = if new == 0 { self.repeated_run + 1 } else { 0 };
            if self.repeated_run >= MAX_REPEATED_PAGES {
                return stop(
                    self,
                    format!(
                        "the graph api returned {MAX_REPEATED_PAGES} pages in a row holding only items already read (its next links cycle); stopping to avoid a loop"
                    ),
                );
            }
            return Ok(new == 0);
        }
        Ok(false)
    }

    /// As [`Paginator::on_outcome`] for a raw paginator: `read` turns the page's bytes into the
    /// caller's items and the `paging.next` link.
    pub fn on_raw_outcome<T: AsRef<[u8]>>(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut impl Calls,
        read: impl FnOnce(&[u8]) -> Result<(Vec<T>, Paging), ConnectorError>,
    ) -> Result<Step<Vec<T>>, CallError> {
        match self.take(call, outcome, api, |reply| read(&reply.body))? {
            Step::Items { items, .. } if items.len() > MAX_ITEMS_PER_PAGE => {
                self.state = State::Done;
                Err(failed(too_many(items.len(), "rows")))
            }
            Step::Items { items, has_next } => {
                // Rows of a report have no id: each is told apart by its content (no two rows of
                // a report are alike: their breakdowns and dates differ).
                let prints = items.iter().map(|row| fingerprint(row.as_ref())).collect();
                let repeats = self.check_progress(items.len(), prints)?;
                let items = if repeats { Vec::new() } else { items };
                Ok(Step::Items { items, has_next })
            }
            restarted => Ok(restarted),
        }
    }

    /// The shared part: restart on a stale cursor, stop on errors and repeating links.
    fn take<T>(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        api: &mut impl Calls,
        read: impl FnOnce(super::client::Reply) -> Result<(T, Paging), ConnectorError>,
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
                // Starting over reads the same items again: that is no loop.
                self.seen_ids.clear();
                self.repeated_run = 0;
                return Ok(Step::Restarted(self.start(api)));
            }
            Err(e) => {
                self.state = State::Done;
                return Err(e);
            }
        };
        self.pages += 1;
        let (items, paging) = match read(reply) {
            Ok(x) => x,
            Err(e) => {
                self.state = State::Done;
                return Err(failed(e));
            }
        };
        let next = match self.on_our_origin(paging, api) {
            Ok(next) => next,
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

impl Paginator {
    /// The `next` link to follow: the page's own when it is on Graph's origin (the first
    /// page's); else the first URL with the page's `after` cursor (said once); else an error
    /// naming the origin. A link to another origin is never requested.
    fn on_our_origin(&mut self, paging: Paging, api: &mut impl Calls) -> Result<Option<String>, ConnectorError> {
        let Some(next) = paging.next else { return Ok(None) };
        let ours = origin_of(&self.first_url);
        let theirs = origin_of(&next);
        if ours.is_some() && ours == theirs {
            return Ok(Some(next));
        }
        let theirs = theirs.unwrap_or_else(|| "a link that is not a URL".to_string());
        match paging.after {
            Some(after) => {
                if !self.warned_origin {
                    self.warned_origin = true;
                    api.warn(format!(
                        "the graph api's next page for {} points to {theirs}, another origin, which the connector never calls; going on from graph's own origin with the page's cursor",
                        redact_token_params(self.first_url.split('?').next().unwrap_or(""))
                    ));
                }
                Ok(Some(with_query_param(&self.first_url, "after", &after)))
            }
            None => Err(ConnectorError::misbehaving(
                format!(
                    "the graph api's next page points to {theirs}, another origin, and the page has no cursor to go on with; the connector never calls another origin, so this listing stops here"
                ),
                redact_token_params(&next),
            )),
        }
    }
}

/// A fingerprint, to see repeats without keeping every item: FNV-1a's constants over eight
/// bytes at a time (a report row is kilobytes; byte by byte this was a twentieth of a sync's CPU).
fn fingerprint(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut h = (&mut words).fold(0xcbf2_9ce4_8422_2325_u64, |h, w| {
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        (h ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29)
    });
    for b in words.remainder() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

/// The page's items, each parsed into a tree only when it is taken: a page is held as the
/// bytes Graph sent and where each item lies in them, so a large page costs its own size, not a
/// tree several times that (see DESIGN.md, "Memory").
#[derive(Debug, Default)]
pub struct Items {
    body: Vec<u8>,
    /// Where each item lies in `body`.
    spans: Vec<(usize, usize)>,
    /// Items past [`MAX_ITEM_BYTES`], skipped.
    pub oversized: usize,
}

/// The top level of a listing page, its items left as text.
#[derive(serde::Deserialize)]
struct RawPage<'a> {
    #[serde(borrow, default)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    paging: Option<Value>,
}

/// An item's id, read without building a tree of the item.
#[derive(serde::Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Value>,
}

impl Items {
    /// Splits a page body into its items and its paging.
    fn parse(body: Vec<u8>) -> Result<(Items, Paging), ConnectorError> {
        let page: RawPage = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::misbehaving(
                "the graph api answered a listing with something other than an object; try again later",
                e.to_string(),
            )
        })?;
        let paging = page.paging.as_ref().map(|p| Paging {
            next: p.get("next").and_then(Value::as_str).map(str::to_string),
            after: after_cursor(p),
        });
        let raw = match page.data {
            Some(d) if d.get() != "null" => serde_json::from_str::<Vec<&serde_json::value::RawValue>>(d.get())
                .map_err(|_| {
                    ConnectorError::misbehaving(
                        "the graph api answered a listing whose data is not a list; try again later",
                        String::new(),
                    )
                })?,
            _ => Vec::new(),
        };
        if raw.len() > MAX_ITEMS_PER_PAGE {
            return Err(too_many(raw.len(), "items"));
        }
        let base = body.as_ptr() as usize;
        let mut spans = Vec::with_capacity(raw.len());
        let mut oversized = 0;
        for item in &raw {
            let text = item.get();
            if text.len() > MAX_ITEM_BYTES {
                oversized += 1;
                continue;
            }
            let start = text.as_ptr() as usize - base;
            spans.push((start, start + text.len()));
        }
        drop(raw);
        let paging = paging.unwrap_or_default();
        Ok((Items { body, spans, oversized }, paging))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each item's fingerprint: of its `id`, or of its whole text when it has none.
    fn fingerprints(&self) -> Vec<u64> {
        self.spans
            .iter()
            .map(|&(a, b)| {
                let text = &self.body[a..b];
                match serde_json::from_slice::<IdOnly>(text).ok().and_then(|i| i.id) {
                    Some(Value::String(s)) => fingerprint(s.as_bytes()),
                    Some(Value::Number(n)) => fingerprint(n.to_string().as_bytes()),
                    _ => fingerprint(text),
                }
            })
            .collect()
    }
}

/// The items of a page, each parsed as it is taken.
pub struct ItemsIter {
    items: Items,
    next: usize,
}

impl Iterator for ItemsIter {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        let &(a, b) = self.items.spans.get(self.next)?;
        self.next += 1;
        // Each span was read as a JSON value when the page was split: it parses again.
        Some(serde_json::from_slice(&self.items.body[a..b]).unwrap_or(Value::Null))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.items.spans.len() - self.next;
        (left, Some(left))
    }
}

impl IntoIterator for Items {
    type Item = Value;
    type IntoIter = ItemsIter;

    fn into_iter(self) -> ItemsIter {
        ItemsIter { items: self, next: 0 }
    }
}

/// A page of `n` items or rows, more than [`MAX_ITEMS_PER_PAGE`]: no Graph answer.
fn too_many(n: usize, what: &str) -> ConnectorError {
    ConnectorError::misbehaving(
        format!(
            "the graph api answered a page of {n} {what}, more than any page the connector asks for ({MAX_ITEMS_PER_PAGE}); stopping this listing"
        ),
        String::new(),
    )
}

/// A listing's own failure (not an answer's): no cause a caller branches on.
fn failed(error: ConnectorError) -> CallError {
    CallError { failure: CallFailure::Other, error, graph: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::client::Api;
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

    /// Answers pages until the paginator stops, each from `page(n)`; the error, and how many
    /// pages were read.
    fn run_until_error(page: impl Fn(usize) -> Value) -> (CallError, usize) {
        let mut api = Api::new("t".into(), 0, Timestamp(0), true);
        let mut p = Paginator::new("https://g/act_1/ads".into(), CallKind::EdgePage);
        let mut call = p.start(&mut api);
        for n in 0.. {
            let (_, out) = answer(&mut api, page(n));
            match p.on_outcome(call, out, &mut api) {
                Ok(_) => call = p.request_next(&mut api).expect("the chain goes on"),
                Err(e) => return (e, n + 1),
            }
        }
        unreachable!()
    }

    #[test]
    fn a_next_chain_that_cycles_under_fresh_cursors_ends_after_three_pages_of_items_already_read() {
        let (e, pages) = run_until_error(|n| {
            let ids: Vec<Value> = (0..2).map(|k| json!({"id": format!("{}", (n % 2) * 2 + k)})).collect();
            json!({"data": ids, "paging": {"next": format!("https://g/act_1/ads?after=c{n}")}})
        });
        assert_eq!(pages, 2 + MAX_REPEATED_PAGES as usize, "two new pages, then three that only repeat");
        assert!(e.error.message().contains("only items already read"), "{}", e.error.message());
    }

    #[test]
    fn empty_pages_with_next_forever_end_after_a_hundred() {
        let (e, pages) =
            run_until_error(|n| json!({"data": [], "paging": {"next": format!("https://g/act_1/ads?after=e{n}")}}));
        assert_eq!(pages, MAX_EMPTY_PAGES as usize);
        assert!(e.error.message().contains("empty pages in a row"), "{}", e.error.message());
    }
}
