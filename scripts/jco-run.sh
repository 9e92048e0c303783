#!/usr/bin/env bash
# Runs the composed wasi:cli command (target/source-facebook-marketing-command.wasm, built by
# scripts/build-command.sh) under jco in Node.js, with the current folder granted:
#
#   scripts/jco-run.sh [--graph-url URL] spec|check|discover|read ARGS...
#
# Installs the pinned npm packages into .jco/ the first time. `--graph-url URL` is passed to the
# command as GRAPH_URL (as scripts/wasmtime-run.sh does). Needs Node.js 18 or later.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"
ensure_jco
dir="$root/.jco"
# The setup module must resolve the same preview2-shim as the command: it lives beside it.
cp "$root/scripts/jco-setup.mjs" "$dir/setup.mjs"

env_args=()
if [[ "${1:-}" == "--graph-url" ]]; then
  env_args=(GRAPH_URL="$2")
  shift 2
fi
command="$root/target/source-facebook-marketing-command.wasm"
[[ -f "$command" ]] || { echo "$command is missing: run scripts/build-command.sh" >&2; exit 2; }
exec env "${env_args[@]}" "$dir/node_modules/.bin/jco" run --jco-import "$dir/setup.mjs" "$command" "$@"
