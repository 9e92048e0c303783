//! Copies the rows of an insights result page straight from Graph's bytes to Airbyte record
//! JSON in one pass, applying the schema's type coercion on the way: no `Value` tree is built
//! for the rows, which is most of a sync's CPU.
//!
//! The rules are those of the `Value` path ([`row_record`]):
//! rows missing a breakdown key are dropped, `account_id` is added when absent, object
//! breakdowns get their `<name>_id`, and (custom insights) `results` is renamed
//! `objective_results` when the latter is absent.

use crate::scan::{Kind, Malformed, Scanner, Str, is_plain_integer, same_bytes};
use crate::schema::{Node, Properties};
use std::fmt::Write;

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
pub fn page(body: &[u8], rules: &RowRules) -> Result<Page, Malformed> {
    // The client made the body valid UTF-8 already; a body that is not is refused whole.
    let text = std::str::from_utf8(body).map_err(|e| Malformed { at: e.valid_up_to(), what: "invalid UTF-8" })?;
    let mut out = Page::default();
    let mut t = Transcoder { sc: Scanner::new(text), rules, lookups: Lookups::default(), last_row: 0 };
    t.sc.begin_object()?;
    let mut first = true;
    while let Some(key) = t.sc.next_key(first)? {
        first = false;
        match &*key.value()? {
            "data" => t.rows(&mut out)?,
            "paging" => {
                let paging: serde_json::Value = serde_json::from_str(t.sc.value_text()?)
                    .map_err(|_| Malformed { at: 0, what: "a malformed paging object" })?;
                out.next = paging.get("next").and_then(|n| n.as_str()).map(str::to_string);
                out.after = crate::api::paginator::after_cursor(&paging);
            }
            "error" => {
                out.error = true;
                t.sc.skip()?;
            }
            _ => t.sc.skip()?,
        }
    }
    t.sc.end()?;
    Ok(out)
}

/// Schema nodes by key, with the order keys came in: Graph writes every row of a page with the
/// same keys in the same order (a list's objects sometimes lack one), so the next key is
/// predicted from the one before it, checked with one comparison where it stands in the text
/// rather than searched for its end, and its node is known without a walk down the schema.
#[derive(Default)]
struct Lookups<'a, 't> {
    /// Per object schema: the keys seen in its objects.
    tables: Vec<(&'a Properties, Vec<Seen<'a, 't>>)>,
}

/// A key seen in an object (a plain one: no escape), its node, and the key that followed it last.
struct Seen<'a, 't> {
    key: &'t str,
    node: Option<&'a Node>,
    /// Index of the key that came after it last time, if any did.
    next: Option<usize>,
}

/// Where an object's reading stands: the index of the key read last (or `FIRST` before any).
const FIRST: usize = usize::MAX;

impl<'a, 't> Lookups<'a, 't> {
    /// The table of `props`' keys (found once per object, not once per key).
    fn table(&mut self, props: &'a Properties) -> usize {
        match self.tables.iter().position(|(p, _)| std::ptr::eq(*p, props)) {
            Some(i) => i,
            None => {
                self.tables.push((props, Vec::new()));
                self.tables.len() - 1
            }
        }
    }

    /// The key expected after `last` (the index of the key before, or `FIRST`).
    #[inline]
    fn hint(&self, table: usize, last: usize) -> Option<(usize, &'t str)> {
        let seen = &self.tables[table].1;
        let i = match last {
            FIRST => 0,
            _ => seen.get(last)?.next?,
        };
        seen.get(i).map(|s| (i, s.key))
    }

    /// The index and node of `key`, which came after the key at `last`.
    #[inline]
    fn get(&mut self, table: usize, last: usize, key: &'t str) -> (usize, Option<&'a Node>) {
        let (props, seen) = &mut self.tables[table];
        let i = match seen.iter().position(|s| same_bytes(s.key.as_bytes(), key.as_bytes())) {
            Some(i) => i,
            None => {
                seen.push(Seen { key, node: props.get(key), next: None });
                seen.len() - 1
            }
        };
        if let Some(before) = seen.get_mut(last) {
            before.next = Some(i);
        }
        (i, seen[i].node)
    }

    /// The node of the key at index `i`.
    #[inline]
    fn node(&self, table: usize, i: usize) -> Option<&'a Node> {
        self.tables[table].1[i].node
    }
}

struct Transcoder<'r, 'a, 't> {
    sc: Scanner<'t>,
    rules: &'r RowRules<'a>,
    lookups: Lookups<'a, 't>,
    /// The length of the last row written, to size the next one's buffer.
    last_row: usize,
}

impl<'a, 't> Transcoder<'_, 'a, 't> {
    /// The next key of an object of schema table `table` and its node, or `None` at the
    /// object's end; `last` is the index of the key before it (`FIRST` at the start), and moves
    /// to this one.
    #[inline]
    fn key(
        &mut self,
        table: Option<usize>,
        last: &mut usize,
        first: bool,
    ) -> Result<Option<(Str<'t>, Option<&'a Node>)>, Malformed> {
        let Some(t) = table else { return Ok(self.sc.next_key(first)?.map(|k| (k, None))) };
        let key = match self.lookups.hint(t, *last) {
            Some((i, hint)) => match self.sc.next_key_hinted(first, hint)? {
                Some((key, true)) => {
                    *last = i;
                    return Ok(Some((key, self.lookups.node(t, i))));
                }
                Some((key, false)) => key,
                None => return Ok(None),
            },
            None => match self.sc.next_key(first)? {
                Some(key) => key,
                None => return Ok(None),
            },
        };
        if key.escaped {
            // Rare: looked up, not remembered.
            let node = self.lookups.tables[t].0.get(&*key.value()?);
            return Ok(Some((key, node)));
        }
        let (i, node) = self.lookups.get(t, *last, key.raw());
        *last = i;
        Ok(Some((key, node)))
    }

    /// The `data` list (or `null`).
    fn rows(&mut self, out: &mut Page) -> Result<(), Malformed> {
        match self.sc.kind()? {
            Kind::Literal if self.sc.literal()? == "null" => return Ok(()),
            Kind::Array => {}
            _ => return Err(Malformed { at: 0, what: "data is not a list" }),
        }
        self.sc.begin_array()?;
        let mut first = true;
        while self.sc.next_element(first)? {
            first = false;
            out.read += 1;
            // A row that is not an object is skipped, as the `Value` path does.
            if self.sc.kind()? == Kind::Object {
                if let Some(row) = self.row()? {
                    out.rows.push(row);
                }
            } else {
                self.sc.skip()?;
            }
        }
        Ok(())
    }

    fn row(&mut self) -> Result<Option<String>, Malformed> {
        let r = self.rules;
        let last = self.last_row;
        let mut out = String::with_capacity(if last == 0 { 4096 } else { last + last / 8 });
        let table = self.lookups.table(r.props);
        out.push('{');
        let (mut has_account, mut has_objective, mut required_seen) = (false, false, 0usize);
        let mut results: Option<String> = None;
        let mut object_ids: Vec<(String, String)> = Vec::new();
        self.sc.begin_object()?;
        let mut last = FIRST;
        let mut first = true;
        while let Some((key, node)) = self.key(Some(table), &mut last, first)? {
            first = false;
            let k = key.value()?;
            if r.object_breakdowns.iter().any(|b| *b == *k) {
                // Rare: keep the object as it came and copy its id out.
                let v: serde_json::Value = serde_json::from_str(self.sc.value_text()?)
                    .map_err(|_| Malformed { at: 0, what: "a malformed breakdown object" })?;
                if let Some(id) = v.get("id") {
                    object_ids.push((format!("{k}_id"), id.to_string()));
                }
                push_key(&mut out, &key);
                out.push_str(&v.to_string());
            } else if r.rename_results && k == "results" {
                let mut buf = String::new();
                self.value(r.props.get("objective_results"), &mut buf)?;
                results = Some(buf);
                continue;
            } else {
                push_key(&mut out, &key);
                self.value(node, &mut out)?;
            }
            has_account |= k == "account_id";
            has_objective |= k == "objective_results";
            if r.required.iter().any(|b| *b == *k) {
                required_seen += 1;
            }
        }
        if required_seen < r.required.len() {
            return Ok(None);
        }
        if let Some(buf) = results {
            push_plain(&mut out, if has_objective { "results" } else { "objective_results" });
            out.push_str(&buf);
        }
        if !has_account {
            push_plain(&mut out, "account_id");
            push_string(&mut out, r.account_id);
        }
        for (k, id) in object_ids {
            push_escaped_key(&mut out, &k);
            out.push_str(&id);
        }
        out.push('}');
        self.last_row = out.len();
        // A page's rows wait in the outbox until the host takes them: give back the slack of
        // doubling (a 8.6 KiB row sat in a 16 KiB buffer) where there is much of it.
        if out.capacity() > out.len() + out.len() / 4 {
            out.shrink_to_fit();
        }
        Ok(Some(out))
    }

    /// Writes one value, coerced to `node`'s type where Graph sent a string.
    fn value(&mut self, node: Option<&'a Node>, out: &mut String) -> Result<(), Malformed> {
        let kind = self.sc.kind()?;
        // Most of a report's values: a count Graph sent as a string, where the schema wants a number.
        if kind == Kind::String
            && matches!(node, Some(Node::Number | Node::Integer))
            && let Some(digits) = self.sc.quoted_integer()
        {
            out.push_str(digits);
            return Ok(());
        }
        match kind {
            Kind::String => {
                let s = self.sc.string()?;
                match node {
                    Some(Node::Number | Node::Integer | Node::Boolean) => coerce(&s.value()?, node, out),
                    // A string with no escapes holds nothing JSON must escape: copied as it is
                    // (most of a page's bytes).
                    _ if !s.escaped => out.push_str(s.quoted),
                    _ => push_string(out, &s.value()?),
                }
            }
            Kind::Number => number(self.sc.number()?, node, out),
            Kind::Literal => out.push_str(self.sc.literal()?),
            Kind::Array => {
                let items = match node {
                    Some(Node::Array(items)) => Some(&**items),
                    _ => None,
                };
                self.sc.begin_array()?;
                out.push('[');
                let mut first = true;
                while self.sc.next_element(first)? {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    self.value(items, out)?;
                }
                out.push(']');
            }
            Kind::Object => {
                let table = match node {
                    Some(Node::Object(c)) => Some(self.lookups.table(c)),
                    _ => None,
                };
                self.sc.begin_object()?;
                out.push('{');
                let (mut last, mut first) = (FIRST, true);
                while let Some((key, node)) = self.key(table, &mut last, first)? {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    match key.escaped {
                        false => out.push_str(key.quoted),
                        true => push_string(out, &key.value()?),
                    }
                    out.push(':');
                    self.value(node, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }
}

/// The comma that ends the value before a key (none after the row's opening brace).
fn comma(out: &mut String) {
    if out.len() > 1 {
        out.push(',');
    }
}

/// Writes a row's key (and its colon), with the comma that ends the value before it: the
/// row's closing brace takes back a trailing one.
fn push_key(out: &mut String, key: &Str) {
    comma(out);
    match key.escaped {
        false => out.push_str(key.quoted),
        true => match key.value() {
            Ok(k) => push_string(out, &k),
            Err(_) => out.push_str(key.quoted),
        },
    }
    out.push(':');
}

/// A key that needs no escape, with its comma and colon.
fn push_plain(out: &mut String, key: &str) {
    comma(out);
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// A key that may need escapes, with its comma and colon.
fn push_escaped_key(out: &mut String, key: &str) {
    comma(out);
    push_string(out, key);
    out.push(':');
}

/// A decimal that parsing to `f64` and printing again gives back unchanged: `-?(0|[1-9]d*).d*[1-9]`
/// with at most 15 significant digits (so it is the shortest text of its `f64`), under 10^15
/// and, below 1, with at most three zeros after the point (printed without an exponent).
fn is_plain_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let Some((int, frac)) = digits.split_once('.') else { return false };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || frac.is_empty() || !all_digits(int) || !all_digits(frac) || frac.ends_with('0') {
        return false;
    }
    if int == "0" {
        let zeros = frac.len() - frac.trim_start_matches('0').len();
        zeros <= 3 && frac.len() - zeros <= 15
    } else {
        !int.starts_with('0') && int.len() + frac.len() <= 15
    }
}

/// A string Graph sent where the schema wants a number, an integer or a boolean.
fn coerce(s: &str, node: Option<&Node>, out: &mut String) {
    match node {
        // Most of Graph's numbers are plain integers and short decimals: copied as they are.
        Some(Node::Number | Node::Integer) if is_plain_integer(s) => out.push_str(s),
        Some(Node::Number) if is_plain_decimal(s) => out.push_str(s),
        Some(Node::Number) => match crate::schema::parse_number(s) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => push_string(out, s),
        },
        Some(Node::Integer) => match s.trim().parse::<i64>() {
            Ok(i) => {
                let _ = write!(out, "{i}");
            }
            Err(_) => push_string(out, s),
        },
        Some(Node::Boolean) if s == "true" || s == "false" => out.push_str(s),
        _ => push_string(out, s),
    }
}

/// A JSON number as `serde_json` reads and prints it: integers as they are (quoted where the
/// schema says string), other numbers through `f64`.
fn number(text: &str, node: Option<&Node>, out: &mut String) {
    let quoted = matches!(node, Some(Node::String { .. }));
    if is_plain_integer(text) {
        if quoted {
            out.push('"');
            out.push_str(text);
            out.push('"');
        } else {
            out.push_str(text);
        }
        return;
    }
    let printed = match serde_json::from_str::<serde_json::Number>(text) {
        Ok(n) if n.is_u64() || n.is_i64() => n.to_string(),
        Ok(n) => {
            n.as_f64().and_then(serde_json::Number::from_f64).map_or_else(|| "null".to_string(), |n| n.to_string())
        }
        Err(_) => "null".to_string(),
    };
    match quoted && printed != "null" {
        true => push_string(out, &printed),
        false => out.push_str(&printed),
    }
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
    fn plain_decimals_print_as_a_parse_and_print_would() {
        // The fast path copies these as they are; the slow path parses to f64 and prints.
        let mut rng = crate::rng::Rng::new(7);
        let mut texts: Vec<String> = [
            "0.5",
            "-0.5",
            "0.0001",
            "0.00012",
            "0.00001",
            "0.000123",
            "1.25",
            "345.2",
            "99999999999999.9",
            "123456789012345.6",
            "0.123456789012345",
            "0.1234567890123456",
            "1.10",
            "01.5",
            "1.",
            ".5",
            "-0.0",
            "12345678901234.5",
            "1e5",
            "0.1",
            "0.30000000000000004",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..20_000 {
            let int_len = (rng.next_u64() % 16) as usize;
            let frac_len = 1 + (rng.next_u64() % 16) as usize;
            let digit = |r: &mut crate::rng::Rng| char::from(b'0' + (r.next_u64() % 10) as u8);
            let mut t = String::new();
            if rng.next_u64().is_multiple_of(4) {
                t.push('-');
            }
            if int_len == 0 {
                t.push('0');
            } else {
                t.push(char::from(b'1' + (rng.next_u64() % 9) as u8));
                (1..int_len).for_each(|_| t.push(digit(&mut rng)));
            }
            t.push('.');
            let zeros = (rng.next_u64() % 6) as usize;
            (0..zeros.min(frac_len - 1)).for_each(|_| t.push('0'));
            (zeros.min(frac_len - 1)..frac_len).for_each(|_| t.push(digit(&mut rng)));
            texts.push(t);
        }
        let mut fast = 0;
        for t in &texts {
            if is_plain_decimal(t) {
                fast += 1;
                let printed = crate::schema::parse_number(t).unwrap().to_string();
                assert_eq!(&printed, t, "the fast path would change {t}");
            }
        }
        assert!(fast > 5_000, "{fast}");
    }

    #[test]
    fn generated_pages_agree_with_the_value_path() {
        // Rows with every kind of value where the schema wants a string, a number, an
        // integer, a boolean, a list of objects or nothing, keys moving between rows, escapes,
        // whitespace: the transcoder's rows must equal the Value path's, number types included.
        let props = schema::properties("ads_insights");
        let rules = RowRules { props, required: &[], object_breakdowns: &[], account_id: "9", rename_results: false };
        let mut rng = crate::rng::Rng::new(11);
        let values = [
            r#""12""#,
            r#""-3""#,
            r#""0""#,
            r#""-0""#,
            r#""-""#,
            r#""007""#,
            r#""1234567890123456789""#,
            r#""1.50""#,
            r#""2.25""#,
            r#""0.00001""#,
            r#""1e3""#,
            r#"" 4 ""#,
            r#""x""#,
            r#""tab\there""#,
            r#""\u00e9\/ \ud83d\ude00""#,
            r#""true""#,
            "12",
            "-0",
            "1.0",
            "2.5e3",
            "18446744073709551616",
            "-9223372036854775809",
            "true",
            "null",
            "[]",
            "{}",
            r#"["1", 2, {"a": "3"}]"#,
        ];
        let keys = [
            "impressions",
            "spend",
            "ad_name",
            "clicks",
            "ctr",
            "date_start",
            "unknown",
            "quality_ranking",
            "tab\\tkey",
        ];
        for _ in 0..300 {
            let mut row = Vec::new();
            for k in keys {
                if rng.next_u64().is_multiple_of(3) {
                    continue;
                }
                let v = values[(rng.next_u64() % values.len() as u64) as usize];
                row.push(format!("\"{k}\" : {v}"));
            }
            let mut actions = Vec::new();
            for _ in 0..(rng.next_u64() % 4) {
                let mut a = Vec::new();
                for k in ["action_type", "value", "1d_click", "1d_view", "28d_click"] {
                    if !rng.next_u64().is_multiple_of(4) {
                        let v = values[(rng.next_u64() % values.len() as u64) as usize];
                        a.push(format!("\"{k}\":{v}"));
                    }
                }
                actions.push(format!("{{{}}}", a.join(",")));
            }
            row.push(format!("\"actions\": [{}]", actions.join(" , ")));
            let body = format!("{{\"data\": [{{{}}}, {{{}}}]}}", row.join(","), row.join(","));
            let page = page(body.as_bytes(), &rules).unwrap_or_else(|e| panic!("{e}: {body}"));
            let value: Value = serde_json::from_str(&body).unwrap();
            let expected: Vec<Value> =
                value["data"].as_array().unwrap().iter().filter_map(|r| reference(r, &rules)).collect();
            let got: Vec<Value> = page.rows.iter().map(|r| serde_json::from_str(r).unwrap()).collect();
            assert_eq!(got, expected, "{body}");
        }
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
