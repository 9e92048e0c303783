//! Recording a sync and replaying it exactly (`host-test read --record FILE`,
//! `host-test replay FILE`).
//!
//! A recording is one JSONL file, each line an object with a `type`:
//!
//! - `recording` (the first line): `version` (1), `component_sha256`, `config` (secrets
//!   redacted, as in every other output), `catalog`, `state` (or null), `seed`, `simulator` (the
//!   in-process preset, or null), `graph_url` (or null), `recorded_at_ms`;
//! - `start`: a request the component started: `id`, `method`, `url`, `headers`, `body`
//!   (UTF-8 text, or `body_hex`), the token removed everywhere (`**********`);
//! - `wait`: one wait for answers: `wait_ms` (or null), and `completed`, each `{id, response:
//!   {status, headers, body | body_hex}}` or `{id, error: {kind, detail}}`;
//! - `sleep`: `ms`;
//! - `clock`: one reading of the clock by the component: `ms`;
//! - `output`: one protocol line the sync wrote, as written (redacted).
//!
//! The component is deterministic given its inputs, its answers and its clock, so a replay
//! that answers every request, wait, sleep and clock reading from the file gives the same
//! output, byte for byte; the first request (or wait, sleep, reading, output line) that does not
//! match the file is a divergence, and replay stops there and names both sides.

use crate::backend::{Backend, Clock, HostCompletion, HostFetchError, HostRequest, HostResponse, ReadClock};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use sfm_wire::redact::{Redactor, redact_token_params};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const VERSION: u64 = 1;

fn redact(r: &Redactor, text: &str) -> String {
    redact_token_params(&r.redact(text.to_string()))
}

fn body_json(r: &Redactor, body: &[u8]) -> (String, Value) {
    match std::str::from_utf8(body) {
        Ok(text) => ("body".into(), Value::String(redact(r, text))),
        Err(_) => ("body_hex".into(), Value::String(body.iter().map(|b| format!("{b:02x}")).collect())),
    }
}

fn headers_json(r: &Redactor, headers: &[(String, String)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    "Bearer **********".to_string()
                } else {
                    redact(r, v)
                };
                json!([k, v])
            })
            .collect(),
    )
}

/// A request as the recording holds it: what replay compares.
fn request_json(r: &Redactor, id: u64, req: &HostRequest) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("start"));
    m.insert("id".into(), json!(id));
    m.insert("method".into(), json!(req.method));
    m.insert("url".into(), json!(redact(r, &req.url)));
    m.insert("headers".into(), headers_json(r, &req.headers));
    let (k, v) = body_json(r, &req.body);
    m.insert(k, v);
    Value::Object(m)
}

fn error_kind(e: &HostFetchError) -> (&'static str, String) {
    match e {
        HostFetchError::Timeout => ("timeout", String::new()),
        HostFetchError::ConnectionRefused => ("connection_refused", String::new()),
        HostFetchError::ConnectionReset => ("connection_reset", String::new()),
        HostFetchError::Dns(s) => ("dns", s.clone()),
        HostFetchError::Tls(s) => ("tls", s.clone()),
        HostFetchError::Denied(s) => ("denied", s.clone()),
        HostFetchError::Other(s) => ("other", s.clone()),
        HostFetchError::TooLarge(n) => ("too_large", n.to_string()),
    }
}

fn completion_json(r: &Redactor, (id, outcome): &HostCompletion) -> Value {
    match outcome {
        Ok(resp) => {
            let mut m = Map::new();
            m.insert("status".into(), json!(resp.status));
            m.insert("headers".into(), headers_json(r, &resp.headers));
            let (k, v) = body_json(r, &resp.body);
            m.insert(k, v);
            json!({"id": id, "response": Value::Object(m)})
        }
        Err(e) => {
            let (kind, detail) = error_kind(e);
            json!({"id": id, "error": {"kind": kind, "detail": redact(r, &detail)}})
        }
    }
}

fn completion_from(v: &Value) -> Result<HostCompletion> {
    let id = v["id"].as_u64().context("a completion without an id")?;
    if let Some(resp) = v.get("response") {
        let headers = resp["headers"]
            .as_array()
            .context("response headers")?
            .iter()
            .map(|h| (h[0].as_str().unwrap_or_default().to_string(), h[1].as_str().unwrap_or_default().to_string()))
            .collect();
        let body = match (resp.get("body"), resp.get("body_hex")) {
            (Some(Value::String(s)), _) => s.clone().into_bytes(),
            (_, Some(Value::String(h))) => (0..h.len() / 2)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .context("body_hex")?,
            _ => Vec::new(),
        };
        let status = u16::try_from(resp["status"].as_u64().context("response status")?)?;
        return Ok((id, Ok(HostResponse { status, headers, body })));
    }
    let e = &v["error"];
    let detail = e["detail"].as_str().unwrap_or_default().to_string();
    let err = match e["kind"].as_str().unwrap_or_default() {
        "timeout" => HostFetchError::Timeout,
        "connection_refused" => HostFetchError::ConnectionRefused,
        "connection_reset" => HostFetchError::ConnectionReset,
        "dns" => HostFetchError::Dns(detail),
        "tls" => HostFetchError::Tls(detail),
        "denied" => HostFetchError::Denied(detail),
        "too_large" => HostFetchError::TooLarge(detail.parse().unwrap_or(0)),
        _ => HostFetchError::Other(detail),
    };
    Ok((id, Err(err)))
}

/// Writes a recording as the sync runs, line by line, so that a sync that dies still leaves
/// everything up to its end.
#[derive(Debug)]
pub struct Recorder {
    out: std::io::BufWriter<std::fs::File>,
    redactor: Redactor,
    failed: Option<String>,
}

impl Recorder {
    /// Creates `path` and writes the header.
    pub fn create(path: &Path, header: Value, redactor: Redactor) -> Result<Arc<Mutex<Recorder>>> {
        let file =
            std::fs::File::create(path).with_context(|| format!("cannot create the recording {}", path.display()))?;
        let mut r = Recorder { out: std::io::BufWriter::new(file), redactor, failed: None };
        r.write(&header);
        Ok(Arc::new(Mutex::new(r)))
    }

    fn write(&mut self, v: &Value) {
        if self.failed.is_none()
            && let Err(e) = writeln!(self.out, "{v}")
        {
            self.failed = Some(e.to_string());
        }
    }

    /// One protocol line the sync wrote.
    pub fn output(&mut self, line: &str) {
        self.write(&json!({"type": "output", "line": line}));
    }

    /// Flushes the file; the first write error, if any.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(e) = &self.failed {
            bail!("writing the recording failed: {e}");
        }
        self.out.flush().context("writing the recording")
    }
}

/// Records what `inner` is asked and answers.
pub struct RecordingBackend {
    inner: Box<dyn Backend>,
    rec: Arc<Mutex<Recorder>>,
    clock: Clock,
}

#[derive(Debug)]
struct RecordingClock {
    inner: Clock,
    rec: Arc<Mutex<Recorder>>,
}

impl ReadClock for RecordingClock {
    fn now_ms(&self) -> i64 {
        let ms = self.inner.now_ms();
        if let Ok(mut r) = self.rec.lock() {
            r.write(&json!({"type": "clock", "ms": ms}));
        }
        ms
    }
}

impl RecordingBackend {
    pub fn new(inner: Box<dyn Backend>, rec: Arc<Mutex<Recorder>>) -> Self {
        let clock = Clock::Read(Arc::new(RecordingClock { inner: inner.clock(), rec: rec.clone() }));
        RecordingBackend { inner, rec, clock }
    }
}

impl Backend for RecordingBackend {
    fn start(&mut self, id: u64, req: HostRequest) {
        if let Ok(mut r) = self.rec.lock() {
            let v = request_json(&r.redactor, id, &req);
            r.write(&v);
        }
        self.inner.start(id, req);
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let done = self.inner.wait(wait_ms);
        if let Ok(mut r) = self.rec.lock() {
            let completed: Vec<Value> = done.iter().map(|c| completion_json(&r.redactor, c)).collect();
            r.write(&json!({"type": "wait", "wait_ms": wait_ms, "completed": completed}));
        }
        done
    }

    fn sleep(&mut self, ms: u64) {
        if let Ok(mut r) = self.rec.lock() {
            r.write(&json!({"type": "sleep", "ms": ms}));
        }
        self.inner.sleep(ms);
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

/// A recording read back: its header, its events, and the output lines it wrote.
#[derive(Debug)]
pub struct Recording {
    pub header: Value,
    events: VecDeque<(usize, Value)>,
    pub outputs: Vec<String>,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Recording> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open the recording {}", path.display()))?;
        let mut header = None;
        let mut events = VecDeque::new();
        let mut outputs = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let v: Value = serde_json::from_str(&line)
                .with_context(|| format!("{} line {}: not a JSON object", path.display(), i + 1))?;
            match v["type"].as_str() {
                Some("recording") if i == 0 => header = Some(v),
                Some("output") => outputs.push(v["line"].as_str().unwrap_or_default().to_string()),
                Some("start" | "wait" | "sleep" | "clock") => events.push_back((i + 1, v)),
                other => bail!("{} line {}: unknown entry {other:?}", path.display(), i + 1),
            }
        }
        let header = header.with_context(|| format!("{}: no recording header on its first line", path.display()))?;
        if header["version"].as_u64() != Some(VERSION) {
            bail!(
                "{}: recording version {} (this host-test reads version {VERSION})",
                path.display(),
                header["version"]
            );
        }
        Ok(Recording { header, events, outputs })
    }

    /// Every host the recorded requests went to.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .events
            .iter()
            .filter(|(_, e)| e["type"] == "start")
            .filter_map(|(_, e)| crate::runtime::url_host(e["url"].as_str()?).map(str::to_string))
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// Where a replay stands: the events not yet used and the first divergence.
#[derive(Debug)]
pub struct Replay {
    events: VecDeque<(usize, Value)>,
    pub divergence: Option<String>,
    last_clock: i64,
    redactor: Redactor,
    pub used: usize,
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

impl Replay {
    pub fn new(recording: &Recording) -> Arc<Mutex<Replay>> {
        Arc::new(Mutex::new(Replay {
            events: recording.events.clone(),
            divergence: None,
            last_clock: recording.header["recorded_at_ms"].as_i64().unwrap_or(0),
            redactor: Redactor::default(),
            used: 0,
        }))
    }

    /// The next recorded event if it is of `kind` and `matches`; else the divergence is noted.
    fn next(&mut self, kind: &str, made: &Value, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        if self.divergence.is_some() {
            return None;
        }
        match self.events.front() {
            Some((_, e)) if e["type"] == kind && matches(e) => {
                self.used += 1;
                self.events.pop_front().map(|(_, e)| e)
            }
            Some((line, e)) => {
                self.divergence = Some(format!(
                    "the replay diverged at line {line} of the recording\n  expected: {}\n  made:     {}",
                    short(e),
                    short(made)
                ));
                None
            }
            None => {
                self.divergence =
                    Some(format!("the replay diverged after the recording's last entry\n  made: {}", short(made)));
                None
            }
        }
    }
}

/// Answers the component from a recording alone.
pub struct ReplayBackend {
    replay: Arc<Mutex<Replay>>,
    clock: Clock,
    /// Requests started and not yet answered: answered with an error once the replay diverged.
    pending: Vec<u64>,
}

#[derive(Debug)]
struct ReplayClock {
    replay: Arc<Mutex<Replay>>,
}

impl ReadClock for ReplayClock {
    fn now_ms(&self) -> i64 {
        let Ok(mut r) = self.replay.lock() else { return 0 };
        let made = json!({"type": "clock"});
        match r.next("clock", &made, |_| true) {
            Some(e) => {
                r.last_clock = e["ms"].as_i64().unwrap_or(r.last_clock);
                r.last_clock
            }
            None => r.last_clock,
        }
    }
}

impl ReplayBackend {
    pub fn new(replay: Arc<Mutex<Replay>>) -> Self {
        let clock = Clock::Read(Arc::new(ReplayClock { replay: replay.clone() }));
        ReplayBackend { replay, clock, pending: Vec::new() }
    }
}

impl Backend for ReplayBackend {
    fn start(&mut self, id: u64, req: HostRequest) {
        self.pending.push(id);
        let Ok(mut r) = self.replay.lock() else { return };
        let made = request_json(&r.redactor, id, &req);
        r.next("start", &made, |e| *e == made);
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let replay = self.replay.clone();
        let Ok(mut r) = replay.lock() else { return Vec::new() };
        let made = json!({"type": "wait", "wait_ms": wait_ms});
        let answered = r
            .next("wait", &made, |e| e["wait_ms"].as_u64() == wait_ms)
            .and_then(|e| e["completed"].as_array().map(|c| c.iter().map(completion_from).collect::<Result<Vec<_>>>()));
        match answered {
            Some(Ok(done)) => {
                self.pending.retain(|id| !done.iter().any(|(d, _)| d == id));
                done
            }
            Some(Err(e)) => {
                r.divergence.get_or_insert(format!("the recording is damaged: {e:#}"));
                drop(r);
                self.fail_pending()
            }
            None => {
                drop(r);
                self.fail_pending()
            }
        }
    }

    fn sleep(&mut self, ms: u64) {
        if let Ok(mut r) = self.replay.lock() {
            let made = json!({"type": "sleep", "ms": ms});
            r.next("sleep", &made, |e| e["ms"].as_u64() == Some(ms));
            // Past a divergence the clock runs virtually, so that the component's retries of
            // the requests that now fail pass and the sync ends.
            if r.divergence.is_some() {
                r.last_clock = r.last_clock.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
            }
        }
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

impl ReplayBackend {
    /// After a divergence nothing more can be answered: every request in flight fails.
    fn fail_pending(&mut self) -> Vec<HostCompletion> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|id| (id, Err(HostFetchError::Other("the replay diverged from the recording".into()))))
            .collect()
    }
}

/// The recording's config, catalog and state as the component takes them.
pub fn inputs(recording: &Recording) -> Result<(String, String, Option<String>)> {
    let h = &recording.header;
    let config = h.get("config").filter(|v| v.is_object()).ok_or_else(|| anyhow!("the recording has no config"))?;
    let catalog = h.get("catalog").filter(|v| v.is_object()).ok_or_else(|| anyhow!("the recording has no catalog"))?;
    let state = match h.get("state") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.to_string()),
    };
    Ok((config.to_string(), catalog.to_string(), state))
}
