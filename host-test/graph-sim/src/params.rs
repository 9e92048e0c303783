//! Request parsing: URL splitting, query/form parameters, list and JSON parameter encodings.
//!
//! Graph clients send list parameters either as JSON arrays (`["a","b"]`, the SDK's habit on
//! insights) or comma lists (`a,b`, the habit on object reads); both are accepted everywhere.
//! `fields` may carry nested expansions (`creative{id,name}`), so it is split at top-level
//! commas only.

use serde_json::Value;

use crate::errors::ApiError;

/// Ordered request parameters (query first, then form body). Lookups take the last occurrence,
/// so a form field overrides the same name in the query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// Decoded `(name, value)` pairs in arrival order.
    pub pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` string.
    pub fn parse(s: &str) -> Params {
        let pairs = form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Params { pairs }
    }

    /// Appends all pairs of `other`.
    pub fn extend(&mut self, other: Params) {
        self.pairs.extend(other.pairs);
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A copy without `name`.
    pub fn without(&self, name: &str) -> Params {
        Params { pairs: self.pairs.iter().filter(|(k, _)| k != name).cloned().collect() }
    }

    /// Sets `name` (replacing earlier values) at the end.
    pub fn set(&mut self, name: &str, value: &str) {
        self.pairs.retain(|(k, _)| k != name);
        self.pairs.push((name.to_string(), value.to_string()));
    }

    /// Re-encodes as a query string.
    pub fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// A boolean parameter (`true`/`1`); absent is `false`.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "total_count"))
    }

    /// A list parameter in either encoding; `None` when absent.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_list(name, v).map(Some),
        }
    }
}

/// Parses a JSON-array or comma-separated list. Empty items are dropped.
pub fn parse_list(name: &str, raw: &str) -> Result<Vec<String>, ApiError> {
    let t = raw.trim();
    if t.starts_with('[') {
        let v: Value =
            serde_json::from_str(t).map_err(|_| ApiError::invalid_param(format!("Param {name} must be an array.")))?;
        let arr = v.as_array().ok_or_else(|| ApiError::invalid_param(format!("Param {name} must be an array.")))?;
        let mut out = Vec::with_capacity(arr.len());
        for item in arr {
            match item {
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                _ => return Err(ApiError::invalid_param(format!("Param {name} must be an array of strings."))),
            }
        }
        Ok(out.into_iter().filter(|s| !s.is_empty()).collect())
    } else {
        Ok(split_top_level(t))
    }
}

/// Splits at commas outside braces, trimming items and dropping empty ones.
pub fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => {
                let item = cur.trim().to_string();
                if !item.is_empty() {
                    out.push(item);
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    let item = cur.trim().to_string();
    if !item.is_empty() {
        out.push(item);
    }
    out
}

/// One requested field, possibly with a nested selection (`creative{id,name}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// The top-level name.
    pub name: String,
    /// The nested selection, if braces were given.
    pub sub: Option<Vec<FieldSpec>>,
}

/// Parses a `fields` value (either encoding) into field specs.
pub fn parse_fields(raw: &str) -> Result<Vec<FieldSpec>, ApiError> {
    let items = parse_list("fields", raw)?;
    Ok(items.iter().flat_map(|i| split_top_level(i)).map(|i| field_spec(&i)).collect())
}

fn field_spec(item: &str) -> FieldSpec {
    match item.find('{') {
        Some(p) => {
            let name = item[..p].trim().to_string();
            let inner = item[p + 1..].trim_end().trim_end_matches('}');
            let sub = split_top_level(inner).iter().map(|s| field_spec(s)).collect();
            FieldSpec { name, sub: Some(sub) }
        }
        None => FieldSpec { name: item.trim().to_string(), sub: None },
    }
}

/// One `filtering` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The field as sent, e.g. `ad.updated_time`.
    pub field: String,
    /// Upper-cased operator.
    pub op: String,
    /// The value as sent.
    pub value: Value,
}

impl Filter {
    /// The field without its entity prefix, and the prefix (if any).
    pub fn split(&self) -> (Option<&str>, &str) {
        match self.field.rsplit_once('.') {
            Some((p, f)) => (Some(p), f),
            None => (None, self.field.as_str()),
        }
    }

    /// The value as a list of strings (for IN / NOT_IN).
    pub fn strings(&self) -> Vec<String> {
        match &self.value {
            Value::Array(a) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Value::String(s) => parse_list("value", s).unwrap_or_default(),
            other => vec![other.to_string()],
        }
    }

    /// The value as an integer (epoch seconds or a count).
    pub fn int(&self) -> Option<i64> {
        match &self.value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Parses the `filtering` JSON array.
pub fn parse_filtering(raw: &str) -> Result<Vec<Filter>, ApiError> {
    let bad = || ApiError::invalid_param("param filtering must be an array of filter objects");
    let v: Value = serde_json::from_str(raw.trim()).map_err(|_| bad())?;
    let arr = v.as_array().ok_or_else(bad)?;
    let mut out = Vec::new();
    for item in arr {
        let field = item.get("field").and_then(Value::as_str).ok_or_else(bad)?;
        let op = item.get("operator").and_then(Value::as_str).ok_or_else(bad)?;
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        out.push(Filter { field: field.to_string(), op: op.to_ascii_uppercase(), value });
    }
    Ok(out)
}

/// A request target split into version, path segments and query.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The `vNN.N` prefix, when present.
    pub version: Option<String>,
    /// Non-empty path segments after the version.
    pub segments: Vec<String>,
    /// The raw query string (without `?`).
    pub query: String,
}

/// Splits an absolute or relative URL; the host is ignored.
pub fn split_url(url: &str) -> Target {
    let rest = match url.find("://") {
        Some(p) => {
            let after = &url[p + 3..];
            match after.find('/') {
                Some(q) => &after[q..],
                None => match after.find('?') {
                    Some(q) => &after[q..],
                    None => "",
                },
            }
        }
        None => url,
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q.to_string()),
        None => (rest, String::new()),
    };
    let mut segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let mut version = None;
    if let Some(first) = segments.first()
        && is_version(first)
    {
        version = Some(first.clone());
        segments.remove(0);
    }
    Target { version, segments, query }
}

/// Whether a segment looks like `v25.0`.
pub fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else { return false };
    match rest.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_params_accept_json_and_comma_forms() {
        assert_eq!(parse_list("f", "[\"a\",\"b\"]").unwrap_or_default(), vec!["a", "b"]);
        assert_eq!(parse_list("f", "a, b,,c").unwrap_or_default(), vec!["a", "b", "c"]);
    }

    #[test]
    fn fields_keep_nested_selections_together() {
        let f = parse_fields("id,creative{id,name},name").unwrap_or_default();
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].name, "creative");
        assert_eq!(f[1].sub.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn urls_split_into_version_segments_and_query() {
        let t = split_url("https://graph.facebook.com/v25.0/act_1/campaigns?limit=5");
        assert_eq!(t.version.as_deref(), Some("v25.0"));
        assert_eq!(t.segments, vec!["act_1", "campaigns"]);
        assert_eq!(t.query, "limit=5");
        let t = split_url("123/?fields=id");
        assert_eq!(t.version, None);
        assert_eq!(t.segments, vec!["123"]);
    }
}
