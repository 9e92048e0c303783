#!/usr/bin/env bash
# How wall time grows with ad accounts: `bench/run.sh accounts` at 1, 10 and 50 accounts (both
# connectors, 300 ms round trips, 20 s report jobs), then one line per size with wall time,
# requests and the physical floor of both. Asserts nothing.
#
#   bench/accounts.sh
#
# Environment: COUNTS ("1 10 50"), OURS_ONLY (1: ours alone; theirs shows "-"), and whatever
# bench/run.sh takes (LATENCY_MS, JOB_MS, SEED). With OURS_ONLY=1 COUNTS="1 10 50 200" takes
# about three minutes; Airbyte's connector takes 80 to 90 s per account.
# Each size's full report stays in bench/out/accounts-<n>/report.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

counts="${COUNTS:-1 10 50}"
for n in $counts; do
  ACCOUNTS="$n" bash bench/run.sh accounts >/dev/null
done

printf '%-9s %10s %10s %10s %12s %12s %10s\n' accounts "floor s" "ours s" "theirs s" "ours req" "theirs req" "records"
for n in $counts; do
  d="bench/out/accounts-$n"
  floor=$(sed -n 's/^physical floor: \([0-9.]*\) s.*/\1/p' "$d/report.txt")
  row() { awk -v k="$1" 'index($0, k) == 1 { print $(NF - 2), $(NF - 1) }' "$d/report.txt" | head -1; }
  read -r wall_o wall_t <<<"$(row "wall s")"
  read -r req_o req_t <<<"$(row "HTTP requests (total)")"
  read -r rec_o _ <<<"$(row "records ")"
  printf '%-9s %10s %10s %10s %12s %12s %10s\n' "$n" "$floor" "$wall_o" "$wall_t" "$req_o" "$req_t" "$rec_o"
done
