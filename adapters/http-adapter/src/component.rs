//! The WASI side: our WIT `host` exported, `wasi:http` and `wasi:clocks` imported.
//!
//! Several requests are in flight at once: each is a small state machine (head awaited, then
//! body read as it arrives), moved on without blocking, and one `wasi:io/poll` call sleeps
//! until any of them can move, a deadline passes or the component's wait is over, so a slow
//! answer holds back no other. Resources are dropped children first (a pollable before its
//! stream, a stream before its body), as `wasi:http` requires.

use crate::{
    BodyError, GRAPH_URL_VAR, READ_CHUNK, Scheme, decode_body, incoming_headers, ms_to_ns, outgoing_headers,
    rewrite_origin, split_url,
};
use std::cell::RefCell;
use std::sync::OnceLock;
use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    self as http, ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, RequestOptions,
};
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::{InputStream, StreamError};

wit_bindgen::generate!({ path: "../../wit", world: "http-adapter" });

use exports::airbyte::source_facebook_marketing::host::{self as wit, FetchError};

struct Adapter;

impl wit::Guest for Adapter {
    fn http_fetch(start: Vec<wit::Outgoing>, wait_ms: Option<u64>) -> Vec<wit::Completion> {
        IN_FLIGHT.with_borrow_mut(|in_flight| exchange(in_flight, start, wait_ms))
    }

    fn sleep(ms: u64) {
        monotonic_clock::subscribe_duration(ms_to_ns(ms)).block();
    }
}

export!(Adapter);

thread_local! {
    /// The requests started and not yet handed back.
    static IN_FLIGHT: RefCell<Vec<InFlight>> = const { RefCell::new(Vec::new()) };
}

/// One request on its way: its head awaited, then its body read as it arrives.
struct InFlight {
    id: u64,
    /// The whole exchange, body included, must end by this instant (`timeout-ms`).
    deadline: Instant,
    cap: u64,
    stage: Stage,
}

enum Stage {
    /// The response head is awaited. An error sending the request body is kept: the
    /// response's own error, if any, says more.
    Head { future: FutureIncomingResponse, sent: Result<(), FetchError> },
    /// The body is being read. Fields drop in order: the stream before its body.
    Body { status: u16, headers: Vec<(String, String)>, stream: InputStream, body: IncomingBody, bytes: Vec<u8> },
}

/// What one step of a request came to.
enum Step {
    Waiting,
    /// Its body was read to the end: [`finish`] makes the response.
    Read,
    Done(Result<wit::Response, FetchError>),
}

/// Starts `start`, then hands back what completed: at least one while any is in flight, unless
/// `wait_ms` passes first.
fn exchange(in_flight: &mut Vec<InFlight>, start: Vec<wit::Outgoing>, wait_ms: Option<u64>) -> Vec<wit::Completion> {
    let mut done = Vec::new();
    for outgoing in start {
        match begin(outgoing.request) {
            Ok((deadline, cap, stage)) => in_flight.push(InFlight { id: outgoing.id, deadline, cap, stage }),
            Err(e) => done.push(wit::Completion { id: outgoing.id, outcome: Err(e) }),
        }
    }
    let give_up = wait_ms.map(|ms| monotonic_clock::now().saturating_add(ms_to_ns(ms)));
    loop {
        let mut i = 0;
        while i < in_flight.len() {
            match advance(&mut in_flight[i]) {
                Step::Waiting => i += 1,
                Step::Read => {
                    let finished = in_flight.swap_remove(i);
                    let id = finished.id;
                    done.push(wit::Completion { id, outcome: finish(finished) });
                }
                Step::Done(outcome) => {
                    let finished = in_flight.swap_remove(i);
                    done.push(wit::Completion { id: finished.id, outcome });
                }
            }
        }
        if !done.is_empty() || in_flight.is_empty() || give_up.is_some_and(|t| monotonic_clock::now() >= t) {
            return done;
        }
        // Sleep until any request can move, a request's deadline passes, or the wait is over.
        let pollables: Vec<Pollable> = in_flight.iter().map(subscribe).collect();
        let soonest = in_flight.iter().map(|r| r.deadline).chain(give_up).min().unwrap_or(0);
        let timer = monotonic_clock::subscribe_instant(soonest);
        let mut all: Vec<&Pollable> = pollables.iter().collect();
        all.push(&timer);
        poll(&all);
    }
}

/// What a request waits on now.
fn subscribe(r: &InFlight) -> Pollable {
    match &r.stage {
        Stage::Head { future, .. } => future.subscribe(),
        Stage::Body { stream, .. } => stream.subscribe(),
    }
}

/// Moves a request on as far as it can go without blocking.
fn advance(r: &mut InFlight) -> Step {
    if monotonic_clock::now() > r.deadline {
        return Step::Done(Err(FetchError::Timeout));
    }
    if let Stage::Head { future, sent } = &mut r.stage {
        let response = match future.get() {
            None => return Step::Waiting,
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Step::Done(Err(from_error_code(code))),
            Some(Err(())) => return Step::Done(Err(other("the host handed out the response twice"))),
        };
        if let Err(e) = std::mem::replace(sent, Ok(())) {
            return Step::Done(Err(e));
        }
        match open_body(response) {
            Ok(stage) => r.stage = stage,
            Err(e) => return Step::Done(Err(e)),
        }
    }
    let Stage::Body { stream, bytes, .. } = &mut r.stage else { return Step::Waiting };
    loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => return Step::Waiting,
            Ok(chunk) if bytes.len() as u64 + chunk.len() as u64 > r.cap => {
                // Dropping the stream unread closes the connection.
                return Step::Done(Err(FetchError::ResponseTooLarge(r.cap)));
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Step::Read,
            Err(e) => return Step::Done(Err(from_stream_error(e))),
        }
    }
}

/// The response of a request whose body was read to its end.
fn finish(r: InFlight) -> Result<wit::Response, FetchError> {
    let Stage::Body { status, mut headers, stream, body, bytes } = r.stage else {
        return Err(other("a response was finished before its body was read"));
    };
    drop(stream);
    // Trailers are not part of the WIT response; finishing the body releases it.
    drop(IncomingBody::finish(body));
    decode_body(&mut headers, bytes, r.cap)
        .map(|body| wit::Response { status, headers, body: wit::Body::Bytes(body) })
        .map_err(|e| match e {
            BodyError::NotGzip(m) => FetchError::Other(m),
            BodyError::TooLarge => FetchError::ResponseTooLarge(r.cap),
        })
}

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

/// Sends a request (its body too, which is small): the stage it waits in, its deadline and its
/// size cap.
fn begin(req: wit::Request) -> Result<(Instant, u64, Stage), FetchError> {
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
    Ok((deadline, req.max_response_bytes, Stage::Head { future, sent }))
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
    // Every byte is written. The host may have taken the whole body already (its length was
    // declared) and closed the stream, even answered: that is the end of the body, not a
    // failure (under load it came before this flush, and failed a POST that had been answered).
    match stream.flush() {
        Ok(()) => {}
        Err(StreamError::Closed) => return Ok(()),
        Err(e) => return Err(from_stream_error(e)),
    }
    // The flush is over when the stream accepts writes again.
    loop {
        match stream.check_write() {
            Ok(0) => wait(&stream.subscribe(), deadline)?,
            Ok(_) | Err(StreamError::Closed) => return Ok(()),
            Err(e) => return Err(from_stream_error(e)),
        }
    }
}

/// The body stage of a response whose head arrived.
fn open_body(response: IncomingResponse) -> Result<Stage, FetchError> {
    let status = response.status();
    let headers = incoming_headers(response.headers().entries());
    let body = response.consume().map_err(|()| other("the host gave the response no body"))?;
    let stream = body.stream().map_err(|()| other("the host gave the response body no stream"))?;
    Ok(Stage::Body { status, headers, stream, body, bytes: Vec::new() })
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
