//! The WASI side: our WIT `host` exported, `wasi:http` and `wasi:clocks` imported.
//!
//! Resources are dropped children first (a pollable before its stream, a stream before its
//! body), as `wasi:http` requires; each step lives in its own function so scopes say so.

use crate::{
    BodyError, GRAPH_URL_VAR, READ_CHUNK, Scheme, decode_body, incoming_headers, ms_to_ns, outgoing_headers,
    rewrite_origin, split_url,
};
use std::sync::OnceLock;
use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    self as http, ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, RequestOptions,
};
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::StreamError;

wit_bindgen::generate!({ path: "../../wit", world: "http-adapter" });

use exports::airbyte::source_facebook_marketing::host::{self as wit, FetchError};

struct Adapter;

impl wit::Guest for Adapter {
    fn http_fetch(req: wit::Request) -> Result<wit::Response, FetchError> {
        fetch(req)
    }

    fn sleep(ms: u64) {
        monotonic_clock::subscribe_duration(ms_to_ns(ms)).block();
    }
}

export!(Adapter);

/// `GRAPH_URL` from `wasi:cli/environment`, read once; empty counts as unset.
fn graph_url() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        wasi::cli::environment::get_environment()
            .into_iter()
            .find(|(k, _)| k == GRAPH_URL_VAR)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    })
    .as_deref()
}

fn other(what: &str) -> FetchError {
    FetchError::Other(what.to_string())
}

fn fetch(req: wit::Request) -> Result<wit::Response, FetchError> {
    // The whole exchange, body included, must end by this instant (`timeout-ms`).
    let deadline = monotonic_clock::now().saturating_add(ms_to_ns(u64::from(req.timeout_ms)));
    let url = rewrite_origin(&req.url, graph_url());
    let parts = split_url(&url).map_err(FetchError::Other)?;
    let fields = Fields::from_list(&outgoing_headers(&req.headers, req.body.as_ref().map(Vec::len)))
        .map_err(|e| FetchError::Other(format!("the host refused the request headers: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match req.method {
        wit::Method::Get => http::Method::Get,
        wit::Method::Post => http::Method::Post,
    };
    let scheme = match parts.scheme {
        Scheme::Http => http::Scheme::Http,
        Scheme::Https => http::Scheme::Https,
        Scheme::Other(s) => http::Scheme::Other(s.to_string()),
    };
    request.set_method(&method).map_err(|()| other("the host refused the request method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| FetchError::Other(format!("the host refused the scheme of {url}")))?;
    request
        .set_authority(Some(parts.authority))
        .map_err(|()| FetchError::Other(format!("the host refused the authority of {url}")))?;
    request
        .set_path_with_query(Some(&parts.path_with_query))
        .map_err(|()| FetchError::Other(format!("the host refused the path of {url}")))?;
    // A body-less request takes no body resource, so the host sends it without one.
    let body = match &req.body {
        Some(_) => Some(request.body().map_err(|()| other("the host gave the request no body"))?),
        None => None,
    };
    let future = outgoing_handler::handle(request, Some(options(req.timeout_ms))).map_err(from_error_code)?;
    let sent = match body {
        Some(body) => send_body(body, req.body.as_deref().unwrap_or_default(), deadline),
        None => Ok(()),
    };
    // When the body could not be sent, the response's error says why.
    let response = await_response(&future, deadline)?;
    sent?;
    read_response(response, deadline, req.max_response_bytes)
}

/// The host's own timeouts, all set to `timeout-ms`; a host that lacks one keeps its default,
/// and the deadline kept here still bounds the whole exchange.
fn options(timeout_ms: u32) -> RequestOptions {
    let options = RequestOptions::new();
    let t = Some(ms_to_ns(u64::from(timeout_ms)));
    let _ = options.set_connect_timeout(t);
    let _ = options.set_first_byte_timeout(t);
    let _ = options.set_between_bytes_timeout(t);
    options
}

/// Blocks until `ready` is ready (`Ok`) or `deadline` passes (`fetch-error::timeout`).
fn wait(ready: &Pollable, deadline: Instant) -> Result<(), FetchError> {
    let timer = monotonic_clock::subscribe_instant(deadline);
    if poll(&[ready, &timer]).contains(&0) { Ok(()) } else { Err(FetchError::Timeout) }
}

fn send_body(body: OutgoingBody, bytes: &[u8], deadline: Instant) -> Result<(), FetchError> {
    write_all(&body, bytes, deadline)?;
    OutgoingBody::finish(body, None).map_err(from_error_code)
}

fn write_all(body: &OutgoingBody, bytes: &[u8], deadline: Instant) -> Result<(), FetchError> {
    let stream = body.write().map_err(|()| other("the host gave the request body no stream"))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let permitted = stream.check_write().map_err(from_stream_error)?;
        if permitted == 0 {
            wait(&stream.subscribe(), deadline)?;
            continue;
        }
        let n = rest.len().min(usize::try_from(permitted).unwrap_or(usize::MAX));
        stream.write(&rest[..n]).map_err(from_stream_error)?;
        rest = &rest[n..];
    }
    stream.flush().map_err(from_stream_error)?;
    // The flush is over when the stream accepts writes again.
    while stream.check_write().map_err(from_stream_error)? == 0 {
        wait(&stream.subscribe(), deadline)?;
    }
    Ok(())
}

fn await_response(future: &FutureIncomingResponse, deadline: Instant) -> Result<IncomingResponse, FetchError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(from_error_code(code)),
            Some(Err(())) => return Err(other("the host handed out the response twice")),
            None => wait(&future.subscribe(), deadline)?,
        }
    }
}

fn read_response(response: IncomingResponse, deadline: Instant, cap: u64) -> Result<wit::Response, FetchError> {
    let status = response.status();
    let mut headers = incoming_headers(response.headers().entries());
    let body = response.consume().map_err(|()| other("the host gave the response no body"))?;
    // Dropping the stream unread (too large, too slow) closes the connection.
    let bytes = read_all(&body, deadline, cap)?;
    // Trailers are not part of the WIT response; finishing the body releases it.
    drop(IncomingBody::finish(body));
    let body = decode_body(&mut headers, bytes, cap).map_err(|e| match e {
        BodyError::NotGzip(m) => FetchError::Other(m),
        BodyError::TooLarge => FetchError::ResponseTooLarge(cap),
    })?;
    Ok(wit::Response { status, headers, body })
}

/// Reads the body to its end: never more than `cap` bytes (then `response-too-large`), and
/// never past `deadline`, however steadily bytes trickle in (then `timeout`).
fn read_all(body: &IncomingBody, deadline: Instant, cap: u64) -> Result<Vec<u8>, FetchError> {
    let stream = body.stream().map_err(|()| other("the host gave the response body no stream"))?;
    let mut out = Vec::new();
    loop {
        if monotonic_clock::now() > deadline {
            return Err(FetchError::Timeout);
        }
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => wait(&stream.subscribe(), deadline)?,
            Ok(chunk) if out.len() as u64 + chunk.len() as u64 > cap => return Err(FetchError::ResponseTooLarge(cap)),
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(out),
            Err(e) => return Err(from_stream_error(e)),
        }
    }
}

fn from_stream_error(e: StreamError) -> FetchError {
    match e {
        StreamError::Closed => FetchError::ConnectionReset,
        StreamError::LastOperationFailed(err) => match http::http_error_code(&err) {
            Some(code) => from_error_code(code),
            None => FetchError::Other(err.to_debug_string()),
        },
    }
}

/// `wasi:http` error codes onto the connector's `fetch-error`, which drives its retry policy.
fn from_error_code(code: ErrorCode) -> FetchError {
    match code {
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => FetchError::Timeout,
        ErrorCode::ConnectionRefused | ErrorCode::DestinationUnavailable => FetchError::ConnectionRefused,
        ErrorCode::ConnectionTerminated | ErrorCode::HttpResponseIncomplete => FetchError::ConnectionReset,
        ErrorCode::DnsError(p) => FetchError::Dns(format!("name resolution failed: {p:?}")),
        ErrorCode::DestinationNotFound => FetchError::Dns("destination not found".into()),
        ErrorCode::TlsProtocolError => FetchError::Tls("TLS protocol error".into()),
        ErrorCode::TlsCertificateError => FetchError::Tls("TLS certificate error".into()),
        ErrorCode::TlsAlertReceived(p) => FetchError::Tls(format!(
            "TLS alert {}: {}",
            p.alert_id.map(|id| id.to_string()).unwrap_or_default(),
            p.alert_message.unwrap_or_default()
        )),
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
            FetchError::DeniedByHost(format!("{code:?}"))
        }
        ErrorCode::InternalError(Some(m)) => FetchError::Other(m),
        e => FetchError::Other(format!("{e:?}")),
    }
}
