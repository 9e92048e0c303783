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
//!
//! [`Refusals`] is the churn policy every reader (and `check`) asks: what Graph refused in an
//! answer, and whether the stream drops it and asks again, stops with an error, or drops
//! nothing; the words of every log line and error about refusals are here too.

use crate::api::client::CallFailure;
use crate::error::ConnectorError;
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

/// What Graph refused in one answer, as its error names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Fields(Vec<String>),
    Breakdowns(Vec<String>),
    ActionBreakdowns(Vec<String>),
}

impl Refused {
    /// What `failure` says Graph refused, if it is a refusal.
    pub fn of(failure: &CallFailure) -> Option<Refused> {
        match failure {
            CallFailure::UnknownFields(n) => Some(Refused::Fields(n.clone())),
            CallFailure::RefusedBreakdowns(n) => Some(Refused::Breakdowns(n.clone())),
            CallFailure::RefusedActionBreakdowns(n) => Some(Refused::ActionBreakdowns(n.clone())),
            _ => None,
        }
    }

    /// The word for what was refused, as every message says it.
    pub fn kind(&self) -> &'static str {
        match self {
            Refused::Fields(_) => "field(s)",
            Refused::Breakdowns(_) => "breakdown(s)",
            Refused::ActionBreakdowns(_) => "action breakdown(s)",
        }
    }

    pub fn names(&self) -> &[String] {
        match self {
            Refused::Fields(n) | Refused::Breakdowns(n) | Refused::ActionBreakdowns(n) => n,
        }
    }

    /// The same kind of refusal, of `names`.
    pub fn named(&self, names: Vec<String>) -> Refused {
        match self {
            Refused::Fields(_) => Refused::Fields(names),
            Refused::Breakdowns(_) => Refused::Breakdowns(names),
            Refused::ActionBreakdowns(_) => Refused::ActionBreakdowns(names),
        }
    }
}

/// What a stream does about a refusal.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// These are no longer requested (none, when they were dropped before): ask again without
    /// them.
    Retry(Refused),
    /// The stream cannot go on: it ends with this error.
    Stop(ConnectorError),
    /// Nothing is dropped (why): the request fails as any other would.
    Keep(String),
}

/// One stream's refusals in a sync: the policy of what a refusal drops, and what was dropped
/// beyond fields (an insights stream's action breakdowns). Fields are dropped in the stream's
/// [`FieldSet`], which the stream hands in.
#[derive(Clone, Debug, Default)]
pub struct Refusals {
    stream: String,
    /// Whether the stream reads reports (insights), whose breakdowns Graph may refuse too.
    reports: bool,
    /// The `custom_insights` entry this stream is: the user chose its fields and breakdowns, so
    /// a refusal of any of them stops it, in words that say what to change.
    custom: Option<String>,
    breakdowns: Vec<String>,
    /// Action breakdowns still requested, and those refused in this sync.
    action_breakdowns: Vec<String>,
    refused_action_breakdowns: Vec<String>,
}

impl Refusals {
    /// An entity stream's: only fields may be dropped.
    pub fn entity(stream: &str) -> Self {
        Refusals { stream: stream.to_string(), ..Refusals::default() }
    }

    /// An insights stream's, with the breakdowns and action breakdowns it asks for.
    pub fn insights(stream: &str, custom: Option<&str>, breakdowns: &[String], action_breakdowns: &[String]) -> Self {
        Refusals {
            stream: stream.to_string(),
            reports: true,
            custom: custom.map(str::to_string),
            breakdowns: breakdowns.to_vec(),
            action_breakdowns: action_breakdowns.to_vec(),
            refused_action_breakdowns: Vec::new(),
        }
    }

    /// The action breakdowns to request now.
    pub fn action_breakdowns(&self) -> &[String] {
        &self.action_breakdowns
    }

    /// Graph answered a request that asked for the fields `in_request` with `failure`: `None`
    /// when that is no refusal; else drop and ask again, stop the stream, or keep everything.
    /// Fields are dropped from `fields` only when every one named was asked for and none is a
    /// key; action breakdowns when every one named is the stream's; a refused breakdown stops the
    /// stream (its rows would mean something else without it), as does any refusal of a custom
    /// insight's choice. `detail` is the answer's, for the error.
    pub fn judge(
        &mut self,
        fields: &mut FieldSet,
        failure: &CallFailure,
        in_request: &[String],
        api_version: &str,
        detail: &str,
    ) -> Option<Answer> {
        let refused = Refused::of(failure)?;
        if !self.reports && !matches!(refused, Refused::Fields(_)) {
            // Breakdowns are report parameters: an entity stream asks for none.
            return None;
        }
        let answer = match refused {
            Refused::Fields(names) => match fields.refuse(&names, in_request) {
                Refusal::Dropped(new) => Answer::Retry(Refused::Fields(new)),
                Refusal::Kept(why) => Answer::Keep(why),
            },
            Refused::ActionBreakdowns(names)
                if !names.is_empty()
                    && names
                        .iter()
                        .all(|n| self.action_breakdowns.contains(n) || self.refused_action_breakdowns.contains(n)) =>
            {
                Answer::Retry(Refused::ActionBreakdowns(names))
            }
            Refused::ActionBreakdowns(_) => {
                Answer::Keep("meta named action breakdowns the stream does not ask for".into())
            }
            Refused::Breakdowns(names) => {
                let names = if names.is_empty() { self.breakdowns.clone() } else { names };
                let refused = Refused::Breakdowns(names);
                return Some(Answer::Stop(match &self.custom {
                    Some(custom) => ConnectorError::config(custom_refusal(custom, &refused, api_version)),
                    None => ConnectorError::rejected(
                        format!(
                            "{}: meta no longer serves the breakdown(s) {} in api {api_version}; this stream cannot be read with this api version: unselect it, or set api_version to one that serves them",
                            self.stream,
                            refused.names().join(", ")
                        ),
                        detail,
                    ),
                }));
            }
        };
        if let (Answer::Retry(dropped), Some(custom)) = (&answer, &self.custom) {
            return Some(Answer::Stop(ConnectorError::config(custom_refusal(custom, dropped, api_version))));
        }
        if let Answer::Retry(Refused::ActionBreakdowns(names)) = &answer {
            self.action_breakdowns.retain(|b| !names.contains(b));
            for n in names {
                if !self.refused_action_breakdowns.contains(n) {
                    self.refused_action_breakdowns.push(n.clone());
                }
            }
        }
        Some(answer)
    }

    /// Everything Graph refused in this sync that the stream no longer asks for, for its
    /// closing lines.
    pub fn refused(&self, fields: &FieldSet) -> Vec<String> {
        let mut refused = fields.refused();
        refused.extend(self.refused_action_breakdowns.iter().map(|b| format!("{b} (action breakdown)")));
        refused
    }

    /// The INFO an insights stream logs when it creates a report again without what was dropped.
    pub fn report_again(&self, dropped: &Refused, api_version: &str) -> String {
        format!(
            "{}: meta refused the {} {} in api {api_version}; creating the report again without them",
            self.stream,
            dropped.kind(),
            dropped.names().join(", ")
        )
    }

    /// The INFO an entity stream logs when it reads an account again without dropped fields.
    pub fn account_again(&self, account: &str, dropped: &Refused) -> String {
        format!(
            "{} of ad account {account}: meta refused the {} {}; reading the account again without them",
            self.stream,
            dropped.kind(),
            dropped.names().join(", ")
        )
    }

    /// The WARN an entity stream logs when a refusal drops nothing and its request fails.
    pub fn nothing_dropped(&self, account: &str, names: &[String], why: &str) -> String {
        format!(
            "{} of ad account {account}: meta refused the field(s) {}; nothing is dropped ({why}), so the request fails",
            self.stream,
            names.join(", ")
        )
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
pub fn custom_refusal(custom: &str, refused: &Refused, api_version: &str) -> String {
    format!(
        "custom_insights '{custom}': meta does not serve the {} {} in api {api_version}; remove them from this custom insight",
        refused.kind(),
        refused.names().join(", ")
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

    #[test]
    fn one_policy_answers_every_refusal_drop_and_retry_stop_or_keep() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let (_, mut fields) = FieldSet::entity(ads(), &names(&["name", "bid_amount"]));
        let sent = fields.requested();
        let mut r = Refusals::insights("ads_insights", None, &names(&["age"]), &names(&["action_type"]));
        let unknown = CallFailure::UnknownFields(names(&["bid_amount"]));
        assert_eq!(
            r.judge(&mut fields, &unknown, &sent, "v25.0", ""),
            Some(Answer::Retry(Refused::Fields(names(&["bid_amount"]))))
        );
        let actions = CallFailure::RefusedActionBreakdowns(names(&["action_type"]));
        assert_eq!(
            r.judge(&mut fields, &actions, &sent, "v25.0", ""),
            Some(Answer::Retry(Refused::ActionBreakdowns(names(&["action_type"]))))
        );
        assert!(r.action_breakdowns().is_empty());
        assert_eq!(r.refused(&fields), ["bid_amount", "action_type (action breakdown)"]);
        let Some(Answer::Stop(e)) = r.judge(&mut fields, &CallFailure::RefusedBreakdowns(vec![]), &sent, "v25.0", "")
        else {
            panic!("a refused breakdown stops the stream")
        };
        assert!(e.message().contains("breakdown(s) age in api v25.0"), "{}", e.message());
        assert_eq!(r.judge(&mut fields, &CallFailure::Other, &sent, "v25.0", ""), None, "not a refusal");

        // A custom insight stops on any refusal, naming what to remove; an entity stream asks
        // for no breakdowns, so a breakdown refusal is none of its business.
        let (_, mut fields) = FieldSet::entity(ads(), &names(&["name", "bid_amount"]));
        let mut custom = Refusals::insights("mine", Some("mine"), &[], &[]);
        let Some(Answer::Stop(e)) = custom.judge(&mut fields, &unknown, &sent, "v25.0", "") else { panic!() };
        assert!(e.message().starts_with("custom_insights 'mine': meta does not serve the field(s) bid_amount"));
        let mut entity = Refusals::entity("ads");
        assert_eq!(entity.judge(&mut fields, &CallFailure::RefusedBreakdowns(vec![]), &sent, "v25.0", ""), None);
    }
}
