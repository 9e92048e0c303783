#!/usr/bin/env bash
# The Python package as a user gets it: builds the wheel (scripts/build-wheel.sh), installs it
# into a fresh venv (target/wheel-venv) from a local wheelhouse, times `pip install` and the
# first `source-facebook-marketing spec`, and runs python/tests in that venv: the console script
# against host-test simulate (the same records and state as host-test read), the Python API, a
# hostile server (size cap, redirect, timeout) and concurrency. The wheel's dependencies
# (wasmtime, urllib3) and pytest are downloaded from PyPI into target/wheelhouse once, so that
# the tests, and PyAirbyte's install of the wheel in tests/python, stay off the network.
# Needs target/debug/host-test (scripts/test.sh builds it). Runnable from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/build-wheel.sh
wheel=$(ls dist/source_facebook_marketing_wasm-*.whl)

# The wheel's dependencies as its pins resolve here, and pytest, once per set of pins.
deps="wasmtime>=51.0.0,<52 urllib3>=2.3,<3 pytest==9.2.0"
if ! cmp -s <(echo "$deps") target/wheelhouse/downloaded.txt 2>/dev/null; then
  echo "==> pip download $deps into target/wheelhouse"
  rm -rf target/wheelhouse
  # shellcheck disable=SC2086
  target/wheel-build/bin/python -m pip download --quiet --disable-pip-version-check --dest target/wheelhouse $deps
  echo "$deps" >target/wheelhouse/downloaded.txt
fi

rm -rf target/wheel-venv
python3 -m venv target/wheel-venv
export SFM_CACHE_DIR="$root/target/wheel-cache"
rm -rf "$SFM_CACHE_DIR"
start=$(date +%s%N)
target/wheel-venv/bin/python -m pip install --quiet --disable-pip-version-check --no-index \
  --find-links target/wheelhouse "$wheel" pytest==9.2.0
installed=$(date +%s%N)
target/wheel-venv/bin/source-facebook-marketing spec >/dev/null
first=$(date +%s%N)
target/wheel-venv/bin/source-facebook-marketing spec >/dev/null
second=$(date +%s%N)
echo "pip install of the wheel into a fresh venv: $(((installed - start) / 1000000)) ms (from the local wheelhouse);" \
  "first spec $(((first - installed) / 1000000)) ms (compiles and caches the component), next $(((second - first) / 1000000)) ms"

echo "==> pytest python/tests (in target/wheel-venv)"
cd python/tests
SFM_ROOT="$root" "$root/target/wheel-venv/bin/python" -m pytest -p no:cacheprovider .
