# Steps shared by scripts/test.sh and scripts/demo.sh; sourced from the repository root.

# The component's compilation target, added when the toolchain lacks it.
ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "==> rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
  fi
}

# rustfmt and clippy, which scripts/test.sh runs over the whole workspace.
ensure_lint_tools() {
  local c
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      echo "==> rustup component add $c"
      rustup component add "$c"
    fi
  done
}

# .venv with the pinned packages of tests/python/requirements.txt and of
# requirements-pyairbyte.txt (PyAirbyte, about 780 MB and five minutes the first time), in one
# pip call so that both sets of pins hold together; a copy of the files inside the venv records
# what was installed, so an unchanged venv costs no pip call (and no network).
ensure_python_venv() {
  local requirements=(tests/python/requirements.txt tests/python/requirements-pyairbyte.txt)
  if [[ ! -x .venv/bin/python ]]; then
    echo "==> python3 -m venv .venv"
    python3 -m venv .venv
  fi
  if ! cat "${requirements[@]}" | cmp -s - .venv/installed-requirements.txt; then
    echo "==> pip install -r ${requirements[*]}"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${requirements[@]/#/--requirement=}"
    cat "${requirements[@]}" >.venv/installed-requirements.txt
  fi
}

build_component_and_host() {
  echo "==> cargo build --release --target wasm32-wasip2 -p source-facebook-marketing"
  cargo build --release --target wasm32-wasip2 -p source-facebook-marketing
  echo "==> cargo build -p host-test"
  cargo build -p host-test
}

# Node.js and npm, which scripts/test-jco.sh needs (it installs jco itself): named plainly when
# missing, rather than failing half-way through the tests.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "scripts/test.sh needs Node.js 20 or later with npm (for the jco test); install them, e.g. apt-get install nodejs npm" >&2
    exit 1
  fi
}

# The wasmtime CLI the serverless tests run (`wasmtime serve`), pinned and built from crates.io
# into .tools/ (about 10 minutes the first time on 2 cores; newer releases need a newer rustc
# than 1.95). Only what `run` and `serve` need is built (`serve` does not build without
# `component-model-async` in 48.0.8, nor start without `pooling-allocator`). Sets $WASMTIME.
WASMTIME_VERSION=48.0.8
ensure_wasmtime_cli() {
  local root=.tools/wasmtime-$WASMTIME_VERSION
  WASMTIME="$PWD/$root/bin/wasmtime"
  if [[ ! -x "$WASMTIME" ]]; then
    echo "==> cargo install wasmtime-cli --version $WASMTIME_VERSION (run, serve) into $root"
    cargo install wasmtime-cli --locked --version "$WASMTIME_VERSION" --root "$root" \
      --no-default-features --features run,serve,cranelift,component-model,component-model-async,parallel-compilation,pooling-allocator
  fi
}

# jco and preview2-shim, pinned, into .jco/ (scripts/jco-run.sh, scripts/test-serve.sh); the
# installed versions are recorded so that an unchanged .jco costs no npm call.
JCO_VERSION=1.35.0
SHIM_VERSION=0.26.1
ensure_jco() {
  local dir stamp
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.jco"
  stamp="jco@$JCO_VERSION preview2-shim@$SHIM_VERSION"
  if ! cmp -s <(echo "$stamp") "$dir/installed.txt" 2>/dev/null; then
    echo "==> npm install @bytecodealliance/jco@$JCO_VERSION @bytecodealliance/preview2-shim@$SHIM_VERSION into .jco" >&2
    mkdir -p "$dir"
    [[ -f "$dir/package.json" ]] || echo '{"private": true}' >"$dir/package.json"
    npm install --prefix "$dir" --no-audit --no-fund --silent --save-exact \
      "@bytecodealliance/jco@$JCO_VERSION" "@bytecodealliance/preview2-shim@$SHIM_VERSION" >&2
    echo "$stamp" >"$dir/installed.txt"
  fi
}

# Starts `host-test simulate --port 0 ARGS...` ($host_test, or target/debug/host-test) in the
# background, its log in LOG, and waits for its address: sets $url and adds its pid to the
# caller's `pids` array. Call it directly, not in $(...), so that the caller's cleanup sees the pid.
#   start_simulator LOG [ARGS...]
start_simulator() {
  local log=$1
  shift
  "${host_test:-target/debug/host-test}" simulate --port 0 "$@" >"$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    if grep -q "http://127.0.0.1:" "$log"; then
      url=$(grep -o "http://127.0.0.1:[0-9]*" "$log" | head -1)
      return
    fi
    sleep 0.05
  done
  echo "the simulator did not start: $(cat "$log")" >&2
  exit 1
}

# Writes a configured catalog (JSON) of the named streams of a discover's output to OUT:
# incremental on the default cursor where offered, full refresh elsewhere, appended.
#   configured_catalog DISCOVER_JSONL OUT STREAM...
configured_catalog() {
  python3 "$(dirname "${BASH_SOURCE[0]}")/../tests/python/sfm_testkit.py" configured-catalog "$@"
}
