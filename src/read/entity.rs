//! Entity streams: one Graph edge per ad account, read page by page.
//!
//! Per account the reader builds the listing (fields, page size, cursor and status filters),
//! transforms each item into an Airbyte record, and, once the account's listing is complete,
//! advances that account's cursor and emits the stream state: a checkpoint never covers a
//! record that was not emitted, and never moves backwards.

use super::Cx;
use super::cursor;
use crate::api::client::{Call, CallId, CallKind, CallOutcome, Reply};
use crate::api::paginator::Paginator;
use crate::catalog::{Selected, SyncMode};
use crate::commands::graph_url;
use crate::config::{AD_STATUSES, ADSET_STATUSES, CAMPAIGN_STATUSES, Config};
use crate::error::ConnectorError;
use crate::http::{Request, encode_query};
use crate::protocol::{LogLevel, Message};
use crate::schema::{self, Properties};
use crate::state;
use crate::streams::{EntityStream, Incremental, StatusFilter, Stream};
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Fields of `ad_account` that need more than ads_read; dropped after a permission error.
const AD_ACCOUNT_PRIVILEGED_FIELDS: &[&str] = &["owner", "funding_source_details", "is_prepay_account"];

#[derive(Debug)]
enum Phase {
    /// Reading this account's listing.
    Listing {
        account: usize,
        paginator: Paginator,
        retried_without_privileged: bool,
    },
    Finished,
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
    name: String,
    incremental: bool,
    fields: Vec<String>,
    props: Properties,
    accounts: Vec<String>,
    /// The incoming state per account (Airbyte's format).
    in_state: BTreeMap<String, Map<String, Value>>,
    /// The outgoing state per account.
    out_state: BTreeMap<String, Value>,
    phase: Phase,
    progress: AccountProgress,
    /// Records of the current page waiting for their thumbnails.
    held: Vec<(Map<String, Value>, Option<CallId>)>,
    page_restarted: bool,
    failures: Vec<ConnectorError>,
    pub records: u64,
}

impl EntityReader {
    pub fn new(selected: &Selected, state: Option<&Value>, config: &Config) -> Self {
        let Stream::Entity(def) = &selected.stream else {
            unreachable!("the read machine builds entity readers only for entity streams")
        };
        let (props, mut fields) = requested_fields(def, selected);
        for must in ["id"].into_iter().chain(def.cursor) {
            if props.contains_key(must) && !fields.iter().any(|f| f == must) {
                fields.push(must.to_string());
            }
        }
        let incremental = selected.sync_mode == SyncMode::Incremental && def.cursor.is_some();
        let in_state = if incremental {
            state::per_account(state, &config.account_ids, def.cursor.unwrap_or("updated_time"))
        } else {
            BTreeMap::new()
        };
        let out_state = kept_state(state, &in_state, incremental, config);
        EntityReader {
            def,
            name: def.name.to_string(),
            incremental,
            fields,
            props,
            accounts: config.account_ids.clone(),
            in_state,
            out_state,
            phase: Phase::Finished,
            progress: AccountProgress::default(),
            held: Vec::new(),
            page_restarted: false,
            failures: Vec::new(),
            records: 0,
        }
    }

    pub fn start(&mut self, cx: &mut Cx) {
        self.start_account(0, cx, false);
    }

    /// Accounts finished (read or failed) out of all.
    pub fn accounts_progress(&self) -> (u32, u32) {
        let total = self.accounts.len() as u32;
        match &self.phase {
            Phase::Listing { account, .. } => (*account as u32, total),
            Phase::Finished => (total, total),
        }
    }

    pub fn finished(&self) -> Option<&[ConnectorError]> {
        matches!(self.phase, Phase::Finished).then_some(self.failures.as_slice())
    }

    fn configured_statuses<'c>(&self, config: &'c Config) -> &'c [String] {
        configured_statuses(self.def.status_filter, config)
    }

    /// The stored cursor for `account`, unless statuses were added since it was written
    /// (records of the new statuses may be older than it).
    fn usable_cursor(&self, account: &str, config: &Config) -> Option<DateTime<FixedOffset>> {
        let statuses = (self.def.status_filter != StatusFilter::None).then(|| self.configured_statuses(config));
        cursor::stored(self.in_state.get(account)?, self.def.cursor?, statuses)
    }

    fn first_url(&self, account: &str, config: &Config, without_privileged: bool) -> String {
        let fields: Vec<&str> = self
            .fields
            .iter()
            .map(String::as_str)
            .filter(|f| !(without_privileged && AD_ACCOUNT_PRIVILEGED_FIELDS.contains(f)))
            .collect();
        let fields = fields.join(",");
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

    fn start_account(&mut self, account: usize, cx: &mut Cx, without_privileged: bool) {
        let Some(id) = self.accounts.get(account) else {
            self.phase = Phase::Finished;
            return;
        };
        if !without_privileged {
            self.progress = AccountProgress::default();
        }
        let url = self.first_url(id, cx.config, without_privileged);
        let kind = if self.def.edge.is_empty() { CallKind::Account } else { CallKind::EdgePage };
        let mut paginator = Paginator::new(url, kind);
        paginator.start(cx.api);
        self.phase = Phase::Listing { account, paginator, retried_without_privileged: without_privileged };
    }

    pub fn on_outcome(&mut self, call: CallId, outcome: CallOutcome, cx: &mut Cx) {
        let Phase::Listing { account, paginator, retried_without_privileged } = &mut self.phase else { return };
        if !paginator.owns(call) {
            let account = *account;
            return self.on_thumbnail(account, call, outcome, cx);
        }
        let account = *account;
        let retried = *retried_without_privileged;
        let account_id = self.accounts[account].clone();
        if self.def.edge.is_empty() {
            // The account node: one object, not a listing.
            match outcome {
                Ok(reply) => {
                    // The insights streams after this one need not look the account up again.
                    super::learn_account(cx.accounts, &account_id, &reply.json);
                    if let Some(record) = self.prepare(reply.json, &account_id, cx) {
                        self.emit(record, cx);
                    }
                    self.finish_account(account, cx);
                }
                Err(e)
                    if !retried && e.graph.as_ref().is_some_and(|g| g.code == 200 || g.code == 100 || g.code == 10) =>
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
            return;
        }
        let page = match paginator.on_outcome(outcome, cx.api) {
            Ok(p) => p,
            Err(e) => return self.fail_account(account, e, cx),
        };
        let stored = if self.def.incremental == Incremental::NewestFirst && self.incremental {
            self.usable_cursor(&account_id, cx.config)
        } else {
            None
        };
        let thumbnails = self.def.name == "ad_creatives" && cx.config.fetch_thumbnail_images;
        for item in page.items {
            if let Some(stored) = stored {
                let c = self.def.cursor.and_then(|k| item.get(k)).and_then(Value::as_str).and_then(cursor::parse);
                if c.is_some_and(|c| c < stored) {
                    // Newest first: everything after this is older than the last sync saw.
                    self.progress.stopped_early = true;
                    break;
                }
            }
            let Some(record) = self.prepare(item, &account_id, cx) else { continue };
            if thumbnails {
                // Held until its thumbnail arrives, so the page's records leave in order.
                let call = record
                    .get("thumbnail_url")
                    .and_then(Value::as_str)
                    .map(|url| cx.api.submit(Call::external(Request::get(url.to_string()), CallKind::Thumbnail)));
                self.held.push((record, call));
            } else {
                self.emit(record, cx);
            }
        }
        self.page_restarted = page.restarted;
        self.continue_listing(account, cx);
    }

    /// Emits held records once their thumbnails are in, then asks for the next page.
    fn continue_listing(&mut self, account: usize, cx: &mut Cx) {
        if self.held.iter().any(|(_, call)| call.is_some()) {
            return;
        }
        for (record, _) in std::mem::take(&mut self.held) {
            self.emit(record, cx);
        }
        let Phase::Listing { paginator, .. } = &mut self.phase else { return };
        if self.progress.stopped_early {
            paginator.stop();
        }
        if !paginator.request_next(cx.api) && !self.page_restarted {
            self.finish_account(account, cx);
        }
    }

    /// A thumbnail arrived (or failed): store it as a data URL in its record.
    fn on_thumbnail(&mut self, account: usize, call: CallId, outcome: CallOutcome, cx: &mut Cx) {
        let Some(slot) = self.held.iter_mut().find(|(_, c)| *c == Some(call)) else { return };
        slot.1 = None;
        let data_url = match outcome {
            Ok(reply) => Value::from(data_url(&reply)),
            Err(e) => {
                let id = slot.0.get("id").and_then(Value::as_str).unwrap_or("?").to_string();
                cx.log(LogLevel::Warn, format!("ad_creatives: thumbnail of creative {id} could not be fetched ({}); thumbnail_data_url is null", e.error.message));
                Value::Null
            }
        };
        slot.0.insert("thumbnail_data_url".into(), data_url);
        self.continue_listing(account, cx);
    }

    fn prepare(&mut self, item: Value, account_id: &str, cx: &mut Cx) -> Option<Map<String, Value>> {
        let Value::Object(mut record) = item else {
            cx.log(LogLevel::Warn, format!("{}: skipped an item that is not an object", self.name));
            return None;
        };
        let mut v = Value::Object(std::mem::take(&mut record));
        schema::fix_date_times(&mut v);
        let Value::Object(mut record) = v else { return None };
        if self.props.contains_key("account_id") && !record.contains_key("account_id") {
            record.insert("account_id".into(), Value::from(account_id));
        }
        schema::normalise(&mut record, &self.props);
        if let Some(c) = self.def.cursor.and_then(|k| record.get(k)).and_then(Value::as_str).and_then(cursor::parse)
            && self.progress.max_cursor.is_none_or(|m| c > m)
        {
            self.progress.max_cursor = Some(c);
        }
        Some(record)
    }

    fn emit(&mut self, record: Map<String, Value>, cx: &mut Cx) {
        self.records += 1;
        cx.emit(Message::record(&self.name, record, cx.now));
    }

    fn finish_account(&mut self, account: usize, cx: &mut Cx) {
        if self.incremental {
            let id = &self.accounts[account];
            let cursor_key = self.def.cursor.unwrap_or("updated_time");
            let old = self.usable_cursor(id, cx.config);
            // Never backwards, and the old cursor stays when nothing newer was seen.
            let new = match (old, self.progress.max_cursor) {
                (Some(o), Some(n)) => Some(o.max(n)),
                (o, n) => o.or(n),
            };
            let mut entry = self.in_state.get(id).cloned().unwrap_or_default();
            if let Some(c) = new {
                entry.insert(cursor_key.into(), Value::from(cursor::format(&c)));
            }
            if self.def.status_filter != StatusFilter::None {
                entry.insert("filter_statuses".into(), json!(self.configured_statuses(cx.config)));
            }
            if !entry.is_empty() {
                self.out_state.insert(id.clone(), Value::Object(entry));
            }
            self.emit_state(cx);
        }
        self.start_account(account + 1, cx, false);
    }

    fn emit_state(&self, cx: &mut Cx) {
        let mut state: Map<String, Value> = self.out_state.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if self.def.incremental == Incremental::NewestFirst {
            state.insert("filter_statuses".into(), json!([]));
        }
        cx.emit(Message::stream_state(&self.name, &Value::Object(state)));
    }

    fn fail_account(&mut self, account: usize, e: ConnectorError, cx: &mut Cx) {
        let id = self.accounts[account].clone();
        let e = e.context(&format!("{} of ad account {id}", self.name));
        cx.log(LogLevel::Error, e.message.clone());
        self.failures.push(e);
        // The failed account's incoming state stays in `out_state` unchanged; say so now, in
        // case no later account checkpoints.
        if self.incremental {
            self.emit_state(cx);
        }
        self.start_account(account + 1, cx, false);
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

/// Every status a stream's filter may name, for tests and docs.
pub fn all_statuses(filter: StatusFilter) -> &'static [&'static str] {
    match filter {
        StatusFilter::None => &[],
        StatusFilter::Campaign => CAMPAIGN_STATUSES,
        StatusFilter::AdSet => ADSET_STATUSES,
        StatusFilter::Ad => AD_STATUSES,
    }
}

/// A thumbnail's answer as a `data:<content-type>;base64,...` URL, as Airbyte stores it.
pub fn data_url(reply: &Reply) -> String {
    let content_type = reply
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map_or("image/png", |(_, v)| v.as_str());
    format!("data:{content_type};base64,{}", base64(&reply.body))
}

/// Standard base64 with padding, for thumbnail data URLs.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The state a per-account entity stream starts its outgoing state from: every account keeps
/// its old state until a completed read replaces it (accounts not configured now, and accounts
/// whose read fails). Full refresh writes none.
pub(super) fn kept_state(
    state: Option<&Value>,
    in_state: &BTreeMap<String, Map<String, Value>>,
    incremental: bool,
    config: &Config,
) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = match state {
        Some(Value::Object(m)) if incremental => m
            .iter()
            .filter(|(k, v)| v.is_object() && !config.account_ids.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    for (acct, old) in in_state {
        out.insert(acct.clone(), Value::Object(old.clone()));
    }
    out
}

/// The stream's schema properties and the fields to request: the catalog's selection (every
/// property when it selects none), less those the stream never requests.
pub(super) fn requested_fields(def: &EntityStream, selected: &Selected) -> (Properties, Vec<String>) {
    let props = schema::properties(def.name).clone();
    let mut fields: Vec<String> = if selected.selected_fields.is_empty() {
        props.keys().cloned().collect()
    } else {
        selected.selected_fields.clone()
    };
    fields.retain(|f| !def.excluded_fields.contains(&f.as_str()));
    (props, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
