//! A machine's deadlines in one table, and the one place that picks the soonest.

use crate::driver::TimeoutReason;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// A deadline and why it is wanted.
pub type Deadline = (Timestamp, TimeoutReason);

/// The soonest of several deadlines; on a tie, the first given wins (so callers list their own
/// timers before those of the machines they drive).
pub fn soonest(deadlines: impl IntoIterator<Item = Option<Deadline>>) -> Option<Deadline> {
    deadlines.into_iter().flatten().min_by_key(|(at, _)| *at)
}

/// Named deadlines of one machine. Keys order ties: the smaller key wins.
#[derive(Clone, Debug)]
pub struct Timers<K: Ord> {
    at: BTreeMap<K, Deadline>,
}

impl<K: Ord> Default for Timers<K> {
    fn default() -> Self {
        Timers { at: BTreeMap::new() }
    }
}

impl<K: Ord + Clone> Timers<K> {
    /// Sets (or moves) the deadline of `key`.
    pub fn set(&mut self, key: K, at: Timestamp, reason: TimeoutReason) {
        self.at.insert(key, (at, reason));
    }

    /// Sets the deadline of `key` to `at` unless it is set sooner already.
    pub fn set_no_later(&mut self, key: K, at: Timestamp, reason: TimeoutReason) {
        if self.at.get(&key).is_none_or(|(set, _)| *set > at) {
            self.at.insert(key, (at, reason));
        }
    }

    pub fn cancel(&mut self, key: &K) {
        self.at.remove(key);
    }

    pub fn is_set(&self, key: &K) -> bool {
        self.at.contains_key(key)
    }

    /// Whether `key` is set and its deadline has passed at `now`; a passed deadline is removed.
    pub fn take_if_due(&mut self, key: &K, now: Timestamp) -> bool {
        match self.at.get(key) {
            Some((at, _)) if *at <= now => {
                self.at.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Removes every deadline passed at `now`: their keys, in key order.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<K> {
        let due: Vec<K> = self.at.iter().filter(|(_, (at, _))| *at <= now).map(|(k, _)| k.clone()).collect();
        for k in &due {
            self.at.remove(k);
        }
        due
    }

    /// The soonest deadline of the table.
    pub fn soonest(&self) -> Option<Deadline> {
        soonest(self.at.values().copied().map(Some))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soonest_deadline_wins_and_ties_go_to_the_first() {
        let t = |ms| Timestamp::from_millis(ms);
        assert_eq!(
            soonest([Some((t(5), TimeoutReason::Backoff)), None, Some((t(3), TimeoutReason::JobPoll))]),
            Some((t(3), TimeoutReason::JobPoll))
        );
        assert_eq!(
            soonest([Some((t(3), TimeoutReason::Backoff)), Some((t(3), TimeoutReason::JobPoll))]),
            Some((t(3), TimeoutReason::Backoff))
        );
        let mut timers: Timers<u8> = Timers::default();
        timers.set(2, t(10), TimeoutReason::ThrottlePause);
        timers.set(1, t(10), TimeoutReason::JobPoll);
        assert_eq!(timers.soonest(), Some((t(10), TimeoutReason::JobPoll)));
        assert!(!timers.take_if_due(&1, t(9)));
        assert!(timers.take_if_due(&1, t(10)));
        assert_eq!(timers.soonest(), Some((t(10), TimeoutReason::ThrottlePause)));
    }
}
