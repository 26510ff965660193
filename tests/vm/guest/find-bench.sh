#!/bin/bash
# make bench-fdcache-guest's guest half (tests/bench/fdcache-guest.sh): `find -printf` stats
# every file under TESTDIR/tree/0 ... TESTDIR/tree/$((FIND_DIRS - 1)), as `find` + `stat`
# would, and the guest keeps the dentries
# (and so the daemon its inodes) until the host has sampled the daemon.
# On the share, in TESTDIR/out (made writable by the host): the guest makes walk-start and
# waits for the host's start-sampled, walks, writes result ("files=N errors=N enfile=N
# emfile=N stopped=0|1 seconds=S guest_inodes=N [dropped=1]", guest_inodes the growth of
# the guest's fuse_inode slab), errors (find's first 20) and walk-done, then waits for the host's
# sampled before it ends.
# Usage: find-bench.sh TESTDIR; FIND_EXPECT (boot.sh --env) is the count the walk must see,
# FIND_STOP_ERRORS ends it after that many errors.
set -uo pipefail

T=${1:?usage: find-bench.sh TESTDIR}
out=$T/out
expect=${FIND_EXPECT:-0}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

# wait_for FILE SECS: FILE appears on the share within SECS (one stat every 0.2 s).
wait_for() {
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        [[ -e $1 ]] && return 0
        sleep 0.2
    done
    return 1
}

touch "$out/walk-start" || { report find 1 "cannot write $out"; exit 1; }
wait_for "$out/start-sampled" 60 || { report find 1 "the host did not sample the daemon"; exit 1; }
slab_inodes() { awk '$1 == "fuse_inode" { print $2 }' /proc/slabinfo 2>/dev/null; }
inodes0=$(slab_inodes)
start=$(date +%s.%N)
# With FIND_STOP_ERRORS=N the walk ends after N errors (a daemon that fails every stat
# past its limit would take an hour to fail two million).
# The listing and the errors go to the guest's tmpfs: a daemon out of fds cannot open files
# on the share for them.
mapfile -t dirs < <(seq -f "$T/tree/%.0f" 0 $((${FIND_DIRS:-1} - 1)))
find "${dirs[@]}" -type f -printf '%i %s\n' 2>/tmp/find-errors >/tmp/find-listing &
find_pid=$!
stopped=0
while kill -0 "$find_pid" 2>/dev/null; do
    if ((${FIND_STOP_ERRORS:-0} > 0)) && (($(wc -l </tmp/find-errors) >= FIND_STOP_ERRORS)); then
        kill "$find_pid"
        stopped=1
    fi
    sleep 1
done
wait "$find_pid"
end=$(date +%s.%N)
files=$(wc -l </tmp/find-listing)
errors=$(wc -l </tmp/find-errors)
enfile=$(grep -c 'Too many open files in system' /tmp/find-errors)
emfile=$(grep -v 'in system' /tmp/find-errors | grep -c 'Too many open files')
inodes=$(slab_inodes)
result="files=$files errors=$errors enfile=$enfile emfile=$emfile stopped=$stopped"
result+=" seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
result+=" guest_inodes=$((${inodes:-0} - ${inodes0:-0}))"
# Onto the share. A daemon that holds an fd for each inode the guest keeps (the references)
# has none left for these files: then the guest drops its dentries, which gives them back,
# and says so (dropped=1: what the host samples next is no longer the walk's state).
put_result() {
    echo "$result" >"$out/result.tmp" && head -n 20 /tmp/find-errors >"$out/errors" &&
        mv "$out/result.tmp" "$out/result" && touch "$out/walk-done"
} 2>/dev/null
if ! put_result; then
    echo 2 >/proc/sys/vm/drop_caches
    result+=" dropped=1"
    for _ in $(seq 30); do
        put_result && break
        sleep 1
    done
fi
wait_for "$out/sampled" 60 || { report find 1 "the host did not sample the daemon after the walk"; exit 1; }
if ((errors > 0)); then
    report find 1 "$errors errors ($enfile ENFILE, $emfile EMFILE), the first: $(head -n 1 /tmp/find-errors)"
elif ((expect > 0 && files != expect)); then
    report find 1 "find saw $files files of $expect"
else
    report find 0
fi
((failures == 0))
