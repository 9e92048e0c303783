//! Copies the rows of an insights result page straight from Graph's bytes to Airbyte record
//! JSON in one pass, applying the schema's type coercion on the way: no `Value` tree is built
//! for the rows, which is most of a sync's CPU.
//!
//! The rules are those of the `Value` path ([`row_record`]):
//! rows missing a breakdown key are dropped, `account_id` is added when absent, object
//! breakdowns get their `<name>_id`, and (custom insights) `results` is renamed
//! `objective_results` when the latter is absent.

use crate::schema::{Node, Properties};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt::{self, Write};

/// What to do with each row.
pub struct RowRules<'a> {
    pub props: &'a Properties,
    /// Breakdown keys every kept row must have.
    pub required: &'a [String],
    /// Object breakdowns whose `id` is copied out as `<name>_id`.
    pub object_breakdowns: &'a [String],
    pub account_id: &'a str,
    pub rename_results: bool,
}

/// A transcoded page.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// Each kept row as a JSON object.
    pub rows: Vec<String>,
    /// Rows read, kept or not.
    pub read: usize,
    pub next: Option<String>,
    /// `paging.cursors.after`, to go on from Graph's own origin when `next` names another.
    pub after: Option<String>,
    /// Whether the body held a Graph `error` instead of data.
    pub error: bool,
}

/// The `Value` path of the same rules, for rows that must be held and merged by key (field-split
/// halves) or read for their ids: the transcoder is held to it by a test.
pub fn row_record(row: serde_json::Value, rules: &RowRules) -> Option<serde_json::Map<String, serde_json::Value>> {
    let serde_json::Value::Object(mut row) = row else { return None };
    if !rules.required.iter().all(|b| row.contains_key(b)) {
        return None;
    }
    if !row.contains_key("account_id") {
        row.insert("account_id".into(), serde_json::Value::from(rules.account_id));
    }
    for b in rules.object_breakdowns {
        if let Some(id) = row.get(b).and_then(|o| o.get("id")).cloned() {
            row.insert(format!("{b}_id"), id);
        }
    }
    if rules.rename_results
        && !row.contains_key("objective_results")
        && let Some(r) = row.remove("results")
    {
        row.insert("objective_results".into(), r);
    }
    crate::schema::normalise(&mut row, rules.props);
    Some(row)
}

/// Transcodes a whole page body (`{"data": [...], "paging": {...}}`).
pub fn page(body: &[u8], rules: &RowRules) -> Result<Page, serde_json::Error> {
    let mut out = Page::default();
    let lookups = Lookups::default();
    let seed = PageSeed { rules, lookups: &lookups, out: &mut out };
    // The client made the body valid UTF-8 already: checked once here, its strings are not
    // checked again one by one.
    match std::str::from_utf8(body) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            seed.deserialize(&mut de)?;
            de.end()?;
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(body);
            seed.deserialize(&mut de)?;
            de.end()?;
        }
    }
    Ok(out)
}

/// Schema nodes by key, remembered by where the key stood in its object: Graph writes every row
/// of a page with the same keys in the same order, so after the first row a lookup is one
/// comparison instead of a walk down the schema's tree.
#[derive(Default)]
struct Lookups<'a> {
    /// Per object schema: the key at each position last seen, and its node.
    tables: RefCell<Vec<(&'a Properties, Vec<Slot<'a>>)>>,
    /// The length of the last row written, to size the next one's buffer.
    last_row: std::cell::Cell<usize>,
}

/// A key seen at one position of an object, and its schema node.
type Slot<'a> = (Box<str>, Option<&'a Node>);

impl<'a> Lookups<'a> {
    /// The table of `props`' keys (found once per object, not once per key).
    fn table(&self, props: &'a Properties) -> usize {
        let mut tables = self.tables.borrow_mut();
        match tables.iter().position(|(p, _)| std::ptr::eq(*p, props)) {
            Some(i) => i,
            None => {
                tables.push((props, Vec::new()));
                tables.len() - 1
            }
        }
    }

    /// The node of `key`, the `at`th key of an object of table `table`'s schema.
    fn get(&self, table: usize, at: usize, key: &str) -> Option<&'a Node> {
        let mut tables = self.tables.borrow_mut();
        let (props, slots) = &mut tables[table];
        if let Some((k, node)) = slots.get(at)
            && **k == *key
        {
            return *node;
        }
        let node = props.get(key);
        if at < slots.len() {
            slots[at] = (key.into(), node);
        } else if at == slots.len() {
            slots.push((key.into(), node));
        }
        node
    }
}

struct PageSeed<'r, 'a> {
    rules: &'r RowRules<'a>,
    lookups: &'r Lookups<'a>,
    out: &'r mut Page,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Graph listing object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.as_str() {
                "data" => map.next_value_seed(RowsSeed {
                    rules: self.rules,
                    lookups: self.lookups,
                    rows: &mut self.out.rows,
                    read: &mut self.out.read,
                })?,
                "paging" => {
                    let paging: serde_json::Value = map.next_value()?;
                    self.out.next = paging.get("next").and_then(|n| n.as_str()).map(str::to_string);
                    self.out.after = crate::api::paginator::after_cursor(&paging);
                }
                "error" => {
                    self.out.error = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RowsSeed<'r, 'a> {
    rules: &'r RowRules<'a>,
    lookups: &'r Lookups<'a>,
    rows: &'r mut Vec<String>,
    read: &'r mut usize,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element_seed(RowSeed { rules: self.rules, lookups: self.lookups })? {
            *self.read += 1;
            if let Some(row) = row {
                self.rows.push(row);
            }
        }
        Ok(())
    }
}

struct RowSeed<'r, 'a> {
    rules: &'r RowRules<'a>,
    lookups: &'r Lookups<'a>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }

    /// A row that is not an object is skipped, as the `Value` path does.
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<String>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let r = self.rules;
        let last = self.lookups.last_row.get();
        let mut out = String::with_capacity(if last == 0 { 4096 } else { last + last / 8 });
        let table = self.lookups.table(r.props);
        out.push('{');
        let mut first = true;
        let (mut has_account, mut has_objective, mut required_seen) = (false, false, 0usize);
        let mut results: Option<String> = None;
        let mut object_ids: Vec<(String, String)> = Vec::new();
        let mut at = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            at += 1;
            if r.object_breakdowns.iter().any(|b| b == k) {
                // Rare: keep the object and copy its id out.
                let v: serde_json::Value = map.next_value()?;
                if let Some(id) = v.get("id") {
                    object_ids.push((format!("{k}_id"), id.to_string()));
                }
                push_key(&mut out, &mut first, &key);
                out.push_str(&v.to_string());
            } else if r.rename_results && k == "results" {
                let mut buf = String::new();
                let node = r.props.get("objective_results");
                map.next_value_seed(ValueSeed { node, lookups: self.lookups, out: &mut buf })?;
                results = Some(buf);
                continue;
            } else {
                push_key(&mut out, &mut first, &key);
                let node = self.lookups.get(table, at - 1, k);
                map.next_value_seed(ValueSeed { node, lookups: self.lookups, out: &mut out })?;
            }
            has_account |= k == "account_id";
            has_objective |= k == "objective_results";
            if r.required.iter().any(|b| b == k) {
                required_seen += 1;
            }
        }
        if required_seen < r.required.len() {
            return Ok(None);
        }
        if let Some(buf) = results {
            push_key(&mut out, &mut first, &Key::Borrowed(if has_objective { "results" } else { "objective_results" }));
            out.push_str(&buf);
        }
        if !has_account {
            push_key(&mut out, &mut first, &Key::Borrowed("account_id"));
            push_string(&mut out, r.account_id);
        }
        for (k, id) in object_ids {
            push_key(&mut out, &mut first, &Key::Owned(k));
            out.push_str(&id);
        }
        out.push('}');
        self.lookups.last_row.set(out.len());
        // A page's rows wait in the outbox until the host takes them: give back the slack of
        // doubling (a 8.6 KiB row sat in a 16 KiB buffer) where there is much of it.
        if out.capacity() > out.len() + out.len() / 4 {
            out.shrink_to_fit();
        }
        Ok(Some(out))
    }
}

/// An object key, borrowed from the input when it has no escapes (so it holds nothing JSON
/// must escape: a quote, a backslash or a control character would have been one).
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(s.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

fn push_key(out: &mut String, first: &mut bool, key: &Key) {
    if !*first {
        out.push(',');
    }
    *first = false;
    match key {
        Key::Borrowed(k) => push_plain(out, k),
        Key::Owned(k) => push_string(out, k),
    }
    out.push(':');
}

/// Writes `s`, which needs no escape, as a JSON string.
fn push_plain(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    out.push_str(s);
    out.push('"');
}

/// `-?[1-9][0-9]*` or `0`, short enough for an i64: the same text a parse and print would give.
fn is_plain_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

/// Writes `s` as a JSON string.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Writes one value, coerced to `node`'s type where Graph sent a string.
struct ValueSeed<'r, 'a> {
    node: Option<&'a Node>,
    lookups: &'r Lookups<'a>,
    out: &'r mut String,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_, '_> {
    /// An integer as Graph sent it: quoted where the schema says string.
    fn integer(self, n: impl fmt::Display) {
        let _ = match self.node {
            Some(Node::String { .. }) => write!(self.out, "\"{n}\""),
            _ => write!(self.out, "{n}"),
        };
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.out.push_str(if b { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.integer(n);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.integer(n);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<(), E> {
        let text = serde_json::Number::from_f64(f).map_or_else(|| "null".to_string(), |n| n.to_string());
        match self.node {
            Some(Node::String { .. }) if text != "null" => push_string(self.out, &text),
            _ => self.out.push_str(&text),
        }
        Ok(())
    }

    /// A string with no escapes in the input: it holds nothing JSON must escape, so it is
    /// copied as it is (most of a page's bytes).
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<(), E> {
        match self.node {
            Some(Node::Number | Node::Integer | Node::Boolean) => self.visit_str(s),
            _ => {
                push_plain(self.out, s);
                Ok(())
            }
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match self.node {
            // Most of Graph's numbers are plain integers: copied as they are.
            Some(Node::Number | Node::Integer) if is_plain_integer(s) => self.out.push_str(s),
            Some(Node::Number) => match crate::schema::parse_number(s) {
                Some(n) => {
                    let _ = write!(self.out, "{n}");
                }
                None => push_string(self.out, s),
            },
            Some(Node::Integer) => match s.trim().parse::<i64>() {
                Ok(i) => {
                    let _ = write!(self.out, "{i}");
                }
                Err(_) => push_string(self.out, s),
            },
            Some(Node::Boolean) if s == "true" || s == "false" => self.out.push_str(s),
            _ => push_string(self.out, s),
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = match self.node {
            Some(Node::Array(items)) => Some(&**items),
            _ => None,
        };
        self.out.push('[');
        let mut first = true;
        loop {
            if !first {
                self.out.push(',');
            }
            let len = self.out.len();
            if seq.next_element_seed(ValueSeed { node: items, lookups: self.lookups, out: self.out })?.is_none() {
                if !first {
                    // Undo the separator written before the end was seen.
                    self.out.truncate(len - 1);
                }
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let children = match self.node {
            Some(Node::Object(c)) => Some(c),
            _ => None,
        };
        self.out.push('{');
        let mut first = true;
        let mut at = 0;
        let table = children.map(|c| self.lookups.table(c));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            push_key(self.out, &mut first, &key);
            let node = table.and_then(|t| self.lookups.get(t, at, key.as_str()));
            at += 1;
            map.next_value_seed(ValueSeed { node, lookups: self.lookups, out: self.out })?;
        }
        self.out.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use serde_json::{Map, Value, json};

    /// The `Value` path the transcoder must agree with.
    fn reference(row: &Value, rules: &RowRules) -> Option<Value> {
        row_record(row.clone(), rules).map(Value::Object)
    }

    fn check(body: Value, rules: &RowRules) -> Page {
        let page = page(body.to_string().as_bytes(), rules).unwrap();
        let expected: Vec<Value> =
            body["data"].as_array().unwrap().iter().filter_map(|r| reference(r, rules)).collect();
        let got: Vec<Value> = page.rows.iter().map(|r| serde_json::from_str(r).unwrap()).collect();
        assert_eq!(got, expected);
        page
    }

    #[test]
    fn rows_match_the_value_path_for_coercion_account_ids_and_nesting() {
        let props = schema::properties("ads_insights");
        let rules = RowRules { props, required: &[], object_breakdowns: &[], account_id: "9", rename_results: false };
        let body = json!({"data": [
            {"ad_id": "1", "impressions": "185", "spend": "14.35", "ctr": "x", "date_start": "2026-06-01",
             "actions": [{"action_type": "like", "value": "10", "1d_click": "3"}], "ad_name": "quote \" and \\ and \u{1}"},
            {"ad_id": "2", "account_id": "7", "impressions": 12, "reach": "3.0", "unknown": {"a": ["1", 2, null, true]}}
        ], "paging": {"cursors": {"after": "x"}, "next": "https://g/next?after=x"}});
        let p = check(body, &rules);
        assert_eq!(p.next.as_deref(), Some("https://g/next?after=x"));
        assert!(!p.error);
    }

    #[test]
    fn rows_whose_keys_change_order_or_escapes_agree_with_the_value_path() {
        // The lookups remember each key by position: rows that reorder, add or drop keys (and
        // nested objects that do) must still find each key's own type.
        let props = schema::properties("ads_insights");
        let rules = RowRules { props, required: &[], object_breakdowns: &[], account_id: "9", rename_results: false };
        let body = json!({"data": [
            {"impressions": "1", "spend": "2.50", "ad_name": "a", "actions": [{"action_type": "x", "value": "3"}]},
            {"spend": "2.50", "impressions": "1", "ad_name": "tab\there", "actions": [{"value": "3", "action_type": "x"}, {"1d_click": "4"}]},
            {"ad_name": "7", "impressions": "1", "clicks": "5"},
            {"impressions": "1", "spend": "2.50", "ad_name": "a", "actions": [{"action_type": "x", "value": "3"}]}
        ]});
        let p = check(body, &rules);
        assert_eq!(p.rows.len(), 4);
        assert_eq!(p.read, 4);
    }

    #[test]
    fn rows_without_a_breakdown_are_dropped_and_object_ids_copied() {
        let mut props: Properties = schema::properties("ads_insights").clone();
        props.extend(schema::properties("ads_insights_breakdowns").clone());
        let required = vec!["age".to_string(), "image_asset".to_string()];
        let objects = vec!["image_asset".to_string()];
        let rules = RowRules {
            props: &props,
            required: &required,
            object_breakdowns: &objects,
            account_id: "9",
            rename_results: true,
        };
        let body = json!({"data": [
            {"ad_id": "1", "age": "18-24", "image_asset": {"id": "55", "hash": "h"}, "results": [{"a": "1"}]},
            {"ad_id": "2", "image_asset": {"id": "56"}},
            {"ad_id": "3", "age": "25-34", "image_asset": {"id": "57"}, "results": [], "objective_results": []},
            "not an object"
        ]});
        let p = check(body, &rules);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.next, None);
    }

    #[test]
    fn errors_and_malformed_bodies_are_reported() {
        let rules = RowRules {
            props: schema::properties("ads_insights"),
            required: &[],
            object_breakdowns: &[],
            account_id: "9",
            rename_results: false,
        };
        assert!(page(br#"{"error": {"code": 1}}"#, &rules).unwrap().error);
        assert!(page(br#"{"data": [{"ad_id": "1""#, &rules).is_err());
        assert_eq!(page(br#"{"data": []}"#, &rules).unwrap(), Page::default());
        let _ = Map::<String, Value>::new();
    }
}
