#!/usr/bin/env bash
# Moving a sandbox's daemon between daemons through the control socket, with no VMM transfer
# (docs/control.md: export-state, resume, spawn's import_state). A real supervisor; the
# test frontend (tests/migrate/move-drive.c) plays the VMM and a guest with files looked up,
# two handles open and a directory half read:
#   - export-state pauses the daemon: a request sent after it is not answered;
#   - resume serves it; a second export, the source stopped, the destination spawned with
#     import_state: the guest reconnects and everything it held works, the request that
#     waited included, the half-read directory goes on, the data is on the host;
#   - a supervisor restarted in between still reaches the daemon's state socket;
#   - refusals: unknown sandbox, no destination, a destination that fails, a corrupt state
#     (the spawn fails saying why), a state file the caller cannot read.
# Needs root. Usage: tests/migrate/ctl.sh [BUILD]. Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh"

need_root migrate-ctl-setup "the supervisor's children need root"
work=$(mktemp -d -t vfsd-migrate.XXXXXX)
bin=$work/vfsd # our own copy: kill_exe finds every daemon of this test by it
cp "$build/vfsd" "$bin"
drive=${FRONTEND_BUILD:-$build}/frontend/move-drive
rt=$work/rt
ctl() { timeout 20 "$bin" ctl --control-socket "$rt/control.sock" "$@"; }
sup_pid= drv_pid=

cleanup() {
	{
		[[ -n $drv_pid ]] && kill -KILL "$drv_pid"
		[[ -n $sup_pid ]] && kill -KILL "$sup_pid"
		kill_exe "$bin"
		wait
	} 2>/dev/null
	if ((fail)); then
		mkdir -p "$build/test-logs/migrate"
		cp "$work"/*.log "$work"/*.out "$work"/*.err "$build/test-logs/migrate/" 2>/dev/null
		for d in "$rt"/sandboxes/*/; do
			cp "$d/vfsd.log" "$build/test-logs/migrate/$(basename "$d").log" 2>/dev/null
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

until_ok() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

start_supervisor() {
	"$bin" --runtime-dir "$rt" >>"$work/sup.log" 2>&1 &
	sup_pid=$!
	until_ok 10 ctl ping
}

# The driver reads commands from a fifo; `say CMD` sends one and waits for its answer line.
mkfifo "$work/drive.in"
exec {drv_in}<>"$work/drive.in"
say() {
	local n
	n=$(wc -l <"$work/drive.out" 2>/dev/null || echo 0)
	echo "$1" >&"$drv_in"
	until_ok 30 test "$(wc -l <"$work/drive.out")" -gt "$n"
	tail -1 "$work/drive.out"
}

mkdir -p "$rt" "$work/share/d"
for i in $(seq -f %03g 0 99); do echo "f$i" >"$work/share/d/f$i"; done
start_supervisor
check supervisor-up $? "$(tail -3 "$work/sup.log")"

out=$(ctl spawn mv1 --shared-dir "$work/share" --socket-path "$work/a.sock" 2>&1)
check spawn-source $? "$out"
"$drive" "$work/a.sock" <&"$drv_in" >"$work/drive.out" 2>"$work/drive.err" &
drv_pid=$!
out=$(say start)
check guest-started "$([[ $out == "ok started" ]]; echo $?)" "$out $(cat "$work/drive.err")"

# export-state: the reply says paused, the file holds vfsd's format
out=$(ctl --json export-state mv1 "$work/state1" 2>&1)
check export-state-reply "$([[ $out == *'"ok":true'* && $out == *'"paused":true'* ]]; echo $?)" "$out"
bytes=$(sed -nE 's/.*"bytes":([0-9]+).*/\1/p' <<<"$out")
size=$(stat -c %s "$work/state1" 2>/dev/null || echo 0)
check export-state-bytes "$([[ -n $bytes && $bytes == "$size" && $size -gt 1000 ]]; echo $?)" \
	"reply says ${bytes:-?} bytes, the file has $size"
check export-state-format "$([[ $(head -c 8 "$work/state1") == VFSDSTAT ]]; echo $?)"
check export-state-file-mode "$([[ $(stat -c %a "$work/state1") == 600 ]]; echo $?)" \
	"$(stat -c %a "$work/state1")"

out=$(say pending)
check paused-daemon-does-not-answer "$([[ $out == "ok pending" ]]; echo $?)" "$out"
out=$(ctl resume mv1 2>&1)
check resume-reply $? "$out"
out=$(say answered)
check resumed-daemon-answers "$([[ $out == "ok answered" ]]; echo $?)" "$out"

# A supervisor restart in between: the re-adopted daemon's state socket is found by its path.
kill -TERM "$sup_pid"
wait "$sup_pid" 2>/dev/null
start_supervisor
check supervisor-restarted $?

# A destination that fails (/dev/full): an error, and the daemon serves again by itself.
out=$(ctl export-state mv1 /dev/full 2>&1)
check export-to-full-device-fails "$([[ $? == 1 && $out == *"No space left"* && $out == *"serves again"* ]]; echo $?)" "$out"
out=$(say getattr)
check serving-after-failed-export "$([[ $out == "ok getattr" ]]; echo $?)" "$out"
out=$(ctl resume mv1 2>&1)
check resume-of-a-serving-daemon $? "$out"

out=$(ctl export-state mv1 "$work/state2" 2>&1)
check export-again-after-restart $? "$out"
out=$(say pending)
check paused-again "$([[ $out == "ok pending" ]]; echo $?)" "$out"
out=$(ctl stop mv1 2>&1)
check stop-source $? "$out"

# A sandbox id of 120 characters: its state socket's path is longer than sun_path holds.
long=$(printf 'L%.0s' $(seq 120))
out=$(ctl spawn "$long" --shared-dir "$work/share" --socket-path "$work/long.sock" 2>&1)
check spawn-long-sandbox-id $? "$out"
out=$(ctl export-state "$long" "$work/state-long" 2>&1)
check export-long-sandbox-id $? "$out"
ctl stop "$long" >/dev/null 2>&1

# Refusals before the move.
printf 'VFSDSTAT-but-not-really' >"$work/corrupt"
out=$(ctl spawn bad1 --shared-dir "$work/share" --socket-path "$work/bad1.sock" \
	--import-state "$work/corrupt" 2>&1)
check import-corrupt-state-refused "$([[ $? == 1 && $out == *"state"* ]]; echo $?)" "$out"
# (the daemon made its socket before it read the state; its end removes it)
until_ok 5 test ! -e "$work/bad1.sock"
check import-corrupt-leaves-no-socket $?
out=$(ctl spawn bad2 --shared-dir "$work/share" --socket-path "$work/bad2.sock" \
	--import-state "$work/no-such-file" 2>&1)
check import-missing-file-refused "$([[ $? == 1 && $out == *"No such file"* ]]; echo $?)" "$out"
out=$(ctl export-state no-such-sandbox "$work/x" 2>&1)
check export-unknown-sandbox "$([[ $? == 1 && $out == *"no sandbox"* ]]; echo $?)" "$out"
out=$(ctl export-state 2>&1)
check export-usage "$([[ $? == 2 ]]; echo $?)" "$out"

# The move: the destination starts with the state, the guest reconnects.
out=$(ctl spawn mv2 --shared-dir "$work/share" --socket-path "$work/b.sock" \
	--import-state "$work/state2" 2>&1)
check spawn-destination-with-state $? "$out"
grep -q "imported a state of" "$rt/sandboxes/mv2/vfsd.log" 2>/dev/null
check destination-logged-import $?
out=$(say "move $work/b.sock")
check guest-moved "$([[ $out == "ok moved" ]]; echo $?)" "$out $(cat "$work/drive.err")"
check data-on-host "$([[ $(cat "$work/share/w") == $'before\nafter' ]]; echo $?)" \
	"$(cat "$work/share/w" 2>&1 | head -3)"
out=$(ctl stop mv2 2>&1)
check stop-destination $? "$out"

summary
