//! `ad_creatives_from_ads`: the creatives of an account's ads, found through its ads listing.
//!
//! Airbyte offers this stream for accounts whose `/adcreatives` edge only ever answers "reduce
//! the amount of data". Per account the reader lists `act_<id>/ads` (`id`, `updated_time`,
//! `creative{id}`; filtered by `ad_statuses`, and by `updated_time` only when the state holds a
//! cursor: start_date does not apply), and fetches every creative id not seen before in that
//! account with the stream's fields, 50 to a Graph batch request, while the listing goes on.
//! A record is the creative plus the `updated_time` of the first ad that named it.
//!
//! A creative whose fetch fails is logged and skipped, as Airbyte does; the account's cursor then
//! stops one second before the earliest ad whose creative was skipped, so that the next sync
//! fetches it again. A failed listing or batch call fails the account, which keeps its old
//! state. The state is emitted once per account, after its last record: a checkpoint never
//! covers a creative that was neither emitted nor left for the next sync, and never moves
//! backwards. Several accounts are read at once, as for the other entity streams.

use super::common::{AccountPool, AccountStates, Routes, later, prepare_record, request_thumbnail, thumbnail_data_url};
use super::cursor;
use super::entity::configured_statuses;
use super::fields::{Answer, FieldSet, Refusals, STORY_SPEC_FIELD};
use super::reader::{PollResult, Snapshot, StreamReader, Suspended, Turn};
use super::resume::Resume;
use crate::api::batch::{BatchSender, MAX_BATCH_OPS};
use crate::api::client::{CallError, CallFailure, CallId, CallKind, CallOutcome};
use crate::api::paginator::{Paginator, Step};
use crate::catalog::SyncMode;
use crate::commands::graph_url;
use crate::config::Config;
use crate::error::ConnectorError;
use crate::http::encode_query;
use crate::model::EntityStream;
use crate::protocol::{LogLevel, Message};
use crate::schema::{self, Properties};
use crate::state::EntityEntry;
use crate::timers::Deadline;
use chrono::{DateTime, FixedOffset, TimeDelta};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The ad fields the listing needs: the creative's id and the ad's cursor.
const AD_FIELDS: &str = "id,updated_time,creative{id}";

/// The cursor, the parent ad's.
const CURSOR: &str = "updated_time";

/// A creative waiting for its fetch.
#[derive(Debug)]
struct Wanted {
    id: String,
    /// The `updated_time` of the first ad that named it, as Graph wrote it.
    ad_updated: Value,
    ad_cursor: Option<DateTime<FixedOffset>>,
    without_story_spec: bool,
    /// The fields its last request asked for: a refusal is judged against them.
    asked: Vec<String>,
    /// The ads page that named it first.
    page: Page,
}

/// A page of an account's ads listing: its place in the listing, and the cursor it was
/// requested with (`None` for the first page).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Page {
    number: u64,
    after: Option<String>,
}

/// One account's read: its listing, its creative fetches and what they found.
#[derive(Debug)]
struct AccountRead {
    listing: Paginator,
    /// The account's creative reads, 50 to a batch request.
    batch: BatchSender,
    listing_done: bool,
    /// Creative ids met in this account's ads, so that each is fetched once.
    seen: BTreeSet<String>,
    /// Creatives not yet handed to the batch sender: they go 50 at a time.
    queued: VecDeque<u64>,
    /// Creatives queued or in flight, by batch key.
    wanted: BTreeMap<u64, Wanted>,
    /// Records waiting for their thumbnails (and the ads page that named them), by thumbnail call.
    thumbnails: BTreeMap<CallId, (Page, Map<String, Value>)>,
    /// Ads pages read so far.
    pages: u64,
    /// Whether the listing went on from a cursor an earlier read of the sync kept.
    resumed: bool,
    /// The latest `updated_time` of the ads listed.
    max_cursor: Option<DateTime<FixedOffset>>,
    /// The earliest `updated_time` of an ad whose creative was skipped.
    earliest_skipped: Option<DateTime<FixedOffset>>,
    /// A creative was skipped whose ad had no readable `updated_time`: the cursor stays.
    skipped_untimed: bool,
    skipped: u64,
    /// Why the account cannot be read completely (its listing or a batch call failed).
    failed: Option<ConnectorError>,
}

/// What a call of this reader is for, and for which account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// A page of the account's ads listing.
    Page(usize),
    /// A batch of the account's creative reads.
    Batch(usize),
    /// A record's thumbnail.
    Thumbnail(usize),
}

impl Pending {
    fn account(self) -> usize {
        match self {
            Pending::Page(a) | Pending::Batch(a) | Pending::Thumbnail(a) => a,
        }
    }
}

/// What the stream's creative fetches took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Distinct creatives requested (first attempts).
    pub creatives: u64,
    pub skipped: u64,
}

/// Reads `ad_creatives_from_ads` for every configured account. The read machine feeds it the
/// outcomes of the calls it submits (`on_outcome`) until `finished` says it is done.
pub struct CreativesFromAdsReader {
    def: &'static EntityStream,
    incremental: bool,
    /// The creative fields requested: the selected ones, `id` always.
    fields: FieldSet,
    refusals: Refusals,
    props: Properties,
    /// Per-account state, in Airbyte's `ads` format.
    states: AccountStates,
    pool: AccountPool<Box<AccountRead>>,
    /// Batch requests of the accounts already closed.
    batches_sent: u64,
    routes: Routes<Pending>,
    next_key: u64,
    records: u64,
    stats: FetchStats,
}

impl CreativesFromAdsReader {
    pub fn new(
        def: &'static EntityStream,
        sync_mode: SyncMode,
        selected_fields: &[String],
        state: Option<&Value>,
        resume: Option<Resume>,
        config: &Config,
    ) -> Self {
        let (props, fields) = FieldSet::entity(def, selected_fields);
        let incremental = sync_mode == SyncMode::Incremental;
        // Full refresh ignores stored state and writes none.
        let states = if incremental { AccountStates::new(state, config, CURSOR) } else { AccountStates::default() };
        CreativesFromAdsReader {
            def,
            incremental,
            fields,
            refusals: Refusals::entity(def.name),
            props,
            states,
            pool: AccountPool::new(config, resume),
            batches_sent: 0,
            routes: Routes::new(def.name),
            next_key: 0,
            records: 0,
            stats: FetchStats::default(),
        }
    }

    /// What the stream's creative fetches took so far.
    pub fn stats(&self) -> FetchStats {
        self.stats
    }

    /// The stored cursor of `account`, unless statuses were added since it was written.
    fn usable_cursor(&self, account: &str, config: &Config) -> Option<DateTime<FixedOffset>> {
        cursor::stored(
            self.states.incoming(account)?,
            CURSOR,
            Some(configured_statuses(self.def.status_filter, config)),
        )
    }

    fn listing_url(&self, account: &str, config: &Config) -> String {
        let mut params: Vec<(&str, String)> =
            vec![("fields", AD_FIELDS.to_string()), ("limit", config.page_size.to_string())];
        let mut filtering = Vec::new();
        let statuses = configured_statuses(self.def.status_filter, config);
        if !statuses.is_empty() {
            filtering.push(json!({"field": "ad.effective_status", "operator": "IN", "value": statuses}));
        }
        // Only a stored cursor filters (start_date does not, as in Airbyte); one second earlier,
        // as for the other entity streams, so that same-second updates are not lost.
        if let Some(c) = self.usable_cursor(account, config) {
            filtering.push(json!({"field": "ad.updated_time", "operator": "GREATER_THAN", "value": c.timestamp() - 1}));
        }
        if !filtering.is_empty() {
            params.push(("filtering", Value::Array(filtering).to_string()));
        }
        let path = format!("act_{account}/{}", self.def.edge);
        format!("{}?{}", graph_url(&config.api_version, &path), encode_query(&params))
    }

    /// Opens accounts until [`accounts_at_once`] are being read or none is left.
    fn open_accounts(&mut self, cx: &mut Turn) {
        while let Some(i) = self.pool.next_to_open() {
            if cx.accounts.is_skipped(self.pool.id(i)) {
                self.pool.close(i);
                continue;
            }
            self.start_account(i, cx);
        }
    }

    fn start_account(&mut self, index: usize, cx: &mut Turn) {
        let Some(id) = self.pool.get_id(index) else { return };
        let url = self.listing_url(id, cx.config);
        // An earlier read of the sync stopped part way through: go on from the first ads page
        // whose creatives were not all emitted.
        let kept = self.pool.progress.partial(id).cloned().unwrap_or_default();
        let kept_cursor = |k: &str| kept.get(k).and_then(Value::as_str).and_then(cursor::parse);
        let (mut listing, resumed) = match kept.get("after").and_then(Value::as_str) {
            Some(after) => (Paginator::resuming(url, CallKind::EdgePage, after), true),
            None => (Paginator::new(url, CallKind::EdgePage), false),
        };
        self.routes.insert(listing.begin(cx.out), Pending::Page(index));
        let batch = BatchSender::new(graph_url(&cx.config.api_version, ""));
        self.pool.open.insert(
            index,
            Box::new(AccountRead {
                listing,
                batch,
                listing_done: false,
                seen: BTreeSet::new(),
                queued: VecDeque::new(),
                wanted: BTreeMap::new(),
                thumbnails: BTreeMap::new(),
                pages: 0,
                resumed,
                max_cursor: kept_cursor("seen").filter(|_| resumed),
                earliest_skipped: kept_cursor("skipped_from").filter(|_| resumed),
                skipped_untimed: resumed && kept.get("skipped_untimed") == Some(&Value::Bool(true)),
                skipped: 0,
                failed: None,
            }),
        );
    }

    /// A page of ads: queue the creatives not seen before in this account.
    fn on_page(
        &mut self,
        index: usize,
        call: CallId,
        outcome: CallOutcome,
        cx: &mut Turn,
    ) -> Result<(), ConnectorError> {
        let Some(acct) = self.pool.open.get_mut(&index) else { return Ok(()) };
        if acct.failed.is_some() {
            // The page of a listing stopped after its account failed: nothing more to read.
            return Ok(());
        }
        let page = Page { number: acct.pages, after: acct.listing.requested_after().map(str::to_string) };
        let items = match acct.listing.on_outcome(call, outcome, cx.out) {
            Ok(Step::Items { items, .. }) => items,
            Ok(Step::Restarted(call)) => {
                self.routes.insert(call, Pending::Page(index));
                return Ok(());
            }
            Err(CallError { error: e @ ConnectorError::Contract { .. }, .. }) => return Err(e),
            Err(e) => {
                Self::fail_reading(acct, e.error);
                return Ok(());
            }
        };
        acct.pages += 1;
        for item in items {
            let mut ad = item;
            if !ad.is_object() {
                cx.log(LogLevel::Warn, format!("{}: skipped an ad that is not an object", self.def.name));
                continue;
            }
            schema::fix_date_times(&mut ad);
            let ad_updated = ad.get(CURSOR).cloned().unwrap_or(Value::Null);
            let ad_cursor = ad_updated.as_str().and_then(cursor::parse);
            acct.max_cursor = later(acct.max_cursor, ad_cursor);
            let creative = ad.get("creative").and_then(|c| c.get("id")).and_then(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            // An ad without a creative has nothing to read.
            let Some(id) = creative else { continue };
            if !acct.seen.insert(id.clone()) {
                continue;
            }
            let key = self.next_key;
            self.next_key += 1;
            self.stats.creatives += 1;
            let page = page.clone();
            acct.wanted
                .insert(key, Wanted { id, ad_updated, ad_cursor, without_story_spec: false, asked: Vec::new(), page });
            acct.queued.push_back(key);
        }
        if let Some(call) = acct.listing.request_next(cx.out) {
            self.routes.insert(call, Pending::Page(index));
        }
        acct.listing_done = acct.listing.is_done();
        Ok(())
    }

    /// Hands queued creatives to the batch sender, 50 to a request (fewer only once the listing
    /// is complete), and sends whatever it must re-send.
    fn send_queued(&mut self, index: usize, cx: &mut Turn) {
        let account_id = self.pool.id(index).to_string();
        let Some(acct) = self.pool.open.get_mut(&index) else { return };
        while acct.queued.len() >= MAX_BATCH_OPS || (acct.listing_done && !acct.queued.is_empty()) {
            let n = acct.queued.len().min(MAX_BATCH_OPS);
            for key in acct.queued.drain(..n) {
                if let Some(w) = acct.wanted.get_mut(&key) {
                    acct.batch.push_for(key, creative_url(&self.fields, w), &account_id);
                }
            }
            for call in acct.batch.flush(cx.out) {
                self.routes.insert(call, Pending::Batch(index));
            }
        }
        for call in acct.batch.flush(cx.out) {
            self.routes.insert(call, Pending::Batch(index));
        }
    }

    /// A batch came back: emit its creatives, retry or skip the ones that failed.
    fn on_batch(
        &mut self,
        index: usize,
        call: CallId,
        outcome: CallOutcome,
        cx: &mut Turn,
    ) -> Result<(), ConnectorError> {
        let Some(acct) = self.pool.open.get_mut(&index) else { return Ok(()) };
        if let Err(e) = &outcome
            && e.failure != CallFailure::TooLarge
        {
            // The whole request failed after the client's retries: the account cannot be read.
            // (An answer too large is made smaller by the batch sender, down to one creative,
            // which alone is skipped.)
            Self::fail_reading(acct, e.error.clone());
        }
        acct.batch.on_outcome(call, outcome, cx.out)?;
        let account_id = self.pool.id(index).to_string();
        loop {
            let Some(acct) = self.pool.open.get_mut(&index) else { return Ok(()) };
            let Some((key, result)) = acct.batch.poll_result() else { break };
            let Some(mut w) = acct.wanted.remove(&key) else { continue };
            match result {
                Ok(body) => self.creative_read(index, w, body, &account_id, cx),
                // The account fails as a whole; its state stays as it was.
                Err(_) if acct.failed.is_some() => {}
                // Graph cannot render the creative's story: read it without, as Airbyte does.
                Err(e)
                    if !w.without_story_spec
                        && e.failure == CallFailure::StorySpec
                        && self.fields.contains(STORY_SPEC_FIELD) =>
                {
                    w.without_story_spec = true;
                    acct.batch.push_for(key, creative_url(&self.fields, &mut w), &account_id);
                    acct.wanted.insert(key, w);
                }
                // Graph no longer serves some of the creative fields: read it again without them.
                Err(e)
                    if matches!(
                        self.refusals.judge(
                            &mut self.fields,
                            &e.failure,
                            &w.asked,
                            &cx.config.api_version,
                            e.error.detail()
                        ),
                        Some(Answer::Retry(_))
                    ) =>
                {
                    acct.batch.push_for(key, creative_url(&self.fields, &mut w), &account_id);
                    acct.wanted.insert(key, w);
                }
                Err(e) => {
                    cx.log(
                        LogLevel::Warn,
                        format!(
                            "{} of ad account {account_id}: creative {} could not be read and is skipped ({}); the next sync reads it again",
                            self.def.name,
                            w.id,
                            e.error.message()
                        ),
                    );
                    acct.skipped += 1;
                    self.stats.skipped += 1;
                    match w.ad_cursor {
                        Some(c) => acct.earliest_skipped = Some(acct.earliest_skipped.map_or(c, |e| e.min(c))),
                        None => acct.skipped_untimed = true,
                    }
                }
            }
        }
        Ok(())
    }

    /// Turns a creative into a record, and emits it or waits for its thumbnail.
    fn creative_read(&mut self, index: usize, w: Wanted, body: Value, account_id: &str, cx: &mut Turn) {
        let page = w.page;
        let mut body = body;
        if let Value::Object(o) = &mut body {
            if w.without_story_spec {
                o.insert("object_story_spec".into(), Value::Null);
            }
            o.insert(CURSOR.into(), w.ad_updated);
        }
        let Some(record) = prepare_record(self.def.name, body, account_id, &self.props, cx) else { return };
        let thumbnail =
            record.get("thumbnail_url").and_then(Value::as_str).filter(|_| cx.config.fetch_thumbnail_images);
        match thumbnail {
            Some(url) => {
                let call = request_thumbnail(url, cx);
                self.routes.insert(call, Pending::Thumbnail(index));
                if let Some(acct) = self.pool.open.get_mut(&index) {
                    acct.thumbnails.insert(call, (page, record));
                }
            }
            None => {
                self.records += 1;
                cx.emit(Message::record(self.def.name, record, cx.now));
            }
        }
    }

    /// A thumbnail arrived (or failed): store it as a data URL in its record and emit it.
    fn on_thumbnail(&mut self, index: usize, call: CallId, outcome: CallOutcome, cx: &mut Turn) {
        let Some(acct) = self.pool.open.get_mut(&index) else { return };
        let Some((_, mut record)) = acct.thumbnails.remove(&call) else { return };
        let data = thumbnail_data_url(self.def.name, &record, outcome, cx);
        record.insert("thumbnail_data_url".into(), data);
        self.records += 1;
        cx.emit(Message::record(self.def.name, record, cx.now));
    }

    /// Stops reading an account after a failure; calls in flight still settle.
    fn fail_reading(acct: &mut AccountRead, e: ConnectorError) {
        acct.failed.get_or_insert(e);
        acct.listing.stop();
        acct.listing_done = true;
        for key in acct.queued.drain(..) {
            acct.wanted.remove(&key);
        }
    }

    fn finish_account_if_done(&mut self, index: usize, cx: &mut Turn) {
        let Some(acct) = self.pool.open.get(&index) else { return };
        // No call of the account may still be in flight: its answer has nowhere else to go.
        let in_flight = self.routes.values().any(|p| p.account() == index);
        if !(acct.listing_done && acct.wanted.is_empty() && acct.thumbnails.is_empty() && !in_flight) {
            return;
        }
        let Some(acct) = self.pool.close(index) else { return };
        self.batches_sent += acct.batch.batches_sent;
        let id = self.pool.id(index).to_string();
        if acct.failed.is_none() {
            self.pool.progress.set_done(&id);
        }
        if let Some(e) = acct.failed.filter(|_| !cx.accounts.is_skipped(&id)) {
            let e = e.context(&format!("{} of ad account {id}", self.def.name));
            cx.log(LogLevel::Error, e.message().to_string());
            self.pool.failures.push(e);
        } else if self.incremental {
            let old = self.usable_cursor(&id, cx.config);
            // Read up to the latest ad, but stop before the earliest skipped creative's ad (the
            // next sync's filter then includes it), and never move backwards.
            let seen = match (acct.max_cursor, acct.earliest_skipped) {
                _ if acct.skipped_untimed => None,
                (Some(m), Some(s)) => Some(m.min(s - TimeDelta::seconds(1))),
                (m, s) => m.or(s.map(|s| s - TimeDelta::seconds(1))),
            };
            // Read over several reads, the listing may have missed ads created between them:
            // the cursor stays at or before the sync's start, so that the next sync reads them.
            let seen = match (acct.resumed, self.pool.sync_started) {
                (true, Some(started)) => seen.map(|s| s.min(started.to_datetime().fixed_offset())),
                _ => seen,
            };
            let mut entry = EntityEntry::of(self.states.incoming(&id));
            if let Some(c) = later(old, seen) {
                entry.set_cursor(CURSOR, cursor::format(&c));
            }
            entry.filter_statuses = Some(configured_statuses(self.def.status_filter, cx.config).to_vec());
            self.states.set(&id, entry.to_map());
        }
        if self.incremental {
            // A failed account's old state stays in the outgoing state; say so now too, in case
            // no later account checkpoints.
            cx.emit(Message::stream_state(self.def.name, &self.states.snapshot(None)));
        }
        self.open_accounts(cx);
    }
}

impl StreamReader for CreativesFromAdsReader {
    fn handle_start(&mut self, cx: &mut Turn) {
        self.open_accounts(cx);
    }

    fn handle_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Turn) -> Result<(), ConnectorError> {
        let pending = self.routes.take(call)?;
        let index = pending.account();
        match pending {
            Pending::Page(_) => self.on_page(index, call, outcome, cx)?,
            Pending::Batch(_) => self.on_batch(index, call, outcome, cx)?,
            Pending::Thumbnail(_) => self.on_thumbnail(index, call, outcome, cx),
        }
        self.send_queued(index, cx);
        self.finish_account_if_done(index, cx);
        Ok(())
    }

    fn finished(&self) -> Option<&[ConnectorError]> {
        let done = self.pool.is_finished() && self.routes.is_empty();
        done.then_some(self.pool.failures.as_slice())
    }

    fn state(&self) -> Option<Value> {
        self.incremental.then(|| self.states.snapshot(None))
    }

    /// Accounts read to their end, and for each account part way through, the cursor of the
    /// first ads page whose creatives were not all emitted (creatives of later pages already
    /// emitted come again), with what the account's cursor has seen so far.
    fn suspend(&self) -> Suspended {
        let mut progress = self.pool.progress.clone();
        for (index, acct) in &self.pool.open {
            let waiting = acct.wanted.values().map(|w| &w.page).chain(acct.thumbnails.values().map(|(p, _)| p)).min();
            let after = match waiting {
                Some(page) => page.after.clone(),
                None => acct.listing.requested_after().map(str::to_string),
            };
            let Some(after) = after else { continue };
            let mut kept = Map::new();
            kept.insert("after".into(), Value::from(after));
            let mut keep = |k: &str, c: Option<DateTime<FixedOffset>>| {
                if let Some(c) = c {
                    kept.insert(k.into(), Value::from(cursor::format(&c)));
                }
            };
            keep("seen", acct.max_cursor);
            keep("skipped_from", acct.earliest_skipped);
            if acct.skipped_untimed {
                kept.insert("skipped_untimed".into(), Value::Bool(true));
            }
            progress.set_partial(self.pool.id(*index), kept);
        }
        Suspended { state: self.state(), progress: progress.into_progress() }
    }

    fn handle_timeout(&mut self, _cx: &mut Turn) {}

    fn handle_polled(&mut self, _results: Vec<PollResult>, _cx: &mut Turn) {}

    fn poll_timeout(&self) -> Option<Deadline> {
        None
    }

    fn learning_accounts(&self) -> bool {
        false
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: self.records,
            accounts_done: self.pool.counts().0,
            accounts_total: self.pool.counts().1,
            jobs: None,
            summary: format!(
                "; creatives: {} requested in {} batch requests, {} skipped",
                self.stats.creatives,
                self.batches_sent + self.pool.open.values().map(|a| a.batch.batches_sent).sum::<u64>(),
                self.stats.skipped
            ),
            refused: self.refusals.refused(&self.fields),
        }
    }
}

/// The fields one creative's read asks for.
fn creative_fields(fields: &FieldSet, w: &Wanted) -> Vec<String> {
    fields.requested_without(if w.without_story_spec { &[STORY_SPEC_FIELD] } else { &[] })
}

/// The batch operation reading one creative: `<id>?fields=...` (remembered as asked).
fn creative_url(fields: &FieldSet, w: &mut Wanted) -> String {
    w.asked = creative_fields(fields, w);
    format!("{}?{}", w.id, encode_query(&[("fields", w.asked.join(","))]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::split_query;
    use crate::read::testing::Harness;
    use crate::streams::Stream;
    use crate::time::Timestamp;

    #[test]
    fn a_creative_named_by_several_ads_is_fetched_once_with_the_first_ads_time() {
        let now = Timestamp::from_millis(1_781_517_600_000);
        let config = Config::parse(r#"{"account_ids": ["1"], "credentials": {"access_token": "t"}}"#, now).unwrap();
        let catalog = json!({"streams": [{"stream": {"name": "ad_creatives_from_ads"}, "sync_mode": "incremental"}]});
        let selected = crate::catalog::parse(&catalog.to_string(), &config).unwrap().remove(0);
        let Stream::Entity(def) = selected.stream else { panic!("an entity stream") };
        let mut reader =
            CreativesFromAdsReader::new(def, selected.sync_mode, &selected.selected_fields, None, None, &config);
        let mut h = Harness::new(config, now);
        h.turn(|cx| reader.handle_start(cx));
        let ads = json!({"data": [
            {"id": "a1", "updated_time": "2026-06-01T10:00:00+0000", "creative": {"id": "c1"}},
            {"id": "a2", "updated_time": "2026-06-02T10:00:00+0000", "creative": {"id": "c1"}},
            {"id": "a3", "updated_time": "2026-06-03T10:00:00+0000", "creative": {"id": "c2"}},
            {"id": "a4", "updated_time": "2026-06-04T10:00:00+0000"},
        ]});
        let (call, outcome, listing) = h.answer_call(&ads);
        assert!(listing.url.contains("creative%7Bid%7D") && !listing.url.contains("filtering"), "{}", listing.url);
        h.turn(|cx| reader.handle_outcome(call, outcome, cx)).unwrap();
        let creatives = json!([{"code": 200, "body": "{\"id\":\"c1\"}"}, {"code": 200, "body": "{\"id\":\"c2\"}"}]);
        let (call, outcome, batch) = h.answer_call(&creatives);
        let (_, form) = split_query(&format!("?{}", String::from_utf8_lossy(batch.body.as_deref().unwrap())));
        let ops: Vec<Value> = serde_json::from_str(&form.iter().find(|(k, _)| k == "batch").unwrap().1).unwrap();
        assert_eq!(ops.len(), 2, "one operation per distinct creative");
        h.turn(|cx| reader.handle_outcome(call, outcome, cx)).unwrap();
        assert!(reader.finished().is_some_and(<[_]>::is_empty));
        let lines: Vec<Value> = h.messages.iter().map(|m| serde_json::from_str(&m.to_json_line()).unwrap()).collect();
        let records: Vec<(&Value, &Value)> = lines
            .iter()
            .filter(|l| l["type"] == "RECORD")
            .map(|l| (&l["record"]["data"]["id"], &l["record"]["data"]["updated_time"]))
            .collect();
        assert_eq!(
            records,
            [(&json!("c1"), &json!("2026-06-01T10:00:00+0000")), (&json!("c2"), &json!("2026-06-03T10:00:00+0000"))]
        );
        let state = &lines.iter().find(|l| l["type"] == "STATE").unwrap()["state"]["stream"]["stream_state"];
        assert_eq!(state, &json!({"1": {"updated_time": "2026-06-04T10:00:00Z", "filter_statuses": []}}));
    }
}
