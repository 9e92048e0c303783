#!/usr/bin/env bash
# Side-by-side sync of our connector (OURS: host-test + the wasm component), the same component
# in the Python wheel (WHEEL: its console script on wasmtime-py) and Airbyte's Python
# source-facebook-marketing 6.1.9 (THEIRS) against the same Graph API simulator over loopback
# HTTP, on a real clock. Prints one table (wall, CPU, peak RSS, records, requests by kind) and
# every difference between the record sets. Asserts nothing.
#
#   bench/run.sh [small|large|accounts]
#
# small:    1 account, 100 ads, 7 days, ads_insights + 5 entity streams (~1 minute once built).
# large:    3 accounts, 3000 ads, 30 days, ads_insights, ads_insights_action_type + 10 entity
#           streams (~21 minutes, nearly all of it Airbyte).
# accounts: ACCOUNTS (50) accounts of 12 ads each, 300 ms a round trip, 7 days, ad_account,
#           campaigns, ad_sets, ads, ad_creatives, ads_insights, ads_insights_action_type: the
#           agency case, where round trips dominate. Also prints the physical floor: the job
#           time plus the longest chain of dependent round trips (ad account, job creation,
#           status poll, result page).
# Environment: OURS_ONLY (1: our connector alone, for sizes Airbyte's would take hours on),
#              LATENCY_MS (50; 300 for accounts), JOB_MS (20000), SEED (1), ACCOUNTS (50),
#              OUT (bench/out/<size>, bench/out/accounts-<n> for accounts), COMPONENT (the
#              component OURS runs, e.g. another commit's build, to compare before and after;
#              default: the one just built).
#
# Each connector gets a fresh simulator (same seed, same world start), so both see the same world;
# the simulator's clock follows real time, so report jobs take JOB_MS of real time for both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

size="${1:-small}"
default_latency_ms=50
job_ms="${JOB_MS:-20000}"
seed="${SEED:-1}"
case "$size" in
  small)
    accounts=1 campaigns=5 adsets=4 ads=5 days=7
    streams="ad_account,campaigns,ad_sets,ads,ad_creatives,ads_insights"
    ;;
  large)
    accounts=3 campaigns=10 adsets=5 ads=20 days=30
    streams="ad_account,campaigns,ad_sets,ads,ad_creatives,activities,images,videos,custom_conversions,custom_audiences,ads_insights,ads_insights_action_type"
    ;;
  accounts)
    accounts="${ACCOUNTS:-50}" campaigns=3 adsets=2 ads=2 days=7 default_latency_ms=300
    streams="ad_account,campaigns,ad_sets,ads,ad_creatives,ads_insights,ads_insights_action_type"
    ;;
  *)
    echo "usage: bench/run.sh [small|large|accounts]" >&2
    exit 64
    ;;
esac
latency_ms="${LATENCY_MS:-$default_latency_ms}"
if [[ $size == accounts ]]; then
  out="${OUT:-bench/out/accounts-$accounts}"
else
  out="${OUT:-bench/out/$size}"
fi
venv=bench/.venv-airbyte
airbyte_pkg="airbyte-source-facebook-marketing==6.1.9"
host=target/host/host-test

# shellcheck source=bench/lib.sh
source bench/lib.sh

# --- tools ------------------------------------------------------------------------------------
ensure_gnu_time

# --- (a) Airbyte's connector in its own venv --------------------------------------------------
# 6.1.9 wants Python >=3.10,<3.14; take the first such interpreter.
pick_python() {
  local p
  for p in python3.11 python3.12 python3.10 python3.13 python3; do
    if command -v "$p" >/dev/null 2>&1 &&
      "$p" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no Python 3.10-3.13 found for Airbyte's connector" >&2
  exit 1
}
if ! cmp -s <(echo "$airbyte_pkg") "$venv/installed.txt" 2>/dev/null; then
  py="$(pick_python)"
  step "$py -m venv $venv && pip install $airbyte_pkg"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$airbyte_pkg"
  echo "$airbyte_pkg" >"$venv/installed.txt"
fi

# --- (b) our component and an optimised host, and the wheel in a venv of its own ---------------
build_optimised
step "scripts/build-wheel.sh, and the wheel into bench/.venv-wheel"
flock /tmp/cargo-build.lock bash scripts/build-wheel.sh >/dev/null
wheel_file=$(ls dist/source_facebook_marketing_wasm-*.whl)
if ! cmp -s <(sha256sum "$wheel_file" | cut -c1-64) bench/.venv-wheel/installed.txt 2>/dev/null; then
  rm -rf bench/.venv-wheel
  python3 -m venv bench/.venv-wheel
  bench/.venv-wheel/bin/python -m pip install --quiet --disable-pip-version-check "$wheel_file"
  sha256sum "$wheel_file" | cut -c1-64 >bench/.venv-wheel/installed.txt
fi
wheel_cli=bench/.venv-wheel/bin/source-facebook-marketing

rm -rf "$out"
mkdir -p "$out"
wasm="${COMPONENT:-target/wasm32-wasip2/release/source_facebook_marketing.wasm}"
component_args=()
if [[ -n "${COMPONENT:-}" ]]; then
  component_args=(--component "$COMPONENT")
fi
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo ", working tree modified" || true)
echo "component $(($(stat -c %s "$wasm") / 1024)) KiB, sha256 $(sha256sum "$wasm" | cut -c1-12); git $(git rev-parse --short HEAD)$dirty" \
  >"$out/build.txt"

# Warm both start-ups outside the measurement: our precompiled component cache (*.cwasm) and
# Python's bytecode and page cache. Cold start-up is measured by scripts/bench-startup.sh.
"$host" spec >/dev/null
"$wheel_cli" spec >/dev/null
GRAPH_URL=http://127.0.0.1:9 "$venv/bin/python" bench/airbyte_launcher.py spec >/dev/null 2>&1 || true

# --- the world and the config -----------------------------------------------------------------
# One world start for both simulators, so entity timestamps match record for record.
start_ms=$(($(date +%s%3N)))
start_date=$(date -u -d "@$((start_ms / 1000 - (days - 1) * 86400))" +%Y-%m-%dT00:00:00Z)
account_ids=$(python3 -c "import json; print(json.dumps([str(1000000000000001 + i) for i in range($accounts)]))")
cat >"$out/config.json" <<EOF
{"account_ids": $account_ids, "credentials": {"auth_type": "Service", "access_token": "sim-token"}, "start_date": "$start_date"}
EOF
sim_args=(--seed "$seed" --clock wall --latency-ms "$latency_ms" --job-duration-ms "$job_ms" --start-time-ms "$start_ms"
  --accounts "$accounts" --campaigns-per-account "$campaigns" --adsets-per-campaign "$adsets" --ads-per-adset "$ads")

# Only loopback: any request that is not to 127.0.0.1 goes to a proxy that is not there.
export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY

# Airbyte's discover makes no Graph call; its catalog is what our users have configured today.
step "discover (Airbyte's catalog), streams: $streams"
GRAPH_URL=http://127.0.0.1:9 "$venv/bin/python" bench/airbyte_launcher.py discover --config "$out/config.json" \
  >"$out/discover.jsonl" 2>"$out/discover.err"
python3 bench/bench.py catalog --discover "$out/discover.jsonl" --streams "$streams" --out "$out/catalog.json"

# --- (c)-(e) one fresh simulator per connector run --------------------------------------------
sim_pid=""
stop_sim() { # $1 (optional): name; its simulator's CPU seconds go to $out/<name>.sim.cpu
  if [[ -n "$sim_pid" ]]; then
    if [[ -n "${1:-}" && -r /proc/$sim_pid/stat ]]; then
      # utime + stime (fields 14, 15) in clock ticks; the command name has no spaces.
      awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / hz}' "/proc/$sim_pid/stat" >"$out/$1.sim.cpu"
    fi
    kill "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
  fi
}
trap stop_sim EXIT


sim_port=""
start_sim() { # $1: name; sets sim_pid and sim_port
  sim_port=$(free_port)
  "$host" simulate --port "$sim_port" --public-url "http://127.0.0.1:$sim_port" "${sim_args[@]}" \
    >"$out/$1.sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$sim_port/__sim/counters" >/dev/null 2>&1; then
      return
    fi
    sleep 0.05
  done
  echo "the simulator did not start; see $out/$1.sim.log" >&2
  exit 1
}

run_one() { # $1: ours|wheel|theirs
  local name=$1 url status
  start_sim "$name"
  url="http://127.0.0.1:$sim_port"
  step "$name: read against $url"
  set +e
  if [[ $name == ours ]]; then
    /usr/bin/time -v -o "$out/ours.time" \
      "$host" "${component_args[@]}" --graph-url "$url" read --config "$out/config.json" --catalog "$out/catalog.json" \
      --output "$out/ours.jsonl" 2>"$out/ours.err"
  elif [[ $name == wheel ]]; then
    /usr/bin/time -v -o "$out/wheel.time" \
      "$wheel_cli" --graph-url "$url" read --config "$out/config.json" --catalog "$out/catalog.json" \
      --output "$out/wheel.jsonl" 2>"$out/wheel.err"
  else
    GRAPH_URL="$url" /usr/bin/time -v -o "$out/theirs.time" \
      "$venv/bin/python" bench/airbyte_launcher.py read --config "$out/config.json" --catalog "$out/catalog.json" \
      >"$out/theirs.jsonl" 2>"$out/theirs.err"
  fi
  status=$?
  set -e
  step "$name: exit $status, $(grep -c '"type": *"RECORD"' "$out/$name.jsonl" || true) records"
  curl -sf "$url/__sim/counters" >"$out/$name.counters.json"
  stop_sim "$name"
}

# The report's first lines: the world, and what was measured.
report_head() {
  echo "bench/run.sh $size: $accounts account(s), $((accounts * campaigns * adsets * ads)) ads, $days days from $start_date"
  echo "simulator: seed $seed, latency ${latency_ms} ms, report jobs ${job_ms} ms, clock wall, world start $start_ms"
  echo "streams: $streams"
  # Nothing can end sooner than a report job plus the round trips that must follow each other:
  # the ad account (its time zone), the job's creation, the poll that sees it done, a result page.
  echo "physical floor: $(python3 -c "print(f'{($job_ms + 4 * $latency_ms) / 1000:.2f}')") s (report job ${job_ms} ms + 4 dependent round trips of ${latency_ms} ms)"
  cat "$out/build.txt"
  echo
}

# Ours first: the shorter runs, so that Airbyte's simulator starts soonest after the world start.
run_one ours
if [[ ${OURS_ONLY:-0} == 1 ]]; then
  {
    report_head
    python3 bench/bench.py brief --dir "$out"
  } | tee "$out/report.txt"
  exit 0
fi
run_one wheel
run_one theirs

# --- (f) the record sets, (g) the table -------------------------------------------------------
python3 bench/bench.py compare --catalog "$out/catalog.json" --ours "$out/ours.jsonl" --theirs "$out/theirs.jsonl" \
  --out "$out/compare.json" >"$out/compare.txt"
python3 bench/bench.py compare --catalog "$out/catalog.json" --ours "$out/ours.jsonl" --theirs "$out/wheel.jsonl" \
  --labels host-test,wheel --out "$out/compare-wheel.json" >"$out/compare-wheel.txt"
{
  report_head
  python3 bench/bench.py table --dir "$out"
  echo
  echo "record-set differences (RECORD messages only, keyed by primary key):"
  sed 's/^/  /' "$out/compare.txt"
  echo "host-test against the wheel:"
  sed 's/^/  /' "$out/compare-wheel.txt"
} | tee "$out/report.txt"
