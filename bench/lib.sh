# Shared by bench/run.sh and bench/scaling.sh (sourced from the repository's root).

step() { echo "==> $*" >&2; }

# GNU time, for peak RSS and CPU seconds (`/usr/bin/time -v`).
ensure_gnu_time() {
  if [[ ! -x /usr/bin/time ]]; then
    step "apt-get install time"
    if [[ $(id -u) -eq 0 ]]; then apt-get install -y -qq time >/dev/null; else sudo apt-get install -y -qq time >/dev/null; fi
  fi
}

# The release component and the optimised host (`--profile host`). Other engineers build on
# this machine: every cargo call takes the shared lock.
build_optimised() {
  step "cargo build --release --target wasm32-wasip2 -p source-facebook-marketing"
  flock /tmp/cargo-build.lock cargo build --quiet --release --target wasm32-wasip2 -p source-facebook-marketing
  step "cargo build --profile host -p host-test"
  flock /tmp/cargo-build.lock cargo build --quiet --profile host -p host-test
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
