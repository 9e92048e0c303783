#!/usr/bin/env bash
# Builds the component and host-test, then runs `host-test soak --seeds 1..=SEEDS` (default 1000):
# seeded syncs with random fault mixes through the wasm component, each also stopped at a random
# message and resumed, checked against the simulator's ground truth (see RELIABILITY.md).
# Further arguments go to `host-test soak`, e.g. `scripts/soak.sh 200 --verbose`.
# Exits 1 when a seed fails; reproduce one with `target/debug/host-test soak --seeds N..=N --verbose`.
set -euo pipefail

seeds="${1:-1000}"
if ! [[ "$seeds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/soak.sh [SEEDS] [host-test soak options]  (SEEDS: a positive whole number, default 1000)" >&2
  exit 2
fi
shift || true

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_wasm_target
build_component_and_host

exec target/debug/host-test soak --seeds "1..=$seeds" "$@"
