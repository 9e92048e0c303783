//! The connector's `host` interface (`http-fetch`, `sleep`) implemented on standard WASI.
//!
//! Built for `wasm32-wasip2`, this crate is a component that exports
//! `airbyte:source-facebook-marketing/host` and imports only `wasi:http/outgoing-handler`,
//! `wasi:clocks/monotonic-clock` and `wasi:cli/environment` (plus what every WASI program
//! imports). `wac plug` fills the connector's `host` import with it, so any host that offers
//! `wasi:http` (e.g. `wasmtime run -S http`) runs the connector.
//!
//! The optional environment variable `GRAPH_URL` replaces the origin `https://graph.facebook.com`
//! of every request URL (a proxy, or `host-test simulate`), as `host-test --graph-url` does.
//!
//! This file holds the adapter's pure pieces (URL handling, headers, body decoding), built and
//! tested natively; `component.rs`, built for wasm32 only, performs the WASI calls.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[cfg(target_arch = "wasm32")]
mod component;

use std::borrow::Cow;
use std::io::Read;

/// The Graph API origin the connector calls, and its rewriting; `GRAPH_URL` routes it elsewhere.
pub use sfm_wire::origin::{GRAPH_ORIGIN, rewrite_origin};

/// The environment variable that names a replacement for [`GRAPH_ORIGIN`].
pub const GRAPH_URL_VAR: &str = "GRAPH_URL";

/// Sent when the connector names no user agent, so that Graph's logs tell this client apart.
pub const USER_AGENT: &str = "source-facebook-marketing-wasm/0.1";

/// 64 KiB: the most one body read asks of the host; Graph pages are read in a few such chunks.
pub const READ_CHUNK: u64 = 64 * 1024;

/// The URL scheme as `wasi:http` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme<'a> {
    Http,
    Https,
    Other(&'a str),
}

/// An absolute URL cut into the parts a `wasi:http` outgoing request takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: Scheme<'a>,
    /// `host[:port]`.
    pub authority: &'a str,
    /// The path and query, `/` when the URL has no path; the fragment is dropped.
    pub path_with_query: Cow<'a, str>,
}

/// Cuts an absolute URL (`scheme://authority/path?query`) into its parts.
///
/// Errors (as text for `fetch-error::other`) when the URL has no scheme or no authority.
pub fn split_url(url: &str) -> Result<UrlParts<'_>, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url} is not an absolute URL (no scheme://)"))?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        Scheme::Other(scheme)
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() {
        return Err(format!("{url} names no host"));
    }
    let path_with_query = match tail.chars().next() {
        None => Cow::Borrowed("/"),
        Some('?') => Cow::Owned(format!("/{tail}")),
        Some(_) => Cow::Borrowed(tail),
    };
    Ok(UrlParts { scheme, authority, path_with_query })
}

/// The headers to send: the connector's, plus `accept-encoding: gzip` (bodies are inflated
/// here, as the WIT contract asks of a host), a user agent when it named none, and
/// `content-length` when there is a body (so the request is not sent chunked).
pub fn outgoing_headers(headers: &[(String, String)], body_len: Option<usize>) -> Vec<(String, Vec<u8>)> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut out: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    if !has("accept-encoding") {
        out.push(("accept-encoding".into(), b"gzip".to_vec()));
    }
    if !has("user-agent") {
        out.push(("user-agent".into(), USER_AGENT.as_bytes().to_vec()));
    }
    if let Some(n) = body_len {
        out.push(("content-length".into(), n.to_string().into_bytes()));
    }
    out
}

/// Response headers as the WIT `response` carries them: lower-case names, text values.
pub fn incoming_headers(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    entries.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned())).collect()
}

/// Inflates a `content-encoding: gzip` body, and then drops the `content-encoding` and
/// `content-length` headers, which described the compressed body. Other bodies pass unchanged.
///
/// Why a body could not be handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// It said gzip and did not inflate (text for `fetch-error::other`).
    NotGzip(String),
    /// Inflated, it passed the cap (`fetch-error::response-too-large`).
    TooLarge,
}

/// Errors when the body is not valid gzip, or inflates past `cap` bytes (inflating stops there).
pub fn decode_body(headers: &mut Vec<(String, String)>, body: Vec<u8>, cap: u64) -> Result<Vec<u8>, BodyError> {
    let gzip = headers.iter().any(|(k, v)| {
        k == "content-encoding" && (v.trim().eq_ignore_ascii_case("gzip") || v.trim().eq_ignore_ascii_case("x-gzip"))
    });
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(usize::try_from(cap).unwrap_or(usize::MAX)));
    flate2::read::MultiGzDecoder::new(body.as_slice()).take(cap.saturating_add(1)).read_to_end(&mut out).map_err(
        |e| BodyError::NotGzip(format!("the response said content-encoding: gzip but its body does not inflate: {e}")),
    )?;
    if out.len() as u64 > cap {
        return Err(BodyError::TooLarge);
    }
    headers.retain(|(k, _)| k != "content-encoding" && k != "content-length");
    Ok(out)
}

/// Milliseconds as the nanoseconds of `wasi:clocks` durations.
pub fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn splits_a_url_into_scheme_authority_and_path_with_query() {
        let p = split_url("http://127.0.0.1:8080/v25.0/act_1/ads?fields=id&limit=2#top").unwrap();
        assert_eq!(p.scheme, Scheme::Http);
        assert_eq!(p.authority, "127.0.0.1:8080");
        assert_eq!(p.path_with_query, "/v25.0/act_1/ads?fields=id&limit=2");
        let p = split_url("HTTPS://graph.facebook.com").unwrap();
        assert_eq!((p.scheme, p.authority, p.path_with_query.as_ref()), (Scheme::Https, "graph.facebook.com", "/"));
        assert_eq!(split_url("https://h?x=1").unwrap().path_with_query, "/?x=1");
        assert_eq!(split_url("ftp://h/f").unwrap().scheme, Scheme::Other("ftp"));
    }

    #[test]
    fn refuses_a_url_without_scheme_or_host() {
        assert!(split_url("/v25.0/me").unwrap_err().contains("not an absolute URL"));
        assert!(split_url("https:///v25.0/me").unwrap_err().contains("names no host"));
    }

    #[test]
    fn asks_for_gzip_names_the_client_and_frames_bodies_by_length() {
        let h = outgoing_headers(&[("content-type".into(), "application/x-www-form-urlencoded".into())], Some(12));
        let get = |name: &str| h.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        assert_eq!(get("accept-encoding").as_deref(), Some("gzip"));
        assert_eq!(get("user-agent").as_deref(), Some(USER_AGENT));
        assert_eq!(get("content-length").as_deref(), Some("12"));
        assert_eq!(get("content-type").as_deref(), Some("application/x-www-form-urlencoded"));
    }

    #[test]
    fn keeps_the_connectors_own_encoding_and_agent_and_sends_no_length_without_body() {
        let h =
            outgoing_headers(&[("Accept-Encoding".into(), "identity".into()), ("user-agent".into(), "x".into())], None);
        assert_eq!(
            h,
            vec![("accept-encoding".to_string(), b"identity".to_vec()), ("user-agent".to_string(), b"x".to_vec())]
        );
    }

    #[test]
    fn inflates_gzip_bodies_and_drops_the_headers_that_described_them() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"data":[]}"#).unwrap();
        let compressed = gz.finish().unwrap();
        let mut headers = incoming_headers(vec![
            ("Content-Encoding".into(), b"gzip".to_vec()),
            ("content-length".into(), compressed.len().to_string().into_bytes()),
            ("x-app-usage".into(), br#"{"call_count":1}"#.to_vec()),
        ]);
        let body = decode_body(&mut headers, compressed.clone(), 1 << 20).unwrap();
        assert_eq!(body, br#"{"data":[]}"#);
        assert_eq!(headers, vec![("x-app-usage".to_string(), r#"{"call_count":1}"#.to_string())]);
    }

    #[test]
    fn passes_identity_bodies_through_and_reports_broken_gzip() {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        assert_eq!(decode_body(&mut headers, b"{}".to_vec(), 1 << 20).unwrap(), b"{}");
        let mut headers = vec![("content-encoding".to_string(), "gzip".to_string())];
        assert!(
            matches!(decode_body(&mut headers, b"not gzip".to_vec(), 1 << 20), Err(BodyError::NotGzip(m)) if m.contains("does not inflate"))
        );
    }
}
