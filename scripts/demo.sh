#!/usr/bin/env bash
# Builds the component and host-test, then runs `host-test demo` (a full sync against the
# in-process simulator); arguments go to the demo, e.g. `scripts/demo.sh --preset flaky --days 7`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_wasm_target
build_component_and_host

exec target/debug/host-test demo "$@"
