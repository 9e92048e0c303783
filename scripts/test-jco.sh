#!/usr/bin/env bash
# The composed command under jco (Node.js) against host-test's own read: each reads
# campaigns, ads and ads_insights from a fresh `host-test simulate` (same seed, virtual clock)
# over loopback; the records and the final state of every stream must be the same. Also runs
# spec, check and discover under jco, and a read against the `hostile` preset (a redirect no
# host may follow, names that are not valid Unicode). Prints what it compared; exits 1 on a
# difference.
# Needs target/debug/host-test and the composed command (scripts/test.sh builds both).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
host="$root/target/debug/host-test"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
host_test="$host"
url=""
simulator() { start_simulator "$work/sim-$1.log" --clock virtual --job-duration-ms 0; }

cat >"$work/config.json" <<'JSON'
{"account_ids": ["1000000000000001", "1000000000000002"], "credentials": {"auth_type": "Service", "access_token": "sim-token"}, "start_date": "2026-06-08T00:00:00Z"}
JSON
"$host" --simulator calm discover --config "$work/config.json" >"$work/discover.jsonl"
configured_catalog "$work/discover.jsonl" "$work/catalog.json" campaigns ads ads_insights

cd "$work"
echo "==> jco: spec, check, discover"
"$root/scripts/jco-run.sh" spec | grep -q '"type":"SPEC"'
simulator check
"$root/scripts/jco-run.sh" --graph-url "$url" check --config config.json | grep -q '"status":"SUCCEEDED"'
"$root/scripts/jco-run.sh" --graph-url "$url" discover --config config.json | grep -q '"type":"CATALOG"'

echo "==> read: host-test and jco, each against a fresh simulator"
simulator host
"$host" --graph-url "$url" read --config config.json --catalog catalog.json --output host.jsonl 2>host.err
simulator jco
"$root/scripts/jco-run.sh" --graph-url "$url" read --config config.json --catalog catalog.json >jco.jsonl 2>jco.err

python3 - <<'PY'
import json, sys
from collections import Counter
def load(path):
    records, states = Counter(), {}
    for line in open(path):
        m = json.loads(line)
        if m["type"] == "RECORD":
            records[(m["record"]["stream"], json.dumps(m["record"]["data"], sort_keys=True))] += 1
        elif m["type"] == "STATE":
            s = m["state"]["stream"]
            states[s["stream_descriptor"]["name"]] = s["stream_state"]
    return records, states
(hr, hs), (jr, js) = load("host.jsonl"), load("jco.jsonl")
per = Counter(s for (s, _), n in hr.items() for _ in range(n))
print("records:", ", ".join(f"{s} {n}" for s, n in sorted(per.items())), f"({sum(hr.values())} in all)")
print("state of:", ", ".join(sorted(hs)))
ok = True
if hr != jr:
    ok = False
    print(f"records differ: {sum((hr - jr).values())} only from host-test, {sum((jr - hr).values())} only from jco")
if hs != js:
    ok = False
    print("final states differ:", json.dumps(hs)[:400], "/", json.dumps(js)[:400])
if not hr or set(per) != {"campaigns", "ads", "ads_insights"}:
    ok = False
    print("expected records of campaigns, ads and ads_insights")
print("jco and host-test: same records, same state" if ok else "jco and host-test differ")
sys.exit(0 if ok else 1)
PY

echo "==> jco: a read against the hostile preset (a redirect, odd text)"
start_simulator "$work/sim-hostile.log" --clock virtual --job-duration-ms 0 --preset hostile
"$root/scripts/jco-run.sh" --graph-url "$url" read --config config.json --catalog catalog.json >hostile.jsonl 2>hostile.err || true
python3 - <<'PY'
import json
records, errors = {}, []
for line in open("hostile.jsonl"):
    m = json.loads(line)
    if m["type"] == "RECORD":
        d = m["record"]["data"]
        records.setdefault((m["record"]["stream"], d.get("account_id")), []).append(d)
    elif m["type"] == "TRACE" and m["trace"]["type"] == "ERROR":
        errors.append(m["trace"]["error"]["message"])
ok = True
def check(cond, what):
    global ok
    print(("ok: " if cond else "FAILED: ") + what)
    ok &= cond
check(len(errors) == 1 and "campaigns of ad account 1000000000000002" in errors[0]
      and "a redirect to https://elsewhere.example" in errors[0], f"one error names the redirect: {errors}")
check(not records.get(("campaigns", "1000000000000002")), "no record from the redirect")
check(bool(records.get(("campaigns", "1000000000000001"))), "the other account's campaigns are read")
names = [r.get("name", "") for rows in records.values() for r in rows if isinstance(r.get("name"), str)]
check(any(n.startswith("\ufffd\ufffd") for n in names), "odd text read as U+FFFD")
raise SystemExit(0 if ok else 1)
PY
