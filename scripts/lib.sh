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
