//! Errors as data, typed by who is at fault, and how each maps onto Airbyte's failure types.

use std::fmt;

/// Airbyte's `failure_type` of an error trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureType {
    /// The user must change the config or the account's permissions.
    Config,
    /// Trying again later may succeed.
    Transient,
    /// A defect: ours or the API's.
    System,
}

impl FailureType {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::Config => "config_error",
            FailureType::Transient => "transient_error",
            FailureType::System => "system_error",
        }
    }
}

/// Who is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The user's config (malformed, contradictory or unknown values).
    UserConfig,
    /// The API refused us for a reason the user controls (token, permission, account).
    ApiRejected,
    /// The API answered with something we cannot use (malformed bodies, impossible data).
    ApiMisbehaving,
    /// A transient failure that kept happening until the retry budget ran out.
    RetriesExhausted,
    /// Code broke a contract (an unknown request id, a machine with nothing to do).
    Contract,
}

/// A failure with a message a user can act on and the internal detail behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorError {
    pub fault: Fault,
    pub failure: FailureType,
    /// Lowercase, specific, and says what to do.
    pub message: String,
    /// What happened underneath (an API error body, a parser message). Never holds secrets.
    pub internal: String,
}

impl ConnectorError {
    pub fn config(message: impl Into<String>) -> Self {
        ConnectorError {
            fault: Fault::UserConfig,
            failure: FailureType::Config,
            message: message.into(),
            internal: String::new(),
        }
    }

    pub fn rejected(message: impl Into<String>, internal: impl Into<String>) -> Self {
        ConnectorError {
            fault: Fault::ApiRejected,
            failure: FailureType::Config,
            message: message.into(),
            internal: internal.into(),
        }
    }

    pub fn misbehaving(message: impl Into<String>, internal: impl Into<String>) -> Self {
        ConnectorError {
            fault: Fault::ApiMisbehaving,
            failure: FailureType::System,
            message: message.into(),
            internal: internal.into(),
        }
    }

    pub fn exhausted(message: impl Into<String>, internal: impl Into<String>) -> Self {
        ConnectorError {
            fault: Fault::RetriesExhausted,
            failure: FailureType::Transient,
            message: message.into(),
            internal: internal.into(),
        }
    }

    pub fn contract(message: impl Into<String>) -> Self {
        ConnectorError {
            fault: Fault::Contract,
            failure: FailureType::System,
            message: message.into(),
            internal: String::new(),
        }
    }

    /// The same error with a different failure type (the API's own errors pick theirs).
    pub fn with_failure(mut self, failure: FailureType) -> Self {
        self.failure = failure;
        self
    }

    /// Prefixes the message with where it happened, e.g. the stream and account.
    pub fn context(mut self, ctx: &str) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectorError {}
