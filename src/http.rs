//! Owned, plain HTTP data that crosses between the machines and whatever performs the IO.

use std::fmt;

pub use http::Method;

/// Identifies one fetch. The machine mints it; the driver echoes it back with the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "req#{}", self.0)
    }
}

/// One outgoing request. Header names are lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u32,
    /// The most body bytes the host may hand back (see [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: u64,
}

/// 60 s: long enough for a slow insights page, short enough that a dead connection is retried
/// well inside Airbyte's heartbeat window.
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;

/// 64 MiB: far above any real Graph page (a page of 100 wide insights rows is under 1 MiB), and
/// small enough that an absurd answer costs one request, not the sync (config
/// `response_size_limit_mb`).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

impl Request {
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// A POST with an `application/x-www-form-urlencoded` body.
    pub fn post_form(url: impl Into<String>, form: &[(&str, &str)]) -> Self {
        Request {
            method: Method::POST,
            url: url.into(),
            headers: vec![("content-type".to_string(), "application/x-www-form-urlencoded".to_string())],
            body: Some(encode_query(form).into_bytes()),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// A response as received.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The first header called `name` (compared case-insensitively): the one header look-up.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

impl Response {
    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub use sfm_wire::fetch::FetchError;

/// Percent-encodes a query string or form body from `(name, value)` pairs.
pub fn encode_query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(k.as_ref(), &mut out);
        out.push('=');
        percent_encode_into(v.as_ref(), &mut out);
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[(b >> 4) as usize]));
            out.push(char::from(HEX[(b & 0xf) as usize]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `%XX` escapes and `+` (as a space) in a query component; invalid escapes stay as-is.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits a URL into the part before `?` and its decoded query pairs.
pub fn split_query(url: &str) -> (&str, Vec<(String, String)>) {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect();
    (base, pairs)
}

/// Rebuilds `url` with query parameter `name` set to `value` (replacing or appending it).
pub fn with_query_param(url: &str, name: &str, value: &str) -> String {
    let (base, mut pairs) = split_query(url);
    match pairs.iter_mut().find(|(k, _)| k == name) {
        Some(p) => p.1 = value.to_string(),
        None => pairs.push((name.to_string(), value.to_string())),
    }
    format!("{base}?{}", encode_query(&pairs))
}

/// Tokens inside URLs (Graph's `paging.next` links embed them) are redacted before logging.
pub use sfm_wire::redact::redact_token_params;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_query_round_trip() {
        let q = encode_query(&[("fields", "id,name"), ("filtering", r#"[{"a":1}]"#)]);
        assert_eq!(q, "fields=id%2Cname&filtering=%5B%7B%22a%22%3A1%7D%5D");
        let (_, pairs) = split_query(&format!("https://x/y?{q}"));
        assert_eq!(pairs[1].1, r#"[{"a":1}]"#);
    }

    #[test]
    fn replaces_an_existing_query_param() {
        let u = with_query_param("https://g/v1/act_1/ads?limit=100&after=abc", "limit", "50");
        assert_eq!(u, "https://g/v1/act_1/ads?limit=50&after=abc");
    }

    #[test]
    fn invalid_percent_escapes_are_kept() {
        assert_eq!(percent_decode("a%zzb%4"), "a%zzb%4");
        assert_eq!(percent_decode("a%41+b"), "aA b");
    }
}
