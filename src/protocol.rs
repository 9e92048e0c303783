//! Airbyte protocol messages as plain data, and their JSON form.
//!
//! Machines emit [`Message`]s; the wasm glue converts them to WIT types and native tests render
//! them with [`Message::to_json_line`], which is also the format `host-test` prints.

use crate::error::{ConnectorError, FailureType};
use crate::time::Timestamp;
use serde_json::{Map, Value, json};
use sfm_wire::lines;

/// Severity of a LOG message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Fatal => "FATAL",
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
            LogLevel::Trace => "TRACE",
        }
    }
}

/// One Airbyte protocol message. JSON payloads are kept serialised: they are written out as-is.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Record {
        stream: String,
        /// The record, a serialised JSON object.
        data: String,
        emitted_at: Timestamp,
    },
    /// The serialised `AirbyteStateMessage`.
    State(String),
    Log {
        level: LogLevel,
        message: String,
    },
    /// The serialised `AirbyteTraceMessage`.
    Trace(String),
    ConnectionStatus {
        succeeded: bool,
        message: Option<String>,
    },
    /// The serialised `AirbyteCatalog`.
    Catalog(String),
    /// The serialised `ConnectorSpecification`.
    Spec(String),
}

/// Status of one stream in a sync, as Airbyte's stream status trace names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Started => "STARTED",
            StreamStatus::Running => "RUNNING",
            StreamStatus::Complete => "COMPLETE",
            StreamStatus::Incomplete => "INCOMPLETE",
        }
    }
}

impl Message {
    /// The length of the text the message carries (its data, state, log or trace), the bulk of
    /// its size.
    pub fn text_len(&self) -> usize {
        match self {
            Message::Record { data: t, .. }
            | Message::State(t)
            | Message::Log { message: t, .. }
            | Message::Trace(t)
            | Message::Catalog(t)
            | Message::Spec(t) => t.len(),
            Message::ConnectionStatus { message, .. } => message.as_ref().map_or(0, String::len),
        }
    }

    pub fn log(level: LogLevel, message: impl Into<String>) -> Self {
        Message::Log { level, message: message.into() }
    }

    /// An error TRACE: what went wrong in words a user can act on, and the internal detail.
    pub fn error_trace(now: Timestamp, failure: FailureType, message: &str, internal: &str) -> Self {
        Message::Trace(lines::error_trace_payload(failure.as_str(), message, internal, now.as_millis()))
    }

    /// The error TRACE of a connector error: its message, detail and failure type.
    pub fn error(now: Timestamp, e: &ConnectorError) -> Self {
        Message::error_trace(now, e.failure_type(), e.message(), e.detail())
    }

    /// A STREAM_STATUS trace.
    pub fn stream_status(now: Timestamp, stream: &str, status: StreamStatus) -> Self {
        let trace = json!({
            "type": "STREAM_STATUS",
            "emitted_at": now.as_millis() as f64,
            "stream_status": {
                "stream_descriptor": {"name": stream},
                "status": status.as_str(),
            }
        });
        Message::Trace(trace.to_string())
    }

    /// A per-stream ESTIMATE trace with a row count.
    pub fn estimate(now: Timestamp, stream: &str, rows: u64) -> Self {
        let trace = json!({
            "type": "ESTIMATE",
            "emitted_at": now.as_millis() as f64,
            "estimate": {"name": stream, "type": "STREAM", "row_estimate": rows}
        });
        Message::Trace(trace.to_string())
    }

    /// A per-stream STATE message.
    pub fn stream_state(stream: &str, state: &Value) -> Self {
        let msg = json!({
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": stream},
                "stream_state": state,
            }
        });
        Message::State(msg.to_string())
    }

    pub fn record(stream: &str, data: Map<String, Value>, emitted_at: Timestamp) -> Self {
        // `serde_json::to_string` writes straight into a buffer; `Value::to_string` would go
        // through `fmt::Display`, several times slower on large records.
        let mut data = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_string());
        // Records wait in the outbox for the host: no doubling slack with them.
        data.shrink_to_fit();
        Message::Record { stream: stream.to_string(), data, emitted_at }
    }

    /// Whether this is an error TRACE (the sync or command failed).
    pub fn is_error_trace(&self) -> bool {
        matches!(self, Message::Trace(t) if lines::is_error_trace(t))
    }

    /// The message as one line of Airbyte protocol JSON (no trailing newline), as every host
    /// prints it ([`sfm_wire::lines`]).
    pub fn to_json_line(&self) -> String {
        match self {
            Message::Record { stream, data, emitted_at } => lines::record(stream, None, data, emitted_at.as_millis()),
            Message::State(s) => lines::state(s),
            Message::Log { level, message } => lines::log(level.as_str(), message),
            Message::Trace(t) => lines::trace(t),
            Message::ConnectionStatus { succeeded, message } => {
                lines::connection_status(*succeeded, message.as_deref())
            }
            Message::Catalog(c) => lines::catalog(c),
            Message::Spec(s) => lines::spec(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_line_embeds_data_verbatim() {
        let m = Message::Record { stream: "ads".into(), data: "{\"id\":\"1\"}".into(), emitted_at: Timestamp(7) };
        assert_eq!(m.to_json_line(), r#"{"type":"RECORD","record":{"stream":"ads","data":{"id":"1"},"emitted_at":7}}"#);
    }

    #[test]
    fn error_trace_is_recognised_and_carries_failure_type() {
        let m = Message::error_trace(Timestamp(1), FailureType::Config, "bad", "detail");
        assert!(m.is_error_trace());
        let v: Value = serde_json::from_str(&m.to_json_line()).unwrap();
        assert_eq!(v["trace"]["error"]["failure_type"], "config_error");
        assert!(!Message::stream_status(Timestamp(1), "ads", StreamStatus::Complete).is_error_trace());
    }
}
