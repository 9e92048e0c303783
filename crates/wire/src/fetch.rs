//! Why a request produced no response at all: the WIT `fetch-error`, as the component reads it
//! and every host reports it, and as recordings name it.

use std::fmt;

/// A transport failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    Timeout,
    ConnectionRefused,
    ConnectionReset,
    Dns(String),
    Tls(String),
    /// The host's sandbox refused the request (a host not on its allowlist).
    DeniedByHost(String),
    Other(String),
    /// The body passed the request's `max_response_bytes` (the cap): the host stopped reading.
    TooLarge(u64),
}

impl FetchError {
    /// Whether trying again may help. A host's sandbox refusal never changes.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, FetchError::DeniedByHost(_))
    }

    /// Its kind as recordings name it, and its detail (the cap of `TooLarge`).
    pub fn kind_and_detail(&self) -> (&'static str, String) {
        match self {
            FetchError::Timeout => ("timeout", String::new()),
            FetchError::ConnectionRefused => ("connection_refused", String::new()),
            FetchError::ConnectionReset => ("connection_reset", String::new()),
            FetchError::Dns(s) => ("dns", s.clone()),
            FetchError::Tls(s) => ("tls", s.clone()),
            FetchError::DeniedByHost(s) => ("denied", s.clone()),
            FetchError::Other(s) => ("other", s.clone()),
            FetchError::TooLarge(n) => ("too_large", n.to_string()),
        }
    }

    /// The error [`FetchError::kind_and_detail`] names; `None` for a kind it does not know or a
    /// `too_large` whose detail is not a size.
    pub fn from_kind(kind: &str, detail: String) -> Option<FetchError> {
        Some(match kind {
            "timeout" => FetchError::Timeout,
            "connection_refused" => FetchError::ConnectionRefused,
            "connection_reset" => FetchError::ConnectionReset,
            "dns" => FetchError::Dns(detail),
            "tls" => FetchError::Tls(detail),
            "denied" => FetchError::DeniedByHost(detail),
            "other" => FetchError::Other(detail),
            "too_large" => FetchError::TooLarge(detail.parse().ok()?),
            _ => return None,
        })
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Timeout => write!(f, "the request timed out"),
            FetchError::ConnectionRefused => write!(f, "the connection was refused"),
            FetchError::ConnectionReset => write!(f, "the connection was reset"),
            FetchError::Dns(s) => write!(f, "the host name did not resolve ({s})"),
            FetchError::Tls(s) => write!(f, "the TLS handshake failed ({s})"),
            FetchError::DeniedByHost(s) => write!(f, "the host's sandbox refused the request ({s})"),
            FetchError::Other(s) => write!(f, "the transport failed ({s})"),
            FetchError::TooLarge(cap) => {
                write!(f, "the answer was larger than {} MiB, and the host stopped reading it", cap >> 20)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_itself_and_an_unknown_one_as_none() {
        let all = [
            FetchError::Timeout,
            FetchError::ConnectionRefused,
            FetchError::ConnectionReset,
            FetchError::Dns("d".into()),
            FetchError::Tls("t".into()),
            FetchError::DeniedByHost("x".into()),
            FetchError::Other("o".into()),
            FetchError::TooLarge(42),
        ];
        for e in all {
            let (kind, detail) = e.kind_and_detail();
            assert_eq!(FetchError::from_kind(kind, detail), Some(e));
        }
        assert_eq!(FetchError::from_kind("teleported", String::new()), None);
        assert_eq!(FetchError::from_kind("too_large", "lots".into()), None);
    }
}
