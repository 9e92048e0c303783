//! Airbyte protocol JSON lines from the guest's messages, with the access token redacted.

use crate::runtime::{LogLevel, Message, Status};
use serde_json::{Value, json};

/// Removes every occurrence of the secrets from printed text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Redactor { secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect() }
    }

    pub fn redact(&self, text: String) -> String {
        let mut text = text;
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), "**********");
            }
        }
        text
    }
}

/// The access token of a config document, wherever Airbyte's forms put it.
pub fn config_secrets(config: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(config) else { return Vec::new() };
    let mut out = Vec::new();
    for path in
        [&["credentials", "access_token"][..], &["access_token"], &["credentials", "client_secret"], &["client_secret"]]
    {
        let mut cur = &v;
        for key in path {
            cur = cur.get(*key).unwrap_or(&Value::Null);
        }
        if let Some(s) = cur.as_str() {
            out.push(s.to_string());
        }
    }
    out
}

fn level(l: LogLevel) -> &'static str {
    match l {
        LogLevel::Fatal => "FATAL",
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
        LogLevel::Trace => "TRACE",
    }
}

/// One message as a protocol line (no newline).
pub fn to_line(m: &Message) -> String {
    match m {
        Message::Record(r) => {
            let mut s = String::with_capacity(r.data.len() + r.stream.len() + 64);
            s.push_str("{\"type\":\"RECORD\",\"record\":{\"stream\":");
            s.push_str(&Value::String(r.stream.clone()).to_string());
            if let Some(ns) = &r.namespace {
                s.push_str(",\"namespace\":");
                s.push_str(&Value::String(ns.clone()).to_string());
            }
            s.push_str(",\"data\":");
            s.push_str(&r.data);
            s.push_str(",\"emitted_at\":");
            s.push_str(&r.emitted_at.to_string());
            s.push_str("}}");
            s
        }
        Message::State(s) => format!("{{\"type\":\"STATE\",\"state\":{s}}}"),
        Message::Log(l) => json!({"type": "LOG", "log": {"level": level(l.level), "message": l.message}}).to_string(),
        Message::Trace(t) => format!("{{\"type\":\"TRACE\",\"trace\":{t}}}"),
        Message::ConnectionStatus(c) => {
            let mut status = serde_json::Map::new();
            status.insert(
                "status".into(),
                Value::from(if c.status == Status::Succeeded { "SUCCEEDED" } else { "FAILED" }),
            );
            if let Some(m) = &c.message {
                status.insert("message".into(), Value::from(m.as_str()));
            }
            json!({"type": "CONNECTION_STATUS", "connectionStatus": status}).to_string()
        }
        Message::Catalog(c) => format!("{{\"type\":\"CATALOG\",\"catalog\":{c}}}"),
        Message::Spec(s) => format!("{{\"type\":\"SPEC\",\"spec\":{s}}}"),
    }
}

/// Whether the message is an error TRACE.
pub fn is_error_trace(m: &Message) -> bool {
    matches!(m, Message::Trace(t) if t.contains("\"type\":\"ERROR\""))
}

/// An error TRACE line written by the host itself (the guest trapped or could not start).
pub fn host_error_line(failure_type: &str, message: &str, internal: &str) -> String {
    json!({
        "type": "TRACE",
        "trace": {
            "type": "ERROR",
            "emitted_at": chrono::Utc::now().timestamp_millis() as f64,
            "error": {"message": message, "internal_message": internal, "failure_type": failure_type}
        }
    })
    .to_string()
}
