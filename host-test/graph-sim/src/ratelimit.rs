//! The rate-limit model: decaying counters, usage headers and throttling errors.
//!
//! Counters (graph-api.md §5):
//! * per account, a point score (1 per call, batch operations included) that drains linearly
//!   from full to zero over `account_decay_s` — over the ceiling: 17/2446079 (613/1487742 on
//!   `/insights`);
//! * per account, the `ads_management` and `ads_insights` business-use-case call counts, draining
//!   over an hour — over quota: 80004/2446079 and 80000/2446079;
//! * an app-wide call count draining over an hour — over: code 4;
//! * the insights load of running report jobs — at 100 % a new job answers 4/1504022.
//!
//! A rejected call is not charged, so waiting for `estimated_time_to_regain_access` (minutes) or
//! `reset_time_duration` (seconds) always suffices. Every header is present on success and on
//! error responses alike.

use std::collections::BTreeMap;

use serde_json::json;

use crate::config::RateLimits;
use crate::errors::ApiError;

/// A counter that drains linearly at a fixed rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Drain {
    value: f64,
    at_ms: i64,
}

impl Drain {
    fn level(&self, now_ms: i64, per_s: f64) -> f64 {
        (self.value - (now_ms - self.at_ms).max(0) as f64 / 1000.0 * per_s).max(0.0)
    }

    fn add(&mut self, now_ms: i64, per_s: f64, x: f64) {
        self.value = self.level(now_ms, per_s) + x;
        self.at_ms = now_ms;
    }

    /// Seconds until the level is below `limit` again (0 when already below).
    fn seconds_until_below(&self, now_ms: i64, per_s: f64, limit: f64) -> f64 {
        let l = self.level(now_ms, per_s);
        if l < limit || per_s <= 0.0 { 0.0 } else { (l - limit) / per_s + 1.0 }
    }
}

/// Usage of one account.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct AccountUsage {
    score: Drain,
    management: Drain,
    insights: Drain,
}

/// What a call is, for charging and choosing errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallClass {
    /// Account the call concerns.
    pub account: Option<usize>,
    /// Whether it hits `/insights` (or a report run).
    pub insights: bool,
    /// Whether it creates a report run.
    pub job_create: bool,
}

/// The whole rate-limit state.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: RateLimits,
    accounts: BTreeMap<usize, AccountUsage>,
    app: Drain,
}

/// Seconds in the rolling BUC / app window.
const HOUR_S: f64 = 3600.0;

impl RateLimiter {
    /// A limiter with the given quotas and all counters at zero.
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter { limits, accounts: BTreeMap::new(), app: Drain::default() }
    }

    fn score_rate(&self) -> f64 {
        self.limits.account_max_score / self.limits.account_decay_s.max(1.0)
    }

    fn usage(&self, a: usize) -> AccountUsage {
        self.accounts.get(&a).copied().unwrap_or_default()
    }

    /// Rejects the call if a limit is exhausted; otherwise charges it.
    /// `acc_load`/`app_load` are the current insights loads in percent.
    pub fn admit(&mut self, c: CallClass, acc_load: f64, now_ms: i64) -> Result<(), ApiError> {
        let l = &self.limits;
        let app_rate = l.app_calls_per_hour / HOUR_S;
        if self.app.level(now_ms, app_rate) >= l.app_calls_per_hour {
            return Err(ApiError::new(400, 4, "(#4) Application request limit reached").transient(true));
        }
        if let Some(a) = c.account {
            let u = self.usage(a);
            if u.score.level(now_ms, self.score_rate()) >= l.account_max_score {
                self.count_refused(c, a, now_ms);
                return Err(if c.insights {
                    ApiError::new(400, 613, "(#613) Calls to this api have exceeded the rate limit.")
                        .sub(1_487_742)
                        .user(
                            "Too many calls",
                            "There have been too many calls from this ad-account. Please wait a bit and try again.",
                        )
                } else {
                    ApiError::new(400, 17, "(#17) User request limit reached").sub(2_446_079).user(
                        "Ad Account Has Too Many API Calls",
                        "There have been too many calls from this ad-account. Please wait a bit and try again.",
                    )
                });
            }
            let (drain, quota, code, what) = if c.insights {
                (u.insights, l.buc_insights_per_hour, 80_000, "ads_insights")
            } else {
                (u.management, l.buc_management_per_hour, 80_004, "ads_management")
            };
            if drain.level(now_ms, quota / HOUR_S) >= quota {
                self.count_refused(c, a, now_ms);
                return Err(ApiError::new(
                    400,
                    code,
                    format!("(#{code}) There have been too many calls to this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#{what}."),
                )
                .sub(2_446_079)
                .transient(false));
            }
            if c.job_create && acc_load >= 100.0 {
                return Err(ApiError::new(400, 4, "(#4) Too many API requests").sub(1_504_022).transient(true).user(
                    "Too many API requests",
                    "The insights backend is busy for this ad account; wait for running reports to finish.",
                ));
            }
        }
        self.charge(c, now_ms);
        Ok(())
    }

    /// Graph counts a refused call against the business use case too: usage goes past 100 %
    /// ("Utilization is too high (118)%", the recorded corpus) and the wait grows.
    fn count_refused(&mut self, c: CallClass, a: usize, now_ms: i64) {
        let (mr, ir) = (self.limits.buc_management_per_hour / HOUR_S, self.limits.buc_insights_per_hour / HOUR_S);
        let u = self.accounts.entry(a).or_default();
        if c.insights {
            u.insights.add(now_ms, ir, 1.0);
        } else {
            u.management.add(now_ms, mr, 1.0);
        }
    }

    fn charge(&mut self, c: CallClass, now_ms: i64) {
        let app_rate = self.limits.app_calls_per_hour / HOUR_S;
        self.app.add(now_ms, app_rate, 1.0);
        if let Some(a) = c.account {
            let sr = self.score_rate();
            let mr = self.limits.buc_management_per_hour / HOUR_S;
            let ir = self.limits.buc_insights_per_hour / HOUR_S;
            let u = self.accounts.entry(a).or_default();
            u.score.add(now_ms, sr, 1.0);
            if c.insights {
                u.insights.add(now_ms, ir, 1.0);
            } else {
                u.management.add(now_ms, mr, 1.0);
            }
        }
    }

    /// Usage headers for a response (success or error).
    pub fn headers(
        &self,
        c: CallClass,
        account_id: Option<&str>,
        acc_load: f64,
        app_load: f64,
        now_ms: i64,
        throttle_spelling: Option<u64>,
    ) -> Vec<(String, String)> {
        let l = &self.limits;
        let mut h = Vec::new();
        let app_rate = l.app_calls_per_hour / HOUR_S;
        let app_pct = pct(self.app.level(now_ms, app_rate), l.app_calls_per_hour).ceil() as u64;
        h.push((
            "x-app-usage".into(),
            json!({"call_count": app_pct, "total_time": app_pct / 2, "total_cputime": app_pct / 2}).to_string(),
        ));
        if let (Some(a), Some(id)) = (c.account, account_id) {
            let u = self.usage(a);
            let sr = self.score_rate();
            let score = u.score.level(now_ms, sr);
            let reset = if sr > 0.0 { (score / sr).ceil() as u64 } else { 0 };
            h.push((
                "x-ad-account-usage".into(),
                json!({
                    "acc_id_util_pct": round2(pct(score, l.account_max_score)),
                    "reset_time_duration": reset,
                    "ads_api_access_tier": l.access_tier,
                })
                .to_string(),
            ));
            let score_wait = u.score.seconds_until_below(now_ms, sr, l.account_max_score);
            let entry = |kind: &str, d: Drain, quota: f64, extra_wait: f64| {
                let rate = quota / HOUR_S;
                let count = pct(d.level(now_ms, rate), quota).ceil() as u64;
                let wait = d.seconds_until_below(now_ms, rate, quota).max(extra_wait);
                json!({
                    "type": kind,
                    "call_count": count,
                    "total_cputime": count / 2,
                    "total_time": count / 2,
                    "estimated_time_to_regain_access": (wait / 60.0).ceil() as u64,
                    "ads_api_access_tier": l.access_tier,
                })
            };
            let buc = json!({ id: [
                entry("ads_management", u.management, l.buc_management_per_hour, if c.insights { 0.0 } else { score_wait }),
                entry("ads_insights", u.insights, l.buc_insights_per_hour, if c.insights { score_wait } else { 0.0 }),
            ]});
            h.push(("x-business-use-case-usage".into(), buc.to_string()));
        }
        if c.insights {
            let (app, acc) = (round2(app_load.min(100.0)), round2(acc_load.min(100.0)));
            // The spellings Graph has used (the recorded corpus), or none at all.
            let value = match throttle_spelling {
                None | Some(0) => Some(
                    json!({"app_id_util_pct": app, "acc_id_util_pct": acc, "ads_api_access_tier": l.access_tier})
                        .to_string(),
                ),
                Some(1) => Some(format!("{{\"app_id_util_pct\": {app:.2},\"acc_id_util_pct\": {acc:.2}}}")),
                Some(2) => Some(format!("{{\"app_id_util_pct\":{},\"acc_id_util_pct\":{}}}", app.round(), acc.round())),
                Some(_) => None,
            };
            if let Some(v) = value {
                h.push(("x-fb-ads-insights-throttle".into(), v));
            }
        }
        h
    }
}

fn pct(x: f64, of: f64) -> f64 {
    if of <= 0.0 { 100.0 } else { x / of * 100.0 }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(a: usize) -> CallClass {
        CallClass { account: Some(a), insights: false, job_create: false }
    }

    #[test]
    fn the_account_score_trips_past_the_ceiling_and_recovers_after_the_advertised_wait() {
        let mut r = RateLimiter::new(RateLimits::tight());
        let t = 1_000;
        for _ in 0..60 {
            assert!(r.admit(read(0), 0.0, t).is_ok());
        }
        let e = r.admit(read(0), 0.0, t).err();
        assert_eq!(e.map(|e| (e.code, e.subcode)), Some((17, Some(2_446_079))));
        let h = r.headers(read(0), Some("1"), 0.0, 0.0, t, None);
        let buc = h.iter().find(|(k, _)| k == "x-business-use-case-usage").map(|(_, v)| v.clone()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&buc).unwrap_or_default();
        let minutes = v["1"][0]["estimated_time_to_regain_access"].as_u64().unwrap_or(0);
        assert!(minutes >= 1);
        assert!(r.admit(read(0), 0.0, t + minutes as i64 * 60_000).is_ok());
    }
}
