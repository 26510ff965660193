#!/bin/bash
# Guest side of tests/supervisor/run.sh's restart check: a large copy into the share while the
# host SIGKILLs the supervisor of this guest's two daemons and starts a new one, which must
# re-adopt them without the guest noticing. restart-start tells the host the copy begins,
# restart-copied that it ended (with its seconds); the host answers restart-done once the new
# supervisor holds both daemons again. Usage: supervisor-restart.sh TESTDIR
set -uo pipefail
T=${1:?usage: supervisor-restart.sh TESTDIR}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

# ~70 MB in ~4,700 files and directories, from the root fs share (the other daemon)
src=(/usr/lib/python3 /usr/share/perl)
d=$T/restart-copy
mkdir -p "$d"
report copy-dir $?

echo go >"$T/restart-start"
t0=$SECONDS
out=$(cp -a "${src[@]}" "$d/" 2>&1 && sync)
rc=$?
echo "$((SECONDS - t0))" >"$T/restart-copied"
report copy-tree "$rc" "${out:0:300}"

# The host has normally restarted the supervisor long before the copy ends.
for ((i = 0; i < 1200; i++)); do
	[[ -e $T/restart-done ]] && break
	sleep 0.1
done
[[ -e $T/restart-done ]]
report host-restarted-supervisor $? "no restart-done from the host within 120 s"

# Read back from the host, through the daemons the new supervisor adopted.
sync
echo 3 >/proc/sys/vm/drop_caches
out=$(for s in "${src[@]}"; do diff -r "$s" "$d/$(basename "$s")" || exit 1; done 2>&1)
report copy-verifies $? "${out:0:300}"

echo after >"$d/after-restart" && [[ $(cat "$d/after-restart") == after ]]
report write-after-restart $?
# The tree stays: removing it takes the guest half a minute, the host a moment.
((failures == 0))
