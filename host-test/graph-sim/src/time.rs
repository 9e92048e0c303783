//! Time helpers for the virtual clock: Graph's timestamp format and account-local dates.
//!
//! Graph prints object times as `2026-06-01T15:02:47-0700` (numeric offset without a colon, in the
//! account's timezone) and insights dates as `YYYY-MM-DD` in account time. Accounts here use a fixed
//! offset each (no DST switches) so that a date is a pure function of (instant, account).

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Seconds in a day.
pub const DAY_S: i64 = 86_400;

/// Formats epoch seconds as Graph does, in the given UTC offset (seconds east).
pub fn graph_time(epoch_s: i64, offset_s: i32) -> String {
    let tz = FixedOffset::east_opt(offset_s).unwrap_or_else(utc_offset);
    match tz.timestamp_opt(epoch_s, 0).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
        None => String::from("1970-01-01T00:00:00+0000"),
    }
}

/// The zero offset; infallible because 0 is always within chrono's bounds.
fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero offset is always valid"))
}

/// The calendar date of an instant (ms) in the given offset.
pub fn local_date(epoch_ms: i64, offset_s: i32) -> NaiveDate {
    let shifted = epoch_ms.div_euclid(1000) + i64::from(offset_s);
    let days = shifted.div_euclid(DAY_S);
    epoch_day(days)
}

/// The date `days` after 1970-01-01.
pub fn epoch_day(days: i64) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    base.checked_add_signed(chrono::Duration::days(days)).unwrap_or(base)
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: NaiveDate) -> i64 {
    let base = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (d - base).num_days()
}

/// `YYYY-MM-DD`.
pub fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Human-readable UTC time used in token-expiry messages.
pub fn utc_human(epoch_ms: i64) -> String {
    match Utc.timestamp_millis_opt(epoch_ms).single() {
        Some(t) => {
            let t: DateTime<Utc> = t;
            t.format("%A, %d-%b-%y %H:%M:%S UTC").to_string()
        }
        None => String::from("unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_time_has_an_offset_without_colon() {
        // 2026-06-01T22:02:47Z
        let t = 1_780_351_367;
        assert_eq!(graph_time(t, -7 * 3600), "2026-06-01T15:02:47-0700");
        assert_eq!(graph_time(t, 0), "2026-06-01T22:02:47+0000");
    }

    #[test]
    fn local_date_follows_the_offset() {
        let ms = 1_780_351_367_000;
        assert_eq!(date_str(local_date(ms, -7 * 3600)), "2026-06-01");
        assert_eq!(date_str(local_date(ms, 9 * 3600)), "2026-06-02");
    }
}
