//! The wasmtime embedding: engine, component cache, sandbox limits, and calls into the guest.

use crate::backend::{Backend, HostCompletion, HostFetchError, HostRequest, HostResponse};
use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

wasmtime::component::bindgen!({ path: "../../wit", world: "source-facebook-marketing" });

use airbyte::source_facebook_marketing::host as wit_host;
pub use exports::airbyte::source_facebook_marketing::source::{LogLevel, Message, Progress, Status, StreamProgress};

/// The Graph API origin the component calls; `--graph-url` routes it elsewhere.
pub use sfm_wire::origin::{GRAPH_ORIGIN, url_host};

/// 64 KiB: room for a panic message and its location; the guest writes nothing else to stderr.
const GUEST_STDERR_BYTES: usize = 64 << 10;

/// 100 ms: the epoch tick that bounds guest compute between host calls.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// Sandbox limits for one guest.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most linear memory the guest may hold.
    pub memory_bytes: usize,
    /// Most compute time the guest may spend between two host calls.
    pub cpu_budget: Duration,
    /// A ceiling on each request's own timeout (`None`: the component's, 60 s). A host may
    /// hold requests to less; tests of slow answers do.
    pub request_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        // 512 MiB and 60 s: generous for a connector whose memory stays flat, small enough to
        // stop a runaway guest long before it harms the machine.
        Limits { memory_bytes: 512 << 20, cpu_budget: Duration::from_secs(60), request_timeout: None }
    }
}

/// Which hosts the guest may reach.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    /// Exact host names (the Graph host, the `--graph-url` host).
    pub hosts: Vec<String>,
    /// Host suffixes (image CDNs, only when thumbnails are fetched).
    pub suffixes: Vec<String>,
}

/// The image CDNs creatives' thumbnails are served from.
pub const THUMBNAIL_HOST_SUFFIXES: [&str; 2] = [".fbcdn.net", ".facebook.com"];

impl Allowlist {
    /// The hosts a sync may reach: Graph's, `graph_url`'s instead when one is given (a proxy or
    /// a simulator; Graph's stays allowed), and the image CDNs when it fetches thumbnails.
    pub fn for_sync(graph_url: Option<&str>, thumbnails: bool) -> Result<Allowlist, String> {
        let mut allow =
            Allowlist { hosts: vec![url_host(GRAPH_ORIGIN).unwrap_or_default().to_string()], suffixes: Vec::new() };
        if let Some(u) = graph_url {
            allow.hosts.push(url_host(u).ok_or_else(|| format!("{u} is not an absolute URL"))?.to_string());
        }
        if thumbnails {
            allow.suffixes.extend(THUMBNAIL_HOST_SUFFIXES.map(str::to_string));
        }
        Ok(allow)
    }

    /// As [`Allowlist::for_sync`], for the sync `config` (JSON text) describes: thumbnails when
    /// it sets `fetch_thumbnail_images`.
    pub fn for_config(config: Option<&str>, graph_url: Option<&str>) -> Result<Allowlist, String> {
        let thumbnails = config
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| v.get("fetch_thumbnail_images").and_then(serde_json::Value::as_bool))
            .unwrap_or(false);
        Allowlist::for_sync(graph_url, thumbnails)
    }

    pub fn permits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.contains(&host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }
}

/// wasmtime's [`StoreLimits`], remembering a refused memory growth so that the error can say
/// which limit stopped the guest.
struct SandboxLimits {
    inner: StoreLimits,
    memory_cap: usize,
    /// The size the guest asked its memory to grow to when the cap refused it.
    memory_refused: Option<usize>,
    /// The largest size the guest's memory has grown to.
    memory_peak: usize,
}

impl wasmtime::ResourceLimiter for SandboxLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_refused = Some(desired);
        }
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_peak = self.memory_peak.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// A duration as people read a limit: `250 ms`, `60 s`.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{} s", d.as_secs()) }
}

/// Bytes as MiB, one decimal.
fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// The host side of one guest.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: SandboxLimits,
    backend: Box<dyn Backend>,
    allow: Allowlist,
    /// Replaces [`GRAPH_ORIGIN`] in URLs (proxy or simulator); `None` keeps it.
    graph_url: Option<String>,
    last_host_return: Instant,
    cpu_budget: Duration,
    request_timeout: Option<Duration>,
    /// The guest's stderr: only Rust's panic hook writes there, so a trap can say why.
    guest_stderr: MemoryOutputPipe,
    /// Requests performed, for summaries.
    pub requests: u64,
    /// Requests in flight now, and the most there were at once.
    pub in_flight: usize,
    pub peak_in_flight: usize,
    /// What was denied, for tests of the sandbox.
    pub denied: Vec<String>,
    /// Answers in, not yet handed to the guest (see [`HANDOVER_BYTES`]).
    held: std::collections::VecDeque<HostCompletion>,
}

/// 1 MiB: the answer bytes handed to the guest by one `http-fetch` (at least one answer). What
/// is handed over is copied into the guest's memory, which never shrinks, while the host frees
/// each answer once handed over: so answers that came in together (several result pages) wait
/// here and go one call after another, and the guest's memory holds about one page at a time.
pub const HANDOVER_BYTES: usize = 1 << 20;

impl HostState {
    /// The guest's stderr on one line, without the hint about `RUST_BACKTRACE`.
    pub fn guest_stderr(&self) -> String {
        let text = String::from_utf8_lossy(&self.guest_stderr.contents()).into_owned();
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HostState {
    /// The host's request for the guest's, or why the sandbox refuses it.
    fn admit(&mut self, req: wit_host::Request) -> Result<HostRequest, HostFetchError> {
        let url = sfm_wire::origin::rewrite_origin(&req.url, self.graph_url.as_deref()).into_owned();
        let host = url_host(&url).unwrap_or("").to_string();
        if !self.allow.permits(&host) {
            self.denied.push(host.clone());
            return Err(HostFetchError::DeniedByHost(format!("{host} is not on the host's allowlist")));
        }
        Ok(HostRequest {
            method: match req.method {
                wit_host::Method::Get => "GET".into(),
                wit_host::Method::Post => "POST".into(),
            },
            url,
            headers: req.headers,
            body: req.body.unwrap_or_default(),
            timeout_ms: match self.request_timeout {
                Some(t) => req.timeout_ms.min(u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
                None => req.timeout_ms,
            },
            max_response_bytes: req.max_response_bytes,
        })
    }
}

fn to_wit(outcome: Result<HostResponse, HostFetchError>) -> Result<wit_host::Response, wit_host::FetchError> {
    outcome
        .map(|r| {
            // A body that is UTF-8 (nearly every one) goes over as text: a string is copied into
            // the guest in one move, where a byte list is lowered byte by byte.
            let body = match String::from_utf8(r.body) {
                Ok(text) => wit_host::Body::Text(text),
                Err(e) => wit_host::Body::Bytes(e.into_bytes()),
            };
            wit_host::Response { status: r.status, headers: r.headers, body }
        })
        .map_err(|e| match e {
            HostFetchError::Timeout => wit_host::FetchError::Timeout,
            HostFetchError::ConnectionRefused => wit_host::FetchError::ConnectionRefused,
            HostFetchError::ConnectionReset => wit_host::FetchError::ConnectionReset,
            HostFetchError::Dns(s) => wit_host::FetchError::Dns(s),
            HostFetchError::Tls(s) => wit_host::FetchError::Tls(s),
            HostFetchError::DeniedByHost(s) => wit_host::FetchError::DeniedByHost(s),
            HostFetchError::Other(s) => wit_host::FetchError::Other(s),
            HostFetchError::TooLarge(cap) => wit_host::FetchError::ResponseTooLarge(cap),
        })
}

impl wit_host::Host for HostState {
    fn http_fetch(&mut self, start: Vec<wit_host::Outgoing>, wait_ms: Option<u64>) -> Vec<wit_host::Completion> {
        let mut done = Vec::new();
        for outgoing in start {
            match self.admit(outgoing.request) {
                Ok(request) => {
                    self.requests += 1;
                    self.in_flight += 1;
                    self.peak_in_flight = self.peak_in_flight.max(self.in_flight);
                    self.backend.start(outgoing.id, request);
                }
                // Refused by the sandbox: complete at once, without the backend.
                Err(e) => done.push(wit_host::Completion { id: outgoing.id, outcome: to_wit(Err(e)) }),
            }
        }
        // A refusal is an answer already: only what else is ready goes with it. Answers held
        // from an earlier call go before any wait.
        if self.held.is_empty() {
            let wait = if done.is_empty() { wait_ms } else { Some(0) };
            self.held.extend(self.backend.wait(wait));
        }
        let mut bytes = 0;
        while let Some((_, outcome)) = self.held.front() {
            let size = outcome.as_ref().map_or(0, |r| r.body.len());
            if bytes > 0 && bytes + size > HANDOVER_BYTES {
                break;
            }
            bytes += size;
            let Some((id, outcome)) = self.held.pop_front() else { break };
            self.in_flight = self.in_flight.saturating_sub(1);
            done.push(wit_host::Completion { id, outcome: to_wit(outcome) });
        }
        self.last_host_return = Instant::now();
        done
    }

    fn sleep(&mut self, ms: u64) {
        self.backend.sleep(ms);
        self.last_host_return = Instant::now();
    }
}

/// A compiled component and the engine it belongs to; compile once, instantiate many times.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    component: Component,
    linker: Arc<Linker<HostState>>,
    ticker_stop: Arc<AtomicBool>,
}

/// Where precompiled components are kept: `SFM_CACHE_DIR`, else the user's cache folder
/// (`$XDG_CACHE_HOME`, `~/.cache`, or `~/Library/Caches` on macOS) under
/// `source-facebook-marketing/`, else the system's temporary folder.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SFM_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| {
        home.map(|h| if cfg!(target_os = "macos") { h.join("Library").join("Caches") } else { h.join(".cache") })
    });
    base.unwrap_or_else(std::env::temp_dir).join("source-facebook-marketing")
}

impl Runtime {
    /// Loads the component at `path` (see [`Runtime::from_bytes`]).
    pub fn load(path: &Path) -> Result<Runtime> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the component at {}; build it with `cargo build --release --target wasm32-wasip2 -p source-facebook-marketing` or pass --component",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes)
    }

    /// Compiles a component, or reuses its precompiled copy from [`cache_dir`] (keyed by the
    /// component's and the engine's hashes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // `HOST_TEST_PERFMAP=1` names guest functions for `perf` (profiling builds only).
        if std::env::var_os("HOST_TEST_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let component = load_cached(&engine, &cache_dir(), bytes)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        SourceFacebookMarketing::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (e, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                e.increment_epoch();
            }
        });
        Ok(Runtime { engine, component, linker: Arc::new(linker), ticker_stop })
    }

    /// A fresh guest instance with its own store.
    pub fn instantiate(
        &self,
        backend: Box<dyn Backend>,
        allow: Allowlist,
        graph_url: Option<String>,
        limits: &Limits,
    ) -> Result<Guest> {
        let clock = backend.clock();
        let guest_stderr = MemoryOutputPipe::new(GUEST_STDERR_BYTES);
        let wasi = WasiCtxBuilder::new()
            .stderr(guest_stderr.clone())
            .wall_clock(clock.clone())
            .monotonic_clock(clock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: SandboxLimits {
                inner: StoreLimitsBuilder::new().memory_size(limits.memory_bytes).trap_on_grow_failure(true).build(),
                memory_cap: limits.memory_bytes,
                memory_refused: None,
                memory_peak: 0,
            },
            backend,
            allow,
            graph_url,
            last_host_return: Instant::now(),
            cpu_budget: limits.cpu_budget,
            request_timeout: limits.request_timeout,
            guest_stderr,
            requests: 0,
            in_flight: 0,
            peak_in_flight: 0,
            denied: Vec::new(),
            held: std::collections::VecDeque::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state.last_host_return.elapsed() > state.cpu_budget {
                Err(wasmtime::Error::msg(format!(
                    "the connector computed for over {} without calling the host (its CPU budget, --cpu-budget-secs); it was stopped",
                    human(state.cpu_budget)
                )))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        let bindings = match SourceFacebookMarketing::instantiate(&mut store, &self.component, &self.linker) {
            Ok(b) => b,
            Err(e) => return Err(explain(store.data(), e)),
        };
        Ok(Guest { store, bindings })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if Arc::strong_count(&self.ticker_stop) == 1 {
            self.ticker_stop.store(true, Ordering::Relaxed);
        }
    }
}

fn load_cached(engine: &Engine, dir: &Path, bytes: &[u8]) -> Result<Component> {
    let mut h = Sha256::new();
    h.update(bytes);
    let mut engine_hash = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut engine_hash);
    h.update(std::hash::Hasher::finish(&engine_hash).to_le_bytes());
    let digest = h.finalize();
    let key: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let _ = std::fs::create_dir_all(dir);
    let cached = dir.join(format!("{key}.cwasm"));
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same engine
        // configuration (the key hashes the wasm and the engine's compatibility hash); a
        // corrupt or foreign file fails deserialisation and is recompiled below.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| anyhow!("compiling the component: {e:#}"))?;
    if let Ok(serialized) = component.serialize() {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, serialized).is_ok() {
            let _ = std::fs::rename(&tmp, &cached);
        }
    }
    Ok(component)
}

/// Names the sandbox limit behind a trap, if one was hit: wasmtime's own words come after a
/// wasm backtrace, which hides them.
fn explain(state: &HostState, e: wasmtime::Error) -> anyhow::Error {
    let e = anyhow::Error::from(e);
    if let Some(wanted) = state.limits.memory_refused {
        return e.context(format!(
            "the connector was stopped at its memory limit of {} (it asked for {}); raise --memory-mb",
            mib(state.limits.memory_cap),
            mib(wanted)
        ));
    }
    let panic = state.guest_stderr();
    if panic.is_empty() { e } else { e.context(format!("the connector panicked: {panic}")) }
}

/// Starts the guest's CPU budget afresh on entering it.
fn enter(store: &mut Store<HostState>) {
    store.data_mut().last_host_return = Instant::now();
}

/// One instantiated guest.
pub struct Guest {
    store: Store<HostState>,
    bindings: SourceFacebookMarketing,
}

impl Guest {
    /// The largest size the guest's linear memory has grown to, in bytes.
    pub fn memory_peak(&self) -> usize {
        self.store.data().limits.memory_peak
    }

    /// Starts the CPU budget afresh: the host's own time between calls is not the guest's.
    fn enter(&mut self) {
        enter(&mut self.store);
    }

    fn explain(&self, e: wasmtime::Error) -> anyhow::Error {
        explain(self.store.data(), e)
    }

    pub fn spec(&mut self) -> Result<Vec<Message>> {
        self.enter();
        let r = self.bindings.airbyte_source_facebook_marketing_source().call_spec(&mut self.store);
        r.map_err(|e| self.explain(e))
    }

    pub fn check(&mut self, config: &str) -> Result<Vec<Message>> {
        self.enter();
        let r = self.bindings.airbyte_source_facebook_marketing_source().call_check(&mut self.store, config);
        r.map_err(|e| self.explain(e))
    }

    pub fn discover(&mut self, config: &str) -> Result<Vec<Message>> {
        self.enter();
        let r = self.bindings.airbyte_source_facebook_marketing_source().call_discover(&mut self.store, config);
        r.map_err(|e| self.explain(e))
    }

    /// Runs a sync, handing each batch of messages to `sink`; `sink` returns false to stop early.
    pub fn read(
        &mut self,
        config: &str,
        catalog: &str,
        state: Option<&str>,
        sink: impl FnMut(Vec<Message>) -> bool,
    ) -> Result<()> {
        self.read_with_progress(config, catalog, state, sink, |_| {})
    }

    /// As [`Guest::read`], and hands a progress snapshot to `on_progress` after every batch.
    pub fn read_with_progress(
        &mut self,
        config: &str,
        catalog: &str,
        state: Option<&str>,
        mut sink: impl FnMut(Vec<Message>) -> bool,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<()> {
        let source = self.bindings.airbyte_source_facebook_marketing_source();
        enter(&mut self.store);
        let reader: ResourceAny = match source.reader().call_constructor(&mut self.store, config, catalog, state) {
            Ok(r) => r,
            Err(e) => return Err(explain(self.store.data(), e)),
        };
        loop {
            enter(&mut self.store);
            let batch = match source.reader().call_next(&mut self.store, reader) {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) => return Err(explain(self.store.data(), e)),
            };
            let go_on = sink(batch);
            enter(&mut self.store);
            match source.reader().call_progress(&mut self.store, reader) {
                Ok(p) => on_progress(&p),
                Err(e) => return Err(explain(self.store.data(), e)),
            }
            if !go_on {
                break;
            }
        }
        reader.resource_drop(&mut self.store).map_err(|e| explain(self.store.data(), e))?;
        Ok(())
    }

    /// What the guest wrote to stderr (a panic message, if it panicked), on one line.
    pub fn guest_stderr(&self) -> String {
        self.store.data().guest_stderr()
    }

    pub fn state(&self) -> &HostState {
        self.store.data()
    }
}
