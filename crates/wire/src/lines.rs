//! Airbyte protocol lines, one JSON object each (no newline).
//!
//! The payloads the connector hands over as JSON text (a record's data, a state, a trace, a
//! catalog, a spec) are written as they are, without re-encoding.

use serde_json::{Value, json};

/// One RECORD line (no newline).
pub fn record(stream: &str, namespace: Option<&str>, data: &str, emitted_at: i64) -> String {
    let (head, tail) = record_around(stream, namespace, emitted_at);
    let mut s = String::with_capacity(head.len() + data.len() + tail.len());
    s.push_str(&head);
    s.push_str(data);
    s.push_str(&tail);
    s
}

/// What a RECORD line holds before its data and after it, so that a host can write a large
/// record's data where it lies instead of building the line around it.
pub fn record_around(stream: &str, namespace: Option<&str>, emitted_at: i64) -> (String, String) {
    let mut head = String::with_capacity(stream.len() + 48);
    head.push_str("{\"type\":\"RECORD\",\"record\":{\"stream\":");
    head.push_str(&Value::from(stream).to_string());
    if let Some(ns) = namespace {
        head.push_str(",\"namespace\":");
        head.push_str(&Value::from(ns).to_string());
    }
    head.push_str(",\"data\":");
    (head, format!(",\"emitted_at\":{emitted_at}}}}}"))
}

pub fn state(state: &str) -> String {
    format!("{{\"type\":\"STATE\",\"state\":{state}}}")
}

/// One LOG line; `level` is Airbyte's (`INFO`, `WARN`, ...).
pub fn log(level: &str, message: &str) -> String {
    json!({"type": "LOG", "log": {"level": level, "message": message}}).to_string()
}

pub fn trace(trace: &str) -> String {
    format!("{{\"type\":\"TRACE\",\"trace\":{trace}}}")
}

pub fn connection_status(succeeded: bool, message: Option<&str>) -> String {
    let mut status = serde_json::Map::new();
    status.insert("status".into(), Value::from(if succeeded { "SUCCEEDED" } else { "FAILED" }));
    if let Some(m) = message {
        status.insert("message".into(), Value::from(m));
    }
    json!({"type": "CONNECTION_STATUS", "connectionStatus": status}).to_string()
}

pub fn catalog(catalog: &str) -> String {
    format!("{{\"type\":\"CATALOG\",\"catalog\":{catalog}}}")
}

pub fn spec(spec: &str) -> String {
    format!("{{\"type\":\"SPEC\",\"spec\":{spec}}}")
}

/// Whether a trace payload is an error TRACE (rather than an estimate or a stream status).
pub fn is_error_trace(trace: &str) -> bool {
    trace.contains("\"type\":\"ERROR\"")
}

/// An error TRACE payload (what goes under `trace`).
pub fn error_trace_payload(failure_type: &str, message: &str, internal: &str, emitted_at_ms: i64) -> String {
    json!({
        "type": "ERROR",
        "emitted_at": emitted_at_ms as f64,
        "error": {"message": message, "internal_message": internal, "failure_type": failure_type}
    })
    .to_string()
}

/// An error TRACE line (a host's own failure: a file it could not read, a guest that trapped).
pub fn error_trace(failure_type: &str, message: &str, internal: &str, emitted_at_ms: i64) -> String {
    trace(&error_trace_payload(failure_type, message, internal, emitted_at_ms))
}

/// Defines `level` (a log level's Airbyte name) and `line` (a `source` message as one protocol
/// line, no newline) for the bindings of the `source` interface in scope at the call site: every
/// host and adapter has its own generated `Message`, `LogLevel` and `Status` types (wit-bindgen
/// in a guest, wasmtime's bindgen in a host) and writes them through this one mapping.
///
/// ```ignore
/// use bindings::source::{LogLevel, Message, Status};
/// sfm_wire::message_lines!();
/// ```
#[macro_export]
macro_rules! message_lines {
    () => {
        /// Airbyte's name of a log level.
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

        /// The message as one protocol line (no newline).
        fn line(m: &Message) -> String {
            match m {
                Message::Record(r) => $crate::lines::record(&r.stream, r.namespace.as_deref(), &r.data, r.emitted_at),
                Message::State(s) => $crate::lines::state(s),
                Message::Log(l) => $crate::lines::log(level(l.level), &l.message),
                Message::Trace(t) => $crate::lines::trace(t),
                Message::ConnectionStatus(c) => {
                    $crate::lines::connection_status(matches!(c.status, Status::Succeeded), c.message.as_deref())
                }
                Message::Catalog(c) => $crate::lines::catalog(c),
                Message::Spec(s) => $crate::lines::spec(s),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_payloads_verbatim_inside_their_envelopes() {
        assert_eq!(
            record("ads", None, r#"{"id":"1"}"#, 1700000000000),
            r#"{"type":"RECORD","record":{"stream":"ads","data":{"id":"1"},"emitted_at":1700000000000}}"#
        );
        assert_eq!(
            record("a\"b", Some("ns"), "{}", 1),
            r#"{"type":"RECORD","record":{"stream":"a\"b","namespace":"ns","data":{},"emitted_at":1}}"#
        );
        assert_eq!(state(r#"{"type":"STREAM"}"#), r#"{"type":"STATE","state":{"type":"STREAM"}}"#);
        assert_eq!(trace(r#"{"type":"ERROR"}"#), r#"{"type":"TRACE","trace":{"type":"ERROR"}}"#);
        assert_eq!(catalog(r#"{"streams":[]}"#), r#"{"type":"CATALOG","catalog":{"streams":[]}}"#);
        assert_eq!(spec("{}"), r#"{"type":"SPEC","spec":{}}"#);
    }

    #[test]
    fn escapes_log_and_status_text() {
        let line: Value = serde_json::from_str(&log("WARN", "say \"hi\"\n")).unwrap();
        assert_eq!(line, json!({"type": "LOG", "log": {"level": "WARN", "message": "say \"hi\"\n"}}));
        let line: Value = serde_json::from_str(&connection_status(false, Some("bad token"))).unwrap();
        assert_eq!(
            line,
            json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": "bad token"}})
        );
        let line: Value = serde_json::from_str(&connection_status(true, None)).unwrap();
        assert_eq!(line, json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}}));
    }

    #[test]
    fn tells_error_traces_from_other_traces() {
        assert!(is_error_trace(r#"{"type":"ERROR","error":{}}"#));
        assert!(!is_error_trace(r#"{"type":"STREAM_STATUS"}"#));
        let line: Value = serde_json::from_str(&error_trace("config_error", "cannot read c.json", "", 5)).unwrap();
        assert_eq!(line["trace"]["error"]["failure_type"], "config_error");
        assert_eq!(line["trace"]["emitted_at"], 5.0);
    }
}
