//! The reader contract: how the sync drives one stream's reader, and what a reader hands back.
//!
//! A reader is a sans-IO machine, as the client is one level down. Its inputs are `handle_*`
//! calls of [`StreamReader`]: the start, the outcome of one of its own calls (under the id the
//! reader gave it), a timeout it asked for, the answers of status polls it asked for. Each input
//! comes with a [`Turn`]: what the reader may read (the time, the config, what the sync knows of
//! the accounts, the client's pacing) and the reader's own [`Outbox`], where it puts what it
//! wants done, as [`Output`] values: submit this call under this id, emit this message, poll this
//! report job, this account's time zone is known. The sync drains the outbox after each input
//! and does each in order; nothing a reader does reaches anything but its outbox.
//!
//! This module is the bottom of `read`: the readers and the sync import it, it imports neither.

use crate::api::Calls;
use crate::api::client::{Call, CallId};
use crate::api::throttle::Throttle;
use crate::config::Config;
use crate::error::ConnectorError;
use crate::model::AccountId;
use crate::protocol::{LogLevel, Message};
pub use crate::read::resume::Suspended;
use crate::time::Timestamp;
use crate::timers::Deadline;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One report job of an insights stream, within its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// An ad account's time zone, as Graph names it: "today" for insights is the account's local day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeZone {
    /// `timezone_name`, e.g. `America/Los_Angeles`.
    pub name: Option<Value>,
    /// `timezone_offset_hours_utc`, e.g. `-8`.
    pub offset_hours: Option<Value>,
}

/// The account fields insights need.
pub const ZONE_FIELDS: [&str; 2] = ["timezone_name", "timezone_offset_hours_utc"];

impl TimeZone {
    /// The zone fields of `read` (an account look-up or an ad_account record), if it has them.
    pub fn of(read: &Value) -> Self {
        TimeZone { name: read.get(ZONE_FIELDS[0]).cloned(), offset_hours: read.get(ZONE_FIELDS[1]).cloned() }
    }

    /// The hours east of UTC, when Graph said.
    pub fn offset(&self) -> Option<&Value> {
        self.offset_hours.as_ref()
    }

    /// What `zone` adds to what was known: a field it names replaces the old one.
    fn learn(&mut self, zone: TimeZone) {
        if zone.name.is_some() {
            self.name = zone.name;
        }
        if zone.offset_hours.is_some() {
            self.offset_hours = zone.offset_hours;
        }
    }
}

/// What the sync knows of its ad accounts (ids without `act_`): each one's time zone as far as
/// it has read it, so that the insights streams of a sync look each account up once between
/// them; and the discovered accounts it skips because the token cannot read them.
#[derive(Debug, Default)]
pub struct AccountFacts {
    zones: BTreeMap<AccountId, TimeZone>,
    skipped: BTreeSet<AccountId>,
}

impl AccountFacts {
    pub fn new() -> Self {
        AccountFacts::default()
    }

    /// The zone of `account`, once its offset is known.
    pub fn zone(&self, account: &str) -> Option<&TimeZone> {
        self.zones.get(account).filter(|z| z.offset_hours.is_some())
    }

    pub fn learn(&mut self, account: AccountId, zone: TimeZone) {
        self.zones.entry(account).or_default().learn(zone);
    }

    /// Skips `account` for the rest of the sync; false if it was skipped already.
    pub fn skip(&mut self, account: AccountId) -> bool {
        self.skipped.insert(account)
    }

    /// Whether `account` is skipped: a reader closes it without a failure, its state kept.
    pub fn is_skipped(&self, account: &str) -> bool {
        self.skipped.contains(account)
    }

    /// The skipped accounts, in id order.
    pub fn skipped(&self) -> impl Iterator<Item = &AccountId> {
        self.skipped.iter()
    }
}

/// What the report jobs of one insights stream took: counts for progress reports, benchmarks
/// and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Report runs created (first attempts and restarts).
    pub started: u64,
    /// Jobs whose every result page was read.
    pub completed: u64,
    /// Jobs started again after a failure, a skip or a timeout.
    pub retried: u64,
    /// Jobs that failed for good and were replaced by smaller ones.
    pub split: u64,
    /// How those jobs were split.
    pub splits: Splits,
    /// Job attempts that outlived `insights_job_timeout`.
    pub timed_out: u64,
    /// Id listings that failed `MAX_ID_LISTING_ATTEMPTS` times and gave way to a field split.
    pub id_listings_given_up: u64,
}

/// The ways a failing job was split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Splits {
    /// Into two runs of its days.
    pub by_days: u64,
    /// An account job into one per campaign with data.
    pub account_to_campaigns: u64,
    /// A campaign job into one per ad set.
    pub campaign_to_adsets: u64,
    /// An ad set job into one per ad.
    pub adset_to_ads: u64,
    /// Into two halves of its fields, merged by key.
    pub by_fields: u64,
}

impl std::ops::AddAssign for JobStats {
    fn add_assign(&mut self, o: JobStats) {
        self.started += o.started;
        self.completed += o.completed;
        self.retried += o.retried;
        self.split += o.split;
        self.splits += o.splits;
        self.timed_out += o.timed_out;
        self.id_listings_given_up += o.id_listings_given_up;
    }
}

impl std::ops::AddAssign for Splits {
    fn add_assign(&mut self, o: Splits) {
        self.by_days += o.by_days;
        self.account_to_campaigns += o.account_to_campaigns;
        self.campaign_to_adsets += o.campaign_to_adsets;
        self.adset_to_ads += o.adset_to_ads;
        self.by_fields += o.by_fields;
    }
}

/// One thing a reader wants done, in the order it wants them.
#[derive(Debug)]
pub enum Output {
    /// Send this call; its outcome comes back under this id (the reader's own).
    Submit(CallId, Call),
    /// Emit this message.
    Emit(Message),
    /// A WARN about an answer, from a part built on the client (a paginator): it goes out with
    /// the client's own logs.
    Warn(String),
    /// The usage headers a batch operation carried, for the client's pacing of `account`.
    Usage { headers: Vec<(String, String)>, account: Option<String> },
    /// Poll this report run (`<run id>/`) with the sync's other status polls; the answer comes
    /// back to [`StreamReader::handle_polled`] under `job`.
    Poll { job: JobId, relative_url: String, account: AccountId },
    /// The sync may keep what this read of `account` says of its time zone.
    Learned { account: AccountId, zone: TimeZone },
}

/// A reader's outputs not yet taken, and the ids it gives its calls.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Output>,
    next_call: u64,
}

impl Outbox {
    pub fn emit(&mut self, m: Message) {
        self.queue.push_back(Output::Emit(m));
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        self.emit(Message::log(level, message));
    }

    /// Asks for a status poll of report run `run_id` of `job`, for `account`'s quota.
    pub fn poll(&mut self, job: JobId, run_id: &str, account: &str) {
        self.queue.push_back(Output::Poll {
            job,
            relative_url: format!("{run_id}/"),
            account: AccountId::new(account),
        });
    }

    /// The zone fields of `read` for `account`, for the sync to keep.
    pub fn learned(&mut self, account: &str, read: &Value) {
        self.queue.push_back(Output::Learned { account: AccountId::new(account), zone: TimeZone::of(read) });
    }

    /// The next output, in the order they were put.
    pub fn pop(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Calls for Outbox {
    fn submit(&mut self, call: Call) -> CallId {
        self.next_call += 1;
        let id = CallId(self.next_call);
        self.queue.push_back(Output::Submit(id, call));
        id
    }

    fn warn(&mut self, message: String) {
        self.queue.push_back(Output::Warn(message));
    }

    fn observe_headers(&mut self, headers: &[(String, String)], account: Option<&str>) {
        self.queue.push_back(Output::Usage { headers: headers.to_vec(), account: account.map(str::to_string) });
    }
}

/// One input's view for a reader: what it may read, and its own outbox.
pub struct Turn<'a> {
    pub now: Timestamp,
    pub config: &'a Config,
    /// What the sync has learnt of each ad account so far.
    pub accounts: &'a AccountFacts,
    /// The client's pacing state (the insights load of each account).
    pub throttle: &'a Throttle,
    pub out: &'a mut Outbox,
}

impl Turn<'_> {
    pub fn emit(&mut self, m: Message) {
        self.out.emit(m);
    }

    pub fn log(&mut self, level: LogLevel, message: String) {
        self.out.log(level, message);
    }
}

/// Where a reader stands, for progress displays and the stream's closing lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub records: u64,
    /// Accounts finished (read or failed), and all.
    pub accounts_done: u32,
    pub accounts_total: u32,
    /// For insights streams: report runs Graph is computing now, and what the jobs took.
    pub jobs: Option<(u32, JobStats)>,
    /// What the stream took beyond records, for its closing log line (`; ...` or empty).
    pub summary: String,
    /// Fields (and insights action breakdowns) Graph refused in this sync, which the stream no
    /// longer requests.
    pub refused: Vec<String>,
}

/// One stream's reader, as the sync drives it.
///
/// Contract: the sync calls `handle_start` once; then it hands `handle_outcome` the outcome of
/// every call the reader submitted through its outbox, under the reader's own id (a reader keeps
/// a table of them: any other id is a contract error), `handle_polled` the answers of the status
/// polls it asked for, and `handle_timeout` once `poll_timeout` passes. A reader is `finished`
/// only when none of its calls is in flight.
pub trait StreamReader {
    fn handle_start(&mut self, cx: &mut Turn);
    fn handle_outcome(
        &mut self,
        call: CallId,
        outcome: crate::api::client::CallOutcome,
        cx: &mut Turn,
    ) -> Result<(), ConnectorError>;
    fn handle_timeout(&mut self, cx: &mut Turn);
    fn handle_polled(&mut self, results: Vec<PollResult>, cx: &mut Turn);
    fn poll_timeout(&self) -> Option<Deadline>;
    /// Whether the reader may still learn account time zones that others will need (insights
    /// streams wait for it rather than look the accounts up twice).
    fn learning_accounts(&self) -> bool;
    /// `Some` once the stream has finished: the per-account failures, if any.
    fn finished(&self) -> Option<&[ConnectorError]>;
    fn snapshot(&self) -> Snapshot;
    /// The stream's state now (`None` for a full refresh).
    fn state(&self) -> Option<Value>;
    /// A time box ends the read: the state, and how far the reader got.
    fn suspend(&self) -> Suspended;
}

/// One status poll's answer: the job it was for, and the job's status or why the poll failed.
pub type PollResult = (JobId, Result<Value, crate::api::client::CallError>);
