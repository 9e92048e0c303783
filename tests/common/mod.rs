//! Scenario-test harness: the core's read machine driven by the shared driver loop against the
//! in-process Graph API simulator, on the simulator's virtual clock.

#![allow(dead_code)]

use graph_sim::{SimConfig, SimRequest, Simulator, TransportFault};
use serde_json::{Value, json};
use source_facebook_marketing::catalog::full_catalog;
use source_facebook_marketing::config::Config;
use source_facebook_marketing::driver::{BatchLimit, Completion, Driver, Io, TimeoutReason};
use source_facebook_marketing::http::{FetchError, Request, RequestId, Response};
use source_facebook_marketing::protocol::Message;
use source_facebook_marketing::read::ReadMachine;
use source_facebook_marketing::read::insights::JobStats;
use source_facebook_marketing::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// `Io` over the simulator: requests run concurrently in-process, their latencies overlapping
/// on the virtual clock (deterministically); sleeps advance the clock.
pub struct SimIo<'a> {
    pub sim: &'a mut Simulator,
    pub slept: Vec<(Duration, TimeoutReason)>,
    /// Real time spent inside the simulator, to tell it apart from the core's.
    pub sim_time: Duration,
    /// The most requests that were in flight at once.
    pub peak_in_flight: usize,
}

impl<'a> SimIo<'a> {
    pub fn new(sim: &'a mut Simulator) -> Self {
        SimIo { sim, slept: Vec::new(), sim_time: Duration::ZERO, peak_in_flight: 0 }
    }
}

impl Io for SimIo<'_> {
    fn exchange(&mut self, start: Vec<(RequestId, Request)>, wait: Option<Duration>) -> Vec<Completion> {
        // Real time, to report how much of a benchmark the simulator itself costs.
        #[allow(clippy::disallowed_methods)]
        let t = std::time::Instant::now();
        for (id, request) in start {
            let req = SimRequest {
                method: request.method.to_string(),
                url: request.url,
                headers: request.headers,
                body: request.body.unwrap_or_default(),
            };
            self.sim.start(id.0, req);
        }
        self.peak_in_flight = self.peak_in_flight.max(self.sim.in_flight());
        let done = self.sim.complete(wait.map(|w| w.as_millis() as u64));
        self.sim_time += t.elapsed();
        done.into_iter()
            .map(|(id, answer)| {
                let outcome = match answer {
                    Ok(r) => Ok(Response { status: r.status, headers: r.headers, body: r.body }),
                    Err(TransportFault::Timeout) => Err(FetchError::Timeout),
                    Err(TransportFault::ConnectionReset) => Err(FetchError::ConnectionReset),
                    Err(TransportFault::ConnectionRefused) => Err(FetchError::ConnectionRefused),
                };
                (RequestId(id), outcome)
            })
            .collect()
    }

    fn sleep(&mut self, duration: Duration, reason: TimeoutReason) {
        self.slept.push((duration, reason));
        self.sim.advance(duration.as_millis() as u64);
    }

    fn now(&mut self) -> Timestamp {
        Timestamp::from_millis(self.sim.now_ms())
    }
}

/// What a read emitted, sorted out.
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<Message>,
    pub records: BTreeMap<String, Vec<Value>>,
    /// The last state of each stream.
    pub states: BTreeMap<String, Value>,
    /// Every state message in order: (stream, state, records emitted before it).
    pub state_log: Vec<(String, Value, usize)>,
    pub errors: Vec<Value>,
    pub slept: Vec<(Duration, TimeoutReason)>,
    pub sim_time: Duration,
    /// What the report jobs of each insights stream took.
    pub job_stats: BTreeMap<String, JobStats>,
    /// The most requests that were in flight at once.
    pub peak_in_flight: usize,
}

impl Output {
    /// The job counts of an insights stream (all zero if it ran no job).
    pub fn jobs(&self, stream: &str) -> JobStats {
        self.job_stats.get(stream).copied().unwrap_or_default()
    }
}

impl Output {
    pub fn ids(&self, stream: &str) -> BTreeSet<String> {
        self.records.get(stream).into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
    }

    pub fn count(&self, stream: &str) -> usize {
        self.records.get(stream).map_or(0, Vec::len)
    }

    /// The message counts after which a STATE message was emitted: the points where stopping
    /// and resuming must lose nothing.
    pub fn state_stops(&self) -> Vec<usize> {
        self.messages.iter().enumerate().filter(|(_, m)| matches!(m, Message::State(_))).map(|(i, _)| i + 1).collect()
    }

    /// The state messages as Airbyte would pass them to the next sync.
    pub fn state_messages(&self) -> String {
        state_messages(&self.states)
    }
}

/// Each stream's last state as the STATE messages Airbyte passes to the next sync.
pub fn state_messages(states: &BTreeMap<String, Value>) -> String {
    let msgs: Vec<Value> = states
        .iter()
        .map(|(s, v)| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": s}, "stream_state": v}}))
        .collect();
    Value::Array(msgs).to_string()
}

/// The WARN lines a read logged.
pub fn warnings(out: &Output) -> Vec<String> {
    out.messages
        .iter()
        .filter_map(|m| match m {
            Message::Log { level: source_facebook_marketing::protocol::LogLevel::Warn, message } => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect()
}

pub fn sim(preset: &str) -> Simulator {
    Simulator::new(SimConfig::preset(preset).expect("preset"))
}

/// A config for the simulator's accounts, insights from `days` days back.
pub fn config(sim: &Simulator, days: i64, extra: Value) -> Value {
    let now = chrono::DateTime::from_timestamp_millis(sim.now_ms()).unwrap();
    let start = (now - chrono::Duration::days(days)).format("%Y-%m-%dT00:00:00Z").to_string();
    let mut c = json!({
        "account_ids": sim.account_ids(),
        "credentials": {"auth_type": "Service", "access_token": sim.config().access_token},
        "start_date": start,
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        c.extend(e);
    }
    c
}

/// A configured catalog of the named streams (all offered when empty).
pub fn catalog(config: &Value, now: i64, streams: &[&str]) -> Value {
    let cfg = Config::from_value(config.clone(), Timestamp::from_millis(now)).expect("valid config");
    let mut cat = full_catalog(&cfg);
    if let Some(list) = cat["streams"].as_array_mut() {
        list.retain(|s| streams.is_empty() || streams.contains(&s["stream"]["name"].as_str().unwrap_or("")));
    }
    cat
}

/// Runs `check` to the end and returns its CONNECTION_STATUS line.
pub fn check(sim: &mut Simulator, config: &Value) -> String {
    let now = Timestamp::from_millis(sim.now_ms());
    let mut driver = Driver::new(source_facebook_marketing::check::CheckMachine::new(&config.to_string(), 7, now));
    let mut io = SimIo::new(sim);
    let mut lines = Vec::new();
    driver.run_to_end(&mut io, |m| lines.push(m.to_json_line()));
    lines.into_iter().find(|l| l.contains("CONNECTION_STATUS")).expect("a CONNECTION_STATUS")
}

/// Runs a read to the end (or until `stop_after` messages) and sorts out what it emitted.
pub fn read(
    sim: &mut Simulator,
    config: &Value,
    catalog: &Value,
    state: Option<&str>,
    stop_after: Option<usize>,
) -> Output {
    let mut io = SimIo::new(sim);
    let mut out = read_through(&mut io, config, catalog, state, stop_after);
    // A read stopped early leaves requests on their way: they never arrive.
    io.sim.abandon_in_flight();
    out.slept = io.slept;
    out.sim_time = io.sim_time;
    out.peak_in_flight = io.peak_in_flight;
    out
}

/// As [`read`], through any `Io` (one that tampers with the simulator's answers, say); the
/// caller collects what the `Io` saw.
pub fn read_through(
    io: &mut impl Io,
    config: &Value,
    catalog: &Value,
    state: Option<&str>,
    stop_after: Option<usize>,
) -> Output {
    let now = io.now();
    let machine = ReadMachine::new(&config.to_string(), &catalog.to_string(), state, 7, now);
    let mut driver = Driver::new(machine);
    let mut out = Output::default();
    'outer: while let Some(batch) = driver.next_batch(io, BatchLimit { messages: 64, bytes: usize::MAX }) {
        for m in batch {
            let line: Value = serde_json::from_str(&m.to_json_line()).expect("valid json line");
            match line["type"].as_str() {
                Some("RECORD") => {
                    let stream = line["record"]["stream"].as_str().unwrap().to_string();
                    out.records.entry(stream).or_default().push(line["record"]["data"].clone());
                }
                Some("STATE") => {
                    let s = &line["state"]["stream"];
                    let name = s["stream_descriptor"]["name"].as_str().unwrap().to_string();
                    let total: usize = out.records.values().map(Vec::len).sum();
                    out.state_log.push((name.clone(), s["stream_state"].clone(), total));
                    out.states.insert(name, s["stream_state"].clone());
                }
                Some("TRACE") if line["trace"]["type"] == "ERROR" => out.errors.push(line["trace"]["error"].clone()),
                _ => {}
            }
            out.messages.push(m);
            if stop_after.is_some_and(|n| out.messages.len() >= n) {
                break 'outer;
            }
        }
    }
    out.job_stats = driver.machine().job_stats();
    out
}
