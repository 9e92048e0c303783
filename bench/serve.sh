#!/usr/bin/env bash
# The wasi:http function under `wasmtime serve` beside `host-test read`, on one simulated world
# over loopback: the function's size, its cold start (serve launched to first answer: wasmtime
# compiles the component), a warm request (each is a fresh instance), and one read's wall time and
# CPU (the server's CPU during the read) against host-test's (`--profile host` build, warm cache).
# Prints a table; asserts nothing. Needs scripts/build-command.sh's function and the pinned
# wasmtime CLI (scripts/test.sh installs it).
#   bench/serve.sh [ACCOUNTS] [DAYS] [CAMPAIGNS_PER_ACCOUNT]   (2, 7, 30: 300 ads an account)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=bench/lib.sh
source bench/lib.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
accounts=${1:-2}
days=${2:-7}
campaigns=${3:-30}
ensure_gnu_time
ensure_wasmtime_cli
build_optimised
host=target/host/host-test
host_test=$host
fn=target/source-facebook-marketing-function.wasm
[[ -f "$fn" ]] || { echo "$fn is missing: run scripts/build-command.sh" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start_ms=$(($(date +%s) * 1000))
sim() { # a fresh world; sets $url
  start_simulator "$work/sim.log" --clock virtual --start-time-ms "$start_ms" --job-duration-ms 0 --accounts "$accounts" \
    --campaigns-per-account "$campaigns" --ads-per-adset 5
}
ms_now() { echo $(($(date +%s%N) / 1000000)); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

python3 - "$work" "$start_ms" "$accounts" "$days" <<'PY'
import json, sys, datetime
work, start_ms, accounts, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start = datetime.datetime.fromtimestamp(start_ms / 1000, datetime.timezone.utc) - datetime.timedelta(days=days - 1)
ids = [str(1000000000000001 + i) for i in range(accounts)]
json.dump({"account_ids": ids, "credentials": {"auth_type": "Service", "access_token": "sim-token"},
           "start_date": start.strftime("%Y-%m-%dT00:00:00Z")}, open(f"{work}/config.json", "w"))
PY
sim
"$host" --graph-url "$url" discover --config "$work/config.json" >"$work/discover.jsonl"
configured_catalog "$work/discover.jsonl" "$work/catalog.json" ad_account campaigns ad_sets ads ad_creatives ads_insights
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
config, catalog = json.load(open(f"{work}/config.json")), json.load(open(f"{work}/catalog.json"))
json.dump({"config": config, "catalog": catalog}, open(f"{work}/read.json", "w"))
json.dump({"config": config}, open(f"{work}/check.json", "w"))
PY

step "host-test read"
"$host" spec >/dev/null # the component compiled into the cache first
/usr/bin/time -f "%e %U %S %M" -o "$work/host.time" \
  "$host" --graph-url "$url" read --config "$work/config.json" --catalog "$work/catalog.json" \
  --output "$work/host.jsonl" 2>/dev/null
read -r h_wall h_user h_sys h_rss <"$work/host.time"
h_records=$(grep -c '"type":"RECORD"' "$work/host.jsonl")

step "wasmtime serve"
sim
port=$(free_port)
t0=$(ms_now)
"$WASMTIME" serve -Scli --env "GRAPH_URL=$url" --addr "127.0.0.1:$port" "$fn" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
until curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/spec"; do sleep 0.01; done
cold=$(($(ms_now) - t0))
warm=$(for _ in $(seq 10); do
  a=$(ms_now); curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/spec"; echo $(($(ms_now) - a))
done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
check=$(for _ in $(seq 5); do
  a=$(ms_now); curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/check" --data-binary "@$work/check.json"; echo $(($(ms_now) - a))
done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
rss_idle=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
c0=$(cpu_ticks "$serve_pid")
a=$(ms_now)
curl -sf -X POST "http://127.0.0.1:$port/read" --data-binary "@$work/read.json" -o "$work/fn.jsonl"
f_wall=$(($(ms_now) - a))
f_cpu=$(($(cpu_ticks "$serve_pid") - c0))
f_rss=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")
f_records=$(grep -c '"type":"RECORD"' "$work/fn.jsonl")

printf '%-58s %14s\n' "figure ($accounts accounts x $((campaigns * 10)) ads, $days days, 6 streams)" "value"
printf '%-58s %10d KiB\n' "function component size" $(($(stat -c %s "$fn") / 1024))
printf '%-58s %11d ms\n' "wasmtime serve cold start (launch to first /spec answer)" "$cold"
printf '%-58s %11d ms\n' "POST /spec, warm (a fresh instance; median of 10)" "$warm"
printf '%-58s %11d ms\n' "POST /check against the simulator (median of 5)" "$check"
f_line=$(python3 -c "print(f'$f_records, {$f_wall / 1000:.2f} s, {$f_cpu / $(getconf CLK_TCK):.2f} s, {$f_rss / 1024:.0f} MiB')")
h_line=$(python3 -c "print(f'$h_records, {$h_wall:.2f} s, {$h_user + $h_sys:.2f} s, {$h_rss / 1024:.0f} MiB')")
printf '%-58s %10d MiB\n' "wasmtime serve peak RSS before the read (compiling)" $((rss_idle / 1024))
printf '%-58s %14s\n' "POST /read: records, wall, CPU, server peak RSS" "$f_line"
printf '%-58s %14s\n' "host-test read: records, wall, CPU, peak RSS" "$h_line"
