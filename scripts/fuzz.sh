#!/usr/bin/env bash
# Fuzzes every target in fuzz/fuzz_targets for SECONDS_PER_TARGET seconds each (default 60),
# then prints a table: target, executions, findings (crash, out-of-memory, timeout or leak
# reproducers written under fuzz/artifacts/<target>/ by this run). Exits 1 if anything was found.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Environment:
#   FUZZ_SANITIZER=none|address   sanitizer for the build (default none: the crate and its
#                                 dependencies are safe Rust bar a few well-fuzzed crates, and
#                                 AddressSanitizer makes the machine targets about 8x slower)
#   FUZZ_TARGETS="a b"            only these targets
#   FUZZ_KEEP_GOING=1             keep fuzzing after a finding (libFuzzer fork mode) and leave
#                                 fuzz/regressions out, to collect more than one per target
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags
# cargo-fuzz passes (sanitizer, coverage instrumentation). Every cargo call takes
# /tmp/cargo-build.lock so it never overlaps another build on this machine; fuzzing itself runs
# the built binaries directly and holds no lock.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

locked() { flock /tmp/cargo-build.lock "$@"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  locked cargo install cargo-fuzz --locked
fi

echo "==> building fuzz targets (sanitizer: $sanitizer)"
locked cargo fuzz build --sanitizer "$sanitizer"
bin_dir="target/x86_64-unknown-linux-gnu/release"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

# The machine targets answer many fetches from one input: let inputs be long from the start
# (libFuzzer otherwise grows them from a few bytes, and a read needs hundreds to get anywhere).
# Text targets get the JSON dictionary.
extra_args() {
  case "$1" in
    read_machine | check_machine) echo "-max_len=16384 -len_control=0" ;;
    config | catalog | state | job_status | graph_error) echo "-dict=dicts/json.dict" ;;
  esac
}

# What a reproducer triggers: the panic's message and location (plus the first frame in the
# project when the panic is raised inside std or a dependency), or libFuzzer's verdict.
cause_of() {
  local out panic frame
  out="$(RUST_BACKTRACE=1 "$bin_dir/$1" -runs=1 -timeout=10 -rss_limit_mb=2048 "$2" 2>&1 || true)"
  panic="$(grep -m1 -A1 'panicked at' <<<"$out" | tr '\n' ' ' | sed -E "s/thread '[^']*' \([0-9]+\) //; s/ +$//; s/:$//" || true)"
  if [[ -z "$panic" ]]; then
    grep -m1 -oE 'ERROR: libFuzzer: [a-z-]+' <<<"$out" || echo "$(basename "$2" | cut -d- -f1) (does not reproduce alone)"
    return
  fi
  panic="${panic//$root\//}"
  if [[ "$panic" == *"panicked at /"* ]]; then
    frame="$(grep -oE "at $root/src/[^ ]+" <<<"$out" | head -n1 | sed "s#at $root/##" || true)"
    [[ -z "$frame" ]] || panic="$panic (from $frame)"
  fi
  echo "$panic"
}

logs="target/fuzz-logs"
mkdir -p "$logs"
stamp="$logs/.started"
touch "$stamp"
rows=()
causes=()
found=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # Seeds and saved regressions are read-only corpora: libFuzzer runs them first, so a
  # regression that still fails is reported at once. Fork mode leaves the regressions out: it
  # is for fuzzing past what is already known.
  corpora=("corpus/$t")
  [[ -d "seeds/$t" ]] && corpora+=("seeds/$t")
  [[ -d "regressions/$t" && -z "${FUZZ_KEEP_GOING:-}" ]] && corpora+=("regressions/$t")
  args=(
    "-max_total_time=$secs"
    "-timeout=10"
    "-rss_limit_mb=2048"
    "-print_final_stats=1"
    "-artifact_prefix=artifacts/$t/"
  )
  read -r -a more <<<"$(extra_args "$t")"
  args+=("${more[@]}")
  if [[ -n "${FUZZ_KEEP_GOING:-}" ]]; then
    args+=("-fork=1" "-ignore_crashes=1" "-ignore_ooms=1" "-ignore_timeouts=1")
  fi
  echo "==> fuzzing $t for ${secs}s"
  log="$logs/$t.log"
  "$bin_dir/$t" "${args[@]}" "${corpora[@]}" >"$log" 2>&1 || true

  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}' || true)"
  if [[ "${execs:-0}" == 0 ]]; then
    # Fork mode reports progress lines only: "#1234: ..." with the running total.
    execs="$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)"
  fi
  # Findings: reproducers this run wrote (slow-unit-* files are only reports of slowness).
  mapfile -t units < <(find "artifacts/$t" -type f -newer "$stamp" ! -name 'slow-unit-*' | sort)
  n=${#units[@]}
  found=$((found + n))
  declare -A seen=()
  first=""
  for u in "${units[@]:0:50}"; do
    c="$(cause_of "$t" "$u")"
    [[ -n "$first" ]] || first="$c"
    if [[ -z "${seen[$c]:-}" ]]; then
      seen[$c]=1
      causes+=("$t: $c"$'\n'"    e.g. fuzz/$u")
    fi
  done
  unset seen
  rows+=("$t|${execs:-?}|$n|${first}")
done

echo
printf '%-14s %12s %9s\n' target executions findings
printf '%-14s %12s %9s\n' -------------- ------------ ---------
for r in "${rows[@]}"; do
  IFS='|' read -r t e n _ <<<"$r"
  printf '%-14s %12s %9s\n' "$t" "$e" "$n"
done
echo
echo "logs: fuzz/$logs/<target>.log"
if ((found > 0)); then
  echo
  echo "distinct causes:"
  printf '  %s\n' "${causes[@]}"
  echo
  echo "replay one: fuzz/$bin_dir/<target> <file>  (or in fuzz/: RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer <target> <file>)"
  exit 1
fi
