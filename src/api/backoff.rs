//! Exponential backoff with a cap and seeded jitter.

use crate::rng::Rng;
use std::time::Duration;

/// 5 attempts: Airbyte's `max_tries`, so a request fails after the same effort.
pub const MAX_ATTEMPTS: u32 = 5;
/// 5 s first wait, doubling: 5, 10, 20, 40 s (Airbyte's ladder, about 75 s in all).
pub const BASE_DELAY: Duration = Duration::from_secs(5);
/// 5 min: no single backoff wait is longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Up to 10 % added at random so that many clients do not retry in lock step.
pub const JITTER: f64 = 0.10;

/// The backoff policy.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: BASE_DELAY, max_delay: MAX_DELAY, max_attempts: MAX_ATTEMPTS, jitter: JITTER }
    }
}

impl Backoff {
    /// The wait after the `failed`-th failed attempt (1-based), or `None` once the attempts
    /// are used up.
    pub fn delay(&self, failed: u32, rng: &mut Rng) -> Option<Duration> {
        if failed == 0 || failed >= self.max_attempts {
            return None;
        }
        let exp = self.base.saturating_mul(1u32 << (failed - 1).min(20));
        let capped = exp.min(self.max_delay);
        Some(capped.mul_f64(1.0 + self.jitter * rng.next_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_five_seconds_and_stop_after_five_attempts() {
        let b = Backoff::default();
        let mut rng = Rng::new(1);
        for (n, base) in [(1, 5), (2, 10), (3, 20), (4, 40)] {
            let d = b.delay(n, &mut rng).unwrap().as_secs_f64();
            assert!(d >= base as f64 && d < base as f64 * 1.1, "attempt {n}: {d}");
        }
        assert_eq!(b.delay(5, &mut rng), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_is_seeded() {
        let b = Backoff::default();
        let d1 = b.delay(1, &mut Rng::new(9)).unwrap();
        let d2 = b.delay(1, &mut Rng::new(9)).unwrap();
        assert_eq!(d1, d2);
        assert!(d1 >= Duration::from_secs(5) && d1 < Duration::from_millis(5500));
    }

    #[test]
    fn waits_are_capped() {
        let b = Backoff { max_attempts: 30, ..Backoff::default() };
        assert!(b.delay(25, &mut Rng::new(0)).unwrap() <= MAX_DELAY.mul_f64(1.0 + JITTER));
    }
}
