//! A seed's plan: the simulated world, config, streams and fault mix it draws.

use super::*;

pub use graph_sim::INSIGHT_STREAMS;

/// Entity streams that joined the soak pool after its seeds were first quoted; drawn after
/// everything else.
const LATER_ENTITY_STREAMS: [&str; 1] = ["ad_creatives_from_ads"];

/// The name of the custom insight a plan may add, and the stream it makes.
pub(super) const CUSTOM_NAME: &str = "SoakCustom";
pub(super) const CUSTOM_STREAM: &str = "custom_soak_custom";

/// 12 %: the most requests of a seed that answer with a transport or HTTP fault. With five
/// retries per call, a call is lost with odds of 0.12^6 ≈ 3e-6, rare enough over a soak.
pub(super) const MAX_REQUEST_FAULT_SHARE: f64 = 0.12;

/// SplitMix64: small, seedable, and plenty for drawing plans.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A fixed salt, so the plan stream differs from the simulator's own use of the seed.
        Rng(seed ^ 0x50a6_5eed_c0ff_ee00)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The two halves of a seed's sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Entities,
    Insights,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Entities => "entities",
            Phase::Insights => "insights",
        }
    }
}

/// A custom insight the plan adds.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomPlan {
    pub level: &'static str,
    pub breakdowns: Vec<&'static str>,
}

/// Everything a seed decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub seed: u64,
    pub sim: SimConfig,
    /// The account ids the config lists (a non-empty subset of the simulator's).
    pub accounts: Vec<String>,
    pub page_size: u32,
    pub lookback_days: Option<u32>,
    pub entity_streams: Vec<&'static str>,
    /// Days back of the entity phase's `start_date`; `None` for no start date.
    pub entity_start_days: Option<i64>,
    pub insight_streams: Vec<&'static str>,
    pub custom: Option<CustomPlan>,
    /// Days back of the insights phase's `start_date`.
    pub insight_days: i64,
    /// The phase the crash-and-resume run stops in.
    pub crash_phase: Phase,
    /// The account whose `ads` listing cycles (a hostile answer the connector must end by
    /// failing that account alone).
    pub cycle_victim: Option<String>,
    /// The account whose `campaigns` listing answers a redirect to another origin (never
    /// followed: that account fails alone).
    pub redirect_victim: Option<String>,
    /// The account whose report results cycle (its insights fail alone, after retries and
    /// splits).
    pub results_cycle_victim: Option<String>,
}

/// A failure a plan causes on purpose, which every run that reaches it must end with, alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedFailure {
    /// The streams that read the hostile listing (`ads` and `ad_creatives_from_ads` both list
    /// the ads edge).
    pub streams: Vec<&'static str>,
    pub account: String,
    /// Words the error trace must hold, one of them (a cycling listing that finds no items
    /// is a run of empty pages).
    pub causes: &'static [&'static str],
    /// What the plan did, for a failure message.
    pub what: &'static str,
}

pub(super) fn draw_faults(rng: &mut Rng) -> Faults {
    let mut f = Faults::default();
    let maybe = |rng: &mut Rng, p_on: f64, max: f64| {
        if rng.chance(p_on) { (rng.unit() * max * 1000.0).round() / 1000.0 } else { 0.0 }
    };
    f.http_500 = maybe(rng, 0.4, 0.04);
    f.transient_code = maybe(rng, 0.4, 0.04);
    f.connection_reset = maybe(rng, 0.3, 0.03);
    f.timeout = maybe(rng, 0.3, 0.03);
    f.malformed_body = maybe(rng, 0.3, 0.03);
    f.truncated_body = maybe(rng, 0.3, 0.03);
    let total = f.http_500 + f.transient_code + f.connection_reset + f.timeout + f.malformed_body + f.truncated_body;
    if total > MAX_REQUEST_FAULT_SHARE {
        let k = MAX_REQUEST_FAULT_SHARE / total;
        for p in [
            &mut f.http_500,
            &mut f.transient_code,
            &mut f.connection_reset,
            &mut f.timeout,
            &mut f.malformed_body,
            &mut f.truncated_body,
        ] {
            *p = (*p * k * 1000.0).floor() / 1000.0;
        }
    }
    f.batch_null = maybe(rng, 0.3, 0.15);
    f.batch_aborted_960 = maybe(rng, 0.3, 0.08);
    f.empty_middle_pages = rng.chance(0.3);
    f.job_fail_first_attempts = if rng.chance(0.25) { if rng.chance(0.2) { 2 } else { 1 } } else { 0 };
    f.stuck_jobs = maybe(rng, 0.15, 0.3);
    f.job_skipped = maybe(rng, 0.2, 0.15);
    f.throttled = rng.chance(0.08);
    f
}

impl Plan {
    /// The plan of `seed`: a pure function of it.
    pub fn draw(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let mut sim = SimConfig { seed, access_token: CANARY_TOKEN.to_string(), ..SimConfig::default() };
        sim.accounts = rng.range(1, 3) as usize;
        sim.campaigns_per_account = rng.range(1, 3) as usize;
        sim.adsets_per_campaign = rng.range(1, 2) as usize;
        sim.ads_per_adset = rng.range(1, 3) as usize;
        sim.faults = draw_faults(&mut rng);
        // Ids as the simulator numbers its accounts.
        let all: Vec<String> = (1..=sim.accounts).map(|i| format!("{}", 1_000_000_000_000_000u64 + i as u64)).collect();
        let mut accounts: Vec<String> = all.iter().filter(|_| rng.chance(0.7)).cloned().collect();
        if accounts.is_empty() {
            accounts.push(rng.pick(&all.iter().map(String::as_str).collect::<Vec<_>>()).to_string());
        }
        let page_size = rng.pick(&[3u32, 10, 25, 100]);
        let lookback_days = rng.chance(0.5).then(|| rng.range(1, 3) as u32);
        let first_pool: Vec<&'static str> =
            ENTITY_STREAMS.iter().copied().filter(|s| !LATER_ENTITY_STREAMS.contains(s)).collect();
        let mut entity_streams: Vec<&'static str> = first_pool.iter().copied().filter(|_| rng.chance(0.35)).collect();
        if entity_streams.is_empty() {
            entity_streams.push(rng.pick(&first_pool));
        }
        let entity_start_days = rng.chance(0.5).then(|| rng.range(100, 700) as i64);
        let mut insight_streams = vec![if rng.chance(0.4) { "ads_insights" } else { rng.pick(&INSIGHT_STREAMS) }];
        if rng.chance(0.3) {
            let s = rng.pick(&INSIGHT_STREAMS);
            if !insight_streams.contains(&s) {
                insight_streams.push(s);
            }
        }
        let custom = rng.chance(0.25).then(|| CustomPlan {
            level: rng.pick(&["ad", "adset", "campaign", "account"]),
            breakdowns: rng
                .pick(&[&[][..], &["country"], &["age"], &["publisher_platform"], &["age", "gender"]])
                .to_vec(),
        });
        let insight_days = rng.range(1, 10) as i64;
        let crash_phase = rng.pick(&[Phase::Entities, Phase::Insights]);
        // Streams added to the pool later are drawn last, so that every earlier draw of a seed
        // (and the seeds quoted in RELIABILITY.md and DESIGN.md) stays as it was.
        for later in LATER_ENTITY_STREAMS {
            if rng.chance(0.35) {
                entity_streams.push(later);
            }
        }
        let entity_streams: Vec<&'static str> =
            ENTITY_STREAMS.iter().copied().filter(|s| entity_streams.contains(s)).collect();
        // Hostile answers joined the mix later still: drawn after all of the above.
        sim.faults.oversized_answers =
            if rng.chance(0.2) { (rng.unit() * 0.05 * 1000.0).round() / 1000.0 } else { 0.0 };
        let cycle_victim = (rng.chance(0.1) && entity_streams.contains(&"ads") && accounts.len() >= 2)
            .then(|| accounts[rng.range(0, accounts.len() as u64 - 1) as usize].clone());
        if let Some(victim) = &cycle_victim {
            sim.faults.cycling_listings = vec![(victim.clone(), "ads".into())];
        }
        // The answers of issue 21 joined last: text that is not valid Unicode anywhere, and at
        // most one more hostile account a seed (a redirected listing or report results that
        // cycle), so that the one error a sync ends with names it.
        sim.faults.bad_text = if rng.chance(0.3) { (rng.unit() * 0.2 * 1000.0).round() / 1000.0 } else { 0.0 };
        let victim = |rng: &mut Rng| accounts[rng.range(0, accounts.len() as u64 - 1) as usize].clone();
        let redirect_victim =
            (rng.chance(0.1) && cycle_victim.is_none() && entity_streams.contains(&"campaigns") && accounts.len() >= 2)
                .then(|| victim(&mut rng));
        if let Some(v) = &redirect_victim {
            sim.faults.redirected_listings = vec![(v.clone(), "campaigns".into())];
        }
        let results_cycle_victim = (rng.chance(0.15)
            && cycle_victim.is_none()
            && redirect_victim.is_none()
            && insight_days <= 3
            && accounts.len() >= 2)
            .then(|| victim(&mut rng));
        if let Some(v) = &results_cycle_victim {
            sim.faults.cycling_results = vec![v.clone()];
        }
        Plan {
            seed,
            sim,
            accounts,
            page_size,
            lookback_days,
            entity_streams,
            entity_start_days,
            insight_streams,
            custom,
            insight_days,
            crash_phase,
            cycle_victim,
            redirect_victim,
            results_cycle_victim,
        }
    }

    /// The failure the plan causes on purpose in `phase`, if any.
    pub fn expected_failure(&self, phase: Phase) -> Option<ExpectedFailure> {
        const CYCLE: &[&str] = &["only items already read", "empty pages in a row"];
        let entity = |names: &[&str]| self.entity_streams.iter().copied().filter(|s| names.contains(s)).collect();
        match phase {
            Phase::Entities => {
                if let Some(account) = self.cycle_victim.clone() {
                    let streams = entity(&["ads", "ad_creatives_from_ads"]);
                    return Some(ExpectedFailure { streams, account, causes: CYCLE, what: "the ads listing cycles" });
                }
                let account = self.redirect_victim.clone()?;
                Some(ExpectedFailure {
                    streams: entity(&["campaigns"]),
                    account,
                    causes: &["a redirect to https://elsewhere.example"],
                    what: "the campaigns listing redirects to another origin",
                })
            }
            Phase::Insights => {
                let account = self.results_cycle_victim.clone()?;
                let mut streams = self.insight_streams.clone();
                if self.custom.is_some() {
                    streams.push(CUSTOM_STREAM);
                }
                Some(ExpectedFailure { streams, account, causes: CYCLE, what: "its report results cycle" })
            }
        }
    }

    /// One line saying what the seed runs.
    pub fn describe(&self) -> String {
        let f = &self.sim.faults;
        let mut faults = Vec::new();
        for (name, p) in [
            ("http_500", f.http_500),
            ("transient_code", f.transient_code),
            ("connection_reset", f.connection_reset),
            ("timeout", f.timeout),
            ("malformed_body", f.malformed_body),
            ("truncated_body", f.truncated_body),
            ("batch_null", f.batch_null),
            ("batch_aborted_960", f.batch_aborted_960),
            ("stuck_jobs", f.stuck_jobs),
            ("job_skipped", f.job_skipped),
            ("oversized_answers", f.oversized_answers),
        ] {
            if p > 0.0 {
                faults.push(format!("{name}={p}"));
            }
        }
        if f.empty_middle_pages {
            faults.push("empty_middle_pages".into());
        }
        if f.job_fail_first_attempts > 0 {
            faults.push(format!("job_fail_first_attempts={}", f.job_fail_first_attempts));
        }
        if f.throttled {
            faults.push("throttled".into());
        }
        if let Some(v) = &self.cycle_victim {
            faults.push(format!("cycling ads listing of {v}"));
        }
        if f.bad_text > 0.0 {
            faults.push(format!("bad_text={}", f.bad_text));
        }
        if let Some(v) = &self.redirect_victim {
            faults.push(format!("redirected campaigns listing of {v}"));
        }
        if let Some(v) = &self.results_cycle_victim {
            faults.push(format!("cycling report results of {v}"));
        }
        let custom = match &self.custom {
            Some(c) => format!(" + {CUSTOM_STREAM} (level {}, breakdowns [{}])", c.level, c.breakdowns.join(",")),
            None => String::new(),
        };
        format!(
            "world {}x{}x{}x{} accounts {:?} page_size {} lookback {:?}; entities {:?} start {}; insights {:?}{custom} over {} days; crash in {}; faults [{}]",
            self.sim.accounts,
            self.sim.campaigns_per_account,
            self.sim.adsets_per_campaign,
            self.sim.ads_per_adset,
            self.accounts,
            self.page_size,
            self.lookback_days,
            self.entity_streams,
            self.entity_start_days.map_or("none".to_string(), |d| format!("{d} days back")),
            self.insight_streams,
            self.insight_days,
            self.crash_phase.name(),
            faults.join(" ")
        )
    }

    /// The config of `phase` for a read starting at `now_ms`.
    pub fn config(&self, phase: Phase, now_ms: i64) -> Value {
        let mut c = json!({
            "account_ids": self.accounts,
            "credentials": {"auth_type": "Service", "access_token": CANARY_TOKEN},
            "page_size": self.page_size,
        });
        if self.sim.faults.oversized_answers > 0.0 {
            // A cap the simulator's oversized answers pass, and no real page here does.
            c["response_size_limit_mb"] = json!(1);
        }
        if let Some(l) = self.lookback_days {
            c["insights_lookback_window"] = json!(l);
        }
        let days_back = match phase {
            Phase::Entities => self.entity_start_days,
            Phase::Insights => Some(self.insight_days),
        };
        if let Some(d) = days_back {
            c["start_date"] = json!(start_date(now_ms, d));
        }
        if phase == Phase::Insights
            && let Some(custom) = &self.custom
        {
            c["custom_insights"] = json!([{
                "name": CUSTOM_NAME,
                "level": custom.level,
                "fields": ["impressions", "spend", "clicks"],
                "breakdowns": custom.breakdowns,
            }]);
        }
        c
    }

    /// The streams `phase` selects.
    pub fn streams(&self, phase: Phase) -> Vec<&'static str> {
        match phase {
            Phase::Entities => self.entity_streams.clone(),
            Phase::Insights => {
                let mut s = self.insight_streams.clone();
                if self.custom.is_some() {
                    s.push(CUSTOM_STREAM);
                }
                s
            }
        }
    }
}

/// Midnight UTC `days` days before `now_ms`, as a config `start_date`.
pub(super) fn start_date(now_ms: i64, days: i64) -> String {
    let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    (now - chrono::Duration::days(days)).format("%Y-%m-%dT00:00:00Z").to_string()
}
