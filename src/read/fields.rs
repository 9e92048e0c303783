//! Which fields a stream asks Graph for: the one place that decides it, and that remembers the
//! fields Graph refused during this sync.
//!
//! A stream asks for the catalog's selection (every schema property when it selects none), less
//! the fields it never requests (computed here, or rejected by Graph: `model.rs` says which),
//! plus the fields its key and cursor need. When Graph refuses fields it no longer serves (Meta
//! removes a few every version), the stream drops exactly those for the rest of the sync; its
//! records then lack them, while discovery's schema keeps them so that destination tables do not
//! change. A refusal that names a field the request did not contain, or a key field, drops
//! nothing.

use crate::model::{EntityStream, NEVER_REQUESTED_INSIGHT_FIELDS, OBJECT_BREAKDOWNS};
use crate::schema::{self, Properties};
use crate::streams::InsightStream;
use std::collections::BTreeSet;

/// Fields of `ad_account` that need more than ads_read; dropped after a permission error.
pub const AD_ACCOUNT_PRIVILEGED_FIELDS: &[&str] = &["owner", "funding_source_details", "is_prepay_account"];

/// The creative field Graph sometimes cannot render (its own error codes say so); the creative is
/// then read without it, as Airbyte does.
pub const STORY_SPEC_FIELD: &str = "object_story_spec";

/// What became of a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// These fields are no longer requested (the ones not dropped before).
    Dropped(Vec<String>),
    /// Nothing is dropped: why.
    Kept(String),
}

/// The fields one stream asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// In request order.
    wanted: Vec<String>,
    /// Never dropped: the stream's key and cursor, in the order they are added to requests.
    keys: Vec<String>,
    /// Refused by Graph in this sync.
    refused: BTreeSet<String>,
}

impl FieldSet {
    fn new(wanted: Vec<String>, keys: impl IntoIterator<Item = String>) -> FieldSet {
        let keys: Vec<String> = keys.into_iter().collect();
        let mut wanted = wanted;
        for k in &keys {
            if !wanted.contains(k) {
                wanted.push(k.clone());
            }
        }
        FieldSet { wanted, keys, refused: BTreeSet::new() }
    }

    /// An entity stream's schema properties and fields: `id` and its cursor always (where the
    /// schema has them).
    pub fn entity(def: &EntityStream, selected: &[String]) -> (Properties, FieldSet) {
        let props = schema::properties(def.name).clone();
        let mut wanted: Vec<String> =
            if selected.is_empty() { props.keys().cloned().collect() } else { selected.to_vec() };
        wanted.retain(|f| !def.excluded_fields.contains(&f.as_str()));
        let keys = ["id"]
            .into_iter()
            .chain(def.cursor)
            .filter(|k| props.contains_key(*k) && !def.excluded_fields.contains(k))
            .map(str::to_string);
        let keys: Vec<String> = keys.collect();
        (props, FieldSet::new(wanted, keys))
    }

    /// An insights stream's fields: the selection, the stream's own list, or every schema
    /// field; never a breakdown (they are parameters), an object breakdown's id (derived) or a
    /// field that corrupts others; the account id and the level id always (they are the key).
    pub fn insights(def: &InsightStream, selected: &[String], props: &Properties) -> FieldSet {
        let mut wanted: Vec<String> = if !selected.is_empty() {
            selected.to_vec()
        } else if !def.fields.is_empty() {
            def.fields.clone()
        } else {
            props.keys().cloned().collect()
        };
        let breakdown_ids: Vec<String> = OBJECT_BREAKDOWNS.iter().map(|b| format!("{b}_id")).collect();
        wanted.retain(|f| {
            !def.breakdowns.contains(f)
                && !def.action_breakdowns.contains(f)
                && !breakdown_ids.contains(f)
                && !NEVER_REQUESTED_INSIGHT_FIELDS.contains(&f.as_str())
        });
        let keys = ["account_id"].into_iter().chain(def.level.id_field()).map(str::to_string);
        FieldSet::new(wanted, keys)
    }

    /// The fields to request now.
    pub fn requested(&self) -> Vec<String> {
        self.wanted.iter().filter(|f| !self.refused.contains(*f)).cloned().collect()
    }

    /// The fields to request now, less `also` (a fallback's own fields).
    pub fn requested_without(&self, also: &[&str]) -> Vec<String> {
        self.wanted.iter().filter(|f| !self.refused.contains(*f) && !also.contains(&f.as_str())).cloned().collect()
    }

    pub fn contains(&self, field: &str) -> bool {
        self.wanted.iter().any(|f| f == field) && !self.refused.contains(field)
    }

    /// Whether `field` is part of the stream's key (never dropped, never split away).
    pub fn is_key(&self, field: &str) -> bool {
        self.keys.iter().any(|k| k == field)
    }

    /// Graph refused `names` in a request that asked for `in_request` (the fields that request
    /// was sent with): drop them if they all were in it and none is a key field. A request sent
    /// before a drop may name fields dropped since (nothing new is dropped; it is made again
    /// without them); a request that did not ask for a field it is refused for is not made again,
    /// so a server that keeps naming a dropped field cannot keep a listing restarting.
    pub fn refuse(&mut self, names: &[String], in_request: &[String]) -> Refusal {
        if names.is_empty() {
            return Refusal::Kept("meta named no field".into());
        }
        if let Some(stranger) = names.iter().find(|n| !in_request.contains(n)) {
            let dropped = if self.refused.contains(stranger) { ", and it was dropped already" } else { "" };
            return Refusal::Kept(format!("meta named '{stranger}', which the request did not ask for{dropped}"));
        }
        if let Some(key) = names.iter().find(|n| self.keys.contains(n)) {
            return Refusal::Kept(format!("'{key}' is part of the stream's key"));
        }
        let new: Vec<String> = names.iter().filter(|n| self.refused.insert((*n).clone())).cloned().collect();
        Refusal::Dropped(new)
    }

    /// The fields Graph refused in this sync, sorted.
    pub fn refused(&self) -> Vec<String> {
        self.refused.iter().cloned().collect()
    }
}

/// The one WARN a stream logs for the fields Graph refused in the sync.
pub fn refused_warning(stream: &str, refused: &[String], api_version: &str) -> String {
    format!(
        "{stream}: meta no longer serves the field(s) {} in api {api_version}; they were dropped from this stream's requests, its records lack them, and its schema keeps them; unselect them in the catalog to silence this warning",
        refused.join(", ")
    )
}

/// The words a custom insight's refused field or breakdown ends its stream (and fails `check`)
/// with: the user chose them, so the user must change them.
pub fn custom_refusal(custom: &str, kind: &str, names: &[String], api_version: &str) -> String {
    format!(
        "custom_insights '{custom}': meta does not serve the {kind} {} in api {api_version}; remove them from this custom insight",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ENTITY_STREAMS;

    fn ads() -> &'static EntityStream {
        ENTITY_STREAMS.iter().find(|e| e.name == "ads").unwrap()
    }

    #[test]
    fn an_entity_stream_asks_for_its_selection_its_id_and_its_cursor() {
        let (_, f) = FieldSet::entity(ads(), &["name".to_string()]);
        assert_eq!(f.requested(), ["name", "id", "updated_time"]);
        assert!(f.is_key("id") && f.is_key("updated_time") && !f.is_key("name"));
    }

    #[test]
    fn only_named_fields_the_request_had_and_no_key_are_dropped() {
        let (_, mut f) = FieldSet::entity(ads(), &["name".to_string(), "bid_amount".to_string()]);
        let sent = f.requested();
        assert_eq!(f.refuse(&[], &sent), Refusal::Kept("meta named no field".into()));
        assert!(matches!(f.refuse(&["labels".to_string()], &sent), Refusal::Kept(_)), "not in the request");
        assert!(matches!(f.refuse(&["id".to_string()], &sent), Refusal::Kept(_)), "a key field");
        assert_eq!(f.refuse(&["bid_amount".to_string()], &sent), Refusal::Dropped(vec!["bid_amount".into()]));
        assert_eq!(f.requested(), ["name", "id", "updated_time"]);
        assert_eq!(f.refuse(&["bid_amount".to_string()], &sent), Refusal::Dropped(vec![]), "dropped once");
        // A request made without it that is refused for it again is not made again.
        let without = f.requested();
        assert_eq!(
            f.refuse(&["bid_amount".to_string()], &without),
            Refusal::Kept(
                "meta named 'bid_amount', which the request did not ask for, and it was dropped already".into()
            )
        );
        assert_eq!(f.refused(), ["bid_amount"]);
    }
}
