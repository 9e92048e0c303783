//! Reads Graph's four usage headers, on every response including errors and batch elements,
//! and decides when to pause: before the limit is hit, not after.

use crate::driver::TimeoutReason;
use crate::http::header;
use crate::time::Timestamp;
use serde_json::Value;
use std::time::Duration;

/// 85 %: from here on, pause before the next call (Airbyte's MIN_RATE).
pub const MIN_RATE: f64 = 85.0;
/// 95 %: close to a block; pause longer (Airbyte's MAX_RATE).
pub const MAX_RATE: f64 = 95.0;
/// 2 min: the pause at MIN_RATE; the ad-account score decays over 300 s.
pub const MIN_PAUSE: Duration = Duration::from_secs(120);
/// 10 min: the pause at MAX_RATE, and the cap on any single wait Graph asks for.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);
/// 1 h: the most a single episode of quota blocks may make us wait before giving up.
pub const MAX_QUOTA_WAIT: Duration = Duration::from_secs(3600);
/// 90 %: new insights jobs start only while the insights load is below this.
pub const INSIGHTS_THROTTLE_LIMIT: f64 = 90.0;

/// What the usage headers of one response say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// The highest percentage any counter reports.
    pub pct: f64,
    /// How long Graph says to wait, if it says.
    pub hint: Option<Duration>,
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Usage from `x-app-usage`, `x-ad-account-usage` and `x-business-use-case-usage`; `None`
/// when none is present (Graph sends them only once enough calls were made).
pub fn parse_usage(headers: &[(String, String)]) -> Option<Usage> {
    let mut usage: Option<Usage> = None;
    let mut raise = |pct: f64, hint: Option<Duration>| {
        let u = usage.get_or_insert_with(Usage::default);
        u.pct = u.pct.max(pct);
        if let Some(h) = hint {
            u.hint = Some(u.hint.map_or(h, |old| old.max(h)));
        }
    };
    if let Some(v) = header(headers, "x-app-usage").and_then(|h| serde_json::from_str::<Value>(h).ok()) {
        let pct = ["call_count", "total_time", "total_cputime"]
            .iter()
            .filter_map(|k| v.get(*k).and_then(num))
            .fold(0.0, f64::max);
        raise(pct, None);
    }
    if let Some(v) = header(headers, "x-ad-account-usage").and_then(|h| serde_json::from_str::<Value>(h).ok()) {
        let pct = v.get("acc_id_util_pct").and_then(num).unwrap_or(0.0);
        let reset = v.get("reset_time_duration").and_then(num).filter(|s| *s > 0.0).map(hint_secs);
        raise(pct, if pct >= MIN_RATE { reset } else { None });
    }
    if let Some(Value::Object(map)) =
        header(headers, "x-business-use-case-usage").and_then(|h| serde_json::from_str::<Value>(h).ok())
    {
        for entries in map.values() {
            for e in entries.as_array().into_iter().flatten() {
                let pct = ["call_count", "total_time", "total_cputime"]
                    .iter()
                    .filter_map(|k| e.get(*k).and_then(num))
                    .fold(0.0, f64::max);
                let eta = e
                    .get("estimated_time_to_regain_access")
                    .and_then(num)
                    .filter(|m| *m > 0.0)
                    .map(|m| hint_secs(m * 60.0));
                raise(pct, eta);
            }
        }
    }
    usage
}

/// A wait Graph advises, in seconds, as a duration. Absurd values (`1e20`, found by fuzzing:
/// `Duration::from_secs_f64` panics on them) are held to a day; waits are capped far lower anyway.
fn hint_secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.clamp(0.0, 86_400.0))
}

/// The stricter of app and account load from `x-fb-ads-insights-throttle`.
pub fn parse_insights_throttle(headers: &[(String, String)]) -> Option<f64> {
    let v: Value = serde_json::from_str(header(headers, "x-fb-ads-insights-throttle")?).ok()?;
    let app = v.get("app_id_util_pct").and_then(num).unwrap_or(0.0);
    let acc = v.get("acc_id_util_pct").and_then(num).unwrap_or(0.0);
    Some(app.max(acc))
}

/// The pause a usage level calls for, if any.
pub fn pause_for(usage: Usage) -> Option<Duration> {
    let floor = if usage.pct >= MAX_RATE {
        MAX_PAUSE
    } else if usage.pct >= MIN_RATE {
        MIN_PAUSE
    } else {
        return None;
    };
    Some(usage.hint.map_or(floor, |h| h.max(floor)).min(MAX_PAUSE))
}

/// A pause in force: until when, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pause {
    until: Timestamp,
    reason: TimeoutReason,
}

/// Pacing state shared by every call of a sync.
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    paused: Option<Pause>,
    insights_load: f64,
    /// Time spent waiting on quota blocks since the last success.
    quota_waited: Duration,
    /// How many pauses were taken, for progress reports.
    pub pauses: u64,
    /// The latest pause: why and how long.
    pub last_pause: Option<(TimeoutReason, Duration)>,
    pub last_usage: f64,
}

impl Throttle {
    /// Reads the headers of any response (success, error or batch element).
    pub fn observe(&mut self, headers: &[(String, String)], now: Timestamp) {
        if let Some(load) = parse_insights_throttle(headers) {
            self.insights_load = load;
        }
        if let Some(usage) = parse_usage(headers) {
            self.last_usage = usage.pct;
            if let Some(pause) = pause_for(usage) {
                self.pause(now, now.plus(pause), TimeoutReason::ThrottlePause);
            }
        }
    }

    /// A call succeeded: a quota episode, if any, is over.
    pub fn on_success(&mut self) {
        self.quota_waited = Duration::ZERO;
    }

    /// A call was refused for quota. Returns how long to wait before trying again, or `None`
    /// if the episode has already waited [`MAX_QUOTA_WAIT`] (give up).
    pub fn on_quota_block(&mut self, headers: &[(String, String)], now: Timestamp) -> Option<Duration> {
        let hint = parse_usage(headers).and_then(|u| u.hint);
        let wait = hint.unwrap_or(MAX_PAUSE).min(MAX_PAUSE);
        if self.quota_waited + wait > MAX_QUOTA_WAIT {
            return None;
        }
        self.quota_waited += wait;
        self.pause(now, now.plus(wait), TimeoutReason::QuotaWait);
        Some(wait)
    }

    fn pause(&mut self, now: Timestamp, until: Timestamp, reason: TimeoutReason) {
        if self.paused.is_none_or(|p| until > p.until) {
            self.paused = Some(Pause { until, reason });
            self.pauses += 1;
            self.last_pause = Some((reason, until.since(now)));
        }
    }

    /// When calls may resume, if paused at `now`.
    pub fn paused_until(&self, now: Timestamp) -> Option<(Timestamp, TimeoutReason)> {
        self.paused.filter(|p| p.until > now).map(|p| (p.until, p.reason))
    }

    /// The last insights load seen (0 before any `/insights` response).
    pub fn insights_load(&self) -> f64 {
        self.insights_load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, v: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), v.to_string())]
    }

    #[test]
    fn reads_numbers_sent_as_strings_and_missing_keys() {
        let u = parse_usage(&h("x-app-usage", r#"{"call_count":"28","total_time":91}"#)).unwrap();
        assert_eq!(u.pct, 91.0);
        assert_eq!(
            parse_insights_throttle(&h(
                "x-fb-ads-insights-throttle",
                r#"{"app_id_util_pct":"100","acc_id_util_pct":10}"#
            )),
            Some(100.0)
        );
        assert_eq!(parse_usage(&[]), None);
    }

    #[test]
    fn absurd_waits_in_usage_headers_do_not_panic() {
        let u = parse_usage(&h("x-ad-account-usage", r#"{"acc_id_util_pct":99,"reset_time_duration":1e20}"#)).unwrap();
        assert_eq!(u.hint, Some(Duration::from_secs(86_400)));
        let u = parse_usage(&h(
            "x-business-use-case-usage",
            r#"{"1":[{"call_count":1,"estimated_time_to_regain_access":1e20}]}"#,
        ));
        assert_eq!(u.unwrap().hint, Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn business_use_case_eta_is_in_minutes() {
        let u = parse_usage(&h(
            "x-business-use-case-usage",
            r#"{"123":[{"type":"ads_management","call_count":97,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":2}]}"#,
        ))
        .unwrap();
        assert_eq!(u.pct, 97.0);
        assert_eq!(u.hint, Some(Duration::from_secs(120)));
    }

    #[test]
    fn usage_at_90_pauses_two_minutes_and_at_96_ten() {
        assert_eq!(pause_for(Usage { pct: 90.0, hint: None }), Some(MIN_PAUSE));
        assert_eq!(pause_for(Usage { pct: 96.0, hint: None }), Some(MAX_PAUSE));
        assert_eq!(pause_for(Usage { pct: 50.0, hint: None }), None);
        // A 60-minute estimate is capped (Airbyte would sleep the full hour).
        assert_eq!(pause_for(Usage { pct: 90.0, hint: Some(Duration::from_secs(3600)) }), Some(MAX_PAUSE));
    }

    #[test]
    fn error_responses_pause_too() {
        let mut t = Throttle::default();
        t.observe(&h("x-ad-account-usage", r#"{"acc_id_util_pct":90,"reset_time_duration":30}"#), Timestamp(0));
        assert_eq!(t.paused_until(Timestamp(0)), Some((Timestamp(120_000), TimeoutReason::ThrottlePause)));
        assert_eq!(t.paused_until(Timestamp(120_000)), None);
    }

    #[test]
    fn quota_blocks_wait_the_hint_and_give_up_after_an_hour() {
        let mut t = Throttle::default();
        let eta = h(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_insights","call_count":100,"estimated_time_to_regain_access":2}]}"#,
        );
        assert_eq!(t.on_quota_block(&eta, Timestamp(0)), Some(Duration::from_secs(120)));
        let mut waits = 1;
        while t.on_quota_block(&[], Timestamp(0)).is_some() {
            waits += 1;
        }
        // 2 min, then 10 min blocks until the hour is spent: 2 + 5*10 = 52 min, the next would pass 60.
        assert_eq!(waits, 6);
        t.on_success();
        assert!(t.on_quota_block(&[], Timestamp(0)).is_some());
    }
}
