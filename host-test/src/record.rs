//! Recording a sync and replaying it exactly (`host-test read --record FILE`,
//! `host-test replay FILE`).
//!
//! A recording is one JSONL file, each line an [`Entry`] (a serde enum tagged by `type`):
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
//! match the file is a divergence, and replay stops there and names both sides. [`Replay`] is the
//! one place that decides it, for exchanges and output lines alike.

use crate::backend::{Backend, Clock, HostCompletion, HostFetchError, HostRequest, HostResponse, ReadClock};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sfm_wire::redact::{Redactor, redact_token_params};
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub const VERSION: u64 = 1;

/// One line of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Recording(Header),
    Start(Start),
    Wait { wait_ms: Option<u64>, completed: Vec<Completion> },
    Sleep { ms: u64 },
    Clock { ms: i64 },
    Output { line: String },
}

/// The first line: what the sync was run with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u64,
    pub component_sha256: Option<String>,
    /// Secrets redacted.
    pub config: Value,
    pub catalog: Value,
    pub state: Option<Value>,
    pub seed: u64,
    pub simulator: Option<String>,
    pub graph_url: Option<String>,
    pub recorded_at_ms: i64,
}

/// A body: UTF-8 text (redacted), or hex when it is not text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<String>,
}

/// A request the component started, the token removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub id: u64,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(flatten)]
    pub body: Body,
}

/// One answer of a wait.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        #[serde(flatten)]
        body: Body,
    },
    /// A transport failure, as `sfm_wire::fetch::FetchError::kind_and_detail` names it.
    Error { kind: String, detail: String },
}

fn redact(r: &Redactor, text: &str) -> String {
    redact_token_params(&r.redact(text.to_string()))
}

fn body_of(r: &Redactor, body: &[u8]) -> Body {
    match std::str::from_utf8(body) {
        Ok(text) => Body { body: Some(redact(r, text)), body_hex: None },
        Err(_) => Body { body: None, body_hex: Some(body.iter().map(|b| format!("{b:02x}")).collect()) },
    }
}

fn bytes_of(body: &Body) -> Result<Vec<u8>> {
    match (&body.body, &body.body_hex) {
        (Some(s), _) => Ok(s.clone().into_bytes()),
        (None, Some(h)) => (0..h.len() / 2)
            .map(|i| h.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .context("body_hex is not hex"),
        (None, None) => Ok(Vec::new()),
    }
}

fn headers_of(r: &Redactor, headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let v =
                if k.eq_ignore_ascii_case("authorization") { "Bearer **********".to_string() } else { redact(r, v) };
            (k.clone(), v)
        })
        .collect()
}

impl Start {
    /// A request as the recording holds it: what replay compares.
    fn of(r: &Redactor, id: u64, req: &HostRequest) -> Start {
        Start {
            id,
            method: req.method.clone(),
            url: redact(r, &req.url),
            headers: headers_of(r, &req.headers),
            body: body_of(r, &req.body),
        }
    }
}

impl Completion {
    fn of(r: &Redactor, (id, outcome): &HostCompletion) -> Completion {
        let outcome = match outcome {
            Ok(resp) => Outcome::Response {
                status: resp.status,
                headers: headers_of(r, &resp.headers),
                body: body_of(r, &resp.body),
            },
            Err(e) => {
                let (kind, detail) = e.kind_and_detail();
                Outcome::Error { kind: kind.to_string(), detail: redact(r, &detail) }
            }
        };
        Completion { id: *id, outcome }
    }

    /// The answer as the host hands it to the component.
    fn answer(&self) -> Result<HostCompletion> {
        let outcome = match &self.outcome {
            Outcome::Response { status, headers, body } => {
                Ok(HostResponse { status: *status, headers: headers.clone(), body: bytes_of(body)? })
            }
            Outcome::Error { kind, detail } => Err(HostFetchError::from_kind(kind, detail.clone())
                .with_context(|| format!("an error of unknown kind {kind:?} ({detail})"))?),
        };
        Ok((self.id, outcome))
    }
}

/// The lock's contents even after a panic elsewhere held it: a recording or replay goes on (a
/// backend must answer every request in flight).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
    pub fn create(path: &Path, header: Header, redactor: Redactor) -> Result<Arc<Mutex<Recorder>>> {
        let file =
            std::fs::File::create(path).with_context(|| format!("cannot create the recording {}", path.display()))?;
        let mut r = Recorder { out: std::io::BufWriter::new(file), redactor, failed: None };
        r.write(&Entry::Recording(header));
        Ok(Arc::new(Mutex::new(r)))
    }

    fn write(&mut self, entry: &Entry) {
        if self.failed.is_some() {
            return;
        }
        let written = serde_json::to_string(entry)
            .map_err(|e| e.to_string())
            .and_then(|line| writeln!(self.out, "{line}").map_err(|e| e.to_string()));
        if let Err(e) = written {
            self.failed = Some(e);
        }
    }

    /// One protocol line the sync wrote.
    pub fn output(&mut self, line: &str) {
        self.write(&Entry::Output { line: line.to_string() });
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
        lock(&self.rec).write(&Entry::Clock { ms });
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
        let mut r = lock(&self.rec);
        let start = Start::of(&r.redactor, id, &req);
        r.write(&Entry::Start(start));
        drop(r);
        self.inner.start(id, req);
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let done = self.inner.wait(wait_ms);
        let mut r = lock(&self.rec);
        let completed = done.iter().map(|c| Completion::of(&r.redactor, c)).collect();
        r.write(&Entry::Wait { wait_ms, completed });
        done
    }

    fn sleep(&mut self, ms: u64) {
        lock(&self.rec).write(&Entry::Sleep { ms });
        self.inner.sleep(ms);
    }

    fn clock(&self) -> Clock {
        self.clock.clone()
    }
}

/// A recording read back: its header, its exchanges (requests, waits, sleeps, clock readings),
/// and the output lines it wrote.
#[derive(Debug)]
pub struct Recording {
    pub header: Header,
    events: VecDeque<(usize, Entry)>,
    pub outputs: Vec<String>,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Recording> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open the recording {}", path.display()))?;
        let lines: Vec<String> = std::io::BufReader::new(file)
            .lines()
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", path.display()))?;
        Recording::parse(&lines).with_context(|| format!("the recording {}", path.display()))
    }

    /// A recording from its lines.
    pub fn parse(lines: &[String]) -> Result<Recording> {
        let mut header = None;
        let mut events = VecDeque::new();
        let mut outputs = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let entry: Entry =
                serde_json::from_str(line).with_context(|| format!("line {}: not an entry of a recording", i + 1))?;
            match entry {
                Entry::Recording(h) if i == 0 => header = Some(h),
                Entry::Recording(_) => bail!("line {}: a second header", i + 1),
                Entry::Output { line } => outputs.push(line),
                other => events.push_back((i + 1, other)),
            }
        }
        let header = header.context("no recording header on its first line")?;
        if header.version != VERSION {
            bail!("recording version {} (this host-test reads version {VERSION})", header.version);
        }
        Ok(Recording { header, events, outputs })
    }

    /// Every host the recorded requests went to.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Start(s) => crate::runtime::url_host(&s.url).map(str::to_string),
                _ => None,
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// Where a replay stands: the exchanges not yet used, the output lines not yet matched, and the
/// first divergence, found here and only here (an exchange or an output line that is not the
/// recording's next).
#[derive(Debug)]
pub struct Replay {
    events: VecDeque<(usize, Entry)>,
    outputs: Vec<String>,
    /// Output lines matched so far.
    pub written: usize,
    divergence: Option<String>,
    last_clock: i64,
    redactor: Redactor,
    pub used: usize,
}

fn short(e: &Entry) -> String {
    let mut s = serde_json::to_string(e).unwrap_or_default();
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
            outputs: recording.outputs.clone(),
            written: 0,
            divergence: None,
            last_clock: recording.header.recorded_at_ms,
            redactor: Redactor::default(),
            used: 0,
        }))
    }

    /// The next recorded exchange, if it is `made` (`same` compares them); else the divergence
    /// is noted.
    fn next(&mut self, made: &Entry, same: impl Fn(&Entry) -> bool) -> Option<Entry> {
        if self.divergence.is_some() {
            return None;
        }
        match self.events.front() {
            Some((_, e)) if same(e) => {
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

    /// The component wrote `line`: whether it is the recording's next output line (else the
    /// divergence is noted, and nothing more is taken).
    pub fn check_output(&mut self, line: &str) -> bool {
        if self.divergence.is_some() {
            return false;
        }
        if self.outputs.get(self.written).map(String::as_str) != Some(line) {
            self.divergence = Some(format!(
                "the replay diverged at output line {}\n  expected: {}\n  made:     {line}",
                self.written + 1,
                self.outputs.get(self.written).map_or("(no more lines)", String::as_str)
            ));
            return false;
        }
        self.written += 1;
        true
    }

    /// After the sync: the divergence, if any, including output the recording has and the
    /// replay did not write.
    pub fn divergence(&self) -> Option<String> {
        self.divergence.clone().or_else(|| {
            (self.written < self.outputs.len()).then(|| {
                format!(
                    "the replay diverged: it ended after {} output lines, the recording has {}\n  expected next: {}",
                    self.written,
                    self.outputs.len(),
                    self.outputs[self.written]
                )
            })
        })
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
        let mut r = lock(&self.replay);
        let made = Entry::Clock { ms: r.last_clock };
        if let Some(Entry::Clock { ms }) = r.next(&made, |e| matches!(e, Entry::Clock { .. })) {
            r.last_clock = ms;
        }
        r.last_clock
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
        let mut r = lock(&self.replay);
        let made = Entry::Start(Start::of(&r.redactor, id, &req));
        r.next(&made, |e| *e == made);
    }

    fn wait(&mut self, wait_ms: Option<u64>) -> Vec<HostCompletion> {
        let replay = self.replay.clone();
        let mut r = lock(&replay);
        let made = Entry::Wait { wait_ms, completed: Vec::new() };
        let answered = match r.next(&made, |e| matches!(e, Entry::Wait { wait_ms: w, .. } if *w == wait_ms)) {
            Some(Entry::Wait { completed, .. }) => {
                Some(completed.iter().map(Completion::answer).collect::<Result<Vec<_>>>())
            }
            _ => None,
        };
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
        let mut r = lock(&self.replay);
        r.next(&Entry::Sleep { ms }, |e| *e == Entry::Sleep { ms });
        // Past a divergence the clock runs virtually, so that the component's retries of the
        // requests that now fail pass and the sync ends.
        if r.divergence.is_some() {
            r.last_clock = r.last_clock.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
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
    if !h.config.is_object() {
        return Err(anyhow!("the recording has no config"));
    }
    if !h.catalog.is_object() {
        return Err(anyhow!("the recording has no catalog"));
    }
    let state = h.state.as_ref().filter(|s| !s.is_null()).map(Value::to_string);
    Ok((h.config.to_string(), h.catalog.to_string(), state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header() -> Header {
        Header {
            version: VERSION,
            component_sha256: Some("ab".into()),
            config: json!({"account_ids": ["1"]}),
            catalog: json!({"streams": []}),
            state: None,
            seed: 7,
            simulator: Some("default".into()),
            graph_url: None,
            recorded_at_ms: 1_000,
        }
    }

    fn request(url: &str) -> HostRequest {
        HostRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("authorization".into(), "Bearer EAAGsecret".into())],
            body: Vec::new(),
            timeout_ms: 1_000,
            max_response_bytes: 1 << 20,
        }
    }

    fn lines(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(|e| serde_json::to_string(e).unwrap()).collect()
    }

    #[test]
    fn every_entry_reads_back_as_written() {
        let r = Redactor::default();
        let completions: Vec<HostCompletion> = vec![
            (1, Ok(HostResponse { status: 200, headers: vec![("x".into(), "y".into())], body: b"{}".to_vec() })),
            (2, Ok(HostResponse { status: 200, headers: vec![], body: vec![0xff, 0x00] })),
            (3, Err(HostFetchError::TooLarge(64 << 20))),
            (4, Err(HostFetchError::DeniedByHost("evil.example".into()))),
        ];
        let entries = vec![
            Entry::Recording(header()),
            Entry::Start(Start::of(&r, 1, &request("https://graph.facebook.com/v25.0/act_1"))),
            Entry::Wait { wait_ms: Some(50), completed: completions.iter().map(|c| Completion::of(&r, c)).collect() },
            Entry::Sleep { ms: 5_000 },
            Entry::Clock { ms: 2_000 },
            Entry::Output { line: r#"{"type":"LOG"}"#.into() },
        ];
        let text = lines(&entries);
        let back: Vec<Entry> = text.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, entries);
        let Entry::Wait { completed, .. } = &back[2] else { panic!() };
        let answers: Vec<HostCompletion> = completed.iter().map(|c| c.answer().unwrap()).collect();
        assert_eq!(format!("{answers:?}"), format!("{completions:?}"), "each answer as the host gave it");
        assert!(text[1].contains("Bearer **********") && !text[1].contains("EAAGsecret"), "{}", text[1]);
    }

    #[test]
    fn a_replay_follows_the_recording_and_names_the_first_divergence() {
        let r = Redactor::default();
        let url = "https://graph.facebook.com/v25.0/act_1";
        let entries = vec![
            Entry::Recording(header()),
            Entry::Start(Start::of(&r, 1, &request(url))),
            Entry::Output { line: "one".into() },
        ];
        let recording = Recording::parse(&lines(&entries)).unwrap();
        assert_eq!(recording.hosts(), ["graph.facebook.com"]);
        let replay = Replay::new(&recording);
        let mut backend = ReplayBackend::new(replay.clone());
        backend.start(1, request(url));
        assert!(lock(&replay).check_output("one"));
        assert_eq!(lock(&replay).divergence(), None);

        let replay = Replay::new(&recording);
        let mut backend = ReplayBackend::new(replay.clone());
        backend.start(1, request("https://graph.facebook.com/v25.0/act_2"));
        let d = lock(&replay).divergence().unwrap();
        assert!(d.contains("line 2 of the recording") && d.contains("act_2"), "{d}");
        // Past a divergence every request in flight still gets its answer, an error.
        let done = backend.wait(None);
        assert_eq!(done.len(), 1);
        assert!(done[0].1.is_err());
    }

    #[test]
    fn a_poisoned_lock_still_answers_every_request_in_flight() {
        let entries = vec![Entry::Recording(header())];
        let recording = Recording::parse(&lines(&entries)).unwrap();
        let replay = Replay::new(&recording);
        let poisoner = replay.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(replay.is_poisoned());
        let mut backend = ReplayBackend::new(replay);
        backend.start(1, request("https://graph.facebook.com/v25.0/act_1"));
        let done = backend.wait(Some(10));
        assert_eq!(done.len(), 1, "the request in flight is answered");
    }

    #[test]
    fn a_damaged_recording_is_refused_with_its_line() {
        let mut text = lines(&[Entry::Recording(header())]);
        text.push(r#"{"type":"teleport"}"#.into());
        let e = Recording::parse(&text).unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        let e = Recording::parse(&[r#"{"type":"sleep","ms":1}"#.to_string()]).unwrap_err();
        assert!(format!("{e:#}").contains("no recording header"), "{e:#}");
    }
}
