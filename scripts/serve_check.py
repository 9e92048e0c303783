"""Calls the wasi:http function served by scripts/test-serve.sh and compares what it answers
with host-test's output for the same simulated world.

    serve_check.py api|full|chain FUNCTION_URL WORK_DIR

WORK_DIR holds config.json, catalog.json and host-test's spec.jsonl, discover.jsonl and
reference.jsonl (a full read). Exits 1 with a message on any difference.
"""

import json
import re
import sys
import time
import urllib.error
import urllib.request

mode, base, work = sys.argv[1], sys.argv[2], sys.argv[3]
config = json.load(open(f"{work}/config.json"))
catalog = json.load(open(f"{work}/catalog.json"))


def fail(message):
    print(f"FAILED ({mode}): {message}", file=sys.stderr)
    sys.exit(1)


def call(path, body=None, method="POST"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=600) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def lines(text):
    return [line for line in text.split("\n") if line]


def masked(line):
    """The line with its emission times taken out (the one thing two reads differ in)."""
    return re.sub(r'"emitted_at":[0-9.]+', '"emitted_at":0', line)


def type_line(path, kind):
    return next(line for line in open(path) if f'"type":"{kind}"' in line).rstrip("\n")


def states_and_records(text):
    records, states, budget = [], {}, False
    for line in lines(text):
        m = json.loads(line)
        if m["type"] == "RECORD":
            records.append(json.dumps({"stream": m["record"]["stream"], "data": m["record"]["data"]}, sort_keys=True))
        elif m["type"] == "STATE":
            s = m["state"]["stream"]
            states[s["stream_descriptor"]["name"]] = s["stream_state"]
        elif m["type"] == "LOG" and "time budget reached" in m["log"]["message"]:
            budget = True
    return records, states, budget


if mode == "api":
    status, kind, body = call("/spec")
    if status != 200 or kind != "application/x-ndjson":
        fail(f"/spec answered {status} {kind}")
    if lines(body) != [type_line(f"{work}/spec.jsonl", "SPEC")]:
        fail("/spec differs from host-test spec")
    status, _, body = call("/check", {"config": config})
    if status != 200 or '"status":"SUCCEEDED"' not in body:
        fail(f"/check answered {status}: {body[:300]}")
    status, _, body = call("/discover", {"config": config})
    if status != 200 or lines(body) != [type_line(f"{work}/discover.jsonl", "CATALOG")]:
        fail(f"/discover answered {status} and differs from host-test discover: {body[:300]}")
    bad = {**config, "account_ids": ["12a"]}
    for path, payload, method, want, says in [
        ("/read", {"config": config}, "POST", 400, "catalog"),
        ("/read", {"config": bad, "catalog": catalog}, "POST", 400, "account_ids"),
        ("/discover", None, "POST", 400, "JSON"),
        ("/spec", None, "GET", 405, "POST"),
        ("/sync", {}, "POST", 404, "/read"),
    ]:
        status, kind, body = call(path, payload, method)
        error = json.loads(body).get("error", "") if kind.startswith("application/json") else ""
        if status != want or says not in error:
            fail(f"{method} {path} answered {status} {kind} {body[:300]!r}; wanted {want} naming {says}")
        if "sim-token" in body:
            fail(f"{method} {path} echoed the token")
    # A token Graph refuses is found once the read has begun: the stream ends with the error TRACE.
    wrong = dict(config, credentials={"auth_type": "Service", "access_token": "EAAwrong-token-0123"})
    status, kind, body = call("/read", {"config": wrong, "catalog": catalog})
    last = json.loads(lines(body)[-1]) if lines(body) else {}
    if status != 200 or last.get("trace", {}).get("type") != "ERROR":
        fail(f"a read with a refused token answered {status} {kind}, ending {json.dumps(last)[:300]}")
    if "EAAwrong-token-0123" in body:
        fail("a read echoed the refused token")
    print(
        "spec, check and discover equal host-test's; bad requests get 400, 404 and 405 naming the problem;"
        f" a refused token ends the read's stream with the error TRACE ({last['trace']['error']['failure_type']})"
    )

elif mode == "full":
    began = time.monotonic()
    status, kind, body = call("/read", {"config": config, "catalog": catalog})
    took = time.monotonic() - began
    if status != 200 or kind != "application/x-ndjson":
        fail(f"/read answered {status} {kind}: {body[:300]}")
    reference = [masked(line.rstrip("\n")) for line in open(f"{work}/reference.jsonl")]
    got = [masked(line) for line in lines(body)]
    if got != reference:
        for i, (a, b) in enumerate(zip(got, reference)):
            if a != b:
                fail(f"line {i + 1} differs:\n  function:  {a[:400]}\n  host-test: {b[:400]}")
        fail(f"{len(got)} lines against host-test's {len(reference)}")
    if "sim-token" in body:
        fail("the read echoed the token")
    records = sum(1 for line in got if line.startswith('{"type":"RECORD"'))
    print(f"a full read: {len(got)} lines ({records} records) in {took:.1f} s, equal to host-test read's stdout")

elif mode == "chain":
    ref_records, ref_states, _ = states_and_records(open(f"{work}/reference.jsonl").read())
    merged, records, reads = {}, [], 0
    while True:
        state = [
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": n}, "stream_state": s}}
            for n, s in merged.items()
        ]
        status, _, body = call("/read?max_duration_seconds=1", {"config": config, "catalog": catalog, "state": state or None})
        reads += 1
        if status != 200:
            fail(f"read {reads} answered {status}: {body[:300]}")
        if '"failure_type"' in body:
            fail(f"read {reads} failed: {[l for l in lines(body) if 'failure_type' in l][:1]}")
        got, states, budget = states_and_records(body)
        records += got
        merged.update(states)
        if not budget:
            break
        if reads > 60:
            fail("no end after 60 reads")
    if reads < 4:
        fail(f"the time box cut the read only into {reads} reads")
    final = {n: s for n, s in merged.items() if s != {}}
    if "sfm_resume" in json.dumps(final):
        fail("a mark is left in the final state")
    if final != ref_states:
        fail(f"the final state differs:\n  chain:     {json.dumps(final)[:600]}\n  host-test: {json.dumps(ref_states)[:600]}")
    if sorted(set(records)) != sorted(set(ref_records)):
        fail(f"{len(set(records))} distinct records against host-test's {len(set(ref_records))}")
    print(
        f"{reads} reads time-boxed at 1 s: the {len(set(records))} records ({len(records) - len(set(records))} duplicates)"
        " and the final state of one full read"
    )
