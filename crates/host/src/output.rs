//! Airbyte protocol lines from the guest's messages, as every host of the connector writes them
//! ([`sfm_wire::lines`]), with the access token redacted ([`sfm_wire::redact`]).

use crate::runtime::{LogLevel, Message, Status};
use sfm_wire::lines;
pub use sfm_wire::redact::{Redactor, config_secrets};

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
        Message::Record(r) => lines::record(&r.stream, r.namespace.as_deref(), &r.data, r.emitted_at),
        Message::State(s) => lines::state(s),
        Message::Log(l) => lines::log(level(l.level), &l.message),
        Message::Trace(t) => lines::trace(t),
        Message::ConnectionStatus(c) => lines::connection_status(c.status == Status::Succeeded, c.message.as_deref()),
        Message::Catalog(c) => lines::catalog(c),
        Message::Spec(s) => lines::spec(s),
    }
}

/// Whether the message is an error TRACE.
pub fn is_error_trace(m: &Message) -> bool {
    matches!(m, Message::Trace(t) if lines::is_error_trace(t))
}

/// An error TRACE line written by the host itself (the guest trapped or could not start).
pub fn host_error_line(failure_type: &str, message: &str, internal: &str) -> String {
    lines::error_trace(failure_type, message, internal, chrono::Utc::now().timestamp_millis())
}
