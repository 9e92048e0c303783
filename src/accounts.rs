//! Account discovery, for configs without `account_ids`: the ad accounts the token reaches
//! (`GET /me/adaccounts`, paged), of which the active ones are read. `check`, `discover` and
//! `read` each list them the same way and say which and how many.
//!
//! The listing is one paged call chain on the client, driven by its owner: [`Discovery::start`]
//! submits the first page, and each outcome goes back through [`Discovery::on_outcome`] until it
//! answers the whole list.

use crate::api::Calls;
use crate::api::call::{CallError, CallId, CallKind, CallOutcome};
use crate::api::paginator::{Paginator, Step};
use crate::commands::graph_url;
use crate::error::ConnectorError;
use crate::http::encode_query;
use crate::model::AccountId;
use serde_json::Value;
use std::collections::BTreeSet;

/// The fields listed of each account.
const FIELDS: &str = "id,account_id,name,account_status";

/// 100 accounts a page: a listing item is small.
const PAGE_SIZE: u32 = 100;

/// `account_status` 1: the only status whose account is read.
pub const ACTIVE: i64 = 1;

/// At most this many account ids are named in a log line; the rest are counted.
const NAMED_IN_A_LINE: usize = 100;

/// What a failed listing's error is prefixed with.
pub const LISTING: &str = "account discovery (/me/adaccounts)";

/// One ad account the token reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub id: AccountId,
    /// Graph's `account_status` (`None` when the listing left it out).
    pub status: Option<i64>,
}

impl Found {
    pub fn is_active(&self) -> bool {
        self.status == Some(ACTIVE)
    }
}

/// The name of an `account_status` value.
pub fn status_name(status: Option<i64>) -> String {
    match status {
        Some(1) => "ACTIVE".into(),
        Some(2) => "DISABLED".into(),
        Some(3) => "UNSETTLED".into(),
        Some(7) => "PENDING_RISK_REVIEW".into(),
        Some(8) => "PENDING_SETTLEMENT".into(),
        Some(9) => "IN_GRACE_PERIOD".into(),
        Some(100) => "PENDING_CLOSURE".into(),
        Some(101) => "CLOSED".into(),
        Some(n) => format!("status {n}"),
        None => "no status".into(),
    }
}

/// The whole list: every account the token reaches, in the order Graph listed them, once each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    pub accounts: Vec<Found>,
}

impl Discovered {
    /// The accounts a sync reads: the active ones.
    pub fn active(&self) -> Vec<AccountId> {
        self.accounts.iter().filter(|a| a.is_active()).map(|a| a.id.clone()).collect()
    }

    /// The active accounts, or the config error of a token that reaches none.
    pub fn to_read(&self) -> Result<Vec<AccountId>, ConnectorError> {
        let active = self.active();
        if active.is_empty() {
            return Err(ConnectorError::config(
                "account_ids: the token reaches no active ad account; give the token's user or system user access to one, or list account_ids",
            ));
        }
        Ok(active)
    }

    /// One line saying how many accounts the token reaches, which are read, and which are not
    /// and why.
    pub fn summary(&self) -> String {
        let active: Vec<String> = self.active().iter().map(ToString::to_string).collect();
        let inactive: Vec<String> = self
            .accounts
            .iter()
            .filter(|a| !a.is_active())
            .map(|a| format!("{} ({})", a.id, status_name(a.status)))
            .collect();
        let mut line = format!(
            "account discovery: the token reaches {} ad account(s); {} active, read: {}",
            self.accounts.len(),
            active.len(),
            named(&active)
        );
        if !inactive.is_empty() {
            line.push_str(&format!("; {} not active, not read: {}", inactive.len(), named(&inactive)));
        }
        line
    }
}

/// Up to [`NAMED_IN_A_LINE`] items, then how many more.
fn named(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let mut out = items.iter().take(NAMED_IN_A_LINE).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > NAMED_IN_A_LINE {
        out.push_str(&format!(" and {} more", items.len() - NAMED_IN_A_LINE));
    }
    out
}

/// The listing in progress.
#[derive(Debug)]
pub struct Discovery {
    paginator: Paginator,
    awaiting: CallId,
    found: Discovered,
    seen: BTreeSet<AccountId>,
}

impl Discovery {
    /// Submits the first page of `/me/adaccounts`.
    pub fn start(api_version: &str, calls: &mut impl Calls) -> Self {
        let url = format!(
            "{}?{}",
            graph_url(api_version, "me/adaccounts"),
            encode_query(&[("fields", FIELDS), ("limit", &PAGE_SIZE.to_string())])
        );
        let mut paginator = Paginator::new(url, CallKind::EdgePage);
        let awaiting = paginator.start(calls);
        Discovery { paginator, awaiting, found: Discovered::default(), seen: BTreeSet::new() }
    }

    /// The page this listing waits for.
    pub fn awaiting(&self) -> CallId {
        self.awaiting
    }

    /// Takes the awaited page's outcome: `Ok(None)` while pages remain (the next one is
    /// submitted), `Ok(Some(..))` with the whole list, or the listing's failure.
    pub fn on_outcome(
        &mut self,
        call: CallId,
        outcome: CallOutcome,
        calls: &mut impl Calls,
    ) -> Result<Option<Discovered>, CallError> {
        match self.paginator.on_outcome(call, outcome, calls)? {
            Step::Restarted(again) => {
                // A stale cursor: the list starts over; accounts already found are kept once.
                self.awaiting = again;
                Ok(None)
            }
            Step::Items { items, .. } => {
                for item in items {
                    if let Some(found) = found_of(&item)
                        && self.seen.insert(found.id.clone())
                    {
                        self.found.accounts.push(found);
                    }
                }
                match self.paginator.request_next(calls) {
                    Some(next) => {
                        self.awaiting = next;
                        Ok(None)
                    }
                    None => Ok(Some(std::mem::take(&mut self.found))),
                }
            }
        }
    }
}

/// An account of a listing page: its bare id (from `account_id`, else `id` without `act_`)
/// and status. Items without a numeric id are not accounts and are passed over.
fn found_of(item: &Value) -> Option<Found> {
    let id = item
        .get("account_id")
        .and_then(Value::as_str)
        .or_else(|| item.get("id").and_then(Value::as_str).map(|s| s.strip_prefix("act_").unwrap_or(s)))?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status = item.get("account_status").and_then(|s| s.as_i64().or_else(|| s.as_str()?.parse().ok()));
    Some(Found { id: AccountId::new(id), status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_give_bare_ids_and_statuses_and_odd_items_are_passed_over() {
        let f = |v: Value| found_of(&v);
        assert_eq!(
            f(json!({"id": "act_12", "account_id": "12", "account_status": 1})),
            Some(Found { id: AccountId::new("12"), status: Some(1) })
        );
        assert_eq!(f(json!({"id": "act_13", "account_status": "101"})).unwrap().status, Some(101));
        assert_eq!(f(json!({"id": "act_x1"})), None);
        assert_eq!(f(json!({"name": "no id"})), None);
    }

    #[test]
    fn the_summary_says_how_many_which_are_read_and_why_the_others_are_not() {
        let d = Discovered {
            accounts: vec![
                Found { id: AccountId::new("1"), status: Some(1) },
                Found { id: AccountId::new("2"), status: Some(101) },
                Found { id: AccountId::new("3"), status: Some(1) },
            ],
        };
        assert_eq!(d.active(), vec![AccountId::new("1"), AccountId::new("3")]);
        assert_eq!(
            d.summary(),
            "account discovery: the token reaches 3 ad account(s); 2 active, read: 1, 3; 1 not active, not read: 2 (CLOSED)"
        );
        let many: Vec<String> = (0..150).map(|i| i.to_string()).collect();
        assert!(named(&many).ends_with("99 and 50 more"));
    }
}
