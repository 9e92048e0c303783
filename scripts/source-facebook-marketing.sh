#!/usr/bin/env bash
# The connector as an Airbyte source executable: `spec`, `check --config F`, `discover --config F`,
# `read --config F --catalog F [--state F]`, protocol messages on stdout. For tools that run a
# connector as a local program, such as PyAirbyte:
#
#   ab.get_source("source-facebook-marketing", local_executable="scripts/source-facebook-marketing.sh", ...)
#
# It runs host-test (the wasmtime host) with the built component. Environment:
#   SFM_HOST_TEST  the host-test binary (default: target/host/host-test, built by
#                  `cargo build --profile host -p host-test`);
#   GRAPH_URL      where Graph calls go instead of https://graph.facebook.com (`host-test simulate`
#                  or a proxy), passed as `--graph-url`;
#   SFM_COMPONENT  another component than target/wasm32-wasip2/release/source_facebook_marketing.wasm.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="${SFM_HOST_TEST:-$root/target/host/host-test}"
if [[ ! -x "$host" ]] && [[ -z "${SFM_HOST_TEST:-}" ]] && command -v host-test >/dev/null 2>&1; then
  host="$(command -v host-test)"
fi
if [[ ! -x "$host" ]]; then
  echo "$host is missing; build it with: cargo build --profile host -p host-test (or cargo install --path host-test)" >&2
  exit 2
fi
args=()
if [[ -n "${GRAPH_URL:-}" ]]; then
  args+=(--graph-url "$GRAPH_URL")
fi
exec "$host" "${args[@]}" "$@"
