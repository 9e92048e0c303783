//! Where the component's `http-fetch`, `sleep` and clock go: [`Backend`], implemented here for
//! the real network ([`NetBackend`], a pool of threads, one request each at a time); a host
//! adds its own (`host-test` has the in-process simulator on a virtual clock).

use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// An HTTP request as the host sees it.
#[derive(Clone, Debug)]
pub struct HostRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
    /// The most body bytes to hold: past it, reading stops with [`HostFetchError::TooLarge`].
    pub max_response_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct HostResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Transport failures: the WIT `fetch-error`, one definition for the component and its hosts.
pub use sfm_wire::fetch::FetchError as HostFetchError;

/// A clock the guest reads through wasi:clocks: real, virtual and moved by `sleep`, or read
/// through a host's own function (a recording, a replay).
#[derive(Clone, Debug)]
pub enum Clock {
    Real,
    Virtual(Arc<AtomicI64>),
    Read(Arc<dyn ReadClock>),
}

/// A host's own clock: every reading the guest makes goes through `now_ms`.
pub trait ReadClock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

impl Clock {
    pub fn virtual_at(ms: i64) -> Self {
        Clock::Virtual(Arc::new(AtomicI64::new(ms)))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::Real => chrono::Utc::now().timestamp_millis(),
            Clock::Virtual(ms) => ms.load(Ordering::SeqCst),
            Clock::Read(c) => c.now_ms(),
        }
    }

    /// Moves a virtual clock to `ms` (a real clock ignores it).
    pub fn set(&self, ms: i64) {
        if let Clock::Virtual(v) = self {
            v.store(ms, Ordering::SeqCst);
        }
    }
}

impl wasmtime_wasi::HostWallClock for Clock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.now_ms()).unwrap_or(0))
    }
}

impl wasmtime_wasi::HostMonotonicClock for Clock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        u64::try_from(self.now_ms()).unwrap_or(0).saturating_mul(1_000_000)
    }
}

/// One finished request: the id it was started under and what came of it.
pub type HostCompletion = (u64, Result<HostResponse, HostFetchError>);

/// Performs the component's IO: requests run concurrently, started with `start` and collected,
/// in the order they complete, with `wait`.
pub trait Backend: Send {
    /// Starts `req` under `id`.
    fn start(&mut self, id: u64, req: HostRequest);
    /// The requests that completed since the last call. With requests in flight, waits until at
    /// least one has completed, or until `wait_ms` of this backend's clock passed (then none).
    /// With nothing in flight, returns at once.
    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion>;
    fn sleep(&mut self, ms: u64);
    fn clock(&self) -> Clock;
}

/// Threads performing requests at most: the component keeps at most `max_concurrent_requests`
/// in flight, itself at most this (256).
const MAX_WORKERS: usize = sfm_wire::limits::MAX_CONCURRENT_REQUESTS;

/// Real HTTPS (rustls), gzip, timeouts; requests run on a pool of threads that grows to the
/// number in flight.
pub struct NetBackend {
    agent: ureq::Agent,
    /// Tests run real HTTP on a virtual clock: sleeps then only move this clock.
    clock: Clock,
    /// The queue of requests to perform; dropping it (with the backend) ends the workers, each
    /// after its request in flight.
    jobs: Option<mpsc::Sender<(u64, HostRequest)>>,
    queue: Arc<Mutex<mpsc::Receiver<(u64, HostRequest)>>>,
    results_tx: mpsc::Sender<HostCompletion>,
    results: mpsc::Receiver<HostCompletion>,
    workers: usize,
    in_flight: usize,
}

impl Default for NetBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl NetBackend {
    pub fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // No redirect is followed: the allowlist is checked on the request's URL, and a
            // 3xx goes back to the component as it came, which fails that request naming the
            // `Location` (a redirect never becomes the answer of a call).
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(20)))
            .max_idle_connections_per_host(MAX_WORKERS)
            .user_agent("source-facebook-marketing-wasm/0.1")
            .build();
        let (jobs, queue) = mpsc::channel();
        let (results_tx, results) = mpsc::channel();
        NetBackend {
            agent: config.into(),
            clock: Clock::Real,
            jobs: Some(jobs),
            queue: Arc::new(Mutex::new(queue)),
            results_tx,
            results,
            workers: 0,
            in_flight: 0,
        }
    }

    /// Adds a worker thread: it takes requests off the queue until the backend is dropped.
    fn spawn_worker(&mut self) {
        let (agent, queue, results) = (self.agent.clone(), self.queue.clone(), self.results_tx.clone());
        let spawned = std::thread::Builder::new().name("host-test-fetch".into()).spawn(move || {
            loop {
                let job = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok((id, req)) = job else { return };
                if results.send((id, fetch_blocking(&agent, &req))).is_err() {
                    return;
                }
            }
        });
        if spawned.is_ok() {
            self.workers += 1;
        }
    }

    /// Real HTTP, virtual time: for tests against `host-test simulate --clock virtual`.
    pub fn with_virtual_clock(start_ms: i64) -> Self {
        NetBackend { clock: Clock::virtual_at(start_ms), ..Self::new() }
    }
}

fn map_ureq_error(e: ureq::Error) -> HostFetchError {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => HostFetchError::Timeout,
        ureq::Error::HostNotFound => HostFetchError::Dns(text),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => HostFetchError::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof => HostFetchError::ConnectionReset,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => HostFetchError::Timeout,
            _ => HostFetchError::Other(text),
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => HostFetchError::Tls(text),
        _ => HostFetchError::Other(text),
    }
}

/// Reads a body of at most `cap` bytes, never holding more; stops with a timeout once
/// `overdue()` says the whole-body deadline passed, however steadily the bytes trickle in
/// (each read may return a byte just inside the transport's own per-read timeout). The body is
/// read straight into its buffer, sized from `declared` (its Content-Length, when it is not
/// compressed): no copy through a chunk, no doubling of a large page.
pub fn read_body(
    reader: impl Read,
    cap: u64,
    declared: Option<u64>,
    overdue: impl Fn() -> bool,
) -> Result<Vec<u8>, HostFetchError> {
    /// A reader that fails once the deadline has passed, and says it did.
    struct Deadline<R, F> {
        inner: R,
        overdue: F,
        passed: bool,
    }
    impl<R: Read, F: Fn() -> bool> Read for Deadline<R, F> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if (self.overdue)() {
                self.passed = true;
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the body's deadline passed"));
            }
            self.inner.read(buf)
        }
    }
    let room = usize::try_from(declared.unwrap_or(0).min(cap)).unwrap_or(0);
    let mut body = Vec::with_capacity(room);
    let mut limited = Deadline { inner: reader, overdue, passed: false }.take(cap);
    let read = limited.read_to_end(&mut body);
    let mut rest = limited.into_inner();
    let more = match read {
        // At the cap: one byte more means the body is larger.
        Ok(_) if body.len() as u64 == cap => rest.read(&mut [0u8; 1]),
        Ok(_) => Ok(0),
        Err(e) => Err(e),
    };
    match more {
        Ok(0) => Ok(body),
        Ok(_) => Err(HostFetchError::TooLarge(cap)),
        Err(_) if rest.passed => Err(HostFetchError::Timeout),
        Err(e) => Err(map_ureq_error(ureq::Error::Io(e))),
    }
}

/// Performs one request on this thread.
fn fetch_blocking(agent: &ureq::Agent, req: &HostRequest) -> Result<HostResponse, HostFetchError> {
    let timeout = Some(Duration::from_millis(u64::from(req.timeout_ms.max(1))));
    let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder.body(req.body.clone()).map_err(|e| HostFetchError::Other(e.to_string()))?;
    let request = agent.configure_request(request).timeout_global(timeout).build();
    let response = agent.run(request).map_err(map_ureq_error)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    // A body that says it is larger than the cap is refused before a byte of it is read.
    let declared = response.headers().get("content-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let gzipped = response.headers().get("content-encoding").is_some();
    if !gzipped && declared.is_some_and(|n| n > req.max_response_bytes) {
        return Err(HostFetchError::TooLarge(req.max_response_bytes));
    }
    // The whole body must be in within the request's timeout, however it trickles.
    let started = std::time::Instant::now();
    let limit = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
    let declared = if gzipped { None } else { declared };
    let body =
        read_body(response.into_body().into_reader(), req.max_response_bytes, declared, || started.elapsed() > limit)?;
    Ok(HostResponse { status, headers, body })
}

impl Backend for NetBackend {
    fn start(&mut self, id: u64, req: HostRequest) {
        self.in_flight += 1;
        if self.workers < self.in_flight.min(MAX_WORKERS) {
            self.spawn_worker();
        }
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send((id, req)).is_ok());
        if !sent {
            let _ = self.results_tx.send((id, Err(HostFetchError::Other("the fetch pool has stopped".into()))));
        }
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        if self.in_flight == 0 {
            return Vec::new();
        }
        // On a virtual clock the real network cannot be waited for by the clock: the first
        // answer is waited for however long it takes (each request has its own timeout).
        let first = match (wait_ms, &self.clock) {
            (Some(ms), Clock::Real) => self.results.recv_timeout(Duration::from_millis(ms)).ok(),
            _ => self.results.recv().ok(),
        };
        let mut done: Vec<HostCompletion> = first.into_iter().collect();
        done.extend(self.results.try_iter());
        self.in_flight = self.in_flight.saturating_sub(done.len());
        done
    }

    fn sleep(&mut self, ms: u64) {
        match &self.clock {
            Clock::Real | Clock::Read(_) => std::thread::sleep(Duration::from_millis(ms)),
            Clock::Virtual(v) => {
                v.fetch_add(i64::try_from(ms).unwrap_or(i64::MAX), Ordering::SeqCst);
            }
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}
