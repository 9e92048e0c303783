//! Reading a JSON config with messages that name the field: the small reader every
//! validation step uses.

use crate::error::ConnectorError;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// A JSON object and the path that led to it, for messages that name the field.
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: String,
}

impl<'a> Obj<'a> {
    pub(super) fn field(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The value at `key`, treating `null` as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<&'a str>, ConnectorError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => {
                Err(ConnectorError::config(format!("{}: expected a string, got {}", self.field(key), kind_of(other))))
            }
        }
    }

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(ConnectorError::config(format!(
                "{}: expected true or false, got {}",
                self.field(key),
                kind_of(other)
            ))),
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn uint(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ConnectorError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let n = v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
        match n {
            Some(n) if n >= u64::from(min) && n <= u64::from(max) => Ok(Some(n as u32)),
            _ => Err(ConnectorError::config(format!(
                "{}: expected a whole number from {min} to {max}, got {v}",
                self.field(key)
            ))),
        }
    }

    pub(super) fn string_list(&self, key: &str) -> Result<Vec<String>, ConnectorError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ConnectorError::config(format!(
                        "{}[{i}]: expected a string, got {}",
                        self.field(key),
                        kind_of(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(ConnectorError::config(format!(
                "{}: expected a list of strings, got {}",
                self.field(key),
                kind_of(other)
            ))),
        }
    }

    /// A list whose every item is one of `allowed`, deduplicated in order.
    pub(super) fn enum_list(
        &self,
        key: &str,
        allowed: &[&str],
        hint: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut out: Vec<String> = Vec::new();
        for (i, item) in self.string_list(key)?.into_iter().enumerate() {
            if !allowed.contains(&item.as_str()) {
                let extra = hint(&item).unwrap_or_else(|| format!("valid values are: {}", preview(allowed)));
                return Err(ConnectorError::config(format!(
                    "{}[{i}]: '{item}' is not supported; {extra}",
                    self.field(key)
                )));
            }
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    pub(super) fn date_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ConnectorError> {
        match self.string(key)? {
            None | Some("") => Ok(None),
            Some(s) => parse_date_time(s).map(Some).ok_or_else(|| {
                ConnectorError::config(format!(
                    "{}: '{s}' is not a date-time; write it as YYYY-MM-DDTHH:MM:SSZ, e.g. 2024-01-31T00:00:00Z",
                    self.field(key)
                ))
            }),
        }
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn preview(allowed: &[&str]) -> String {
    if allowed.len() <= 16 {
        allowed.join(", ")
    } else {
        format!("{}, ... ({} in all; see the spec)", allowed[..8].join(", "), allowed.len())
    }
}

/// Accepts `2024-01-31T00:00:00Z`, any RFC 3339 date-time, and a bare `2024-01-31`.
pub fn parse_date_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(dt.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}
