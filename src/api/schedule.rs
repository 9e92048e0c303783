//! The client's scheduler: the calls waiting to go (ready, or delayed by a backoff on the
//! [`Timers`] table), the requests in flight, and the bounds on them: how many in all and per
//! ad account, how many answer bytes at worst (the sum of their response-size caps), and how
//! many expected (listings and result pages, by what the last ones of their kind weighed,
//! within what the guest transcodes in one round trip).
//!
//! It decides which call goes next and with which cap; the client decides what a call is and
//! what its answer means.

use super::call::{Call, CallId, CallKind, Shape};
use crate::driver::TimeoutReason;
use crate::http::RequestId;
use crate::model::AccountId;
use crate::time::Timestamp;
use crate::timers::{Deadline, Timers};
use std::collections::{BTreeMap, VecDeque};

pub use sfm_wire::limits::DEFAULT_CONCURRENT_REQUESTS as DEFAULT_MAX_CONCURRENT_REQUESTS;

/// 4: requests in flight at once for one ad account. Graph's business-use-case quota and the
/// ad account score are per account: a few at a time keep one account from spending its quota
/// in a burst, while tens of accounts still run side by side.
pub const MAX_IN_FLIGHT_PER_ACCOUNT: usize = 4;

/// 192 MiB: the most answer bytes the host may hold for the guest at once, the sum of the caps
/// of the requests in flight (DESIGN.md, "Memory": with the guest's 512 MiB this leaves room to
/// parse the largest answer).
pub const IN_FLIGHT_BYTES: u64 = 192 << 20;

/// 4 MiB: the cap of an answer whose JSON is parsed whole into a tree (an account or a job, a
/// batch of 50 operations, a thumbnail): Graph's are kilobytes, and a tree may be many times its
/// text. Listings and result pages are read item by item and may be as large as
/// `response_size_limit_mb`.
pub const TREE_ANSWER_BYTES: u64 = 4 << 20;

/// 4 MiB: the least answer bytes expected from the listings and result pages in flight (read
/// item by item, they are the large answers). A sync's memory is what it holds at once: the
/// host's buffers of the answers arriving and the guest's copies of those it reads, so
/// concurrency is bounded by expected bytes as well as by count (DESIGN.md, "Memory"). Answers
/// parsed whole are kilobytes and flow freely; one large answer may always go.
pub const ANSWER_BYTES_IN_FLIGHT: u64 = 4 << 20;

/// 32 MiB: the most answer bytes expected in flight, however long the round trips.
pub const MAX_ANSWER_BYTES_IN_FLIGHT: u64 = 32 << 20;

/// 16: the round trips of large answers the budget is judged by.
const ROUND_TRIPS_KEPT: usize = 16;

/// 64 MB/s: what the guest transcodes, about. The bytes in flight follow the round trip (the
/// bandwidth-delay product): at 50 ms 4 MiB keep it busy, at 300 ms it takes 19 MB; fewer, and
/// a sync of many accounts waits on its pages (200 accounts: 35 s where one takes 22).
const ANSWER_BYTES_PER_SECOND: u64 = 64_000_000;

/// 256 KiB: what a listing or result page is expected to weigh before one of its kind came back.
const FIRST_ANSWER_ESTIMATE: u64 = 256 << 10;

/// How many requests may be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// In all (config `max_concurrent_requests`).
    pub total: usize,
    /// For any one ad account.
    pub per_account: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency { total: DEFAULT_MAX_CONCURRENT_REQUESTS, per_account: MAX_IN_FLIGHT_PER_ACCOUNT }
    }
}

/// One call, across its attempts.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: CallId,
    pub call: Call,
    /// Failed attempts that count against the backoff budget.
    pub failures: u32,
    /// How the last answer's body failed to parse, if it did: the same failure twice is the
    /// body's own, which no retry changes.
    pub malformed: Option<String>,
    /// Its answer passed the cap of a share of the budget: it goes again alone, with the whole
    /// cap its shape allows.
    pub large: bool,
    /// The response-size cap it was sent with (counted against the budget while in flight).
    pub cap: u64,
    /// The answer bytes it was expected to bring when sent (counted against the answer budget
    /// while in flight; 0 for answers parsed whole).
    pub expect: u64,
    /// When its request went.
    pub sent_at: Timestamp,
}

impl Entry {
    pub fn new(id: CallId, call: Call) -> Self {
        Entry { id, call, failures: 0, malformed: None, large: false, cap: 0, expect: 0, sent_at: Timestamp(0) }
    }
}

/// The calls waiting and in flight.
#[derive(Debug)]
pub struct Scheduler {
    ready: VecDeque<Entry>,
    /// Calls waiting out a backoff, by the order they failed in.
    delayed: BTreeMap<u64, Entry>,
    backoffs: Timers<u64>,
    next_delayed: u64,
    sent: BTreeMap<RequestId, Entry>,
    /// Requests in flight by ad account.
    sent_by_account: BTreeMap<AccountId, usize>,
    next_request: u64,
    concurrency: Concurrency,
    /// The most body bytes any answer may have (config `response_size_limit_mb`).
    max_response_bytes: u64,
    /// The sum of the caps of the requests in flight (at most [`IN_FLIGHT_BYTES`]).
    reserved: u64,
    /// What an answer of each kind read item by item weighs, from the last ones that came back.
    estimates: BTreeMap<CallKind, u64>,
    /// The sum of the expected bytes of the requests in flight.
    expected: u64,
    /// The round trips of the last large answers (milliseconds): the least of them is the
    /// network's; the others include the time answers waited for the guest to take them.
    round_trips_ms: VecDeque<u64>,
}

impl Scheduler {
    pub fn new(max_response_bytes: u64) -> Self {
        Scheduler {
            ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            backoffs: Timers::default(),
            next_delayed: 0,
            sent: BTreeMap::new(),
            sent_by_account: BTreeMap::new(),
            next_request: 0,
            concurrency: Concurrency::default(),
            max_response_bytes,
            reserved: 0,
            estimates: BTreeMap::new(),
            expected: 0,
            round_trips_ms: VecDeque::new(),
        }
    }

    /// Other bounds on requests in flight (at least one of each).
    pub fn set_concurrency(&mut self, c: Concurrency) {
        self.concurrency = Concurrency { total: c.total.max(1), per_account: c.per_account.max(1) };
    }

    pub fn set_max_response_bytes(&mut self, bytes: u64) {
        self.max_response_bytes = bytes;
    }

    /// Queues `entry` behind the calls waiting.
    pub fn queue(&mut self, entry: Entry) {
        self.ready.push_back(entry);
    }

    /// Queues `entry` before the calls waiting (it waited already: a quota block, a request
    /// asked again alone).
    pub fn queue_first(&mut self, entry: Entry) {
        self.ready.push_front(entry);
    }

    /// Holds `entry` until `until` (a backoff), then queues it behind the calls waiting.
    pub fn delay(&mut self, entry: Entry, until: Timestamp) {
        self.next_delayed += 1;
        self.backoffs.set(self.next_delayed, until, TimeoutReason::Backoff);
        self.delayed.insert(self.next_delayed, entry);
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.sent.len()
    }

    /// Sends the next call that may go, if any: the first urgent call waiting, else the first
    /// call. A call may go unless the requests in flight are at their bound (in all, or for its
    /// account), its cap does not fit in the budget, or `held` says the throttle holds its
    /// account. The request id, and the call with the cap it goes with.
    pub fn send_next(&mut self, now: Timestamp, held: impl Fn(Option<&str>) -> bool) -> Option<(RequestId, &Entry)> {
        for key in self.backoffs.take_due(now) {
            if let Some(entry) = self.delayed.remove(&key) {
                self.ready.push_back(entry);
            }
        }
        if self.sent.len() >= self.concurrency.total {
            return None;
        }
        let pick = self.pick(held)?;
        let mut entry = self.ready.remove(pick)?;
        if let Some(a) = &entry.call.account {
            *self.sent_by_account.entry(a.clone()).or_default() += 1;
        }
        entry.cap = self.cap_of(&entry);
        self.reserved += entry.cap;
        entry.expect = self.estimate(&entry);
        entry.sent_at = now;
        self.expected += entry.expect;
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let entry = self.sent.entry(id).or_insert(entry);
        Some((id, entry))
    }

    /// The position of the call to send next, if any may go.
    fn pick(&self, held: impl Fn(Option<&str>) -> bool) -> Option<usize> {
        let mut first = None;
        for (i, entry) in self.ready.iter().enumerate() {
            let account = entry.call.account.as_deref();
            if held(account) || account.is_some_and(|a| self.in_flight_for(a) >= self.concurrency.per_account) {
                continue;
            }
            let expect = self.estimate(entry);
            if expect > 0 && self.expected > 0 && self.expected + expect > self.answer_budget() {
                continue;
            }
            if self.reserved + self.cap_of(entry) > IN_FLIGHT_BYTES {
                // A request that needs the whole cap waits for the budget to drain, and holds
                // back the others until it goes (else a stream of small ones could starve it).
                if entry.large {
                    return None;
                }
                continue;
            }
            if entry.call.urgent {
                return Some(i);
            }
            first.get_or_insert(i);
        }
        first
    }

    fn in_flight_for(&self, account: &str) -> usize {
        self.sent_by_account.get(account).copied().unwrap_or(0)
    }

    /// The request `id` has its answer: its call, no longer counted in flight.
    pub fn take(&mut self, id: RequestId) -> Option<Entry> {
        let entry = self.sent.remove(&id)?;
        self.reserved = self.reserved.saturating_sub(entry.cap);
        self.expected = self.expected.saturating_sub(entry.expect);
        if let Some(a) = &entry.call.account
            && let Some(n) = self.sent_by_account.get_mut(a)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sent_by_account.remove(a);
            }
        }
        Some(entry)
    }

    /// The answer bytes `entry` is expected to bring: for a listing or result page, what the
    /// last ones of its kind weighed; answers parsed whole are not counted.
    fn estimate(&self, entry: &Entry) -> u64 {
        match entry.call.shape {
            Shape::GraphRaw => self.estimates.get(&entry.call.kind).copied().unwrap_or(FIRST_ANSWER_ESTIMATE),
            Shape::Graph | Shape::GraphBatch | Shape::External => 0,
        }
    }

    /// An answer of `bytes` came back at `now` for `entry`: the estimate of its kind moves
    /// halfway to it, and its round trip joins the last ones.
    pub fn observe_answer(&mut self, entry: &Entry, bytes: usize, now: Timestamp) {
        if entry.call.shape == Shape::GraphRaw {
            let bytes = bytes as u64;
            let e = self.estimates.entry(entry.call.kind).or_insert(bytes);
            *e = (*e + bytes).div_ceil(2);
            if self.round_trips_ms.len() == ROUND_TRIPS_KEPT {
                self.round_trips_ms.pop_front();
            }
            self.round_trips_ms.push_back(now.since(entry.sent_at).as_millis() as u64);
        }
    }

    /// The answer bytes expected in flight at most: what the guest transcodes in one round trip
    /// of the network (the least of the last ones: a longer one waited for the guest, and more
    /// in flight would only wait longer), within [`ANSWER_BYTES_IN_FLIGHT`] and
    /// [`MAX_ANSWER_BYTES_IN_FLIGHT`].
    pub fn answer_budget(&self) -> u64 {
        let round_trip = self.round_trips_ms.iter().copied().min().unwrap_or(0);
        (ANSWER_BYTES_PER_SECOND * round_trip / 1000).clamp(ANSWER_BYTES_IN_FLIGHT, MAX_ANSWER_BYTES_IN_FLIGHT)
    }

    /// The most an answer of this shape may have: listings and result pages (read item by
    /// item) the config's cap, answers parsed whole [`TREE_ANSWER_BYTES`].
    pub fn shape_cap(&self, entry: &Entry) -> u64 {
        match entry.call.shape {
            Shape::GraphRaw => self.max_response_bytes,
            Shape::Graph | Shape::GraphBatch | Shape::External => self.max_response_bytes.min(TREE_ANSWER_BYTES),
        }
    }

    /// The cap `entry` goes with: its share of the budget ([`IN_FLIGHT_BYTES`] over the
    /// requests that may be in flight), or, once an answer passed that, the whole cap of its
    /// shape. Real answers are far below a share: a share is 6 MiB at 32 in flight.
    fn cap_of(&self, entry: &Entry) -> u64 {
        let whole = self.shape_cap(entry);
        if entry.large {
            return whole;
        }
        whole.min(IN_FLIGHT_BYTES / self.concurrency.total as u64).max(1)
    }

    /// The soonest backoff to end.
    pub fn backoff_deadline(&self) -> Option<Deadline> {
        self.backoffs.soonest()
    }

    /// The calls ready to go, in order (some may be held by the throttle).
    pub fn waiting(&self) -> impl Iterator<Item = &Entry> {
        self.ready.iter()
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler through the client that drives it: what it sends, and with which cap.
    use super::*;
    use crate::api::client::{Api, CallKind, account_in_url};
    use crate::http::{FetchError, Request, Response};
    use serde_json::json;

    fn api() -> Api {
        Api::new("tok".into(), 1, Timestamp(0), true)
    }

    fn ok(body: serde_json::Value) -> Response {
        Response { status: 200, headers: vec![], body: body.to_string().into_bytes() }
    }

    /// An api that has seen a result page of `bytes` bytes come back.
    fn after_a_page_of(mut a: Api, bytes: usize) -> Api {
        a.submit(Call::graph_raw(Request::get("https://g/v25.0/0/insights?limit=500"), CallKind::JobResults));
        let (id, _) = a.poll_transmit().unwrap();
        let body = format!("{{\"data\":[],\"pad\":\"{}\"}}", "x".repeat(bytes.saturating_sub(20)));
        assert_eq!(body.len(), bytes.max(20));
        a.handle_response(id, Response { status: 200, headers: vec![], body: body.into_bytes() }, Timestamp(0))
            .unwrap();
        assert!(a.poll_completion().is_some());
        a
    }

    #[test]
    fn large_answers_in_flight_stay_within_their_expected_bytes_while_small_ones_flow() {
        let mut a = after_a_page_of(api().with_concurrency(Concurrency { total: 64, per_account: 64 }), 1 << 20);
        for n in 1..=20 {
            a.submit(Call::graph_raw(
                Request::get(format!("https://g/v25.0/{n}/insights?limit=100")),
                CallKind::JobResults,
            ));
        }
        for n in 1..=20 {
            a.submit(Call::graph(Request::get(format!("https://g/v25.0/{n}")), CallKind::JobCreate));
        }
        let sent: Vec<(RequestId, Request)> = std::iter::from_fn(|| a.poll_transmit()).collect();
        let pages = sent.iter().filter(|(_, r)| r.url.contains("/insights")).count();
        assert_eq!(pages as u64, ANSWER_BYTES_IN_FLIGHT / (1 << 20), "pages of 1 MiB, within the budget");
        assert_eq!(sent.len() - pages, 20, "answers parsed whole are not held back");
        // A page that comes back small frees its megabyte and halves the estimate.
        let small = || Response { status: 200, headers: vec![], body: b"{\"data\":[]}".to_vec() };
        let mut pages: Vec<RequestId> =
            sent.iter().filter(|(_, r)| r.url.contains("/insights")).map(|(id, _)| *id).collect();
        a.handle_response(pages.remove(0), small(), Timestamp(0)).unwrap();
        assert_eq!(std::iter::from_fn(|| a.poll_transmit()).count(), 1, "3 MiB + a half: one more goes");
        a.handle_response(pages.remove(0), small(), Timestamp(0)).unwrap();
        assert_eq!(std::iter::from_fn(|| a.poll_transmit()).count(), 5, "2.5 MiB + 5 x a quarter");
    }

    #[test]
    fn the_answer_budget_follows_the_round_trip_within_its_bounds() {
        let mut a = api();
        assert_eq!(a.answer_budget(), ANSWER_BYTES_IN_FLIGHT, "no round trip seen yet");
        let mut now = 0;
        for n in 0..20 {
            a.submit(Call::graph_raw(Request::get(format!("https://g/v25.0/{n}/insights")), CallKind::JobResults));
            let (id, _) = a.poll_transmit().unwrap();
            now += 300;
            a.handle_response(id, ok(json!({"data": []})), Timestamp(now)).unwrap();
        }
        // 300 ms a page: what 64 MB/s fill in a round trip.
        let budget = a.answer_budget();
        assert!((18_000_000..=19_200_000).contains(&budget), "{budget}");
        for n in 0..40 {
            a.submit(Call::graph_raw(Request::get(format!("https://g/v25.0/s{n}/insights")), CallKind::JobResults));
            let (id, _) = a.poll_transmit().unwrap();
            now += 5_000;
            a.handle_response(id, ok(json!({"data": []})), Timestamp(now)).unwrap();
        }
        assert_eq!(a.answer_budget(), MAX_ANSWER_BYTES_IN_FLIGHT, "slow round trips: the most");
    }

    #[test]
    fn one_large_answer_always_goes_however_large_the_last_one_was() {
        let mut a = after_a_page_of(api(), 64 << 20);
        a.submit(Call::graph_raw(Request::get("https://g/v25.0/1/insights?limit=500"), CallKind::JobResults));
        a.submit(Call::graph_raw(Request::get("https://g/v25.0/2/insights?limit=500"), CallKind::JobResults));
        assert!(a.poll_transmit().is_some(), "the first goes alone");
        assert!(a.poll_transmit().is_none(), "the second waits for it");
    }

    #[test]
    fn the_caps_of_the_requests_in_flight_never_sum_past_the_budget() {
        for total in [1, 7, 32, 256] {
            // Pages known to be small: only the caps bound them.
            let mut a = after_a_page_of(api().with_concurrency(Concurrency { total, per_account: 256 }), 11);
            for n in 0..300 {
                a.submit(Call::graph_raw(
                    Request::get(format!("https://g/v25.0/{n}/insights?limit=500")),
                    CallKind::JobResults,
                ));
            }
            let caps: Vec<u64> = std::iter::from_fn(|| a.poll_transmit()).map(|(_, r)| r.max_response_bytes).collect();
            assert_eq!(caps.len(), total, "the count bound");
            assert!(caps.iter().sum::<u64>() <= IN_FLIGHT_BYTES, "{total}: {caps:?}");
            let share = (IN_FLIGHT_BYTES / total as u64).min(64 << 20);
            assert!(caps.iter().all(|&c| c == share), "{total}: each its share");
        }
        // An answer parsed whole has a cap of its own.
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1"), CallKind::Account));
        assert_eq!(a.poll_transmit().unwrap().1.max_response_bytes, TREE_ANSWER_BYTES);
    }

    #[test]
    fn an_answer_past_its_share_goes_again_alone_with_the_whole_cap_when_the_budget_allows() {
        let mut a = after_a_page_of(api(), 11);
        for n in 0..32 {
            a.submit(Call::graph_raw(
                Request::get(format!("https://g/v25.0/{n}/insights?limit=500")),
                CallKind::JobResults,
            ));
        }
        let sent: Vec<(RequestId, Request)> = std::iter::from_fn(|| a.poll_transmit()).collect();
        let share = IN_FLIGHT_BYTES / 32;
        assert_eq!(sent.len(), 32);
        a.handle_fetch_error(sent[0].0, FetchError::TooLarge(share), Timestamp(0)).unwrap();
        assert!(a.poll_completion().is_none(), "no failure");
        assert!(a.poll_transmit().is_none(), "31 shares in flight leave no room for 64 MiB");
        let ok = || Response { status: 200, headers: vec![], body: b"{\"data\":[]}".to_vec() };
        for (id, _) in &sent[1..22] {
            a.handle_response(*id, ok(), Timestamp(0)).unwrap();
        }
        let (_, again) = a.poll_transmit().expect("now it fits");
        assert_eq!(again.max_response_bytes, 64 << 20);
        assert_eq!(again.url, sent[0].1.url, "the same page, not halved");
        assert_eq!(a.escalations, 1);
        assert_eq!(a.stats().page_size_halvings, 0);
    }

    fn sent_per_account(a: &mut Api) -> BTreeMap<String, usize> {
        let mut sent = BTreeMap::new();
        while let Some((_, r)) = a.poll_transmit() {
            *sent.entry(account_in_url(&r.url).unwrap_or("-").to_string()).or_insert(0) += 1;
        }
        sent
    }

    #[test]
    fn in_flight_stays_within_the_total_and_each_accounts_limit() {
        let mut a = api().with_concurrency(Concurrency { total: 6, per_account: 4 });
        for i in 0..6 {
            a.submit(Call::graph(Request::get(format!("https://g/v25.0/act_1/ads?p={i}")), CallKind::EdgePage));
        }
        for i in 0..3 {
            a.submit(Call::graph(Request::get(format!("https://g/v25.0/act_2/ads?p={i}")), CallKind::EdgePage));
        }
        let sent = sent_per_account(&mut a);
        assert_eq!(sent, BTreeMap::from([("1".to_string(), 4), ("2".to_string(), 2)]));
        assert_eq!(a.in_flight(), 6);
    }

    /// An act_1 call answered at 1 s with `header`, while one call of act_1 and one of act_2
    /// wait to be sent.
    #[test]
    fn urgent_calls_go_before_calls_waiting_longer() {
        let mut a = api().with_concurrency(Concurrency { total: 1, per_account: 1 });
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/ads"), CallKind::EdgePage));
        a.submit(Call::graph(Request::get("https://g/v25.0/act_2/insights"), CallKind::JobCreate));
        let (_, first) = a.poll_transmit().unwrap();
        assert!(first.url.contains("insights"), "{}", first.url);
        assert!(a.poll_transmit().is_none(), "one in flight at most");
    }

    fn answered_with_two_waiting(header: (&str, &str)) -> Api {
        let mut a = api();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/ads"), CallKind::EdgePage));
        let (id, _) = a.poll_transmit().unwrap();
        a.submit(Call::graph(Request::get("https://g/v25.0/act_1/campaigns"), CallKind::EdgePage));
        a.submit(Call::graph(Request::get("https://g/v25.0/act_2/campaigns"), CallKind::EdgePage));
        let mut resp = ok(json!({"data": []}));
        resp.headers.push((header.0.into(), header.1.into()));
        a.handle_response(id, resp, Timestamp(1_000)).unwrap();
        a
    }

    #[test]
    fn an_accounts_usage_pauses_that_account_only_while_others_go_on() {
        // The answer came in before either waiting call was sent.
        let mut a =
            answered_with_two_waiting(("x-ad-account-usage", r#"{"acc_id_util_pct":90,"reset_time_duration":20}"#));
        let sent = sent_per_account(&mut a);
        assert_eq!(sent, BTreeMap::from([("2".to_string(), 1)]), "act_1 waits, act_2 goes");
        assert_eq!(a.poll_timeout(), Some((Timestamp(121_000), TimeoutReason::ThrottlePause)));
        a.handle_timeout(Timestamp(121_000));
        assert_eq!(sent_per_account(&mut a), BTreeMap::from([("1".to_string(), 1)]));
    }

    #[test]
    fn app_usage_pauses_every_account() {
        let mut a =
            answered_with_two_waiting(("x-app-usage", r#"{"call_count":95,"total_cputime":10,"total_time":10}"#));
        assert!(a.poll_transmit().is_none(), "every account waits for the app");
        let (deadline, reason) = a.poll_timeout().unwrap();
        assert_eq!(reason, TimeoutReason::ThrottlePause);
        a.handle_timeout(deadline);
        assert_eq!(sent_per_account(&mut a).len(), 2);
    }
}
