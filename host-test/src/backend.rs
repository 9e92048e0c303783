//! Where the component's `http-fetch`, `sleep` and clock go: the real network, or the
//! simulator on a virtual clock.

use graph_sim::{SimRequest, Simulator, TransportFault};
use std::io::Read;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
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

/// Transport failures, mirroring the WIT `fetch-error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostFetchError {
    Timeout,
    ConnectionRefused,
    ConnectionReset,
    Dns(String),
    Tls(String),
    Denied(String),
    Other(String),
    /// The body passed `max_response_bytes` (the cap): reading stopped there.
    TooLarge(u64),
}

/// A clock the guest reads through wasi:clocks: real, or virtual and moved by `sleep`.
#[derive(Clone, Debug)]
pub enum Clock {
    Real,
    Virtual(Arc<AtomicI64>),
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
        }
    }

    fn set(&self, ms: i64) {
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

/// Performs the component's IO.
pub trait Backend: Send {
    fn fetch(&mut self, req: &HostRequest) -> Result<HostResponse, HostFetchError>;
    fn sleep(&mut self, ms: u64);
    fn clock(&self) -> Clock;
}

/// The simulator in-process: no sockets, virtual time.
pub struct SimBackend {
    pub sim: Arc<Mutex<Simulator>>,
    clock: Clock,
}

impl SimBackend {
    pub fn new(sim: Arc<Mutex<Simulator>>) -> Self {
        let now = sim.lock().map(|s| s.now_ms()).unwrap_or(0);
        SimBackend { sim, clock: Clock::virtual_at(now) }
    }
}

impl Backend for SimBackend {
    fn fetch(&mut self, req: &HostRequest) -> Result<HostResponse, HostFetchError> {
        let mut sim = self.sim.lock().map_err(|_| HostFetchError::Other("simulator lock poisoned".into()))?;
        let out = sim.handle(&SimRequest {
            method: req.method.clone(),
            url: req.url.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
        });
        self.clock.set(sim.now_ms());
        match out {
            Ok(r) if r.body.len() as u64 > req.max_response_bytes => {
                Err(HostFetchError::TooLarge(req.max_response_bytes))
            }
            Ok(r) => Ok(HostResponse { status: r.status, headers: r.headers, body: r.body }),
            Err(TransportFault::Timeout) => Err(HostFetchError::Timeout),
            Err(TransportFault::ConnectionReset) => Err(HostFetchError::ConnectionReset),
            Err(TransportFault::ConnectionRefused) => Err(HostFetchError::ConnectionRefused),
        }
    }

    fn sleep(&mut self, ms: u64) {
        if let Ok(mut sim) = self.sim.lock() {
            sim.advance(ms);
            self.clock.set(sim.now_ms());
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

/// Real HTTPS (rustls), gzip, timeouts.
pub struct NetBackend {
    agent: ureq::Agent,
    /// Tests run real HTTP on a virtual clock: sleeps then only move this clock.
    clock: Clock,
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
            .timeout_connect(Some(Duration::from_secs(20)))
            .user_agent("source-facebook-marketing-wasm/0.1")
            .build();
        NetBackend { agent: config.into(), clock: Clock::Real }
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

/// 64 KiB: one read of a body.
const READ_CHUNK: usize = 64 << 10;

/// Reads a body of at most `cap` bytes, never holding more; stops with a timeout once
/// `overdue()` says the whole-body deadline passed, however steadily the bytes trickle in
/// (each read may return a byte just inside the transport's own per-read timeout).
pub fn read_body(mut reader: impl Read, cap: u64, overdue: impl Fn() -> bool) -> Result<Vec<u8>, HostFetchError> {
    let mut body = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        if overdue() {
            return Err(HostFetchError::Timeout);
        }
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(body),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(map_ureq_error(ureq::Error::Io(e))),
        };
        let needed = body.len() + n;
        if needed as u64 > cap {
            return Err(HostFetchError::TooLarge(cap));
        }
        if needed > body.capacity() {
            // Grow by doubling, but never past the cap: at most `cap` bytes are ever held.
            let target = (body.capacity() * 2).max(needed).min(usize::try_from(cap).unwrap_or(usize::MAX));
            body.reserve_exact(target - body.len());
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

impl Backend for NetBackend {
    fn fetch(&mut self, req: &HostRequest) -> Result<HostResponse, HostFetchError> {
        let timeout = Some(Duration::from_millis(u64::from(req.timeout_ms.max(1))));
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(req.url.as_str());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder.body(req.body.clone()).map_err(|e| HostFetchError::Other(e.to_string()))?;
        let request = self.agent.configure_request(request).timeout_global(timeout).build();
        let response = self.agent.run(request).map_err(map_ureq_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        // A body that says it is larger than the cap is refused before a byte of it is read.
        let declared =
            response.headers().get("content-length").and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let gzipped = response.headers().get("content-encoding").is_some();
        if !gzipped && declared.is_some_and(|n| n > req.max_response_bytes) {
            return Err(HostFetchError::TooLarge(req.max_response_bytes));
        }
        let started = std::time::Instant::now();
        let limit = Duration::from_millis(u64::from(req.timeout_ms.max(1)));
        let body = read_body(response.into_body().into_reader(), req.max_response_bytes, || started.elapsed() > limit)?;
        Ok(HostResponse { status, headers, body })
    }

    fn sleep(&mut self, ms: u64) {
        match &self.clock {
            Clock::Real => std::thread::sleep(Duration::from_millis(ms)),
            Clock::Virtual(v) => {
                v.fetch_add(i64::try_from(ms).unwrap_or(i64::MAX), Ordering::SeqCst);
            }
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}
