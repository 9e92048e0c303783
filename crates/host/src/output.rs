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

/// Whether the message is an error TRACE.
pub fn is_error_trace(m: &Message) -> bool {
    matches!(m, Message::Trace(t) if lines::is_error_trace(t))
}

/// An error TRACE line written by the host itself (the guest trapped or could not start).
pub fn host_error_line(failure_type: &str, message: &str, internal: &str) -> String {
    lines::error_trace(failure_type, message, internal, chrono::Utc::now().timestamp_millis())
}
