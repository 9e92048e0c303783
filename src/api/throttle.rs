//! Reads Graph's four usage headers, on every response including errors and batch elements,
//! and decides when to pause: before the limit is hit, not after.

use crate::driver::TimeoutReason;
use crate::http::header;
use crate::model::AccountId;
use crate::time::Timestamp;
use serde_json::Value;
use std::collections::BTreeMap;
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

/// The highest percentage among a usage object's counters.
fn counters_pct(v: &Value) -> f64 {
    ["call_count", "total_time", "total_cputime"].iter().filter_map(|k| v.get(*k).and_then(num)).fold(0.0, f64::max)
}

/// One answer's usage headers, by whom each limits: the app (`x-app-usage`), the ad account
/// the call was for (`x-ad-account-usage`), and the business-use-case counters of each ad
/// account they name (`x-business-use-case-usage`, keyed by bare account id).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageReport {
    pub app: Option<Usage>,
    pub account: Option<Usage>,
    pub by_account: Vec<(String, Usage)>,
}

impl UsageReport {
    /// Every counter folded into one figure: the highest, and the longest advised wait.
    pub fn folded(&self) -> Option<Usage> {
        let all = self.app.iter().chain(&self.account).chain(self.by_account.iter().map(|(_, u)| u));
        all.copied().reduce(|a, b| Usage {
            pct: a.pct.max(b.pct),
            hint: match (a.hint, b.hint) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
        })
    }
}

/// Reads the three usage headers; absent ones are `None` (Graph sends them only once enough
/// calls were made).
pub fn usage_report(headers: &[(String, String)]) -> UsageReport {
    let json = |name: &str| header(headers, name).and_then(|h| serde_json::from_str::<Value>(h).ok());
    let mut report = UsageReport::default();
    if let Some(v) = json("x-app-usage") {
        report.app = Some(Usage { pct: counters_pct(&v), hint: None });
    }
    if let Some(v) = json("x-ad-account-usage") {
        let pct = v.get("acc_id_util_pct").and_then(num).unwrap_or(0.0);
        let reset = v.get("reset_time_duration").and_then(num).filter(|s| *s > 0.0).map(hint_secs);
        report.account = Some(Usage { pct, hint: if pct >= MIN_RATE { reset } else { None } });
    }
    if let Some(Value::Object(map)) = json("x-business-use-case-usage") {
        for (id, entries) in map {
            let mut usage = Usage::default();
            for e in entries.as_array().into_iter().flatten() {
                usage.pct = usage.pct.max(counters_pct(e));
                let eta = e
                    .get("estimated_time_to_regain_access")
                    .and_then(num)
                    .filter(|m| *m > 0.0)
                    .map(|m| hint_secs(m * 60.0));
                if let Some(h) = eta {
                    usage.hint = Some(usage.hint.map_or(h, |old| old.max(h)));
                }
            }
            report.by_account.push((id.trim_start_matches("act_").to_string(), usage));
        }
    }
    report
}

/// Usage from `x-app-usage`, `x-ad-account-usage` and `x-business-use-case-usage`, folded into
/// one figure; `None` when none is present.
pub fn parse_usage(headers: &[(String, String)]) -> Option<Usage> {
    usage_report(headers).folded()
}

/// A wait Graph advises, in seconds, as a duration. Absurd values (`1e20`, found by fuzzing:
/// `Duration::from_secs_f64` panics on them) are held to a day; waits are capped far lower anyway.
fn hint_secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs.clamp(0.0, 86_400.0))
}

/// App and account load from `x-fb-ads-insights-throttle`.
pub fn parse_insights_loads(headers: &[(String, String)]) -> Option<(f64, f64)> {
    let v: Value = serde_json::from_str(header(headers, "x-fb-ads-insights-throttle")?).ok()?;
    let app = v.get("app_id_util_pct").and_then(num).unwrap_or(0.0);
    let acc = v.get("acc_id_util_pct").and_then(num).unwrap_or(0.0);
    Some((app, acc))
}

/// The stricter of app and account load from `x-fb-ads-insights-throttle`.
pub fn parse_insights_throttle(headers: &[(String, String)]) -> Option<f64> {
    parse_insights_loads(headers).map(|(app, acc)| app.max(acc))
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

/// The pacing of one scope: the app, or one ad account.
#[derive(Clone, Debug, Default)]
struct Gate {
    paused: Option<Pause>,
    insights_load: f64,
    /// Time spent waiting on quota blocks since the scope's last success.
    quota_waited: Duration,
}

/// Pacing state of a sync: the app's gate, which holds every call, and one gate per ad
/// account, which holds that account's calls only (Graph's business-use-case quota and the ad
/// account score are per account; one busy account must not stop the others).
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    app: Gate,
    accounts: BTreeMap<AccountId, Gate>,
    /// How many pauses were taken, for progress reports.
    pub pauses: u64,
    /// The latest pause: why and how long.
    pub last_pause: Option<(TimeoutReason, Duration)>,
    pub last_usage: f64,
}

impl Throttle {
    fn gate(&mut self, account: Option<&str>) -> &mut Gate {
        match account {
            Some(a) => self.accounts.entry(AccountId::new(a)).or_default(),
            None => &mut self.app,
        }
    }

    /// Reads the headers of any response (success, error or batch element) to a call for
    /// `account` (`None`: a call for no one account, such as a batch).
    pub fn observe(&mut self, headers: &[(String, String)], account: Option<&str>, now: Timestamp) {
        if let Some((app, acc)) = parse_insights_loads(headers) {
            self.app.insights_load = app;
            match account {
                Some(_) => self.gate(account).insights_load = acc,
                None => self.app.insights_load = app.max(acc),
            }
        }
        let report = usage_report(headers);
        if let Some(folded) = report.folded() {
            self.last_usage = folded.pct;
        }
        if let Some(u) = report.app {
            self.pause_for_usage(None, u, now);
        }
        if let Some(u) = report.account {
            self.pause_for_usage(account, u, now);
        }
        for (id, u) in report.by_account {
            // The counters of the call's own account are that account's, under whatever key
            // (a business id, say) Graph filed them; a call for no account has them by name.
            self.pause_for_usage(Some(account.unwrap_or(&id)), u, now);
        }
    }

    fn pause_for_usage(&mut self, account: Option<&str>, usage: Usage, now: Timestamp) {
        if let Some(pause) = pause_for(usage) {
            self.pause(account, now, now.plus(pause), TimeoutReason::ThrottlePause);
        }
    }

    /// A call for `account` succeeded: a quota episode of its scope, if any, is over.
    pub fn on_success(&mut self, account: Option<&str>) {
        if let Some(g) = match account {
            Some(a) => self.accounts.get_mut(a),
            None => Some(&mut self.app),
        } {
            g.quota_waited = Duration::ZERO;
        }
    }

    /// A call for `account` was refused for quota. Returns how long to wait before trying
    /// again, or `None` if the episode has already waited [`MAX_QUOTA_WAIT`] (give up).
    pub fn on_quota_block(
        &mut self,
        headers: &[(String, String)],
        account: Option<&str>,
        now: Timestamp,
    ) -> Option<Duration> {
        let hint = parse_usage(headers).and_then(|u| u.hint);
        let wait = hint.unwrap_or(MAX_PAUSE).min(MAX_PAUSE);
        let gate = self.gate(account);
        if gate.quota_waited + wait > MAX_QUOTA_WAIT {
            return None;
        }
        gate.quota_waited += wait;
        self.pause(account, now, now.plus(wait), TimeoutReason::QuotaWait);
        Some(wait)
    }

    fn pause(&mut self, account: Option<&str>, now: Timestamp, until: Timestamp, reason: TimeoutReason) {
        let gate = self.gate(account);
        if gate.paused.is_none_or(|p| until > p.until) {
            gate.paused = Some(Pause { until, reason });
            self.pauses += 1;
            self.last_pause = Some((reason, until.since(now)));
        }
    }

    /// When calls for `account` may resume, if paused at `now`: the later of the app's pause
    /// and the account's own.
    pub fn paused_until(&self, account: Option<&str>, now: Timestamp) -> Option<(Timestamp, TimeoutReason)> {
        let own = account.and_then(|a| self.accounts.get(a)).and_then(|g| g.paused);
        [self.app.paused, own]
            .into_iter()
            .flatten()
            .filter(|p| p.until > now)
            .max_by_key(|p| p.until)
            .map(|p| (p.until, p.reason))
    }

    /// The last insights load seen for `account`: the stricter of the app's and the account's
    /// (0 before any `/insights` response).
    pub fn insights_load(&self, account: Option<&str>) -> f64 {
        let own = account.and_then(|a| self.accounts.get(a)).map_or(0.0, |g| g.insights_load);
        self.app.insights_load.max(own)
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
        t.observe(
            &h("x-ad-account-usage", r#"{"acc_id_util_pct":90,"reset_time_duration":30}"#),
            Some("1"),
            Timestamp(0),
        );
        assert_eq!(t.paused_until(Some("1"), Timestamp(0)), Some((Timestamp(120_000), TimeoutReason::ThrottlePause)));
        assert_eq!(t.paused_until(Some("1"), Timestamp(120_000)), None);
    }

    #[test]
    fn quota_blocks_wait_the_hint_and_give_up_after_an_hour() {
        let mut t = Throttle::default();
        let eta = h(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_insights","call_count":100,"estimated_time_to_regain_access":2}]}"#,
        );
        assert_eq!(t.on_quota_block(&eta, Some("1"), Timestamp(0)), Some(Duration::from_secs(120)));
        let mut waits = 1;
        while t.on_quota_block(&[], Some("1"), Timestamp(0)).is_some() {
            waits += 1;
        }
        // 2 min, then 10 min blocks until the hour is spent: 2 + 5*10 = 52 min, the next would pass 60.
        assert_eq!(waits, 6);
        assert!(t.on_quota_block(&[], Some("2"), Timestamp(0)).is_some(), "another account has its own episode");
        t.on_success(Some("1"));
        assert!(t.on_quota_block(&[], Some("1"), Timestamp(0)).is_some());
    }

    #[test]
    fn account_usage_pauses_that_account_only_and_app_usage_pauses_all() {
        let mut t = Throttle::default();
        let busy = h(
            "x-business-use-case-usage",
            r#"{"1":[{"type":"ads_management","call_count":96,"estimated_time_to_regain_access":0}]}"#,
        );
        t.observe(&busy, Some("1"), Timestamp(0));
        assert_eq!(t.paused_until(Some("1"), Timestamp(0)), Some((Timestamp(600_000), TimeoutReason::ThrottlePause)));
        assert_eq!(t.paused_until(Some("2"), Timestamp(0)), None, "account 2 goes on");
        assert_eq!(t.paused_until(None, Timestamp(0)), None);
        // A batch (no account) names the account in the header's key.
        let other = h("x-business-use-case-usage", r#"{"2":[{"type":"ads_insights","call_count":90}]}"#);
        t.observe(&other, None, Timestamp(0));
        assert_eq!(t.paused_until(Some("2"), Timestamp(0)), Some((Timestamp(120_000), TimeoutReason::ThrottlePause)));
        t.observe(&h("x-app-usage", r#"{"call_count":97}"#), Some("3"), Timestamp(1_000));
        assert_eq!(
            t.paused_until(Some("3"), Timestamp(1_000)),
            Some((Timestamp(601_000), TimeoutReason::ThrottlePause))
        );
        assert_eq!(t.paused_until(None, Timestamp(1_000)), Some((Timestamp(601_000), TimeoutReason::ThrottlePause)));
    }

    #[test]
    fn insights_load_is_the_stricter_of_the_apps_and_the_accounts() {
        let mut t = Throttle::default();
        t.observe(
            &h("x-fb-ads-insights-throttle", r#"{"app_id_util_pct":20,"acc_id_util_pct":95}"#),
            Some("1"),
            Timestamp(0),
        );
        assert_eq!(t.insights_load(Some("1")), 95.0);
        assert_eq!(t.insights_load(Some("2")), 20.0);
    }
}
