#!/usr/bin/env bash
# Builds the connector as a wasi:cli command that stock WASI hosts run (`wasmtime run -S http`),
# and as a wasi:http/proxy function that serverless hosts serve (`wasmtime serve`, jco serve):
#   target/wasm32-wasip2/release/source_facebook_marketing.wasm  the connector (imports `host`)
#   target/wasm32-wasip2/release/http_adapter.wasm               `host` on wasi:http + wasi:clocks
#   target/wasm32-wasip2/release/sfm-cli.wasm                    the Airbyte CLI (imports `source`)
#   target/wasm32-wasip2/release/http_function.wasm              POST /spec ... /read (imports `source`)
# and plugs them together with `wac plug` into target/source-facebook-marketing-command.wasm and
# target/source-facebook-marketing-function.wasm.
# Installs the wasm32-wasip2 target and wac (crates.io: wac-cli) when missing. Runnable from any
# directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# 0.12: the wac release these scripts were written against; `plug` needs no registry support,
# so the default `registry` feature (and its TLS stack) is left out.
WAC_VERSION=0.12.0

ensure_wasm_target
if ! command -v wac >/dev/null || ! wac --version | grep -q " ${WAC_VERSION}\$"; then
  echo "==> cargo install wac-cli --locked --version ${WAC_VERSION}"
  cargo install wac-cli --locked --version "${WAC_VERSION}" --no-default-features
fi

# One package per build: selected together, their dependencies' features would be unified and
# the connector would differ from the one `scripts/test.sh` and `host-test` use.
for package in source-facebook-marketing sfm-http-adapter sfm-cli sfm-http-function; do
  echo "==> cargo build --release --target wasm32-wasip2 -p $package"
  cargo build --release --target wasm32-wasip2 -p "$package"
done

target="${CARGO_TARGET_DIR:-target}"
wasm="$target/wasm32-wasip2/release"
connector="$wasm/source_facebook_marketing.wasm"
adapter="$wasm/http_adapter.wasm"
cli="$wasm/sfm-cli.wasm"
plugged="$wasm/source-facebook-marketing-plugged.wasm"
command="$target/source-facebook-marketing-command.wasm"
http_function="$wasm/http_function.wasm"
function="$target/source-facebook-marketing-function.wasm"

echo "==> wac plug: the adapter into the connector, the result into the cli"
wac plug "$connector" --plug "$adapter" -o "$plugged"
wac plug "$cli" --plug "$plugged" -o "$command"
echo "==> wac plug: the plugged connector into the wasi:http function"
wac plug "$http_function" --plug "$plugged" -o "$function"

for f in "$connector" "$adapter" "$cli" "$command" "$http_function" "$function"; do
  printf '%8s KiB  %s\n' "$(($(wc -c <"$f") / 1024))" "$f"
done
