//! Airbyte protocol lines from the guest's messages, as every host of the connector writes them
//! ([`sfm_wire::lines`]), with the access token redacted ([`sfm_wire::redact`]).

use crate::runtime::{LogLevel, Message, Status};
use sfm_wire::lines;
pub use sfm_wire::redact::{Redactor, config_secrets};

sfm_wire::message_lines!();

/// One message as a protocol line (no newline).
pub fn to_line(m: &Message) -> String {
    line(m)
}

/// Writes one message as a protocol line and its newline, redacted. A record's data (most of a
/// sync's bytes) goes out where it lies, with no line built around it and no copy made when it
/// holds no secret.
pub fn write_line(m: &Message, redactor: &Redactor, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if let Message::Record(r) = m {
        let (head, tail) = lines::record_around(&r.stream, r.namespace.as_deref(), r.emitted_at);
        if ![&head, &r.data, &tail].iter().any(|t| redactor.finds_in(t)) {
            out.write_all(head.as_bytes())?;
            out.write_all(r.data.as_bytes())?;
            out.write_all(tail.as_bytes())?;
            return out.write_all(b"\n");
        }
    }
    out.write_all(redactor.redact(line(m)).as_bytes())?;
    out.write_all(b"\n")
}

/// Whether the message is an error TRACE.
pub fn is_error_trace(m: &Message) -> bool {
    matches!(m, Message::Trace(t) if lines::is_error_trace(t))
}

/// An error TRACE line written by the host itself (the guest trapped or could not start).
pub fn host_error_line(failure_type: &str, message: &str, internal: &str) -> String {
    lines::error_trace(failure_type, message, internal, chrono::Utc::now().timestamp_millis())
}
