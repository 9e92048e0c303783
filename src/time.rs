//! The crate's one notion of time: milliseconds on the host's clock, handed in as an input.
//!
//! Core code never reads a clock. Constructors take the start time and every handler takes
//! `now`, so the same code runs on wall time in production and on virtual time in tests.

use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;
use std::time::Duration;

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant plus `d`, saturating rather than overflowing.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// The first multiple of `grid` (counted from the epoch) at or after this instant.
    pub fn round_up(self, grid: Duration) -> Self {
        let g = i64::try_from(grid.as_millis()).unwrap_or(i64::MAX).max(1);
        let over = self.0.rem_euclid(g);
        if over == 0 { self } else { Timestamp(self.0.saturating_add(g - over)) }
    }

    /// How long from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // Out-of-range instants cannot come from a real clock; the epoch is a safe stand-in.
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// The UTC calendar day of this instant.
    pub fn date_utc(self) -> NaiveDate {
        self.to_datetime().date_naive()
    }

    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_zero_when_earlier_is_later() {
        assert_eq!(Timestamp(5).since(Timestamp(10)), Duration::ZERO);
        assert_eq!(Timestamp(10).since(Timestamp(4)), Duration::from_millis(6));
    }

    #[test]
    fn add_saturates() {
        assert_eq!(Timestamp(i64::MAX - 1).plus(Duration::from_secs(10)), Timestamp(i64::MAX));
    }

    #[test]
    fn displays_as_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    }
}
