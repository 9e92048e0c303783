#!/usr/bin/env bash
# Replays every recording in recordings/ with the built component; fails unless each output is
# byte-identical to the recorded one. Needs target/debug/host-test (scripts/test.sh builds it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="$root/target/debug/host-test"
failed=0
for rec in "$root"/recordings/*.rec.jsonl; do
  if "$host" replay "$rec" --output /dev/null 2>"$rec.err.tmp"; then
    echo "$(basename "$rec"): $(tail -1 "$rec.err.tmp" | sed 's/^replay: //')"
  else
    echo "$(basename "$rec"): FAILED" >&2
    cat "$rec.err.tmp" >&2
    failed=1
  fi
  rm -f "$rec.err.tmp"
done
exit $failed
