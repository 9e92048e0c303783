#!/usr/bin/env bash
# Report jobs that fail, against their floor: our connector alone, on a real clock, against
# `host-test simulate` in two worlds, printing the wall time beside the floor. Asserts nothing.
#
#   bench/failing.sh
#
# - failing_jobs: every report run fails its first attempt (and 10 % are skipped). Floor: two
#   job generations, the job and its restart.
# - failing_account_jobs: every report run on a whole account fails, however often it is
#   started again or however few its days; runs on campaigns finish. Floor: four generations,
#   the job, its restart, the campaign id listing and the campaign jobs.
#
# A generation costs its job time plus the round trips of its creation and of the poll that
# sees it end; the sync adds the account read and the last result page. World: 2 accounts of 3
# campaigns x 2 ad sets x 2 ads, 3 days, streams campaigns and ads_insights.
# Environment: JOB_MS (10000: a job ends at its second poll), LATENCY_MS (50), SEED (1),
#              OUT (bench/out/failing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh

job_ms="${JOB_MS:-10000}"
latency_ms="${LATENCY_MS:-50}"
seed="${SEED:-1}"
out="${OUT:-bench/out/failing}"
host=target/host/host-test
ensure_gnu_time
build_optimised
rm -rf "$out"
mkdir -p "$out"
"$host" spec >/dev/null

days=3
start_ms=$(($(date +%s%3N)))
start_date=$(date -u -d "@$((start_ms / 1000 - (days - 1) * 86400))" +%Y-%m-%dT00:00:00Z)
cat >"$out/config.json" <<EOF
{"account_ids": ["1000000000000001", "1000000000000002"], "credentials": {"auth_type": "Service", "access_token": "sim-token"}, "start_date": "$start_date"}
EOF
"$host" discover --config "$out/config.json" >"$out/discover.jsonl" 2>/dev/null
python3 bench/bench.py catalog --discover "$out/discover.jsonl" --streams campaigns,ads_insights --out "$out/catalog.json"

printf '%-22s %12s %9s %9s %8s %9s %9s\n' world generations "floor s" "wall s" "/floor" "jobs" "requests"
for world in failing_jobs:2 failing_account_jobs:4; do
  preset=${world%%:*} generations=${world##*:}
  port=$(free_port)
  "$host" simulate --port "$port" --preset "$preset" --seed "$seed" --clock wall --latency-ms "$latency_ms" \
    --job-duration-ms "$job_ms" --start-time-ms "$start_ms" --accounts 2 --campaigns-per-account 3 \
    --adsets-per-campaign 2 --ads-per-adset 2 >"$out/$preset.sim.log" 2>&1 &
  sim=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/__sim/counters" >/dev/null 2>&1 && break; sleep 0.05; done
  /usr/bin/time -v -o "$out/$preset.time" "$host" --graph-url "http://127.0.0.1:$port" read \
    --config "$out/config.json" --catalog "$out/catalog.json" --output "$out/$preset.jsonl" 2>"$out/$preset.err"
  curl -sf "http://127.0.0.1:$port/__sim/counters" >"$out/$preset.counters.json"
  kill "$sim"
  wait "$sim" 2>/dev/null || true
  python3 - "$out" "$preset" "$generations" "$job_ms" "$latency_ms" <<'PY'
import json, re, sys
out, preset, g, job_ms, lat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
text = open(f"{out}/{preset}.time").read()
w = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
wall = int(w.group(1) or 0) * 3600 + int(w.group(2)) * 60 + float(w.group(3))
floor = (g * (job_ms + 2 * lat) + 2 * lat) / 1000
c = json.load(open(f"{out}/{preset}.counters.json"))
print(f"{preset:<22} {g:>12} {floor:>9.2f} {wall:>9.2f} {wall / floor:>8.2f} {c['jobs_created']:>9} {c['http_requests']:>9}")
PY
done
