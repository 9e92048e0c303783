//! Stream schemas, built from the field table (`stream-fields.tsv`, one row per field path),
//! and the schema-driven normalisation Airbyte's CDK applies to records.
//!
//! Why a table and not JSON files? One compact source for 30-odd schemas keeps the component
//! small, and every schema (built-in or custom insights) is assembled by the same code.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;

const FIELD_TABLE: &str = include_str!("stream-fields.tsv");

/// JSON type of a schema node. Every node also allows `null`, as Airbyte's schemas do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    String { format: Option<String> },
    Number,
    Integer,
    Boolean,
    Any,
    Object(BTreeMap<String, Node>),
    Array(Box<Node>),
}

impl Node {
    /// This node as JSON Schema.
    pub fn to_json_schema(&self) -> Value {
        match self {
            Node::String { format: Some(f) } => json!({"type": ["null", "string"], "format": f}),
            Node::String { format: None } => json!({"type": ["null", "string"]}),
            Node::Number => json!({"type": ["null", "number"]}),
            Node::Integer => json!({"type": ["null", "integer"]}),
            Node::Boolean => json!({"type": ["null", "boolean"]}),
            Node::Any => json!({}),
            Node::Object(props) => {
                let mut p = Map::new();
                for (k, v) in props {
                    p.insert(k.clone(), v.to_json_schema());
                }
                json!({"type": ["null", "object"], "properties": p})
            }
            Node::Array(items) => json!({"type": ["null", "array"], "items": items.to_json_schema()}),
        }
    }
}

/// The properties of one named schema, by name.
pub type Properties = BTreeMap<String, Node>;

/// Every schema of the table by name (`ads`, `ads_insights`, `ads_insights_breakdowns`, ...).
pub fn all() -> &'static BTreeMap<String, Properties> {
    static SCHEMAS: OnceLock<BTreeMap<String, Properties>> = OnceLock::new();
    SCHEMAS.get_or_init(|| parse_table(FIELD_TABLE))
}

/// The properties of schema `name`; empty if there is none (a defect caught by tests).
pub fn properties(name: &str) -> &'static Properties {
    static EMPTY: OnceLock<Properties> = OnceLock::new();
    all().get(name).unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
}

fn leaf(ty: &str, format: &str) -> Node {
    match ty {
        "string" => Node::String { format: (!format.is_empty()).then(|| format.to_string()) },
        "number" => Node::Number,
        "integer" => Node::Integer,
        "boolean" => Node::Boolean,
        "object" => Node::Object(BTreeMap::new()),
        "array" => Node::Array(Box::new(Node::Any)),
        _ => Node::Any,
    }
}

fn parse_table(table: &str) -> BTreeMap<String, Properties> {
    let mut out: BTreeMap<String, Properties> = BTreeMap::new();
    for line in table.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(stream), Some(path), Some(ty)) = (cols.next(), cols.next(), cols.next()) else {
            continue;
        };
        let format = cols.next().unwrap_or("");
        let props = out.entry(stream.to_string()).or_default();
        insert_path(props, path, leaf(ty, format));
    }
    out
}

/// Inserts `node` at a dotted path where `name[]` steps into an array's items.
fn insert_path(props: &mut Properties, path: &str, node: Node) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (name, into_items) = match head.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (head, false),
    };
    let Some(rest) = rest else {
        if into_items {
            // `a[]` alone describes the items of `a`.
            if let Some(Node::Array(items)) = props.get_mut(name) {
                **items = node;
            }
        } else {
            props.insert(name.to_string(), node);
        }
        return;
    };
    let slot = props.entry(name.to_string()).or_insert_with(|| {
        if into_items { Node::Array(Box::new(Node::Object(BTreeMap::new()))) } else { Node::Object(BTreeMap::new()) }
    });
    let target = match slot {
        Node::Array(items) => {
            if !matches!(**items, Node::Object(_)) {
                **items = Node::Object(BTreeMap::new());
            }
            &mut **items
        }
        other => other,
    };
    if let Node::Object(children) = target {
        insert_path(children, rest, node);
    }
}

/// A JSON Schema document for a stream with these properties.
pub fn document(props: &Properties) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert(k.clone(), v.to_json_schema());
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": ["null", "object"],
        "additionalProperties": true,
        "properties": p,
    })
}

/// Coerces values to the types `props` declares, as Airbyte's CDK does: Graph sends most
/// numbers as strings (`"impressions":"185"`). Values that do not parse are left as they are.
pub fn normalise(record: &mut Map<String, Value>, props: &Properties) {
    for (key, value) in record.iter_mut() {
        if let Some(node) = props.get(key) {
            normalise_value(value, node);
        }
    }
}

fn normalise_value(value: &mut Value, node: &Node) {
    match (node, &mut *value) {
        (Node::Number, Value::String(s)) => {
            if let Some(n) = parse_number(s) {
                *value = Value::Number(n);
            }
        }
        (Node::Integer, Value::String(s)) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                *value = Value::from(i);
            }
        }
        (Node::Boolean, Value::String(s)) => match s.as_str() {
            "true" => *value = Value::Bool(true),
            "false" => *value = Value::Bool(false),
            _ => {}
        },
        (Node::String { .. }, Value::Number(n)) => *value = Value::String(n.to_string()),
        (Node::Object(children), Value::Object(map)) => {
            for (k, v) in map.iter_mut() {
                if let Some(child) = children.get(k) {
                    normalise_value(v, child);
                }
            }
        }
        (Node::Array(items), Value::Array(list)) => {
            for v in list.iter_mut() {
                normalise_value(v, items);
            }
        }
        _ => {}
    }
}

/// A number from Graph's string form: `"185"` stays an integer (`185`, not `185.0`), `"14.35"`
/// becomes a float; anything else (or a non-finite value) is not a number.
pub fn parse_number(s: &str) -> Option<serde_json::Number> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(serde_json::Number::from(i));
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(serde_json::Number::from_f64)
}

/// Keys whose date-times Graph sometimes sends as `2023-01-19t20:38:59 0000`.
const DATE_TIME_KEYS: &[&str] = &[
    "created_time",
    "creation_time",
    "updated_time",
    "event_time",
    "start_time",
    "first_fired_time",
    "last_fired_time",
];

/// Repairs Graph's malformed date-times at any depth: a lowercase `t` becomes `T` and a
/// `" 0000"` offset becomes `"+0000"`.
pub fn fix_date_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if let Value::String(s) = v {
                    if DATE_TIME_KEYS.contains(&k.as_str())
                        && let Some(fixed) = repair_date_time(s)
                    {
                        *s = fixed;
                    }
                } else {
                    fix_date_times(v);
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(fix_date_times),
        _ => {}
    }
}

/// Graph's malformed date-time `2023-01-19t20:38:59 0000` as `2023-01-19T20:38:59+0000`; `None`
/// when `s` needs no repair. The one place that repairs date-times (records and cursors).
pub fn repair_date_time(s: &str) -> Option<String> {
    if s.len() < 11 || !s.is_char_boundary(10) {
        return None;
    }
    let needs_t = s.as_bytes().get(10) == Some(&b't');
    let needs_plus = s.contains(" 0000");
    if !needs_t && !needs_plus {
        return None;
    }
    let mut out = s.to_string();
    if needs_t {
        out.replace_range(10..11, "T");
    }
    Some(out.replace(" 0000", "+0000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_of_the_table_is_parsed() {
        for name in [
            "activities",
            "ad_account",
            "ad_creatives",
            "ad_creatives_from_ads",
            "ad_sets",
            "ads",
            "ads_insights",
            "ads_insights_action_breakdowns",
            "ads_insights_breakdowns",
            "ads_insights_custom_fields",
            "campaigns",
            "custom_audiences",
            "custom_conversions",
            "images",
            "videos",
        ] {
            assert!(!properties(name).is_empty(), "{name}");
        }
        assert_eq!(properties("ads_insights").len(), 101);
        assert_eq!(properties("activities").len(), 13);
        let mut from_ads = properties("ad_creatives_from_ads").clone();
        assert_eq!(from_ads.remove("updated_time"), Some(Node::String { format: Some("date-time".into()) }));
        assert_eq!(&from_ads, properties("ad_creatives"), "ad_creatives' schema plus the ad's updated_time");
    }

    #[test]
    fn array_items_become_objects_with_their_fields() {
        let actions = &properties("ads_insights")["actions"];
        let Node::Array(items) = actions else { panic!("actions is not an array") };
        let Node::Object(fields) = &**items else { panic!("items are not objects") };
        assert_eq!(fields["value"], Node::Number);
        assert_eq!(fields["action_type"], Node::String { format: None });
    }

    #[test]
    fn normalises_string_numbers_per_schema() {
        let mut rec: Map<String, Value> = serde_json::from_str(
            r#"{"impressions":"185","spend":"14.35","ad_id":"238","actions":[{"action_type":"like","value":"10"}],"x":"1"}"#,
        )
        .unwrap();
        normalise(&mut rec, properties("ads_insights"));
        assert_eq!(
            Value::Object(rec.clone()).to_string(),
            r#"{"actions":[{"action_type":"like","value":10}],"ad_id":"238","impressions":185,"spend":14.35,"x":"1"}"#
        );
    }

    #[test]
    fn repairs_lowercase_t_and_space_offsets_at_any_depth() {
        let mut v = json!({"updated_time":"2023-01-19t20:38:59 0000","a":[{"created_time":"2023-01-19t20:38:59 0000"}],"name":"t 0000"});
        fix_date_times(&mut v);
        assert_eq!(v["updated_time"], "2023-01-19T20:38:59+0000");
        assert_eq!(v["a"][0]["created_time"], "2023-01-19T20:38:59+0000");
        assert_eq!(v["name"], "t 0000");
    }
}
