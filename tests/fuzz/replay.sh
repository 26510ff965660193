#!/usr/bin/env bash
# Replays every committed seed and regression input through each fuzz target once (make
# fuzz-replay does the work); prints PASS/FAIL per target and "N passed, M failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
out=$(make --no-print-directory fuzz-replay 2>&1)
status=$?
grep -E '^(PASS|FAIL)' <<<"$out"
((status == 0)) || tail -n 40 <<<"$out"
pass=$(grep -c '^PASS' <<<"$out")
fail=$(grep -c '^FAIL' <<<"$out")
((status != 0 && fail == 0)) && fail=1
echo "$pass passed, $fail failed"
((fail == 0))
