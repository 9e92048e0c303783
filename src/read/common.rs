//! What the stream readers share: the routing table of their calls, record preparation,
//! thumbnails, and the per-account state they carry from one sync to the next.

use super::reader::Turn;
use super::{cursor, resume};
use crate::api::Calls;
use crate::api::client::{Call, CallId, CallKind, CallOutcome, Reply};
use crate::config::Config;
use crate::error::ConnectorError;
use crate::http::{Request, header};
use crate::model::AccountId;
use crate::protocol::LogLevel;
use crate::schema::{self, Properties};
use crate::state;
use crate::time::Timestamp;
use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What each of a reader's calls in flight is for, by call id. Outcomes are routed through it:
/// an outcome whose call is not in the table is a contract error, never dropped in silence,
/// and a reader is finished only once its table is empty (no stray answer can reach the next).
#[derive(Debug)]
pub struct Routes<P> {
    reader: &'static str,
    calls: BTreeMap<CallId, P>,
}

impl<P> Routes<P> {
    /// `reader` names the owner in contract errors.
    pub fn new(reader: &'static str) -> Self {
        Routes { reader, calls: BTreeMap::new() }
    }

    pub fn insert(&mut self, call: CallId, purpose: P) {
        self.calls.insert(call, purpose);
    }

    /// What `call` was for, removing it from the table.
    pub fn take(&mut self, call: CallId) -> Result<P, ConnectorError> {
        self.calls.remove(&call).ok_or_else(|| {
            ConnectorError::contract(
                format!(
                    "an answer reached the {} reader for a call it never made; this is a bug, please report it",
                    self.reader
                ),
                format!("call {}", call.0),
            )
        })
    }

    /// Whether `call` is in the table (it is then taken with [`Routes::take`]).
    pub fn contains(&self, call: CallId) -> bool {
        self.calls.contains_key(&call)
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &P> {
        self.calls.values()
    }
}

/// Turns a Graph item into an Airbyte record: date-times repaired, `account_id` added where the
/// schema has it and Graph left it out, and values coerced to the schema's types. `None` for an
/// item that is not an object (logged, as Airbyte does).
pub fn prepare_record(
    stream: &str,
    item: Value,
    account_id: &str,
    props: &Properties,
    cx: &mut Turn,
) -> Option<Map<String, Value>> {
    let mut item = item;
    schema::fix_date_times(&mut item);
    let Value::Object(mut record) = item else {
        cx.log(LogLevel::Warn, format!("{stream}: skipped an item that is not an object"));
        return None;
    };
    if props.contains_key("account_id") && !record.contains_key("account_id") {
        record.insert("account_id".into(), Value::from(account_id));
    }
    schema::normalise(&mut record, props);
    Some(record)
}

/// The date-time of `record` under `key`, as a cursor.
pub fn cursor_of(record: &Map<String, Value>, key: &str) -> Option<DateTime<FixedOffset>> {
    record.get(key).and_then(Value::as_str).and_then(cursor::parse)
}

/// The later of two cursors: a cursor never moves backwards, and an old one stays when nothing
/// newer was seen.
pub fn later(old: Option<DateTime<FixedOffset>>, new: Option<DateTime<FixedOffset>>) -> Option<DateTime<FixedOffset>> {
    match (old, new) {
        (Some(o), Some(n)) => Some(o.max(n)),
        (o, n) => o.or(n),
    }
}

/// Asks for a creative's thumbnail (an image CDN, no token).
pub fn request_thumbnail(url: &str, cx: &mut Turn) -> CallId {
    cx.out.submit(Call::external(Request::get(url.to_string()), CallKind::Thumbnail))
}

/// The `thumbnail_data_url` of a thumbnail's outcome: a data URL, or null with a warning.
pub fn thumbnail_data_url(stream: &str, record: &Map<String, Value>, outcome: CallOutcome, cx: &mut Turn) -> Value {
    match outcome {
        Ok(reply) => Value::from(data_url(&reply)),
        Err(e) => {
            let id = record.get("id").and_then(Value::as_str).unwrap_or("?");
            cx.log(
                LogLevel::Warn,
                format!(
                    "{stream}: thumbnail of creative {id} could not be fetched ({}); thumbnail_data_url is null",
                    e.error.message()
                ),
            );
            Value::Null
        }
    }
}

/// A thumbnail's answer as a `data:<content-type>;base64,...` URL, as Airbyte stores it.
pub fn data_url(reply: &Reply) -> String {
    let content_type = header(&reply.headers, "content-type").unwrap_or("image/png");
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

/// An entity stream's accounts: which are being read (`open`, each with its listing `L`),
/// which come next, how many are finished, what an earlier read of the sync finished, and the
/// failures so far. Both entity readers keep theirs here.
#[derive(Debug)]
pub struct AccountPool<L> {
    ids: Vec<AccountId>,
    /// The accounts being read, by index.
    pub open: BTreeMap<usize, L>,
    next: usize,
    done: usize,
    /// How many are read at once: as many as may have a request in flight.
    parallel: usize,
    /// Accounts read to their end in this sync (in this read or an earlier one), and where an
    /// earlier read stopped in the others.
    pub progress: resume::Accounts,
    /// When the sync began, when this read goes on from an earlier one.
    pub sync_started: Option<Timestamp>,
    /// One per failed account.
    pub failures: Vec<ConnectorError>,
}

impl<L> AccountPool<L> {
    pub fn new(config: &Config, resume: Option<resume::Resume>) -> Self {
        AccountPool {
            ids: config.account_ids.clone(),
            open: BTreeMap::new(),
            next: 0,
            done: 0,
            parallel: config.max_concurrent_requests.max(1),
            progress: resume::Accounts::of(resume),
            sync_started: resume.map(|r| r.sync_started),
            failures: Vec::new(),
        }
    }

    /// The id (without `act_`) of account `i`.
    pub fn id(&self, i: usize) -> &str {
        self.ids[i].as_str()
    }

    /// As [`AccountPool::id`], `None` past the last account.
    pub fn get_id(&self, i: usize) -> Option<&str> {
        self.ids.get(i).map(AccountId::as_str)
    }

    /// The next account to open while fewer than the bound are open; accounts an earlier read
    /// of the sync finished count as done and are passed over (their state says so).
    pub fn next_to_open(&mut self) -> Option<usize> {
        while self.open.len() < self.parallel && self.next < self.ids.len() {
            self.next += 1;
            if self.progress.is_done(self.ids[self.next - 1].as_str()) {
                self.done += 1;
                continue;
            }
            return Some(self.next - 1);
        }
        None
    }

    /// Account `i` is finished (read or failed): its listing, no longer open.
    pub fn close(&mut self, i: usize) -> Option<L> {
        let listing = self.open.remove(&i);
        self.done += 1;
        listing
    }

    /// Whether every account was opened and closed.
    pub fn is_finished(&self) -> bool {
        self.open.is_empty() && self.next >= self.ids.len()
    }

    /// Accounts finished, and all.
    pub fn counts(&self) -> (u32, u32) {
        (self.done as u32, self.ids.len() as u32)
    }
}

/// A per-account stream's state: what came in, and what goes out. Every account keeps its old
/// entry until a completed read replaces it (accounts not configured now, and accounts whose
/// read fails); a full refresh reads none and writes none.
#[derive(Debug, Default)]
pub struct AccountStates {
    /// The incoming entry of each configured account.
    incoming: BTreeMap<AccountId, Map<String, Value>>,
    /// The outgoing entry of every account, configured or not.
    outgoing: BTreeMap<AccountId, Value>,
}

impl AccountStates {
    /// The state of an incremental read; `cursor_key` tells Airbyte's legacy flat state (one
    /// account) from a per-account one. (A full refresh starts from `AccountStates::default()`.)
    pub fn new(state: Option<&Value>, config: &Config, cursor_key: &str) -> Self {
        let incoming = state::per_account(state, &config.account_ids, cursor_key);
        let mut outgoing: BTreeMap<AccountId, Value> = match state {
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(k, v)| v.is_object() && !config.account_ids.iter().any(|a| a == *k))
                .map(|(k, v)| (AccountId::new(k.as_str()), v.clone()))
                .collect(),
            _ => BTreeMap::new(),
        };
        for (acct, old) in &incoming {
            outgoing.insert(acct.clone(), Value::Object(old.clone()));
        }
        AccountStates { incoming, outgoing }
    }

    /// The entry `account` came in with.
    pub fn incoming(&self, account: &str) -> Option<&Map<String, Value>> {
        self.incoming.get(account)
    }

    /// Replaces `account`'s outgoing entry.
    pub fn set(&mut self, account: &str, entry: Map<String, Value>) {
        self.outgoing.insert(AccountId::new(account), Value::Object(entry));
    }

    /// The whole outgoing state, with `top` (stream-level keys) added.
    pub fn snapshot(&self, top: impl IntoIterator<Item = (String, Value)>) -> Value {
        let mut state: Map<String, Value> = self.outgoing.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        state.extend(top);
        Value::Object(state)
    }
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

    #[test]
    fn a_cursor_never_moves_backwards_and_an_old_one_stays() {
        let t = |s| cursor::parse(s);
        let (a, b) = (t("2024-01-01T00:00:00+0000"), t("2024-02-01T00:00:00+0000"));
        assert_eq!(later(b, a), b);
        assert_eq!(later(a, b), b);
        assert_eq!(later(a, None), a);
        assert_eq!(later(None, b), b);
    }

    #[test]
    fn an_unknown_call_is_a_contract_error() {
        let mut routes: Routes<u8> = Routes::new("ads");
        routes.insert(CallId(1), 7);
        assert_eq!(routes.take(CallId(1)).unwrap(), 7);
        let e = routes.take(CallId(1)).unwrap_err();
        assert!(matches!(e, ConnectorError::Contract { .. }), "{e:?}");
        assert!(e.message().contains("ads reader"));
    }
}
