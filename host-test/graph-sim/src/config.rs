//! Simulator configuration, fault probabilities and the named presets.
//!
//! A test's intent should read from its setup: `SimConfig::preset("flaky")` says more than a page
//! of probabilities. Every preset is the default world plus one concern switched on.

/// 2026-06-15T10:00:00Z: a mid-June start keeps the default 90-day history inside one year.
pub const DEFAULT_START_MS: i64 = 1_781_517_600_000;

/// 1.5 MiB: the body of an oversized answer ([`Faults::oversized_answers`]), past a client cap
/// of 1 MiB and still cheap to make.
pub const OVERSIZED_BYTES: usize = 3 << 19;

/// "Large, i.e. never": job and page size guards are off unless a preset sets them.
pub const UNLIMITED: u64 = u64::MAX;

/// Probabilities and switches for injected misbehaviour. All zero/false means a perfect server.
///
/// Probabilities are per request (per operation for the batch-only ones) and are drawn from the
/// seeded fault stream in request order, so the same request sequence sees the same faults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// HTTP 500 with a code-2 `is_transient` body.
    pub http_500: f64,
    /// A transient Graph error: code 1 (HTTP 500), code 1 subcode 99 (HTTP 500) or code 2 (HTTP 503).
    pub transient_code: f64,
    /// The connection drops before an answer ([`crate::TransportFault::ConnectionReset`]).
    pub connection_reset: f64,
    /// No answer within the client's patience ([`crate::TransportFault::Timeout`]).
    pub timeout: f64,
    /// HTTP 200 whose body is not JSON (an HTML error page).
    pub malformed_body: f64,
    /// HTTP 200 whose JSON body is cut short.
    pub truncated_body: f64,
    /// A batch operation comes back as `null` (it timed out inside the batch).
    pub batch_null: f64,
    /// A batch operation comes back aborted with inner code 960.
    pub batch_aborted_960: f64,
    /// Listings with more than one page serve an empty page (with `next`) before some middle pages.
    pub empty_middle_pages: bool,
    /// Each new report run for the same (object, range, level) fails this many times first.
    pub job_fail_first_attempts: u32,
    /// Every report run on a whole ad account fails (`Job Failed`), except one that only lists
    /// ids (all its fields end in `_id`); runs on campaigns and below do not.
    pub account_jobs_fail: bool,
    /// Fraction of report runs that stay `Job Running` at 100 % forever.
    pub stuck_jobs: f64,
    /// Fraction of report runs that end `Job Skipped`.
    pub job_skipped: f64,
    /// Every call answers 190/463 (expired token).
    pub token_expired: bool,
    /// Rate limits use [`RateLimits::tight`] so that an impolite client trips them.
    pub throttled: bool,
    /// Fraction of report runs that say `Job Running` at 100 % for the last fifth of their
    /// time before `Job Completed` (their results then answer 2601/1815107).
    pub running_at_100: f64,
    /// Result pages after the first answer "reduce the amount of data" (HTTP 500, code 1) while
    /// their `limit` is above 25.
    pub reduce_data_on_later_result_pages: bool,
    /// `x-fb-ads-insights-throttle` in each of the spellings Graph used (spaced with two
    /// decimals, compact integers, with the access tier) or missing, request by request.
    pub throttle_header_variants: bool,
    /// Fraction of successful GETs answered with a body padded past [`OVERSIZED_BYTES`]: a
    /// proxy or a broken backend sending an absurd answer (a client's size cap must catch it).
    pub oversized_answers: f64,
    /// Listings (account id, edge name) whose `next` chain cycles: every page after the first
    /// repeats the first page's items, each time under a fresh cursor.
    pub cycling_listings: Vec<(String, String)>,
    /// Fraction of successful JSON GETs whose every `name` starts with text that is not valid
    /// Unicode: an escaped unpaired surrogate (a name Graph cut inside an emoji) and a raw 0xFF
    /// byte. A reader must take both as U+FFFD and read on.
    pub bad_text: f64,
    /// Listings (account id, edge name) answered `302 Found` to another origin, with a body
    /// that looks like a page of that edge: a proxy gone wrong. No host may follow it.
    pub redirected_listings: Vec<(String, String)>,
    /// Accounts whose report results cycle: every result page repeats the first one's rows
    /// under a fresh cursor, forever.
    pub cycling_results: Vec<String>,
    /// Fields Meta removed: a request naming one is refused (Meta's churn).
    pub removed_fields: Vec<RemovedField>,
    /// Insights action breakdowns Meta removed: a request naming one is refused.
    pub removed_action_breakdowns: Vec<String>,
    /// Insights breakdowns Meta removed: a request naming one is refused.
    pub removed_breakdowns: Vec<String>,
    /// Accounts (bare ids) the token still lists in `/me/adaccounts` but may no longer read (a
    /// client removed an agency's access): every call concerning one answers `(#200) Ad account
    /// owner has NOT grant ads_management or ads_read permission`, HTTP 403.
    pub revoked_accounts: Vec<String>,
}

/// A field Meta no longer serves on one node type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedField {
    /// The Graph node type: `AdsInsights`, `Ad`, `AdCreative`, `Campaign`, `AdAccount`, ...
    pub node: String,
    pub field: String,
    /// How Graph says so.
    pub form: RefusalForm,
    /// For `AdsInsights`: the report job is created, and reading its results is refused.
    pub at_results: bool,
}

impl RemovedField {
    /// `field` of `node`, refused in `form` when the request is made.
    pub fn new(node: &str, field: &str, form: RefusalForm) -> Self {
        RemovedField { node: node.into(), field: field.into(), form, at_results: false }
    }
}

/// The words Graph refuses a removed field with (all code 100, HTTP 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalForm {
    /// `(#100) Tried accessing nonexisting field (f) on node type (T)`: the first one only.
    Nonexisting,
    /// `(#100) f, g are not valid for fields param after V25.0`: every removed field asked for.
    NotValidAfterVersion,
    /// `(#100) f, g are not valid for fields param. please check ... for all valid values`.
    NotValidPleaseCheck,
}

/// Quotas of the rate-limit model (see `ratelimit`).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Ad-account score ceiling; a read costs 1 point. 9000 is Meta's full-access tier.
    pub account_max_score: f64,
    /// The score drains linearly from full to zero over this many seconds (Meta: 300).
    pub account_decay_s: f64,
    /// `ads_management` business-use-case calls per rolling hour and account.
    pub buc_management_per_hour: f64,
    /// `ads_insights` business-use-case calls per rolling hour and account.
    pub buc_insights_per_hour: f64,
    /// App-level calls per rolling hour (drives `x-app-usage`).
    pub app_calls_per_hour: f64,
    /// Insights load an account carries per running report job, in percent.
    pub insights_load_per_job_pct: f64,
    /// Insights load the app carries per running report job (all accounts), in percent.
    pub app_insights_load_per_job_pct: f64,
    /// `ads_api_access_tier` reported in the headers.
    pub access_tier: String,
}

impl Default for RateLimits {
    /// Generous: at 50 ms per call a client cannot drain faster than the score refills.
    fn default() -> Self {
        RateLimits {
            account_max_score: 9000.0,
            account_decay_s: 300.0,
            buc_management_per_hour: 100_000.0,
            buc_insights_per_hour: 190_000.0,
            app_calls_per_hour: 1_000_000.0,
            insights_load_per_job_pct: 1.0,
            app_insights_load_per_job_pct: 0.25,
            access_tier: String::from("standard_access"),
        }
    }
}

impl RateLimits {
    /// Meta's limited ("development") tier: 60 points, small hourly quotas, heavy job load.
    pub fn tight() -> Self {
        RateLimits {
            account_max_score: 60.0,
            account_decay_s: 300.0,
            buc_management_per_hour: 300.0,
            buc_insights_per_hour: 600.0,
            app_calls_per_hour: 5_000.0,
            insights_load_per_job_pct: 25.0,
            app_insights_load_per_job_pct: 10.0,
            access_tier: String::from("development_access"),
        }
    }
}

/// Everything that shapes a simulated Graph API: the world, the clock and the faults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every generated fact and of the fault stream.
    pub seed: u64,
    /// Number of ad accounts; ids `1000000000000001`, `1000000000000002`, ...
    pub accounts: usize,
    /// Campaigns per account.
    pub campaigns_per_account: usize,
    /// Ad sets per campaign.
    pub adsets_per_campaign: usize,
    /// Ads per ad set (each ad has its own creative).
    pub ads_per_adset: usize,
    /// Ad images per account.
    pub images_per_account: usize,
    /// Ad videos per account.
    pub videos_per_account: usize,
    /// Historical activities per account (world updates add more).
    pub activities_per_account: usize,
    /// Custom conversions per account.
    pub custom_conversions_per_account: usize,
    /// Custom audiences per account.
    pub custom_audiences_per_account: usize,
    /// Virtual clock at creation, UTC ms.
    pub start_time_ms: i64,
    /// How far back objects and insights exist, in days.
    pub history_days: u32,
    /// Virtual time each request costs, ms.
    pub latency_ms: u64,
    /// Extra virtual time for requests whose URL path contains the string, ms (the first
    /// match counts): slow answers beside fast ones.
    pub extra_latency: Vec<(String, u64)>,
    /// How long a report run takes to complete, ms.
    pub job_duration_ms: u64,
    /// A report whose rows × fields exceeds this ends `Job Failed` (-3/1504045).
    pub max_job_cells: u64,
    /// A page whose limit × fields exceeds this answers HTTP 500 code 1 "reduce the amount of data".
    pub page_size_cells_limit: u64,
    /// The only valid access token.
    pub access_token: String,
    /// Injected misbehaviour.
    pub faults: Faults,
    /// Live API versions; others answer 2635. The first is the default version.
    pub api_versions: Vec<String>,
    /// Quotas of the rate-limit model (ignored in favour of [`RateLimits::tight`] when `faults.throttled`).
    pub limits: RateLimits,
    /// Accounts (bare ids) listed with `account_status` 101 (CLOSED); their data is still served.
    pub closed_accounts: Vec<String>,
}

impl Default for SimConfig {
    /// A small calm world: 2 accounts × 3 campaigns × 2 ad sets × 2 ads.
    fn default() -> Self {
        SimConfig {
            seed: 42,
            accounts: 2,
            campaigns_per_account: 3,
            adsets_per_campaign: 2,
            ads_per_adset: 2,
            images_per_account: 5,
            videos_per_account: 3,
            activities_per_account: 10,
            custom_conversions_per_account: 3,
            custom_audiences_per_account: 4,
            start_time_ms: DEFAULT_START_MS,
            history_days: 90,
            latency_ms: 50,
            extra_latency: Vec::new(),
            job_duration_ms: 20_000,
            max_job_cells: UNLIMITED,
            page_size_cells_limit: UNLIMITED,
            access_token: String::from("sim-token"),
            faults: Faults::default(),
            api_versions: vec![String::from("v25.0"), String::from("v26.0")],
            limits: RateLimits::default(),
            closed_accounts: Vec::new(),
        }
    }
}

/// Names accepted by [`SimConfig::preset`].
const PRESET_NAMES: &[&str] = &[
    "calm",
    "flaky",
    "throttled",
    "failing_jobs",
    "failing_account_jobs",
    "stuck_jobs",
    "huge_account",
    "token_expired",
    "hostile",
    "agency",
];

impl SimConfig {
    /// The named preset, or `None` for an unknown name. See [`SimConfig::preset_names`].
    pub fn preset(name: &str) -> Option<SimConfig> {
        let mut c = SimConfig::default();
        match name {
            "calm" => {}
            "flaky" => {
                c.faults = Faults {
                    http_500: 0.03,
                    transient_code: 0.03,
                    connection_reset: 0.02,
                    timeout: 0.02,
                    malformed_body: 0.02,
                    truncated_body: 0.02,
                    batch_null: 0.05,
                    batch_aborted_960: 0.03,
                    empty_middle_pages: true,
                    running_at_100: 0.5,
                    reduce_data_on_later_result_pages: true,
                    throttle_header_variants: true,
                    ..Faults::default()
                };
            }
            "throttled" => c.faults.throttled = true,
            "failing_jobs" => {
                c.faults.job_fail_first_attempts = 1;
                c.faults.job_skipped = 0.1;
            }
            // Every whole-account report fails however often it is started again or however few
            // its days: only jobs on campaigns (or below) finish.
            "failing_account_jobs" => c.faults.account_jobs_fail = true,
            "stuck_jobs" => c.faults.stuck_jobs = 0.3,
            "huge_account" => {
                c.accounts = 1;
                c.campaigns_per_account = 4;
                c.adsets_per_campaign = 5;
                c.ads_per_adset = 8;
                // One day of an account-level report at ~100 fields is ~10 000 cells, a single
                // ad's day is ~100 cells: 2500 fails the account (and campaign) jobs only.
                c.max_job_cells = 2_500;
                // 100 rows × ~100 insight fields = 10 000 fails, 50 × 101 = 5050 passes.
                c.page_size_cells_limit = 6_000;
            }
            "token_expired" => c.faults.token_expired = true,
            "hostile" => {
                // A proxy gone wrong: the second account's campaigns listing redirects to another
                // origin; and half the answers hold names that are not valid Unicode.
                c.faults.redirected_listings = vec![("1000000000000002".into(), "campaigns".into())];
                c.faults.bad_text = 0.5;
            }
            // An agency's token: four accounts listed, of which the third no longer lets the
            // token read it and the fourth is closed.
            "agency" => {
                c.accounts = 4;
                c.faults.revoked_accounts = vec!["1000000000000003".into()];
                c.closed_accounts = vec!["1000000000000004".into()];
            }
            _ => return None,
        }
        Some(c)
    }

    /// All preset names, `calm` first.
    pub fn preset_names() -> &'static [&'static str] {
        PRESET_NAMES
    }

    /// The rate-limit quotas in force.
    pub fn effective_limits(&self) -> RateLimits {
        if self.faults.throttled { RateLimits::tight() } else { self.limits.clone() }
    }

    /// The version served when a path carries none.
    pub fn default_version(&self) -> &str {
        self.api_versions.first().map(String::as_str).unwrap_or("v25.0")
    }
}
