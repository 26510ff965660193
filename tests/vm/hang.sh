#!/usr/bin/env bash
# The VM harness's diagnosis of a guest whose shutdown hangs (common.sh, vm_watch): a rare
# hang in CI must say which request waits, on which ring, and where the guest waits. Here a
# daemon serving the test share is SIGSTOPped (all its processes) once the guest script
# wrote its first file, so the guest's final sync waits for a reply that never comes. The
# harness must report guest-shutdown within VFSD_VM_EXIT_GRACE (20 s here), with:
#   rings        the test share's request ring holding a chain made available and not
#                answered (tests/vm/rings.py, through QEMU's QMP socket)
#   guest-stack  the guest's own account (init.sh, shutdown_watch): a task in the FUSE
#                request wait
#   init-step    the last shutdown step the guest reached (the sync)
# Usage: hang.sh [VFSD]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, summary

dir=$(mktemp -d -p /var/tmp vfsd-hang.XXXXXX) # the guest sees /var/tmp, not /tmp
mkdir "$dir/share"
chmod 755 "$dir"
cleanup() {
	pkill -CONT -f -- "--socket-path=$dir/test.sock" 2>/dev/null
	pkill -KILL -f -- "--socket-path=$dir/test.sock" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/hang-guest.sh" <<'EOF'
#!/bin/bash
# Writes the file the host waits for, then ends: the shutdown's sync meets a stopped daemon.
echo written >/run/test/written
sleep 3
echo "VFSD-TEST PASS wrote"
EOF

setsid "$daemon" --socket-path="$dir/test.sock" --shared-dir="$dir/share" \
	>"$dir/daemon.log" 2>&1 </dev/null &
disown $! # no "Killed" notice after the summary when cleanup kills it
for _ in $(seq 100); do [[ -S $dir/test.sock ]] && break; sleep 0.1; done
check daemon-listens "$([[ -S $dir/test.sock ]]; echo $?)" "$(tail -n 3 "$dir/daemon.log")"

(
	for _ in $(seq 1200); do [[ -e $dir/share/written ]] && break; sleep 0.1; done
	# the namespace sandbox's parent and the child that serves
	pkill -STOP -f -- "--socket-path=$dir/test.sock"
) &
stopper=$!
out=$(VFSD_VM_EXIT_GRACE=20 VFSD_BOOT_TMPDIR=$dir "$repo/tests/vm/boot.sh" \
	--test-socket "$dir/test.sock" --script "$dir/hang-guest.sh" --timeout 300 2>&1)
rc=$?
kill "$stopper" 2>/dev/null
wait "$stopper" 2>/dev/null

check boot-fails "$([[ $rc == 1 ]]; echo $?)" "boot.sh exited with $rc"
check guest-shutdown-reported \
	"$(grep -q '^\[  host \] FAIL guest-shutdown guest1 did not power off within 20 s' <<<"$out"; echo $?)" \
	"no guest-shutdown failure in: $(tail -n 5 <<<"$out")"
check init-step "$(grep -q 'last init step: shutdown: sync;' <<<"$out"; echo $?)" \
	"the failure does not name the sync as the last step"
# the test share's device (tag test), its request queue 1
ring=$(sed -n '/(tag test):/,/(tag /p' <<<"$out" | grep -m1 '^  queue 1:')
check rings "$([[ $ring == *"1 made available past avail_event; 1 not answered"* ]]; echo $?)" \
	"queue 1 of the test share: '$ring'"
check guest-stack "$(grep -q '^VFSD-GUEST-HANG .*request_wait_answer' <<<"$out"; echo $?)" \
	"no task in request_wait_answer among the guest's stacks"
if ((fail)); then printf '%s\n' "$out" | tail -n 60; fi
summary
