//! Entity streams: one Graph edge per ad account, read page by page.
//!
//! Per account the reader builds the listing (fields, page size, cursor and status filters),
//! transforms each item into an Airbyte record, and, once the account's listing is complete,
//! advances that account's cursor and emits the stream state: a checkpoint never covers a
//! record that was not emitted, and never moves backwards. Several accounts are read at once
//! (see [`accounts_at_once`]); their records interleave, and each account's state moves only
//! when that account's listing is complete.

use super::common::{
    AccountPool, AccountStates, Routes, cursor_of, later, prepare_record, request_thumbnail, thumbnail_data_url,
};
use super::cursor;
use super::fields::{AD_ACCOUNT_PRIVILEGED_FIELDS, Answer, FieldSet, Refusals, Refused};
use super::reader::{PollResult, Snapshot, StreamReader, Suspended, Turn};
use super::resume::Resume;
use crate::api::client::{CallError, CallFailure, CallId, CallKind, CallOutcome};
use crate::api::paginator::{Paginator, Step};
use crate::catalog::SyncMode;
use crate::commands::graph_url;
use crate::config::Config;
use crate::error::ConnectorError;
use crate::http::encode_query;
use crate::model::{EntityStream, Incremental, StatusFilter};
use crate::protocol::{LogLevel, Message};
use crate::schema::Properties;
use crate::state::EntityEntry;
use crate::timers::Deadline;
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};

/// One account's listing under way.
#[derive(Debug)]
struct Listing {
    paginator: Paginator,
    without_privileged: bool,
    progress: AccountProgress,
    /// Records of the current page, in order, some waiting for their thumbnails.
    held: Vec<(Map<String, Value>, bool)>,
    /// The fields the listing's requests ask for: a refusal is judged against them.
    asked: Vec<String>,
    /// The cursor of the first page not yet wholly emitted: where a time box's next read goes
    /// on (`None` until the first page is).
    resume_after: Option<String>,
    /// Whether the listing went on from a cursor an earlier read of the sync kept.
    resumed: bool,
}

/// What a call of this reader is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// A page of the listing of this account.
    Page { account: usize },
    /// The thumbnail of the account's held record at this slot.
    Thumbnail { account: usize, slot: usize },
}

/// What one account's read has seen so far.
#[derive(Debug, Default)]
struct AccountProgress {
    max_cursor: Option<DateTime<FixedOffset>>,
    stopped_early: bool,
}

/// Reads one entity stream for every configured account.
pub struct EntityReader {
    def: &'static EntityStream,
    incremental: bool,
    fields: FieldSet,
    refusals: Refusals,
    props: Properties,
    states: AccountStates,
    pool: AccountPool<Listing>,
    routes: Routes<Pending>,
    records: u64,
    /// Objects skipped because Graph sent them without their key.
    skipped: u64,
}

impl EntityReader {
    pub fn new(
        def: &'static EntityStream,
        sync_mode: SyncMode,
        selected_fields: &[String],
        state: Option<&Value>,
        resume: Option<Resume>,
        config: &Config,
    ) -> Self {
        let (props, fields) = FieldSet::entity(def, selected_fields);
        let incremental = sync_mode == SyncMode::Incremental && def.cursor.is_some();
        let states = match def.cursor {
            Some(key) if incremental => AccountStates::new(state, config, key),
            _ => AccountStates::default(),
        };
        EntityReader {
            def,
            incremental,
            fields,
            refusals: Refusals::entity(def.name),
            props,
            states,
            pool: AccountPool::new(config, resume),
            routes: Routes::new(def.name),
            records: 0,
            skipped: 0,
        }
    }

    fn configured_statuses<'c>(&self, config: &'c Config) -> &'c [String] {
        configured_statuses(self.def.status_filter, config)
    }

    /// The stored cursor for `account`, unless statuses were added since it was written
    /// (records of the new statuses may be older than it).
    fn usable_cursor(&self, account: &str, config: &Config) -> Option<DateTime<FixedOffset>> {
        let statuses = (self.def.status_filter != StatusFilter::None).then(|| self.configured_statuses(config));
        cursor::stored(self.states.incoming(account)?, self.def.cursor?, statuses)
    }

    /// The fields of this account's requests.
    fn request_fields(&self, without_privileged: bool) -> Vec<String> {
        self.fields.requested_without(if without_privileged { AD_ACCOUNT_PRIVILEGED_FIELDS } else { &[] })
    }

    fn first_url(&self, account: &str, config: &Config, without_privileged: bool) -> String {
        let fields = self.request_fields(without_privileged).join(",");
        if self.def.edge.is_empty() {
            let path = format!("act_{account}");
            return format!(
                "{}?{}",
                graph_url(&config.api_version, &path),
                encode_query(&[("fields", fields.as_str())])
            );
        }
        let mut params: Vec<(&str, String)> = vec![("fields", fields), ("limit", config.page_size.to_string())];
        let since = self
            .usable_cursor(account, config)
            .map(|c| c.timestamp())
            .or_else(|| config.start_date.map(|d| d.timestamp()));
        match self.def.incremental {
            Incremental::UpdatedTimeFilter => {
                let mut filtering = Vec::new();
                let statuses = self.configured_statuses(config);
                if !statuses.is_empty() {
                    filtering.push(json!({"field": format!("{}.effective_status", self.def.filter_prefix), "operator": "IN", "value": statuses}));
                }
                if let Some(since) = since {
                    // One second earlier than the cursor: Graph compares whole seconds, and an
                    // object updated in the cursor's own second after it was read must not be
                    // lost. The overlap re-emits records at the cursor, which dedupe by id.
                    filtering.push(json!({"field": format!("{}.updated_time", self.def.filter_prefix), "operator": "GREATER_THAN", "value": since - 1}));
                }
                if !filtering.is_empty() {
                    params.push(("filtering", Value::Array(filtering).to_string()));
                }
            }
            Incremental::SinceParam => {
                if let Some(since) = since {
                    params.push(("since", since.to_string()));
                }
            }
            // `ParentAdUpdatedTime` streams have their own reader.
            Incremental::NewestFirst | Incremental::None | Incremental::ParentAdUpdatedTime => {}
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
            self.start_account(i, cx, false);
        }
    }

    /// Starts (or starts again) the listing of `account`.
    fn start_account(&mut self, account: usize, cx: &mut Turn, without_privileged: bool) {
        let Some(id) = self.pool.get_id(account).map(str::to_string) else { return };
        let url = self.first_url(&id, cx.config, without_privileged);
        let kind = if self.def.edge.is_empty() { CallKind::Account } else { CallKind::EdgePage };
        let mut progress = match self.pool.open.remove(&account) {
            Some(old) if without_privileged => old.progress,
            _ => AccountProgress::default(),
        };
        // An earlier read of the sync stopped part way through this account: go on from there.
        let kept = self.pool.progress.partial(&id).and_then(|k| Some((k.get("after")?.as_str()?.to_string(), k)));
        let (mut paginator, resume_after) = match kept {
            Some((after, kept)) if !without_privileged && !self.def.edge.is_empty() => {
                progress.max_cursor = kept.get("seen").and_then(Value::as_str).and_then(cursor::parse);
                (Paginator::resuming(url, kind, &after), Some(after))
            }
            _ => (Paginator::new(url, kind), None),
        };
        let resumed = resume_after.is_some();
        self.routes.insert(paginator.begin(cx.out), Pending::Page { account });
        let asked = self.request_fields(without_privileged);
        self.pool.open.insert(
            account,
            Listing { paginator, without_privileged, progress, held: Vec::new(), asked, resume_after, resumed },
        );
    }

    /// The account is done (read or failed): open the next.
    fn close_account(&mut self, account: usize, cx: &mut Turn) {
        self.pool.close(account);
        self.open_accounts(cx);
    }

    /// Graph refused fields of this account's request: drops them and reads the account again
    /// from its first page (records already emitted come again and deduplicate by key). False
    /// when the refusal is no reason to drop anything.
    fn drop_refused(&mut self, account: usize, e: &CallError, cx: &mut Turn) -> bool {
        let Some(Listing { without_privileged, asked, .. }) = self.pool.open.get(&account) else { return false };
        let without_privileged = *without_privileged;
        let version = &cx.config.api_version;
        match self.refusals.judge(&mut self.fields, &e.failure, asked, version, e.error.detail()) {
            Some(Answer::Retry(dropped)) => {
                cx.log(LogLevel::Info, self.refusals.account_again(self.pool.id(account), &dropped));
                self.start_account(account, cx, without_privileged);
                true
            }
            Some(Answer::Keep(why)) => {
                let names = Refused::of(&e.failure).map(|r| r.names().to_vec()).unwrap_or_default();
                cx.log(LogLevel::Warn, self.refusals.nothing_dropped(self.pool.id(account), &names, &why));
                false
            }
            Some(Answer::Stop(_)) | None => false,
        }
    }

    /// The account node: one object, not a listing.
    fn on_account_node(&mut self, account: usize, outcome: CallOutcome, cx: &mut Turn) {
        let Some(&Listing { without_privileged, .. }) = self.pool.open.get(&account) else { return };
        let account_id = self.pool.id(account).to_string();
        match outcome {
            Err(e) if cx.accounts.is_skipped(&account_id) => self.fail_account(account, e.error, cx),
            Err(e) if self.drop_refused(account, &e, cx) => {}
            Ok(reply) => {
                // The insights streams after this one need not look the account up again.
                cx.out.learned(&account_id, &reply.json);
                if let Some(record) = self.prepare(account, reply.json, &account_id, cx) {
                    self.emit(record, cx);
                }
                self.finish_account(account, cx);
            }
            Err(e)
                if !without_privileged
                    && matches!(
                        e.failure,
                        CallFailure::PermissionDenied | CallFailure::InvalidParameter | CallFailure::UnknownFields(_)
                    ) =>
            {
                cx.log(
                    LogLevel::Warn,
                    format!(
                        "ad_account {account_id}: the token may not read {}; reading the account without them",
                        AD_ACCOUNT_PRIVILEGED_FIELDS.join(", ")
                    ),
                );
                self.start_account(account, cx, true);
            }
            Err(e) => self.fail_account(account, e.error, cx),
        }
    }

    fn on_page(
        &mut self,
        account: usize,
        call: CallId,
        outcome: CallOutcome,
        cx: &mut Turn,
    ) -> Result<(), ConnectorError> {
        if self.def.edge.is_empty() {
            self.on_account_node(account, outcome, cx);
            return Ok(());
        }
        let Some(Listing { paginator, .. }) = self.pool.open.get_mut(&account) else { return Ok(()) };
        let items = match paginator.on_outcome(call, outcome, cx.out) {
            Ok(Step::Items { items, .. }) => items,
            Ok(Step::Restarted(call)) => {
                self.routes.insert(call, Pending::Page { account });
                return Ok(());
            }
            Err(CallError { error: e @ ConnectorError::Contract { .. }, .. }) => return Err(e),
            Err(e) if self.drop_refused(account, &e, cx) => return Ok(()),
            Err(e) => {
                self.fail_account(account, e.error, cx);
                return Ok(());
            }
        };
        let account_id = self.pool.id(account).to_string();
        let stored = if self.def.incremental == Incremental::NewestFirst && self.incremental {
            self.usable_cursor(&account_id, cx.config)
        } else {
            None
        };
        let thumbnails = self.def.name == "ad_creatives" && cx.config.fetch_thumbnail_images;
        for item in items {
            if let Some(stored) = stored {
                let c = self.def.cursor.and_then(|k| item.get(k)).and_then(Value::as_str).and_then(cursor::parse);
                if c.is_some_and(|c| c < stored) {
                    // Newest first: everything after this is older than the last sync saw.
                    if let Some(l) = self.pool.open.get_mut(&account) {
                        l.progress.stopped_early = true;
                    }
                    break;
                }
            }
            if self.def.has_primary_key && !has_id(&item) {
                // One object Graph sent without its key is skipped, not the account: with no
                // key, a destination could neither deduplicate nor update it.
                self.skipped += 1;
                cx.log(
                    LogLevel::Warn,
                    format!(
                        "{} of ad account {account_id}: skipped an object without an id ({}); the rest of the account is read",
                        self.def.name,
                        abridged(&item)
                    ),
                );
                continue;
            }
            let Some(record) = self.prepare(account, item, &account_id, cx) else { continue };
            if thumbnails {
                // Held until its thumbnail arrives, so the page's records leave in order.
                let call = record.get("thumbnail_url").and_then(Value::as_str).map(|url| request_thumbnail(url, cx));
                let Some(listing) = self.pool.open.get_mut(&account) else { continue };
                if let Some(call) = call {
                    self.routes.insert(call, Pending::Thumbnail { account, slot: listing.held.len() });
                }
                listing.held.push((record, call.is_some()));
            } else {
                self.emit(record, cx);
            }
        }
        self.continue_listing(account, cx);
        Ok(())
    }

    /// Emits held records once their thumbnails are in, then asks for the next page.
    fn continue_listing(&mut self, account: usize, cx: &mut Turn) {
        let Some(listing) = self.pool.open.get_mut(&account) else { return };
        if listing.held.iter().any(|(_, waiting)| *waiting) {
            return;
        }
        let held = std::mem::take(&mut listing.held);
        for (record, _) in held {
            self.emit(record, cx);
        }
        let Some(Listing { paginator, progress, resume_after, .. }) = self.pool.open.get_mut(&account) else { return };
        if progress.stopped_early {
            paginator.stop();
        }
        *resume_after = paginator.next_after();
        match paginator.request_next(cx.out) {
            Some(call) => self.routes.insert(call, Pending::Page { account }),
            None => self.finish_account(account, cx),
        }
    }

    /// A thumbnail arrived (or failed): store it as a data URL in its record.
    fn on_thumbnail(&mut self, account: usize, slot: usize, outcome: CallOutcome, cx: &mut Turn) {
        let Some(listing) = self.pool.open.get_mut(&account) else { return };
        let Some((record, waiting)) = listing.held.get_mut(slot) else { return };
        *waiting = false;
        let data = thumbnail_data_url(self.def.name, record, outcome, cx);
        record.insert("thumbnail_data_url".into(), data);
        self.continue_listing(account, cx);
    }

    fn prepare(&mut self, account: usize, item: Value, account_id: &str, cx: &mut Turn) -> Option<Map<String, Value>> {
        let record = prepare_record(self.def.name, item, account_id, &self.props, cx)?;
        if let (Some(key), Some(listing)) = (self.def.cursor, self.pool.open.get_mut(&account)) {
            listing.progress.max_cursor = later(listing.progress.max_cursor, cursor_of(&record, key));
        }
        Some(record)
    }

    fn emit(&mut self, record: Map<String, Value>, cx: &mut Turn) {
        self.records += 1;
        cx.emit(Message::record(self.def.name, record, cx.now));
    }

    fn finish_account(&mut self, account: usize, cx: &mut Turn) {
        let id = self.pool.id(account).to_string();
        self.pool.progress.set_done(&id);
        if let (true, Some(cursor_key)) = (self.incremental, self.def.cursor) {
            let id = self.pool.id(account).to_string();
            let seen = self.pool.open.get(&account).and_then(|l| {
                let seen = l.progress.max_cursor;
                match (l.resumed, self.pool.sync_started) {
                    // A listing read over several reads may have missed objects created between
                    // them (new objects come first): the cursor stays at or before the sync's
                    // start, so that the next sync reads them.
                    (true, Some(started)) => seen.map(|s| s.min(started.to_datetime().fixed_offset())),
                    _ => seen,
                }
            });
            let new = later(self.usable_cursor(&id, cx.config), seen);
            let mut entry = EntityEntry::of(self.states.incoming(&id));
            if let Some(c) = new {
                entry.set_cursor(cursor_key, cursor::format(&c));
            }
            if self.def.status_filter != StatusFilter::None {
                entry.filter_statuses = Some(self.configured_statuses(cx.config).to_vec());
            }
            let entry = entry.to_map();
            if !entry.is_empty() {
                self.states.set(&id, entry);
            }
            self.emit_state(cx);
        }
        self.close_account(account, cx);
    }

    fn emit_state(&self, cx: &mut Turn) {
        if let Some(state) = self.state_now() {
            cx.emit(Message::stream_state(self.def.name, &state));
        }
    }

    fn state_now(&self) -> Option<Value> {
        let top =
            (self.def.incremental == Incremental::NewestFirst).then(|| ("filter_statuses".to_string(), json!([])));
        self.incremental.then(|| self.states.snapshot(top))
    }

    /// Account `account` failed: the stream will be INCOMPLETE; or it is skipped (a discovered
    /// account the token may not read, which the sync has said once): closed quietly.
    fn fail_account(&mut self, account: usize, e: ConnectorError, cx: &mut Turn) {
        let id = self.pool.id(account).to_string();
        if cx.accounts.is_skipped(&id) {
            self.close_account(account, cx);
            return;
        }
        let e = e.context(&format!("{} of ad account {id}", self.def.name));
        cx.log(LogLevel::Error, e.message().to_string());
        self.pool.failures.push(e);
        // The failed account's incoming state stays in the outgoing state unchanged; say so now,
        // in case no later account checkpoints.
        if self.incremental {
            self.emit_state(cx);
        }
        self.close_account(account, cx);
    }
}

impl StreamReader for EntityReader {
    fn handle_start(&mut self, cx: &mut Turn) {
        self.open_accounts(cx);
    }

    fn handle_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Turn) -> Result<(), ConnectorError> {
        match self.routes.take(call)? {
            Pending::Page { account } => self.on_page(account, call, outcome, cx)?,
            Pending::Thumbnail { account, slot } => self.on_thumbnail(account, slot, outcome, cx),
        }
        Ok(())
    }

    fn finished(&self) -> Option<&[ConnectorError]> {
        let done = self.pool.is_finished() && self.routes.is_empty();
        done.then_some(self.pool.failures.as_slice())
    }

    fn learning_accounts(&self) -> bool {
        self.def.edge.is_empty() && self.finished().is_none()
    }

    fn handle_timeout(&mut self, _cx: &mut Turn) {}

    fn handle_polled(&mut self, _results: Vec<PollResult>, _cx: &mut Turn) {}

    fn poll_timeout(&self) -> Option<Deadline> {
        None
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            records: self.records,
            accounts_done: self.pool.counts().0,
            accounts_total: self.pool.counts().1,
            jobs: None,
            summary: skipped_summary(self.skipped),
            refused: self.refusals.refused(&self.fields),
        }
    }

    fn state(&self) -> Option<Value> {
        self.state_now()
    }

    /// Accounts read to their end, and for each account part way through, the cursor of its
    /// first page not wholly emitted and the latest cursor value seen; an account whose first
    /// page was not yet emitted is read again from its start.
    fn suspend(&self) -> Suspended {
        let mut progress = self.pool.progress.clone();
        for (account, listing) in &self.pool.open {
            if let Some(after) = &listing.resume_after {
                let mut kept = Map::new();
                kept.insert("after".into(), Value::from(after.as_str()));
                if let Some(seen) = listing.progress.max_cursor {
                    kept.insert("seen".into(), Value::from(cursor::format(&seen)));
                }
                progress.set_partial(self.pool.id(*account), kept);
            }
        }
        Suspended { state: self.state_now(), progress: progress.into_progress() }
    }
}

/// The statuses the config selects for a stream's filter.
pub fn configured_statuses(filter: StatusFilter, config: &Config) -> &[String] {
    match filter {
        StatusFilter::None => &[],
        StatusFilter::Campaign => &config.campaign_statuses,
        StatusFilter::AdSet => &config.adset_statuses,
        StatusFilter::Ad => &config.ad_statuses,
    }
}

/// The closing line's words for objects skipped without an id (none: nothing).
fn skipped_summary(skipped: u64) -> String {
    if skipped == 0 { String::new() } else { format!("; {skipped} objects without an id skipped") }
}

/// Whether `item` has an `id` a record can be keyed by.
fn has_id(item: &Value) -> bool {
    match item.get("id") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    }
}

/// At most 120 characters of an item, to name it in a log line.
fn abridged(item: &Value) -> String {
    let text = item.to_string();
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}
