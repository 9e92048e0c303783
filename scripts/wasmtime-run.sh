#!/usr/bin/env bash
# Runs the composed command (scripts/build-command.sh) under the stock `wasmtime` CLI, with
# wasi:http on (`-S http`) and the current directory granted as `.` (`--dir .`), so config,
# catalog and state files are named relative to it. Installs nothing.
#
#   scripts/wasmtime-run.sh spec
#   scripts/wasmtime-run.sh --graph-url http://127.0.0.1:8080 check --config config.json
#   scripts/wasmtime-run.sh read --config config.json --catalog catalog.json [--state state.json]
#
# --graph-url (or GRAPH_URL in the environment) sends Graph calls to a proxy or to
# `host-test simulate`; without it they go to https://graph.facebook.com. SFM_COMMAND names
# another composed wasm. Exit status: wasmtime's, 0 on success and 1 on any failure (WASI 0.2
# carries no other exit code).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command_wasm="${SFM_COMMAND:-$root/target/source-facebook-marketing-command.wasm}"

# The CLI scripts/test.sh installs (scripts/lib.sh, ensure_wasmtime_cli), else the PATH's.
wasmtime="$root/.tools/wasmtime-48.0.8/bin/wasmtime"
[[ -x "$wasmtime" ]] || wasmtime=wasmtime
if ! command -v "$wasmtime" >/dev/null; then
  cat >&2 <<'MSG'
wasmtime is not installed. scripts/test.sh installs the version this project tests against
into .tools/; or install its CLI yourself:
  cargo install wasmtime-cli --locked --version 48.0.8
MSG
  exit 2
fi
if [[ ! -f "$command_wasm" ]]; then
  echo "$command_wasm is missing; build it with scripts/build-command.sh" >&2
  exit 2
fi

graph_url="${GRAPH_URL:-}"
if [[ "${1:-}" == --graph-url ]]; then
  if [[ $# -lt 2 ]]; then
    echo "--graph-url needs a URL, e.g. http://127.0.0.1:8080" >&2
    exit 2
  fi
  graph_url="$2"
  shift 2
fi
env_args=()
if [[ -n "$graph_url" ]]; then
  env_args=(--env "GRAPH_URL=$graph_url")
fi

exec "$wasmtime" run -S http --dir . "${env_args[@]}" "$command_wasm" "$@"
