//! The Airbyte protocol line of each `source` message, shared by the adapters that write them
//! (the `wasi:cli` command and the `wasi:http` function), so that both write the same bytes as
//! `host-test`. Included as a child of the module that generates the `source` bindings.

use super::airbyte::source_facebook_marketing::source::{LogLevel, Message, Status};
use sfm_wire::lines;

/// Airbyte's name of a log level.
pub fn level(l: LogLevel) -> &'static str {
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
pub fn line(m: &Message) -> String {
    match m {
        Message::Record(r) => lines::record(&r.stream, r.namespace.as_deref(), &r.data, r.emitted_at),
        Message::State(s) => lines::state(s),
        Message::Log(l) => lines::log(level(l.level), &l.message),
        Message::Trace(t) => lines::trace(t),
        Message::ConnectionStatus(c) => {
            lines::connection_status(matches!(c.status, Status::Succeeded), c.message.as_deref())
        }
        Message::Catalog(c) => lines::catalog(c),
        Message::Spec(s) => lines::spec(s),
    }
}
