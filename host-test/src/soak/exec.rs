//! Running a phase's read through the component, whole or stopped and resumed.

use super::*;

/// One read of one phase, ready to run: its config, catalog and how to key its records.
#[derive(Clone)]
pub struct PhaseRead {
    pub phase: Phase,
    pub config: Value,
    pub catalog: Value,
    /// Primary key fields by stream; empty for `activities`, which has none.
    pub keys: BTreeMap<String, Vec<String>>,
}

/// What one run of the reader gave.
#[derive(Debug, Default)]
pub struct RunOutput {
    /// Every message as its protocol line, unredacted.
    pub lines: Vec<String>,
    /// Records by stream.
    pub records: BTreeMap<String, Vec<Value>>,
    /// STATE messages in order: (stream, the whole message).
    pub states: Vec<(String, Value)>,
    /// For each STATE message, how many records of its stream this run emitted before it.
    pub state_records: Vec<usize>,
    /// The `error` objects of error TRACEs.
    pub errors: Vec<Value>,
    /// Lines that are not a well-formed Airbyte message, with why.
    pub malformed: Vec<String>,
    /// The host's error when the guest trapped or could not start.
    pub trap: Option<String>,
    /// Whether the host stopped the reader before it finished.
    pub stopped: bool,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl RunOutput {
    /// The last STATE message of each stream, as the state a next sync is given.
    pub fn last_states(&self) -> String {
        let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
        for (stream, msg) in &self.states {
            last.insert(stream, msg);
        }
        Value::Array(last.into_values().cloned().collect()).to_string()
    }

    pub fn record_count(&self) -> u64 {
        self.records.values().map(|v| v.len() as u64).sum()
    }
}

/// A guest on `sim`, with the Graph host allowed and default limits.
pub(super) fn guest(runtime: &Runtime, sim: &Arc<Mutex<Simulator>>) -> Result<crate::runtime::Guest> {
    let allow = Allowlist::for_sync(None, true).map_err(anyhow::Error::msg)?;
    runtime.instantiate(Box::new(SimBackend::new(sim.clone())), allow, None, &Limits::default())
}

pub(super) fn now_ms(sim: &Arc<Mutex<Simulator>>) -> i64 {
    sim.lock().map(|s| s.now_ms()).unwrap_or(0)
}

/// Discovers the phase's streams through the component and builds its configured catalog.
pub fn prepare(runtime: &Runtime, sim: &Arc<Mutex<Simulator>>, plan: &Plan, phase: Phase) -> Result<PhaseRead> {
    let config = plan.config(phase, now_ms(sim));
    let discovered = guest(runtime, sim)?.discover(&config.to_string())?;
    let streams = plan.streams(phase);
    let catalog = catalog_from(&discovered, &streams)?;
    let keys = catalog_keys(&catalog);
    let missing: Vec<&&str> = streams.iter().filter(|s| !keys.contains_key(**s)).collect();
    anyhow::ensure!(missing.is_empty(), "discover did not offer {missing:?}");
    Ok(PhaseRead { phase, config, catalog, keys })
}

/// Runs a read to the end, or until the host has taken `stop_after` messages.
pub fn run_read(
    runtime: &Runtime,
    sim: &Arc<Mutex<Simulator>>,
    read: &PhaseRead,
    state: Option<&str>,
    stop_after: Option<usize>,
) -> RunOutput {
    let mut out = RunOutput { start_ms: now_ms(sim), ..RunOutput::default() };
    let mut taken = 0usize;
    let result = guest(runtime, sim).and_then(|mut g| {
        g.read(&read.config.to_string(), &read.catalog.to_string(), state, |batch| {
            for m in &batch {
                if stop_after.is_some_and(|n| taken >= n) {
                    out.stopped = true;
                    return false;
                }
                taken += 1;
                let line = to_line(m);
                if let Err(why) = check_line_shape(&line) {
                    out.malformed.push(format!("{why}: {line}"));
                }
                match m {
                    Message::Record(r) => {
                        let data = serde_json::from_str(&r.data).unwrap_or(Value::Null);
                        out.records.entry(r.stream.clone()).or_default().push(data);
                    }
                    Message::State(s) => {
                        let v: Value = serde_json::from_str(s).unwrap_or(Value::Null);
                        let stream = v["stream"]["stream_descriptor"]["name"].as_str().unwrap_or("?").to_string();
                        out.state_records.push(out.records.get(&stream).map_or(0, Vec::len));
                        out.states.push((stream, v));
                    }
                    m if is_error_trace(m) => {
                        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                        out.errors.push(v["trace"]["error"].clone());
                    }
                    _ => {}
                }
                out.lines.push(line);
            }
            if stop_after.is_some_and(|n| taken >= n) {
                out.stopped = true;
                return false;
            }
            true
        })
    });
    if let Err(e) = result {
        out.trap = Some(format!("{e:#}"));
    }
    out.end_ms = now_ms(sim);
    out
}

/// Ground truth of `stream` at `truth`'s clock, for the read `read` that started at `start_ms`.
pub(super) fn truth_keys(read: &PhaseRead, stream: &str, truth: &Simulator, start_ms: i64) -> Result<Keys> {
    let pk = read.keys.get(stream).cloned().unwrap_or_default();
    SyncConfig::from_value(&read.config)?.stream_keys(truth, stream, &pk, start_ms)
}

/// The truth of `stream` at `t0` and `t1`; a harness failure when the truth cannot be had.
pub(super) fn truth_at_both(
    read: &PhaseRead,
    stream: &str,
    (t0, t1): (&Simulator, &Simulator),
    start_ms: i64,
    failures: &mut Vec<Failure>,
) -> Option<(Keys, Keys)> {
    match truth_keys(read, stream, t0, start_ms).and_then(|a| Ok((a, truth_keys(read, stream, t1, start_ms)?))) {
        Ok(pair) => Some(pair),
        Err(e) => {
            failures.push(Failure { run: "harness".into(), what: format!("ground truth of {stream}: {e:#}") });
            None
        }
    }
}

/// Runs a phase to the end on `sim` and checks it; returns its output.
pub(super) fn full_phase(
    runtime: &Runtime,
    sim: &Arc<Mutex<Simulator>>,
    plan: &Plan,
    phase: Phase,
    report: &mut SeedReport,
) -> Result<(PhaseRead, RunOutput)> {
    let read = prepare(runtime, sim, plan, phase)?;
    let out = run_read(runtime, sim, &read, None, None);
    let run = phase.name();
    report.records_checked += check_full_run(plan, &read, &out, run, &mut report.failures);
    report.messages += out.lines.len() as u64;
    report.runs.push((run.to_string(), out.lines.clone()));
    Ok((read, out))
}

/// Stops a run of `phase` on a fresh simulator after `stop` messages, resumes it from the last
/// state of each stream with a new guest on the same simulator, and checks the union.
pub fn crash_and_resume(
    runtime: &Runtime,
    plan: &Plan,
    phase: Phase,
    stop: usize,
    report: &mut SeedReport,
) -> Result<()> {
    let sim = Arc::new(Mutex::new(Simulator::new(plan.sim.clone())));
    let read = prepare(runtime, &sim, plan, phase)?;
    let first = run_read(runtime, &sim, &read, None, Some(stop));
    let state = first.last_states();
    let second = run_read(runtime, &sim, &read, Some(&state), None);
    let run1 = format!("crash in {} at message {stop}: first run", phase.name());
    let run2 = format!("crash in {} at message {stop}: resumed run", phase.name());
    let failures_before = report.failures.len();
    let expected = plan.expected_failure(phase);
    check_run(&read, &first, expected.as_ref(), &run1, &mut report.failures);
    check_run(&read, &second, expected.as_ref(), &run2, &mut report.failures);
    check_states(
        first.states.iter().chain(second.states.iter()),
        &format!("crash in {}: both runs", phase.name()),
        &mut report.failures,
    );
    let (t0, t1) = (sim_at(&plan.sim, first.start_ms), sim_at(&plan.sim, second.end_ms));
    let run = format!("crash in {} at message {stop}: union", phase.name());
    let mut must = BTreeMap::new();
    for stream in read.keys.keys() {
        let pk = &read.keys[stream];
        let rows =
            first.records.get(stream).into_iter().flatten().chain(second.records.get(stream).into_iter().flatten());
        let got: BTreeSet<String> = rows.map(|r| record_key(pk, r)).collect();
        let Some((a, b)) = truth_at_both(&read, stream, (&t0, &t1), first.start_ms, &mut report.failures) else {
            continue;
        };
        let (a, b, victim) = without_expected(
            &read,
            expected.as_ref(),
            stream,
            (&t0, &t1),
            first.start_ms,
            (a, b),
            &mut report.failures,
        );
        let got: BTreeSet<String> = got.into_iter().filter(|k| !victim.contains(k)).collect();
        check_truth(stream, &got, &a, &b, &run, &mut report.failures);
        must.insert(stream.clone(), must_keys(&a, &b));
    }
    check_claims(&read, &first, None, &must, &run1, &mut report.failures);
    check_claims(&read, &second, Some(&first), &must, &run2, &mut report.failures);
    report.records_checked += first.record_count() + second.record_count();
    report.messages += (first.lines.len() + second.lines.len()) as u64;
    report.runs.push((format!("crash-{}-first", phase.name()), first.lines.clone()));
    report.runs.push((format!("crash-{}-resumed", phase.name()), second.lines.clone()));
    if first.stopped {
        report.crash_points += 1;
    }
    let s = sim.lock().map_err(|_| anyhow::anyhow!("simulator lock poisoned"))?;
    add_faults(&mut report.faults, &s);
    if report.failures.len() > failures_before && report.call_log_tail.is_empty() {
        report.call_log_tail = s.render_call_log_tail(CALL_LOG_TAIL);
    }
    Ok(())
}
