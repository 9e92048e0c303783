#!/usr/bin/env bash
# Start-up figures: component size, `host-test spec` cold (compiling the component) and warm
# (from the precompiled cache), and a `discover`. Prints a table; asserts nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ensure_wasm_target
build_component_and_host >/dev/null 2>&1

wasm=target/wasm32-wasip2/release/source_facebook_marketing.wasm
host=target/debug/host-test
runs=${RUNS:-10}

ms() { # prints the wall time of "$@" in milliseconds
  local t0 t1
  t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

size=$(stat -c %s "$wasm")
# A cache folder of its own, empty for the cold start.
SFM_CACHE_DIR=$(mktemp -d)
export SFM_CACHE_DIR
cold=$(ms "$host" spec)
warm=$(for _ in $(seq "$runs"); do ms "$host" spec; done | median)
cfg=$(mktemp)
echo '{"account_ids":["1"],"credentials":{"access_token":"x"}}' > "$cfg"
disc=$(for _ in $(seq "$runs"); do ms "$host" discover --config "$cfg"; done | median)
rm -f "$cfg"
rm -rf "$SFM_CACHE_DIR"

printf '%-44s %12s\n' "figure" "value"
printf '%-44s %9d KiB\n' "component size (release, wasm32-wasip2)" $((size / 1024))
printf '%-44s %10d ms\n' "host-test spec, cold (compiles the component)" "$cold"
printf '%-44s %10d ms\n' "host-test spec, warm (median of $runs)" "$warm"
printf '%-44s %10d ms\n' "host-test discover, warm (median of $runs)" "$disc"
