//! The invariants a run is checked against: line shapes, state order, checkpoints not ahead
//! of the rows, and primary keys against ground truth.

use super::plan::ExpectedFailure;
use super::*;

/// Checks one protocol line: a JSON object with a known `type` and its payload.
pub fn check_line_shape(line: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let ty = v.get("type").and_then(Value::as_str).ok_or("no \"type\"")?;
    let payload_key = match ty {
        "RECORD" => "record",
        "STATE" => "state",
        "LOG" => "log",
        "TRACE" => "trace",
        "CONNECTION_STATUS" => "connectionStatus",
        "CATALOG" => "catalog",
        "SPEC" => "spec",
        other => return Err(format!("unknown type '{other}'")),
    };
    let p = v
        .get(payload_key)
        .filter(|p| p.is_object())
        .ok_or_else(|| format!("{ty} without a \"{payload_key}\" object"))?;
    let ok = match ty {
        "RECORD" => p["stream"].is_string() && p["data"].is_object() && p["emitted_at"].is_number(),
        "STATE" => match p["type"].as_str() {
            Some("STREAM") => {
                p["stream"]["stream_descriptor"]["name"].is_string() && p["stream"].get("stream_state").is_some()
            }
            Some("GLOBAL") => p["global"].is_object(),
            Some("LEGACY") | None => p.get("data").is_some(),
            Some(_) => false,
        },
        "LOG" => p["level"].is_string() && p["message"].is_string(),
        "TRACE" => {
            p["type"].is_string()
                && p["emitted_at"].is_number()
                && (p["type"] != "ERROR"
                    || (p["error"]["message"].is_string() && p["error"]["failure_type"].is_string()))
        }
        _ => true,
    };
    if ok { Ok(()) } else { Err(format!("{ty} payload is missing required fields")) }
}

/// Checks that hold for any single run: no trap, messages well formed, no token, no error
/// trace, no duplicate primary key.
pub(super) fn check_run(
    read: &PhaseRead,
    out: &RunOutput,
    expected: Option<&ExpectedFailure>,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let mut fail = |what: String| failures.push(Failure { run: run.to_string(), what });
    if let Some(t) = &out.trap {
        fail(format!("the guest trapped or the host failed: {}", shorten(t)));
    }
    for m in out.malformed.iter().take(3) {
        fail(format!("malformed message: {}", shorten(m)));
    }
    let leaks: Vec<&String> = out.lines.iter().filter(|l| l.contains(CANARY_TOKEN)).collect();
    if let Some(l) = leaks.first() {
        fail(format!("the access token appears in {} output line(s), e.g. {}", leaks.len(), shorten(l)));
    }
    if out.trap.as_deref().is_some_and(|t| t.contains(CANARY_TOKEN)) {
        fail("the access token appears in the host's error".into());
    }
    // The one error a plan causes on purpose: it names its stream, account and cause; a run
    // that went to the end must have it.
    let is_expected = |e: &Value| {
        expected.is_some_and(|x| {
            let m = e["message"].as_str().unwrap_or("");
            x.streams.iter().any(|s| m.contains(&format!("{s} of ad account {}", x.account)))
                && x.causes.iter().any(|c| m.contains(c))
        })
    };
    for e in out.errors.iter().filter(|e| !is_expected(e)).take(3) {
        fail(format!(
            "the sync ended with an error trace ({}): {}",
            e["failure_type"].as_str().unwrap_or("?"),
            shorten(e["message"].as_str().unwrap_or(""))
        ));
    }
    if let Some(x) = expected
        && !out.stopped
        && out.trap.is_none()
        && !out.errors.iter().any(is_expected)
    {
        fail(format!("for ad account {}, {}, and no error said so", x.account, x.what));
    }
    if let Some(x) = expected {
        // The failed account keeps its state: none came in, so none goes out.
        for (stream, msg) in &out.states {
            if x.streams.contains(&stream.as_str()) && msg["stream"]["stream_state"].get(&x.account).is_some() {
                fail(format!("{stream}: the state of ad account {} moved though {}", x.account, x.what));
                break;
            }
        }
    }
    for (stream, rows) in &out.records {
        let Some(pk) = read.keys.get(stream) else {
            fail(format!("{} records of stream '{stream}', which the catalog did not select", rows.len()));
            continue;
        };
        if pk.is_empty() {
            continue;
        }
        // The account a plan fails on purpose is read again by the next sync (its state does
        // not move): rows of its reports read again after a retry are at-least-once, not lost.
        let victim = expected.filter(|x| x.streams.contains(&stream.as_str())).map(|x| x.account.as_str());
        let counted = rows.iter().filter(|r| victim.is_none() || r["account_id"].as_str() != victim);
        let dups: Vec<String> = count_keys(pk, counted).into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect();
        if !dups.is_empty() {
            fail(format!("{stream}: {} primary key(s) emitted more than once: {}", dups.len(), preview(&dups)));
        }
    }
}

/// A stream's cursor at one account, from a state blob.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct AcctCursor {
    /// `updated_time` / `event_time`, epoch s.
    time: Option<i64>,
    /// Insights `date_start`.
    date: Option<NaiveDate>,
    /// Insights days completed after the cursor.
    slices: BTreeSet<NaiveDate>,
}

pub(super) fn acct_cursor(v: &Value) -> AcctCursor {
    let time = ["updated_time", "event_time"].iter().find_map(|k| v[*k].as_str().and_then(epoch_secs));
    let date = v["date_start"].as_str().and_then(|d| d.parse().ok());
    let slices = v["slices"].as_array().into_iter().flatten().filter_map(|d| d.as_str()?.parse().ok()).collect();
    AcctCursor { time, date, slices }
}

/// State never moves backwards: per stream and account, a cursor never decreases or vanishes,
/// and a day once claimed (at or before the cursor, or in `slices`) stays claimed.
pub(super) fn check_states<'a>(
    states: impl IntoIterator<Item = &'a (String, Value)>,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let mut prev: BTreeMap<(String, String), AcctCursor> = BTreeMap::new();
    let mut reported = 0;
    for (i, (stream, msg)) in states.into_iter().enumerate() {
        let Some(blob) = msg["stream"]["stream_state"].as_object() else { continue };
        let mut problems = Vec::new();
        for ((s, acct), p) in &prev {
            if s != stream {
                continue;
            }
            let Some(v) = blob.get(acct) else {
                problems.push(format!("account {acct} vanished from the state"));
                continue;
            };
            let c = acct_cursor(v);
            if p.time.is_some_and(|t| c.time.is_none_or(|n| n < t)) {
                problems.push(format!("account {acct}: cursor went from {:?} to {:?}", p.time, c.time));
            }
            if p.date.is_some_and(|d| c.date.is_none_or(|n| n < d)) {
                problems.push(format!("account {acct}: date_start went from {:?} to {:?}", p.date, c.date));
            }
            let unclaimed: Vec<String> = p
                .slices
                .iter()
                .filter(|d| !c.slices.contains(d) && c.date.is_none_or(|n| **d > n))
                .map(|d| d.to_string())
                .collect();
            if !unclaimed.is_empty() {
                problems.push(format!("account {acct}: completed days {} are no longer claimed", unclaimed.join(", ")));
            }
        }
        for p in problems {
            if reported < 3 {
                failures.push(Failure {
                    run: run.to_string(),
                    what: format!(
                        "{stream}: state moved backwards at state message {i}: {p}; now {}",
                        shorten(&Value::Object(blob.clone()).to_string())
                    ),
                });
            }
            reported += 1;
        }
        for (acct, v) in blob {
            if v.is_object() {
                prev.insert((stream.clone(), acct.clone()), acct_cursor(v));
            }
        }
    }
}

/// Insights checkpoints are never ahead of the rows: when a STATE claims a day of an account
/// (at or before its cursor, or in its `slices`), every row of that day that ground truth holds
/// (at the read's start and end alike) was emitted before it, in this run or in `prior`.
pub(super) fn check_claims(
    read: &PhaseRead,
    out: &RunOutput,
    prior: Option<&RunOutput>,
    must: &BTreeMap<String, BTreeSet<String>>,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    if read.phase != Phase::Insights {
        return;
    }
    let mut reported = 0;
    for (stream, pk) in &read.keys {
        // Truth keys start `date_start|account_id|`.
        let mut by_day: BTreeMap<(&str, NaiveDate), Vec<&String>> = BTreeMap::new();
        for k in must.get(stream).into_iter().flatten() {
            let mut parts = k.split('|');
            if let (Some(Ok(day)), Some(acct)) = (parts.next().map(str::parse::<NaiveDate>), parts.next()) {
                by_day.entry((acct, day)).or_default().push(k);
            }
        }
        let mut emitted: BTreeSet<String> =
            prior.and_then(|p| p.records.get(stream)).into_iter().flatten().map(|r| record_key(pk, r)).collect();
        let rows = out.records.get(stream).map(Vec::as_slice).unwrap_or(&[]);
        let mut upto = 0;
        for ((s, msg), n) in out.states.iter().zip(&out.state_records) {
            if s != stream {
                continue;
            }
            let n = (*n).min(rows.len());
            emitted.extend(rows[upto.min(n)..n].iter().map(|r| record_key(pk, r)));
            upto = n;
            let Some(blob) = msg["stream"]["stream_state"].as_object() else { continue };
            for ((acct, day), keys) in &by_day {
                let Some(v) = blob.get(*acct) else { continue };
                let c = acct_cursor(v);
                if !(c.date.is_some_and(|d| *day <= d) || c.slices.contains(day)) {
                    continue;
                }
                let missing: Vec<&String> = keys.iter().copied().filter(|k| !emitted.contains(*k)).collect();
                if !missing.is_empty() && reported < 3 {
                    reported += 1;
                    failures.push(Failure {
                        run: run.to_string(),
                        what: format!(
                            "{stream}: state claims {day} of account {acct} before {} of its {} rows were emitted: {}",
                            missing.len(),
                            keys.len(),
                            preview(missing)
                        ),
                    });
                }
            }
        }
    }
}

/// The keys in both truths: those a read must not miss.
pub(super) fn must_keys(a: &Keys, b: &Keys) -> BTreeSet<String> {
    a.keys().filter(|k| b.contains_key(*k)).cloned().collect()
}

/// Compares what was read with the truth at the read's start and end: a key in both must be
/// read, a key in neither must not be.
pub(super) fn check_truth(
    stream: &str,
    got: &BTreeSet<String>,
    at_start: &Keys,
    at_end: &Keys,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let must: Vec<&String> = at_start.keys().filter(|k| at_end.contains_key(*k) && !got.contains(*k)).collect();
    if !must.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!(
                "{stream}: lost {} of {} key(s) of ground truth: {}",
                must.len(),
                at_start.len(),
                preview(must)
            ),
        });
    }
    let extra: Vec<&String> = got.iter().filter(|k| !at_start.contains_key(*k) && !at_end.contains_key(*k)).collect();
    if !extra.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!("{stream}: {} key(s) not in ground truth: {}", extra.len(), preview(extra)),
        });
    }
}

/// For activities (no primary key) multiplicity counts: each key as often as in truth.
pub(super) fn check_truth_counts(
    stream: &str,
    got: &Keys,
    at_start: &Keys,
    at_end: &Keys,
    run: &str,
    failures: &mut Vec<Failure>,
) {
    let mut bad = Vec::new();
    for k in at_start.keys().chain(at_end.keys()).chain(got.keys()).collect::<BTreeSet<_>>() {
        let (a, b) = (at_start.get(k).copied().unwrap_or(0), at_end.get(k).copied().unwrap_or(0));
        let n = got.get(k).copied().unwrap_or(0);
        if n < a.min(b) || n > a.max(b) {
            bad.push(format!("{k} x{n} (truth x{a}..x{b})"));
        }
    }
    if !bad.is_empty() {
        failures.push(Failure {
            run: run.to_string(),
            what: format!("{stream}: {} key(s) read a wrong number of times: {}", bad.len(), preview(&bad)),
        });
    }
}

/// The truth of `stream` less the keys of an account whose read fails on purpose (it must
/// keep its state, not read its records).
pub(super) fn without_expected(
    read: &PhaseRead,
    expected: Option<&ExpectedFailure>,
    stream: &str,
    sims: (&Simulator, &Simulator),
    start_ms: i64,
    (mut a, mut b): (Keys, Keys),
    failures: &mut Vec<Failure>,
) -> (Keys, Keys, BTreeSet<String>) {
    // The failed account's keys are neither required nor unexpected: the connector may have
    // read a page of them before the cycle showed.
    let mut victim = BTreeSet::new();
    let Some(x) = expected.filter(|x| x.streams.contains(&stream)) else { return (a, b, victim) };
    let mut alone = read.clone();
    alone.config["account_ids"] = json!([x.account]);
    if let Some((va, vb)) = truth_at_both(&alone, stream, sims, start_ms, failures) {
        a.retain(|k, _| !va.contains_key(k));
        b.retain(|k, _| !vb.contains_key(k));
        victim.extend(va.into_keys().chain(vb.into_keys()));
    }
    (a, b, victim)
}

/// Checks a run of `read` that went to the end against ground truth and every invariant;
/// returns the number of records compared with truth.
pub fn check_full_run(plan: &Plan, read: &PhaseRead, out: &RunOutput, run: &str, failures: &mut Vec<Failure>) -> u64 {
    let expected = plan.expected_failure(read.phase);
    check_run(read, out, expected.as_ref(), run, failures);
    check_states(&out.states, run, failures);
    let (t0, t1) = (sim_at(&plan.sim, out.start_ms), sim_at(&plan.sim, out.end_ms));
    let mut checked = 0;
    let mut must = BTreeMap::new();
    for (stream, pk) in &read.keys {
        let rows = out.records.get(stream).map(Vec::as_slice).unwrap_or(&[]);
        let Some((a, b)) = truth_at_both(read, stream, (&t0, &t1), out.start_ms, failures) else { continue };
        let (a, b, victim) =
            without_expected(read, expected.as_ref(), stream, (&t0, &t1), out.start_ms, (a, b), failures);
        must.insert(stream.clone(), must_keys(&a, &b));
        if pk.is_empty() {
            check_truth_counts(stream, &count_keys(pk, rows), &a, &b, run, failures);
        } else {
            let got: BTreeSet<String> =
                rows.iter().map(|r| record_key(pk, r)).filter(|k| !victim.contains(k)).collect();
            check_truth(stream, &got, &a, &b, run, failures);
        }
        checked += rows.len() as u64;
    }
    check_claims(read, out, None, &must, run, failures);
    checked
}
