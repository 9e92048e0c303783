#!/usr/bin/env bash
# The connector as a wasi:http function (target/source-facebook-marketing-function.wasm, built
# by scripts/build-command.sh) under real serverless hosts, over loopback against
# `host-test simulate`: `wasmtime serve` (the pinned CLI, installed into .tools/ by
# scripts/lib.sh) and `jco serve` in Node.js (the pinned packages of scripts/jco-run.sh).
# For each host: spec, check and discover equal host-test's; bad requests get a 4xx naming
# the problem; a full read's NDJSON equals `host-test read`'s stdout for the same world byte for
# byte (emitted_at aside); a chain of reads time-boxed at 1 s, each given the last one's state,
# gives the records and the final state of that read (at least 4 reads); the token appears nowhere.
#   scripts/test-serve.sh [wasmtime|jco]...   (both by default)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

hosts=("$@")
((${#hosts[@]})) || hosts=(wasmtime jco)
host_test="$root/target/debug/host-test"
function_wasm="$root/target/source-facebook-marketing-function.wasm"
[[ -f "$function_wasm" ]] || { echo "$function_wasm is missing: run scripts/build-command.sh" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# One simulated world for every server: the same seed and start instant (now), virtual clock,
# 150 ms of real time a request and listings of several pages (page_size 10, 112 ads an account),
# so that a read lasts several seconds.
start_ms=$(($(date +%s) * 1000))
url=""
simulator() { # a fresh world; sets $url
  start_simulator "$work/sim-$1.log" --clock virtual --start-time-ms "$start_ms" --latency-ms 150 \
    --job-duration-ms 0 --campaigns-per-account 14 --ads-per-adset 4
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the function under host $1 (its log named $2), Graph calls going to $url; sets $fn_url.
fn_url=""
serve() {
  local port log="$work/serve-$2.log"
  port=$(free_port)
  case "$1" in
    wasmtime)
      # -Scli: the function reads GRAPH_URL from wasi:cli/environment (`--env`).
      "$WASMTIME" serve -Scli --env "GRAPH_URL=$url" --addr "127.0.0.1:$port" "$function_wasm" >"$log" 2>&1 &
      ;;
    jco)
      ensure_jco
      GRAPH_URL="$url" "$root/.jco/node_modules/.bin/jco" serve --port "$port" --host 127.0.0.1 "$function_wasm" >"$log" 2>&1 &
      ;;
  esac
  pids+=($!)
  fn_url="http://127.0.0.1:$port"
  for _ in $(seq 600); do
    if curl -s -o /dev/null "$fn_url/spec" 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "$1 serve did not start: $(cat "$log")" >&2
  exit 1
}

cat >"$work/config.json" <<'JSON'
{"account_ids": ["1000000000000001", "1000000000000002"], "credentials": {"auth_type": "Service", "access_token": "sim-token"}, "max_concurrent_requests": 1, "page_size": 10}
JSON
python3 - "$work" "$start_ms" <<'PY'
import json, sys, datetime
work, start_ms = sys.argv[1], int(sys.argv[2])
conf = json.load(open(f"{work}/config.json"))
start = datetime.datetime.fromtimestamp(start_ms / 1000, datetime.timezone.utc) - datetime.timedelta(days=3)
conf["start_date"] = start.strftime("%Y-%m-%dT00:00:00Z")
json.dump(conf, open(f"{work}/config.json", "w"))
PY
simulator reference
"$host_test" --graph-url "$url" discover --config "$work/config.json" >"$work/discover.jsonl"
"$host_test" spec >"$work/spec.jsonl"
configured_catalog "$work/discover.jsonl" "$work/catalog.json" ad_account campaigns ads ad_creatives ads_insights

echo "==> host-test read (the reference)"
"$host_test" --graph-url "$url" read --config "$work/config.json" --catalog "$work/catalog.json" \
  --output "$work/reference.jsonl" 2>"$work/reference.err"

serve_pid=""
# A fresh world and the function under host $1 in front of it.
fresh() {
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
  simulator "$1-$2"
  serve "$1" "$1-$2"
  serve_pid=${pids[-1]}
}

for host in "${hosts[@]}"; do
  [[ "$host" == wasmtime ]] && ensure_wasmtime_cli
  echo "==> $host serve: spec, check, discover, bad requests"
  fresh "$host" api
  python3 "$root/scripts/serve_check.py" api "$fn_url" "$work"
  echo "==> $host serve: a full read against a fresh world"
  fresh "$host" full
  python3 "$root/scripts/serve_check.py" full "$fn_url" "$work"
  echo "==> $host serve: a chain of reads time-boxed at 1 s against a fresh world"
  fresh "$host" chain
  python3 "$root/scripts/serve_check.py" chain "$fn_url" "$work"
  if grep -l "sim-token" "$work"/serve-"$host"-*.log; then
    echo "the token appears in $host's log" >&2
    exit 1
  fi
done
