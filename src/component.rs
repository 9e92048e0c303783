//! The wasm glue: WIT types in and out, the host's imports behind [`Io`]. No policy lives here.

use crate::driver::{BatchLimit, Completion, Driver, Io, TimeoutReason};
use crate::http::{FetchError, Method, Request, RequestId, Response};
use crate::protocol::{LogLevel, Message};
use crate::read::{Progress, ReadMachine};
use crate::time::Timestamp;
use std::cell::{Cell, RefCell};
use std::time::Duration;

wit_bindgen::generate!({ path: "wit", world: "source-facebook-marketing" });

use airbyte::source_facebook_marketing::host as wit_host;
use exports::airbyte::source_facebook_marketing::source as wit;

/// One machine's calls to the host. Request ids are unique within the instance, as the WIT
/// contract asks, though every machine counts its own from 1: each `HostIo` adds a base of its
/// own. A host may keep one instance for many commands (jco serve does), and a read that ended
/// at its time box leaves requests on their way: their answers, arriving during a later
/// command, carry another base and are dropped here.
struct HostIo {
    base: u64,
}

thread_local! {
    /// How many `HostIo`s this instance has made.
    static MADE: Cell<u64> = const { Cell::new(0) };
}

/// 2^40: ids one machine may use; far more requests than any sync makes.
const IDS_PER_MACHINE: u64 = 1 << 40;

impl HostIo {
    /// The first machine of an instance keeps its own ids (recordings show them).
    fn new() -> Self {
        let n = MADE.with(|m| {
            let n = m.get();
            m.set(n + 1);
            n
        });
        HostIo { base: n.wrapping_mul(IDS_PER_MACHINE) }
    }
}

impl Io for HostIo {
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion> {
        let base = self.base;
        let start: Vec<wit_host::Outgoing> = start
            .into_iter()
            .map(|(id, request)| wit_host::Outgoing {
                id: base.wrapping_add(id.0),
                request: wit_host::Request {
                    method: if request.method == Method::POST { wit_host::Method::Post } else { wit_host::Method::Get },
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                    timeout_ms: request.timeout_ms,
                    max_response_bytes: request.max_response_bytes,
                },
            })
            .collect();
        let wait_ms = wait.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        wit_host::http_fetch(&start, wait_ms)
            .into_iter()
            .filter(|c| c.id.wrapping_sub(base) < IDS_PER_MACHINE)
            .map(|c| {
                let outcome = c
                    .outcome
                    .map(|r| Response {
                        status: r.status,
                        headers: r.headers,
                        body: match r.body {
                            wit_host::Body::Bytes(b) => b,
                            wit_host::Body::Text(t) => t.into_bytes(),
                        },
                    })
                    .map_err(FetchError::from);
                (RequestId(c.id.wrapping_sub(base)), outcome)
            })
            .collect()
    }

    fn sleep(&mut self, duration: Duration, _reason: TimeoutReason) {
        wit_host::sleep(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    }

    fn now(&mut self) -> Timestamp {
        now()
    }
}

/// The host's clock, through wasi:clocks (which a host may virtualise).
#[allow(clippy::disallowed_methods)]
fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

impl From<wit_host::FetchError> for FetchError {
    fn from(e: wit_host::FetchError) -> Self {
        match e {
            wit_host::FetchError::Timeout => FetchError::Timeout,
            wit_host::FetchError::ConnectionRefused => FetchError::ConnectionRefused,
            wit_host::FetchError::ConnectionReset => FetchError::ConnectionReset,
            wit_host::FetchError::Dns(s) => FetchError::Dns(s),
            wit_host::FetchError::Tls(s) => FetchError::Tls(s),
            wit_host::FetchError::DeniedByHost(s) => FetchError::DeniedByHost(s),
            wit_host::FetchError::Other(s) => FetchError::Other(s),
            wit_host::FetchError::ResponseTooLarge(cap) => FetchError::TooLarge(cap),
        }
    }
}

impl From<LogLevel> for wit::LogLevel {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Fatal => wit::LogLevel::Fatal,
            LogLevel::Error => wit::LogLevel::Error,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Debug => wit::LogLevel::Debug,
            LogLevel::Trace => wit::LogLevel::Trace,
        }
    }
}

impl From<Message> for wit::Message {
    fn from(m: Message) -> Self {
        match m {
            Message::Record { stream, data, emitted_at } => wit::Message::Record(wit::RecordMessage {
                stream,
                namespace: None,
                data,
                emitted_at: emitted_at.as_millis(),
            }),
            Message::State(s) => wit::Message::State(s),
            Message::Log { level, message } => wit::Message::Log(wit::LogMessage { level: level.into(), message }),
            Message::Trace(t) => wit::Message::Trace(t),
            Message::ConnectionStatus { succeeded, message } => wit::Message::ConnectionStatus(wit::ConnectionStatus {
                status: if succeeded { wit::Status::Succeeded } else { wit::Status::Failed },
                message,
            }),
            Message::Catalog(c) => wit::Message::Catalog(c),
            Message::Spec(s) => wit::Message::Spec(s),
        }
    }
}

impl From<Progress> for wit::Progress {
    fn from(p: Progress) -> Self {
        wit::Progress {
            streams: p
                .streams
                .into_iter()
                .map(|s| wit::StreamProgress {
                    name: s.name,
                    records: s.records,
                    status: s.status.map_or("pending", |st| st.as_str()).to_ascii_lowercase(),
                })
                .collect(),
            current: p.current,
            active: p.active,
            accounts_done: p.accounts_done,
            accounts_total: p.accounts_total,
            requests_in_flight: p.in_flight,
            jobs_running: p.jobs_running,
            jobs_completed: p.jobs_completed,
            jobs_retried: p.jobs_retried,
            jobs_split: p.jobs_split,
            requests: p.requests,
            retries: p.retries,
            pauses: p.pauses,
            last_pause: p.last_pause,
        }
    }
}

fn convert(messages: Vec<Message>) -> Vec<wit::Message> {
    messages.into_iter().map(wit::Message::from).collect()
}

/// The seed for retry jitter: the start time, so a virtual clock gives repeatable runs.
fn seed(at: Timestamp) -> u64 {
    at.as_millis() as u64
}

/// Runs a command's machine to its end on the host's imports: all its messages.
fn run_to_end(machine: impl crate::driver::Machine) -> Vec<wit::Message> {
    let mut out = Vec::new();
    Driver::new(machine).run_to_end(&mut HostIo::new(), |m| out.push(m));
    convert(out)
}

struct Component;

impl wit::Guest for Component {
    type Reader = ReaderResource;

    fn spec() -> Vec<wit::Message> {
        convert(crate::commands::spec())
    }

    fn check(config: String) -> Vec<wit::Message> {
        let at = now();
        run_to_end(crate::check::CheckMachine::new(&config, seed(at), at))
    }

    fn discover(config: String) -> Vec<wit::Message> {
        let at = now();
        run_to_end(crate::commands::DiscoverMachine::new(&config, seed(at), at))
    }
}

struct ReaderResource {
    driver: RefCell<Driver<ReadMachine>>,
    io: RefCell<HostIo>,
}

impl wit::GuestReader for ReaderResource {
    fn new(config: String, catalog: String, state: Option<String>) -> Self {
        let at = now();
        let machine = ReadMachine::new(&config, &catalog, state.as_deref(), seed(at), at);
        ReaderResource { driver: RefCell::new(Driver::new(machine)), io: RefCell::new(HostIo::new()) }
    }

    fn next(&self) -> Option<Vec<wit::Message>> {
        self.driver.borrow_mut().next_batch(&mut *self.io.borrow_mut(), BatchLimit::DEFAULT).map(convert)
    }

    fn progress(&self) -> wit::Progress {
        self.driver.borrow().machine().progress().into()
    }
}

export!(Component);
