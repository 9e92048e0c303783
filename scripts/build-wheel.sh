#!/usr/bin/env bash
# Builds the Python package (python/): the release component copied into it, then a
# platform-independent wheel into dist/ (source_facebook_marketing_wasm-<version>-py3-none-any.whl).
# The build backend (hatchling, pinned in python/pyproject.toml) comes from PyPI through pip's
# build isolation; pip runs from target/wheel-build (a venv this script makes). Runnable from any
# directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_wasm_target
echo "==> cargo build --release --target wasm32-wasip2 -p source-facebook-marketing"
cargo build --release --target wasm32-wasip2 -p source-facebook-marketing
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/source_facebook_marketing.wasm" \
  python/src/source_facebook_marketing_wasm/source_facebook_marketing.wasm

if [[ ! -x target/wheel-build/bin/python ]]; then
  python3 -m venv target/wheel-build
fi
rm -f dist/source_facebook_marketing_wasm-*.whl
echo "==> pip wheel python/ into dist/"
target/wheel-build/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist python/
ls -l dist/source_facebook_marketing_wasm-*.whl | awk '{printf "    %d KiB  %s\n", $5 / 1024, $NF}'
