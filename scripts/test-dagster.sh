#!/usr/bin/env bash
# The Dagster integration (source_facebook_marketing_wasm.dagster): installs the package with its
# `dagster` extra into a fresh venv (target/dagster-venv) from a local wheelhouse, times the
# install, and runs tests/dagster in that venv: partitions by ad account run in processes of
# their own under a concurrency pool, a rerun going on from its saved state, a failing partition
# retried alone, a one-process state seeding the partitions; every table checked against the
# simulator's ground truth. Dagster, dagster-duckdb, duckdb, the wheel's own dependencies and
# pytest are downloaded from PyPI into target/dagster-wheelhouse once per set of pins.
#
# The package installed is dist/'s wheel (scripts/test-wheel.sh builds it; scripts/test.sh runs
# that first) when it is newer than every file of python/, else python/ itself, editable (which
# needs the component in python/src/source_facebook_marketing_wasm/, as scripts/build-wheel.sh
# copies it there). Needs target/debug/host-test (scripts/test.sh builds it). Runnable from any
# directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ ! -x target/debug/host-test ]]; then
  echo "target/debug/host-test is missing; build it with \`cargo build -p host-test\` (scripts/test.sh does)" >&2
  exit 1
fi

# The releases tested (python/pyproject.toml's `dagster` extra allows their minor versions), the
# wheel's dependencies as its pins resolve here, pytest, and hatchling with editables (python/'s
# build backend, for an editable install without the network).
deps="dagster==1.13.27 dagster-duckdb==0.29.27 duckdb==2.0.1 wasmtime>=51.0.0,<52 urllib3>=2.3,<3 pytest==9.2.0 hatchling==1.27.0 editables==0.6"
rm -rf target/dagster-venv
python3 -m venv target/dagster-venv
if ! cmp -s <(echo "$deps") target/dagster-wheelhouse/downloaded.txt 2>/dev/null; then
  echo "==> pip download $deps into target/dagster-wheelhouse"
  rm -rf target/dagster-wheelhouse
  # shellcheck disable=SC2086
  target/dagster-venv/bin/python -m pip download --quiet --disable-pip-version-check --dest target/dagster-wheelhouse $deps
  echo "$deps" >target/dagster-wheelhouse/downloaded.txt
fi

wheel=$(ls dist/source_facebook_marketing_wasm-*.whl 2>/dev/null | head -n 1 || true)
if [[ -n "$wheel" && -z "$(find python/src python/pyproject.toml -newer "$wheel" -type f ! -name '*.pyc' -print -quit)" ]]; then
  package="${wheel}[dagster]"
  what="the wheel $wheel"
else
  if [[ ! -f python/src/source_facebook_marketing_wasm/source_facebook_marketing.wasm ]]; then
    echo "no current wheel in dist/ and no component in python/src/source_facebook_marketing_wasm/;" \
      "run scripts/build-wheel.sh (scripts/test.sh does)" >&2
    exit 1
  fi
  package="-e python/[dagster]"
  what="python/ (editable${wheel:+; $wheel is older than python/})"
fi

start=$(date +%s%N)
# shellcheck disable=SC2086
target/dagster-venv/bin/python -m pip install --quiet --disable-pip-version-check --no-index \
  --find-links target/dagster-wheelhouse $package dagster==1.13.27 dagster-duckdb==0.29.27 duckdb==2.0.1 pytest==9.2.0
installed=$(date +%s%N)
echo "pip install of $what with Dagster into a fresh venv: $(((installed - start) / 1000000)) ms (from the local wheelhouse)"

echo "==> pytest tests/dagster (in target/dagster-venv)"
# The component's compiled form, cached across runs (keyed by its hash and wasmtime's release).
export SFM_CACHE_DIR="$root/target/dagster-cache"
cd tests/dagster
start=$(date +%s%N)
status=0
SFM_ROOT="$root" "$root/target/dagster-venv/bin/python" -m pytest -p no:cacheprovider . || status=$?
echo "tests/dagster took $((($(date +%s%N) - start) / 1000000)) ms"
exit "$status"
