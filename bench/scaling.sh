#!/usr/bin/env bash
# How our connector's cost grows with the data: the same sync at 1x, 10x and 100x ads, printing
# records, CPU per record and peak RSS (from /usr/bin/time -v). Both should stay roughly flat.
# OURS only; asserts nothing.
#
#   bench/scaling.sh
#
# The workload: the simulator's default world (2 accounts x 3 campaigns x 2 ad sets) with 2, 20
# and 200 ads per ad set, 30 days, streams campaigns, ad_sets, ads, ad_creatives, ads_insights and
# ads_insights_action_type. Each size runs two ways:
#
# in-process  `host-test demo` with the simulator inside the process, on virtual time (report jobs
#             and polls take no real time). Its CPU and RSS include the simulator's.
# loopback    `host-test --graph-url ... read` against `host-test simulate` in its own process
#             (jobs finish at once, no added latency), so time -v measures the connector alone.
#             Wall time here is mostly the connector's real sleeps between job polls.
#
# Environment: SCALES ("1 10 100"), OUT (bench/out/scaling), SEED (1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scales="${SCALES:-1 10 100}"
out="${OUT:-bench/out/scaling}"
seed="${SEED:-1}"
days=30
accounts=2 campaigns=3 adsets=2 base_ads=2
streams="campaigns,ad_sets,ads,ad_creatives,ads_insights,ads_insights_action_type"
host=target/host/host-test

# shellcheck source=bench/lib.sh
source bench/lib.sh

ensure_gnu_time
build_optimised
rm -rf "$out"
mkdir -p "$out"
wasm=target/wasm32-wasip2/release/source_facebook_marketing.wasm
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo ", working tree modified" || true)
build="component $(($(stat -c %s "$wasm") / 1024)) KiB, sha256 $(sha256sum "$wasm" | cut -c1-12); git $(git rev-parse --short HEAD)$dirty"
"$host" spec >/dev/null # warm the precompiled component cache

# Only loopback.
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost

# "records wall cpu rss_mib" from a time -v report and a message file.
measure() { # $1: time -v file, $2: messages file
  local records
  records=$(grep -c '"type":"RECORD"' "$2" || true)
  awk -v records="$records" -F': ' '
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident/ {r = $2 / 1024}
    /Elapsed \(wall clock\)/ {n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i]}
    END {printf "%d %.2f %.2f %.1f\n", records, w, u + s, r}' "$1"
}

sim_pid=""
stop_sim() {
  if [[ -n "$sim_pid" ]]; then
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
  fi
}
trap stop_sim EXIT

declare -A result
for x in $scales; do
  ads=$((base_ads * x))
  size_args=(--accounts "$accounts" --campaigns-per-account "$campaigns" --adsets-per-campaign "$adsets" --ads-per-adset "$ads")

  step "${x}x in-process: host-test demo --ads-per-adset $ads"
  /usr/bin/time -v -o "$out/inproc-$x.time" "$host" demo --seed "$seed" --days "$days" "${size_args[@]}" \
    --streams "$streams" --output "$out/inproc-$x.jsonl" >"$out/inproc-$x.summary" 2>&1 || true
  result[inproc-$x]=$(measure "$out/inproc-$x.time" "$out/inproc-$x.jsonl")
  rm -f "$out/inproc-$x.jsonl"

  step "${x}x loopback: host-test simulate + host-test --graph-url read"
  port=$(free_port)
  "$host" simulate --port "$port" --seed "$seed" --clock wall --latency-ms 0 --job-duration-ms 0 "${size_args[@]}" \
    >"$out/loopback-$x.sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/__sim/counters" >/dev/null 2>&1 && break
    sleep 0.05
  done
  start_date=$(date -u -d "$((days - 1)) days ago" +%Y-%m-%dT00:00:00Z)
  python3 - "$accounts" "$start_date" >"$out/config.json" <<'EOF'
import json, sys
n, start = int(sys.argv[1]), sys.argv[2]
print(json.dumps({"account_ids": [str(1000000000000001 + i) for i in range(n)],
                  "credentials": {"auth_type": "Service", "access_token": "sim-token"}, "start_date": start}))
EOF
  if [[ ! -s "$out/catalog.json" ]]; then
    "$host" discover --config "$out/config.json" >"$out/discover.jsonl"
    python3 bench/bench.py catalog --discover "$out/discover.jsonl" --streams "$streams" --out "$out/catalog.json"
  fi
  /usr/bin/time -v -o "$out/loopback-$x.time" "$host" --graph-url "http://127.0.0.1:$port" read \
    --config "$out/config.json" --catalog "$out/catalog.json" --output "$out/loopback-$x.jsonl" \
    2>"$out/loopback-$x.err" || true
  curl -sf "http://127.0.0.1:$port/__sim/counters" >"$out/loopback-$x.counters.json" || true
  stop_sim
  result[loopback-$x]=$(measure "$out/loopback-$x.time" "$out/loopback-$x.jsonl")
  rm -f "$out/loopback-$x.jsonl"
done

{
  echo "bench/scaling.sh: $accounts accounts x $campaigns campaigns x $adsets ad sets x (${base_ads} x scale) ads, $days days"
  echo "streams: $streams"
  echo "$build"
  for mode in inproc loopback; do
    echo
    if [[ $mode == inproc ]]; then
      echo "in-process (host-test demo; virtual time; CPU and RSS include the simulator)"
    else
      echo "loopback (host-test read against host-test simulate; CPU and RSS of the connector process alone)"
    fi
    printf '%-6s %8s %10s %9s %9s %14s %14s\n' scale ads records "wall s" "CPU s" "CPU us/record" "peak RSS MiB"
    for x in $scales; do
      read -r records wall cpu rss <<<"${result[$mode-$x]}"
      per=$(awk -v c="$cpu" -v r="$records" 'BEGIN {printf "%.1f", (r > 0 ? 1e6 * c / r : 0)}')
      printf '%-6s %8d %10d %9.2f %9.2f %14s %14.1f\n' "${x}x" $((accounts * campaigns * adsets * base_ads * x)) \
        "$records" "$wall" "$cpu" "$per" "$rss"
    done
  done
} | tee "$out/report.txt"
