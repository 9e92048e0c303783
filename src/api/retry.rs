//! The retry ladder: what the client does with a call whose answer it cannot hand over yet, one
//! rung at a time, for the three kinds of answer that may get better.
//!
//! - A transient failure (a 5xx, a reset, a rate limit that is no quota block, a body cut short)
//!   waits a backoff and goes again, until the backoff gives up.
//! - "Reduce the amount of data" halves the page size and goes again at once, down to one; then
//!   the call fails.
//! - An answer past the response-size cap halves the page size likewise; a request with no page
//!   size waits a backoff as a transient failure does (a passing fault), until it gives up.
//!
//! One way of counting: a halving is a page-size halving, not a retry (it ends by itself, at a
//! page size of one); a wait is a retry and uses the backoff's budget.

use super::backoff::Backoff;
use super::schedule::Entry;
use crate::http::{split_query, with_query_param};
use crate::rng::Rng;
use std::time::Duration;

/// Why a call goes up the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rung {
    /// A failure that may pass, in words for the log.
    Transient(String),
    /// Graph asked for less data.
    ReduceData,
    /// The answer passed this cap, in bytes.
    TooLarge(u64),
}

/// The next step of a call on the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask again at once with this page size (the request was changed).
    Halved(String),
    /// Ask again after this wait.
    Wait(Duration),
    /// No rung is left: the call fails.
    GiveUp,
}

/// The backoff and the randomness of its jitter.
#[derive(Debug)]
pub struct Ladder {
    backoff: Backoff,
    rng: Rng,
}

impl Ladder {
    pub fn new(seed: u64) -> Self {
        Ladder { backoff: Backoff::default(), rng: Rng::new(seed) }
    }

    /// The next step for `entry` on `rung` (its request's page size halved, or its failures
    /// counted, as the step needs).
    pub fn step(&mut self, entry: &mut Entry, rung: &Rung) -> Step {
        if matches!(rung, Rung::ReduceData | Rung::TooLarge(_)) {
            if let Some(halved) = halve_limit(&mut entry.call.request.url) {
                return Step::Halved(halved);
            }
            if *rung == Rung::ReduceData {
                return Step::GiveUp;
            }
        }
        entry.failures += 1;
        match self.backoff.delay(entry.failures, &mut self.rng) {
            Some(wait) => Step::Wait(wait),
            None => Step::GiveUp,
        }
    }
}

/// Halves the `limit` of `url` in place: the new limit, or `None` when it has none above one.
fn halve_limit(url: &mut String) -> Option<String> {
    let (_, params) = split_query(url);
    let limit = params.iter().find(|(k, _)| k == "limit").and_then(|(_, v)| v.parse::<u32>().ok());
    match limit {
        Some(l) if l > 1 => {
            let halved = (l / 2).to_string();
            *url = with_query_param(url, "limit", &halved);
            Some(halved)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::call::{Call, CallId, CallKind};
    use crate::http::Request;

    fn entry(url: &str) -> Entry {
        Entry::new(CallId(1), Call::graph(Request::get(url.to_string()), CallKind::EdgePage))
    }

    #[test]
    fn halvings_come_before_waits_and_do_not_use_the_backoff() {
        let mut ladder = Ladder::new(0);
        let mut e = entry("https://g/act_1/ads?limit=4");
        assert_eq!(ladder.step(&mut e, &Rung::TooLarge(1)), Step::Halved("2".into()));
        assert_eq!(ladder.step(&mut e, &Rung::ReduceData), Step::Halved("1".into()));
        assert_eq!(e.failures, 0);
        assert_eq!(ladder.step(&mut e, &Rung::ReduceData), Step::GiveUp, "nothing left to halve");
        assert!(matches!(ladder.step(&mut e, &Rung::TooLarge(1)), Step::Wait(_)), "a passing fault");
        assert_eq!(e.failures, 1);
    }

    #[test]
    fn transient_failures_wait_until_the_backoff_gives_up() {
        let mut ladder = Ladder::new(0);
        let mut e = entry("https://g/act_1/ads?limit=4");
        let steps: Vec<Step> = (0..10).map(|_| ladder.step(&mut e, &Rung::Transient("x".into()))).collect();
        let waits = steps.iter().take_while(|s| matches!(s, Step::Wait(_))).count();
        assert!(waits >= 1 && steps[waits] == Step::GiveUp, "{steps:?}");
        assert_eq!(e.call.request.url, "https://g/act_1/ads?limit=4", "a wait leaves the request as it was");
    }
}
