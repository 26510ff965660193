#!/bin/bash
# The workload that brought back a lost ring notification (docs/error-handling.md, "A
# notification lost"): six times, ~4,700 files copied from the rootfs share to the test share,
# the caches dropped, the copy compared, the caches dropped again; each drop sends a burst of
# FORGETs down both shares' hiprio rings. Not part of make check (about 3 minutes); run as
#   VFSD_VM_MAXCPUS=1 tests/vm/run.sh --smp 1 --script guest/forget-burst.sh
# to have the race, and look for "a lost notification" in the daemons' logs.
# Usage: forget-burst.sh TESTDIR
set -uo pipefail
T=${1:?usage: forget-burst.sh TESTDIR}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

src=(/usr/lib/python3 /usr/share/perl)
for i in 1 2 3 4 5 6; do
	d=$T/copy$i
	mkdir -p "$d"
	cp -a "${src[@]}" "$d/" && sync
	report copy-$i $?
	echo 3 >/proc/sys/vm/drop_caches
	out=$(for s in "${src[@]}"; do diff -r "$s" "$d/$(basename "$s")" || exit 1; done 2>&1)
	report diff-$i $? "${out:0:200}"
	echo 3 >/proc/sys/vm/drop_caches
done
((failures == 0))
