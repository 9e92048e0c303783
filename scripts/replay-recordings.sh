#!/usr/bin/env bash
# Replays every recording in recordings/ with the built component; fails unless each output is
# byte-identical to the recorded one. Needs target/debug/host-test (scripts/test.sh builds it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="$root/target/debug/host-test"
failed=0
# What a replay says goes to a file outside the tree, gone when the script ends.
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
for rec in "$root"/recordings/*.rec.jsonl; do
  if "$host" replay "$rec" --output /dev/null 2>"$err"; then
    echo "$(basename "$rec"): $(tail -1 "$err" | sed 's/^replay: //')"
  else
    echo "$(basename "$rec"): FAILED" >&2
    cat "$err" >&2
    failed=1
  fi
done
exit $failed
