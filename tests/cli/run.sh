#!/usr/bin/env bash
# Command-line and start-up behaviour of a daemon, checked from the host without a VM:
# exit codes, messages, socket and pid file. Usage: tests/cli/run.sh [DAEMON]
# Prints "PASS name" / "FAIL name reason" lines and ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
work=$(mktemp -d -t vfsd-cli.XXXXXX)
pids=()
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary, exit_status_of

cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# expect_exit NAME CODE PATTERN ARGS...: exit status CODE and output matching PATTERN
expect_exit() {
	local name=$1 code=$2 pattern=$3
	shift 3
	expect_output "$name" "$code" "$pattern" "$daemon" "$@"
}

# wait_for FILE PATTERN: until the file has a line matching PATTERN (5 s at most)
wait_for() {
	for _ in $(seq 50); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

mkdir -p "$work/share"
expect_exit help 0 'Usage: vfsd --shared-dir' --help
expect_exit version 0 '^vfsd [0-9]' --version
expect_exit no-arguments 2 'Usage' 
expect_exit print-capabilities 0 '"type": "fs"' --print-capabilities
# Exactly virtiofsd's list (virtiofsd-behaviour.md §1.6): migrate-precopy once migration works.
caps_want=$'{\n  "type": "fs",\n  "features": [\n    "migrate-precopy",\n    "separate-options"\n  ]\n}'
caps_got=$("$daemon" --print-capabilities)
check print-capabilities-exact "$([[ $caps_got == "$caps_want" ]]; echo $?)" "$(tr '\n' ' ' <<<"$caps_got")"
expect_exit unknown-option 2 'unexpected argument' --bogus
expect_exit bad-migration-mode 2 "invalid value 'paths' for '--migration-mode" --migration-mode paths --shared-dir "$work/share" --socket-path "$work/s"
expect_exit bad-migration-on-error 2 "invalid value 'ignore' for '--migration-on-error" --migration-on-error ignore --shared-dir "$work/share" --socket-path "$work/s"
expect_exit bad-migration-format 2 "invalid value 'json' for '--migration-format" --migration-format json --shared-dir "$work/share" --socket-path "$work/s"
expect_exit migration-handles-confirm 1 "Cannot use --migration-confirm-paths with --migration-mode=file-handles" --migration-mode file-handles --migration-confirm-paths --shared-dir "$work/share" --socket-path "$work/s"
expect_exit migration-handles-verify 1 "Cannot use --migration-verify-handles with --migration-mode=file-handles" --migration-mode=file-handles --migration-verify-handles --shared-dir "$work/share" --socket-path "$work/s"
expect_exit legacy-unknown 2 "Invalid compat argument '-o bogus'" -o bogus --socket-path "$work/s"
expect_exit legacy-keywords 1 "missing|does not exist" -o source="$work/nope",posix_lock,no_flock,killpriv_v2,posix_acl,security_label,no_security_label,xattr --socket-path "$work/s" --sandbox none
expect_exit legacy-bad-cache 2 "Invalid compat value" -o source=/,cache=never --socket-path "$work/s"
expect_exit bad-cache 2 "invalid value 'sometimes'" --cache sometimes --shared-dir "$work/share" --socket-path "$work/s"
expect_exit bad-sandbox 2 "invalid value" --sandbox jail --shared-dir "$work/share" --socket-path "$work/s"
expect_exit bad-queue-poll 2 "invalid value '-5' for '--queue-poll-us" --queue-poll-us -5 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit tag-too-long 2 "36 bytes" --tag 0123456789012345678901234567890123456 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit missing-socket 2 "socket-path" --shared-dir "$work/share"
expect_exit fd-and-socket 2 "cannot be used with" --shared-dir "$work/share" --socket-path "$work/s" --fd 3
expect_exit fuse-mountpoint-and-socket 2 "'--fuse-mountpoint <DIR>' cannot be used with '--socket-path'" --shared-dir "$work/share" --socket-path "$work/s" --fuse-mountpoint "$work"
mkdir -p "$work/share/inner"
expect_exit fuse-mountpoint-inside-share 1 "must be outside the shared directory" --shared-dir "$work/share" --fuse-mountpoint "$work/share/inner" --sandbox none
expect_exit fuse-mountpoint-containing-share 1 "must be outside the shared directory" --shared-dir "$work/share" --fuse-mountpoint "$work" --sandbox none
expect_exit fuse-mountpoint-missing 1 "fuse mount point .*nope: No such file" --shared-dir "$work/share" --fuse-mountpoint "$work/nope" --sandbox none
expect_exit posix-acl-with-translate 2 "'--posix-acl' cannot be used with '--translate-gid'" --posix-acl --translate-gid guest:0:0:1 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit xattrmap-bad-type 2 "invalid value for '--xattrmap': --xattrmap: rule 2 has the invalid type 'allow'" --xattrmap ":ok:all::: :allow:all:::" --shared-dir "$work/share" --socket-path "$work/s"
expect_exit xattrmap-map-not-last 2 "a 'map' rule must be the last one" -o source="$work/share",xattrmap=:map::user.x.::ok:all::: --socket-path "$work/s"
expect_exit xattrmap-empty 2 "no rules provided" --xattrmap "  " --shared-dir "$work/share" --socket-path "$work/s"
expect_exit xattrmap-unterminated-warns 1 "warning: no --xattrmap rule matches every name" -o source="$work/nope",xattrmap=:ok:client:user.:: --socket-path "$work/s" --sandbox none
expect_exit fd-limit-too-small 1 "Maximum number of file descriptors too small: Limit is 600, must be at least 613" --rlimit-nofile 600 --thread-pool-size 4 --shared-dir "$work/share" --socket-path "$work/s" --sandbox none
expect_exit fd-limit-above-nr-open 1 "Error increasing number of open files: It cannot be increased above" --rlimit-nofile 99999999999 --shared-dir "$work/share" --socket-path "$work/s" --sandbox none
expect_exit missing-shared-dir 1 'does not exist' --shared-dir "$work/nope" --socket-path "$work/s" --sandbox none
expect_exit legacy-without-source 1 'missing "--shared-dir" or "-o source"' -o cache=auto --socket-path "$work/s"
expect_exit file-handles-keep-dac-read-search 1 "can't disable DAC_READ_SEARCH when using --inode-file-handles=mandatory" --inode-file-handles=mandatory --modcaps=-dac_read_search --shared-dir "$work/share" --socket-path "$work/s"
expect_exit file-handles-fallback-deprecated 1 "fallback is deprecated, use prefer" --inode-file-handles=fallback --shared-dir "$work/nope" --socket-path "$work/s" --sandbox none
expect_exit file-handles-bad 2 "invalid value 'always' for '--inode-file-handles" --inode-file-handles=always --shared-dir "$work/share" --socket-path "$work/s"
expect_exit bad-seccomp 2 "invalid value 'maybe' for '--seccomp" --seccomp maybe --shared-dir "$work/share" --socket-path "$work/s"
expect_exit translate-bad-prefix 2 "Invalid ID map prefix bogus" --translate-uid=bogus:1:2:3 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit translate-bad-length 2 "expected 2 elements, got 3 elements" --translate-gid=forbid-guest:1:2:3 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit translate-overflow 1 "Range overflow" --translate-uid=guest:4294967295:0:2 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit translate-intersects 1 "intersects previously added entry" --translate-uid=map:0:100:10 --translate-uid=squash-guest:5:0:1 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit uid-map-syntax 2 "invalid value ':0:1000:1' for '--uid-map" --uid-map=:0:1000:1 --shared-dir "$work/share" --socket-path "$work/s"
expect_exit gid-map-delimiter 2 "invalid value '0x0x1x'" --gid-map=0x0x1x --shared-dir "$work/share" --socket-path "$work/s"
if ((EUID == 0)); then
	expect_exit uid-map-needs-unprivileged 1 "uid_map can only be used by unprivileged user where sandbox mod is namespace" --uid-map=:0:1000:1: --shared-dir "$work/share" --socket-path "$work/s"
fi
expect_exit modcaps-unknown 1 "invalid capability 'bogus'" --modcaps=+bogus --shared-dir "$work/share" --socket-path "$work/s"
expect_exit modcaps-no-action 1 "invalid modcap action: expecting '+'|'-' but found 's'" --modcaps=sys_admin --shared-dir "$work/share" --socket-path "$work/s"
expect_exit modcaps-empty-item 1 "empty modcap found" -o modcaps=+chown::-mknod --shared-dir "$work/share" --socket-path "$work/s"

# libvirt's spelling, -o source=DIR,cache=...,xattr in one argument: ps shows it as passed
# (the parser cuts up a copy of each -o list, never argv itself).
"$daemon" -o source="$work/share",cache=always,xattr --socket-path "$work/argv.sock" \
	--sandbox none >"$work/argv.log" 2>&1 &
argv_pid=$!
wait_for "$work/argv.log" "Waiting for vhost-user socket connection..."
args=$(tr '\0' ' ' <"/proc/$argv_pid/cmdline" 2>/dev/null)
check argv-as-passed "$([[ $args == *"-o source=$work/share,cache=always,xattr "* ]]; echo $?)" \
	"cmdline '$args'"
kill "$argv_pid" 2>/dev/null
wait "$argv_pid" 2>/dev/null

# A daemon waiting for its VMM: the log line runtimes wait for, a 0700 socket, a locked pid file.
"$daemon" --shared-dir "$work/share" --socket-path "$work/vfsd.sock" --sandbox none \
	>"$work/d1.log" 2>&1 &
pids+=($!)
if wait_for "$work/d1.log" "Waiting for vhost-user socket connection..."; then
	check waiting-line 0
else
	check waiting-line 1 "$(cat "$work/d1.log")"
fi
mode=$(stat -c %a "$work/vfsd.sock" 2>/dev/null)
check socket-mode-0700 "$([[ $mode == 700 ]]; echo $?)" "mode $mode"
pidfile=$(cat "$work/vfsd.sock.pid" 2>/dev/null)
check pid-file "$([[ $pidfile == "${pids[0]}" ]]; echo $?)" "pid file says '$pidfile', daemon is ${pids[0]}"
expect_exit pid-file-locked 1 "Error creating pid file" --shared-dir "$work/share" \
	--socket-path "$work/vfsd.sock" --sandbox none

# The VMM hanging up without a word ends the daemon with status 0.
python3 - "$work/vfsd.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.close()
PY
exit_status_of "${pids[0]}"
check exit-0-on-disconnect "$([[ $rc == 0 ]]; echo $?)" "status $rc"

# A VMM that sends garbage is disconnected, not obeyed; the daemon does not crash.
"$daemon" --shared-dir "$work/share" --socket-path "$work/g.sock" --sandbox none \
	>"$work/d2.log" 2>&1 &
pids+=($!)
wait_for "$work/d2.log" "Waiting" >/dev/null
python3 - "$work/g.sock" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
# an unknown request, then a header claiming a 1 MiB payload
s.sendall(struct.pack("<III", 999, 1, 0))
try:
    s.sendall(struct.pack("<III", 1, 1, 1 << 20))
except OSError:
    pass
s.close()
PY
exit_status_of "${pids[1]}"
check garbage-from-vmm "$([[ $rc == 1 ]] && grep -q 'unsupported request' "$work/d2.log"; echo $?)" \
	"status $rc: $(tail -n 2 "$work/d2.log")"

# --socket-group gives 0770 and the group.
grp=$(id -gn)
"$daemon" --shared-dir "$work/share" --socket-path "$work/grp.sock" --socket-group "$grp" \
	--sandbox none >"$work/d3.log" 2>&1 &
pids+=($!)
wait_for "$work/d3.log" "Waiting" >/dev/null
mode=$(stat -c '%a %G' "$work/grp.sock" 2>/dev/null)
check socket-group-0770 "$([[ $mode == "770 $grp" ]]; echo $?)" "got '$mode'"

# --fd: serve a socket the caller already listens on (no socket file, no pid file).
out=$(python3 - "$daemon" "$work/share" "$work/fd.sock" <<'PY'
import os, socket, subprocess, sys, time
daemon, share, path = sys.argv[1:4]
ls = socket.socket(socket.AF_UNIX)
ls.bind(path)
ls.listen(1)
p = subprocess.Popen([daemon, f"--fd={ls.fileno()}", "--shared-dir", share, "--sandbox", "none"],
                     pass_fds=[ls.fileno()], stderr=subprocess.PIPE, text=True)
ls.close()
c = socket.socket(socket.AF_UNIX)
c.connect(path)
time.sleep(0.2)
c.close()
try:
    rc = p.wait(timeout=5)
except subprocess.TimeoutExpired:
    p.kill()
    rc = "hung"
err = p.stderr.read()
print(f"rc={rc} pidfile={os.path.exists(path + '.pid')} connected={'Client connected' in err}")
PY
)
check listen-fd "$([[ $out == "rc=0 pidfile=False connected=True" ]]; echo $?)" "$out"

# Privileges of a running daemon, from /proc/PID/status once it waits for its VMM (after the
# sandbox, the seccomp filter and the capability drop): "CapPrm CapEff CapBnd Seccomp ".
privileges_of() { # LOGNAME ARGS...
	local log="$work/$1.log" pid
	shift
	"$daemon" --shared-dir "$work/share" --socket-path "$work/p.sock" --sandbox chroot "$@" \
		>"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if wait_for "$log" "Waiting for vhost-user"; then
		awk '/^(Seccomp|CapPrm|CapEff|CapBnd):/ { printf "%s ", $2 }' "/proc/$pid/status"
	else
		printf 'not-started: %s' "$(tail -n 1 "$log")"
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$work/p.sock" "$work/p.sock.pid"
}
if ((EUID == 0)); then
	# CHOWN DAC_OVERRIDE FOWNER FSETID SETGID SETUID MKNOD SETFCAP, as virtiofsd keeps.
	base=00000000880000db
	got=$(privileges_of priv-default)
	check seccomp-filter-and-base-caps "$([[ $got == "$base $base $base 2 " ]]; echo $?)" "got '$got'"
	got=$(privileges_of priv-none --seccomp=none)
	check seccomp-none "$([[ $got == "$base $base $base 0 " ]]; echo $?)" "got '$got'"
	# +sys_admin (bit 21), -mknod (bit 27)
	got=$(privileges_of priv-modcaps --modcaps=+sys_admin:-mknod)
	want=00000000802000db
	check modcaps "$([[ $got == "$want $want $want 2 " ]]; echo $?)" "got '$got'"
	got=$(privileges_of priv-modcaps-legacy -o modcaps=+sys_admin --seccomp=log)
	want=00000000882000db
	check modcaps-legacy-seccomp-log "$([[ $got == "$want $want $want 2 " ]]; echo $?)" "got '$got'"
fi

summary
