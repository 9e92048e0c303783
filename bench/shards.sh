#!/usr/bin/env bash
# One process against three shards in parallel, on the same world: wall time and peak RSS of
# each, and whether the shards together read the same records and (merged with `host-test state
# merge`) leave the same state. Each run gets a fresh `host-test simulate` (same seed, same
# world start, clock following real time); the three shards share theirs, as shards of one app
# share Graph. Asserts nothing; prints a table and keeps everything in bench/out/shards/.
#
#   bench/shards.sh
#
# Environment: ACCOUNTS (30), SHARDS (3), LATENCY_MS (300), JOB_MS (20000), SEED (1). About a
# minute with the defaults.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

accounts="${ACCOUNTS:-30}" shards="${SHARDS:-3}" latency_ms="${LATENCY_MS:-300}" job_ms="${JOB_MS:-20000}"
seed="${SEED:-1}" campaigns=3 adsets=2 ads=2 days=7
streams="ad_account,campaigns,ad_sets,ads,ad_creatives,ads_insights,ads_insights_action_type"
out=bench/out/shards
host=target/host/host-test

# shellcheck source=bench/lib.sh
source bench/lib.sh
ensure_gnu_time
build_optimised
rm -rf "$out"
mkdir -p "$out"
"$host" spec >/dev/null # the compiled component's cache, outside the measurement

export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY

start_ms=$(($(date +%s%3N)))
start_date=$(date -u -d "@$((start_ms / 1000 - (days - 1) * 86400))" +%Y-%m-%dT00:00:00Z)
config() { # $1: first account index, $2: how many
  python3 -c "import json,sys; print(json.dumps({'account_ids': [str(1000000000000001 + i) for i in range($1, $1 + $2)], 'credentials': {'access_token': 'sim-token'}, 'start_date': '$start_date'}))"
}
config 0 "$accounts" >"$out/config.json"
"$host" discover --config "$out/config.json" >"$out/discover.jsonl"
python3 bench/bench.py catalog --discover "$out/discover.jsonl" --streams "$streams" --out "$out/catalog.json"

sim_pid="" sim_port=""
start_sim() {
  sim_port=$(free_port)
  "$host" simulate --port "$sim_port" --seed "$seed" --clock wall --latency-ms "$latency_ms" \
    --job-duration-ms "$job_ms" --start-time-ms "$start_ms" --accounts "$accounts" \
    --campaigns-per-account "$campaigns" --adsets-per-campaign "$adsets" --ads-per-adset "$ads" >"$out/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$sim_port/__sim/counters" >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "the simulator did not start; see $out/sim.log" >&2
  exit 1
}
stop_sim() {
  [[ -n $sim_pid ]] && { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
  sim_pid=""
}
trap stop_sim EXIT

read_one() { # $1: name, $2: config; runs in the background when asked
  /usr/bin/time -v -o "$out/$1.time" "$host" --graph-url "http://127.0.0.1:$sim_port" read --config "$2" \
    --catalog "$out/catalog.json" --output "$out/$1.jsonl" 2>"$out/$1.err"
}
now_s() { date +%s.%N; }

step "one process: $accounts accounts"
start_sim
t0=$(now_s)
read_one one "$out/config.json"
t1=$(now_s)
stop_sim
one_wall=$(python3 -c "print(f'{$t1 - $t0:.2f}')")

step "$shards shards in parallel, one simulator"
start_sim
per=$(((accounts + shards - 1) / shards))
pids=()
t0=$(now_s)
for ((k = 0; k < shards; k++)); do
  first=$((k * per))
  n=$((accounts - first < per ? accounts - first : per))
  config "$first" "$n" >"$out/shard-$k.config.json"
  read_one "shard-$k" "$out/shard-$k.config.json" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
t1=$(now_s)
stop_sim
shards_wall=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
[[ $status == 0 ]] || echo "a shard exited $status; see $out/shard-*.err" >&2

# The states each run left (its STATE messages, the last per stream wins), the shards' merged.
states_of() { python3 -c "import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1]) if l.rstrip().endswith('\"type\":\"STATE\"}')]))" "$1"; }
states_of "$out/one.jsonl" >"$out/one.state.json"
merge_args=()
for ((k = 0; k < shards; k++)); do
  states_of "$out/shard-$k.jsonl" >"$out/shard-$k.state.json"
  merge_args+=("$out/shard-$k.state.json")
done
"$host" state merge "${merge_args[@]}" --output "$out/merged.state.json" 2>"$out/merge.err"
cat "$out"/shard-*.jsonl >"$out/shards.jsonl"
python3 bench/bench.py compare --catalog "$out/catalog.json" --ours "$out/one.jsonl" --theirs "$out/shards.jsonl" \
  --labels one,shards --out "$out/compare.json" >"$out/compare.txt"

rss() { awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1"; }
cpu() { awk -F: '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1"; }
{
  echo "bench/shards.sh: $accounts accounts ($((campaigns * adsets * ads)) ads each, $days days), $shards shards; latency ${latency_ms} ms, report jobs ${job_ms} ms, seed $seed"
  echo "streams: $streams"
  printf '%-12s %10s %14s %10s %10s\n' run "wall s" "peak RSS MiB" "CPU s" records
  printf '%-12s %10s %14s %10s %10s\n' "one process" "$one_wall" "$(rss "$out/one.time")" "$(cpu "$out/one.time")" \
    "$(grep -c '"type":"RECORD"' "$out/one.jsonl")"
  sum_rss=0
  for ((k = 0; k < shards; k++)); do
    printf '%-12s %10s %14s %10s %10s\n' "shard $k" "-" "$(rss "$out/shard-$k.time")" "$(cpu "$out/shard-$k.time")" \
      "$(grep -c '"type":"RECORD"' "$out/shard-$k.jsonl")"
    sum_rss=$(python3 -c "print($sum_rss + $(rss "$out/shard-$k.time"))")
  done
  printf '%-12s %10s %14s\n' "$shards shards" "$shards_wall" "$(python3 -c "print(f'{$sum_rss:.1f} (sum)')")"
  echo "records, one process against the shards (by primary key):"
  sed 's/^/  /' "$out/compare.txt"
  "$host" state merge "$out/one.state.json" --output "$out/one.normalised.json" 2>/dev/null
  if cmp -s "$out/one.normalised.json" "$out/merged.state.json"; then
    echo "state: the shards' merged state equals the one process's"
  else
    echo "state: the merged state differs from the one process's (see $out/one.normalised.json, $out/merged.state.json)"
  fi
} | tee "$out/report.txt"
