//! Errors as data, typed by who is at fault; Airbyte's failure type follows from the blame.

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

/// A failure, by who is at fault, with a message a user can act on (lowercase, specific, and
/// saying what to do) and, where there is one, the detail underneath (an API error, a parser
/// message; never a secret).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The user's config, catalog or state is malformed, contradictory or asks for what Meta
    /// does not serve.
    Config { message: String },
    /// Meta refused the request for a reason the user controls: the token, a permission, the
    /// account, the API version.
    Rejected { message: String, detail: String },
    /// Meta answered with something the connector cannot use.
    Misbehaving { message: String, detail: String },
    /// A failure that may pass kept happening until the retry budget ran out.
    Exhausted { message: String, detail: String },
    /// Code broke a contract: an unknown request id, a machine with nothing to do, a request
    /// Meta could not parse.
    Contract { message: String, detail: String },
}

impl ConnectorError {
    pub fn config(message: impl Into<String>) -> Self {
        ConnectorError::Config { message: message.into() }
    }

    pub fn rejected(message: impl Into<String>, detail: impl Into<String>) -> Self {
        ConnectorError::Rejected { message: message.into(), detail: detail.into() }
    }

    pub fn misbehaving(message: impl Into<String>, detail: impl Into<String>) -> Self {
        ConnectorError::Misbehaving { message: message.into(), detail: detail.into() }
    }

    pub fn exhausted(message: impl Into<String>, detail: impl Into<String>) -> Self {
        ConnectorError::Exhausted { message: message.into(), detail: detail.into() }
    }

    pub fn contract(message: impl Into<String>, detail: impl Into<String>) -> Self {
        ConnectorError::Contract { message: message.into(), detail: detail.into() }
    }

    /// Airbyte's failure type for this blame.
    pub fn failure_type(&self) -> FailureType {
        match self {
            ConnectorError::Config { .. } | ConnectorError::Rejected { .. } => FailureType::Config,
            ConnectorError::Exhausted { .. } => FailureType::Transient,
            ConnectorError::Misbehaving { .. } | ConnectorError::Contract { .. } => FailureType::System,
        }
    }

    /// What the user reads.
    pub fn message(&self) -> &str {
        match self {
            ConnectorError::Config { message }
            | ConnectorError::Rejected { message, .. }
            | ConnectorError::Misbehaving { message, .. }
            | ConnectorError::Exhausted { message, .. }
            | ConnectorError::Contract { message, .. } => message,
        }
    }

    /// The detail underneath (Airbyte's `internal_message`); empty when there is none.
    pub fn detail(&self) -> &str {
        match self {
            ConnectorError::Config { .. } => "",
            ConnectorError::Rejected { detail, .. }
            | ConnectorError::Misbehaving { detail, .. }
            | ConnectorError::Exhausted { detail, .. }
            | ConnectorError::Contract { detail, .. } => detail,
        }
    }

    fn message_mut(&mut self) -> &mut String {
        match self {
            ConnectorError::Config { message }
            | ConnectorError::Rejected { message, .. }
            | ConnectorError::Misbehaving { message, .. }
            | ConnectorError::Exhausted { message, .. }
            | ConnectorError::Contract { message, .. } => message,
        }
    }

    /// Prefixes the message with where it happened, e.g. the stream and account.
    pub fn context(mut self, ctx: &str) -> Self {
        let m = self.message_mut();
        *m = format!("{ctx}: {m}");
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ConnectorError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_type_follows_from_the_blame() {
        assert_eq!(ConnectorError::config("x").failure_type(), FailureType::Config);
        assert_eq!(ConnectorError::rejected("x", "d").failure_type(), FailureType::Config);
        assert_eq!(ConnectorError::exhausted("x", "d").failure_type(), FailureType::Transient);
        assert_eq!(ConnectorError::misbehaving("x", "d").failure_type(), FailureType::System);
        assert_eq!(ConnectorError::contract("x", "d").failure_type(), FailureType::System);
    }

    #[test]
    fn context_prefixes_the_message_and_keeps_the_detail() {
        let e = ConnectorError::rejected("no access", "graph error 10").context("ads of ad account 1");
        assert_eq!(e.message(), "ads of ad account 1: no access");
        assert_eq!(e.detail(), "graph error 10");
    }
}
