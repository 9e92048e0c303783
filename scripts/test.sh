#!/usr/bin/env bash
# Installs what a fresh machine lacks, builds the component and host-test, then checks style
# (`cargo fmt --check`, `cargo clippy -D warnings`) and runs every test:
# `cargo test --workspace` (unit, scenario and end-to-end tests) and `pytest tests/python`
# (the CLI's protocol output, validated with Airbyte's models, and a PyAirbyte sync into DuckDB
# from the wheel, checked against the simulator's ground truth), the Python wheel in a fresh venv
# (scripts/test-wheel.sh: its console script against host-test, its API, a hostile server), the
# Dagster integration with Dagster's multiprocess executor into DuckDB (scripts/test-dagster.sh),
# the composed command under jco in Node.js
# (scripts/test-jco.sh; installs pinned npm packages into .jco/), and the wasi:http function under
# `wasmtime serve` and jco serve (scripts/test-serve.sh; the pinned wasmtime CLI is built into
# .tools/ the first time, about 10 minutes). Runnable from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_wasm_target
ensure_lint_tools
ensure_node
ensure_python_venv
ensure_wasmtime_cli
build_component_and_host
bash scripts/build-command.sh

# Both runners always run, so one failure does not hide the other's results; the script fails
# if either did.
failed=()

echo "==> cargo fmt --all --check"
cargo fmt --all --check || failed+=("cargo fmt")

echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || failed+=("cargo clippy")

echo "==> cargo test --workspace"
cargo test --workspace --no-fail-fast || failed+=("cargo test")

echo "==> the recorded-response corpus (figures)"
cargo test -q -p source-facebook-marketing --test corpus -- --nocapture every_recorded_body 2>&1 | grep -E '^(corpus|  )' || true

echo "==> scripts/test-wheel.sh (the Python wheel in a fresh venv: console script, API, hostile server)"
bash scripts/test-wheel.sh || failed+=("wheel")

echo "==> scripts/test-dagster.sh (Dagster assets partitioned by ad account: pools, reruns, a failing partition)"
bash scripts/test-dagster.sh || failed+=("dagster")

echo "==> pytest tests/python"
.venv/bin/python -m pytest tests/python || failed+=("pytest")

echo "==> scripts/replay-recordings.sh (recordings/ replayed byte for byte)"
bash scripts/replay-recordings.sh || failed+=("recordings")

echo "==> scripts/test-jco.sh (the command under jco in Node.js, against host-test's read)"
bash scripts/test-jco.sh || failed+=("jco")

echo "==> scripts/test-serve.sh (the wasi:http function under wasmtime serve and jco serve)"
bash scripts/test-serve.sh || failed+=("serve")

if ((${#failed[@]})); then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
