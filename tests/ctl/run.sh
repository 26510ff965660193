#!/usr/bin/env bash
# The supervisor (vfsd --runtime-dir) and `vfsd ctl`, from the host without a VM: the control
# protocol under hostile input and misbehaving clients (tests/ctl/hostile.py), children spawned
# by socket path and by passed socket, their events, stop, cgroup placement, callers that are
# not root (two test users, one in its own user namespace), a supervisor restart that re-adopts
# its children, and `vfsd ctl`'s exit statuses. Needs root; creates the users vfsd-ctl-test and
# vfsd-ctl-other (idempotent, they stay). Usage: tests/ctl/run.sh [VFSD]
# Prints "PASS name" / "FAIL name reason" lines and ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
py=/usr/bin/python3
user=vfsd-ctl-test  # allowed by --control-allow-uid
other=vfsd-ctl-other # not allowed
sub=400000
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary, exit_status_of

need_root ctl-setup "the supervisor's tests need root"

work=$(mktemp -d -t vfsd-ctl.XXXXXX)
bin=$work/bin   # the binary and hostile.py where the test users can reach them
rt=$work/rt     # the runtime dir
sock=$rt/control.sock
cg=$work/cgroup # a cgroup2 mount of our own
cgdir=
pids=()         # supervisors, the user's namespace holder, vfsd ctl watch

cleanup() {
	local p
	{ # (no "Killed" notices)
		for p in "${pids[@]}"; do kill -KILL "$p"; done
		# every daemon the supervisors spawned runs $bin/vfsd: none outlives the test
		kill_exe "$bin/vfsd"
		wait
	} 2>/dev/null
	if [[ -n $cgdir ]]; then
		for _ in $(seq 20); do rmdir "$cgdir" 2>/dev/null && break; sleep 0.1; done
	fi
	mountpoint -q "$cg" && umount "$cg"
	mountpoint -q "$work/fuse/mnt" && umount -l "$work/fuse/mnt"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # the cleanup runs on these too

# alive PID: runs and is not a zombie (a killed supervisor's orphans are reaped late)
alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[[ ${st:0:1} != [ZX] ]]
}

# hostile MODE ARGS...: runs hostile.py (as root, or with RUNAS set as that user; for at most
# LIMIT seconds, 20 unless set) and counts its PASS/FAIL lines
hostile() {
	local out rc p f
	if [[ -n ${RUNAS:-} ]]; then
		out=$(timeout "${LIMIT:-20}" runuser -u "$RUNAS" -- "$py" "$bin/hostile.py" "$@" 2>&1)
	else
		out=$(timeout "${LIMIT:-20}" "$py" "$bin/hostile.py" "$@" 2>&1)
	fi
	rc=$?
	printf '%s\n' "$out"
	p=$(grep -c '^PASS ' <<<"$out")
	f=$(grep -c '^FAIL ' <<<"$out")
	counted "$p" "$f"
	check "hostile-$1-exit" "$rc" "status $rc: $(tail -n 3 <<<"$out")"
}

# start_supervisor LOG ARGS...: sets sup; 0 once it answers a ping
start_supervisor() {
	local log=$1
	shift
	"$bin/vfsd" --runtime-dir="$rt" --control-socket-group="$user" \
		--control-allow-uid="$uid" --stop-timeout=2000 --max-daemons-per-uid=3 "$@" \
		>>"$log" 2>&1 &
	sup=$!
	pids+=("$sup")
	for _ in $(seq 50); do
		"$bin/vfsd" ctl --control-socket "$sock" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# --- set-up: users, ranges, directories, the cgroup2 mount --------------------------------
for u in "$user" "$other"; do
	id "$u" >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin "$u" || exit 1
done
# both may connect (the socket's group); only $user is allowed by uid
id -nG "$other" | grep -qw "$user" || usermod -aG "$user" "$other" || exit 1
for f in /etc/subuid /etc/subgid; do
	grep -q "^$user:" "$f" 2>/dev/null || echo "$user:$sub:65536" >>"$f"
done
uid=$(id -u "$user")

chmod 755 "$work"
mkdir -p "$bin" "$work/share" "$work/s" "$work/u/share" "$work/u/sock" \
	"$work/u/rootonly/inner" "$work/u/rootsock"
cp "$daemon" "$bin/vfsd"
cp "$repo/tests/ctl/hostile.py" "$bin/hostile.py"
chmod 755 "$bin" "$bin/vfsd" "$work/u" "$work/u/rootsock"
chmod 644 "$bin/hostile.py"
chmod 700 "$work/u/rootonly"
chown "$user:" "$work/u/share" "$work/u/sock"
chmod 700 "$work/u/sock"
# root's socket and pid file, which a user's directory swapped for a symlink must not get
# removed (hostile.py user: user-swapped-socket-dir)
"$py" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$work/u/rootsock/x.sock"
echo 1 >"$work/u/rootsock/x.sock.pid"

mkdir -p "$cg"
cgopt=()
if mount -t cgroup2 none "$cg"; then
	cgdir=$(mktemp -d "$cg/vfsd-test-XXXX")
	cgopt=("cgroup=$cgdir")
	check cgroup2-mount 0
else
	check cgroup2-mount 1 "mount -t cgroup2 failed: the cgroup checks are skipped"
fi

# A process in the user's own user namespace: the one a rootless runtime's sandbox has.
runuser -u "$user" -- unshare -r --map-auto sleep 600 &
pids+=($!)
nspid=
for _ in $(seq 50); do
	nspid=$(pgrep -u "$user" -P "${pids[-1]}" -x sleep | head -n 1)
	[[ -n $nspid && $(readlink "/proc/$nspid/ns/user") != $(readlink /proc/self/ns/user) ]] && break
	nspid=
	sleep 0.1
done
pids+=(${nspid:+"$nspid"})
check user-namespace-holder "$([[ -n $nspid ]]; echo $?)" "no 'unshare -r --map-auto' as $user"

# --- 1-5: one supervisor, hostile clients, children, callers ------------------------------
if start_supervisor "$work/sup1.log"; then
	check supervisor-starts 0
else
	check supervisor-starts 1 "$(tail -n 5 "$work/sup1.log")"
	summary
	exit
fi
mode=$(stat -c '%a %G' "$sock")
check control-socket-mode "$([[ $mode == "660 $user" ]]; echo $?)" "got '$mode'"

LIMIT=40 hostile root "$sock" "$work" "sup=$sup" "bin=$bin/vfsd" "${cgopt[@]}"

# A client passes a file of a FUSE mount whose daemon then stops answering: closing it (the
# supervisor does not keep it) sends FUSE_FLUSH, which waits for that daemon. The loop must
# go on serving others meanwhile.
mkdir -p "$work/fuse/share" "$work/fuse/mnt"
echo data >"$work/fuse/share/f"
"$bin/vfsd" --shared-dir "$work/fuse/share" --fuse-mountpoint "$work/fuse/mnt" --sandbox none \
	--seccomp none >"$work/fuse.log" 2>&1 &
fusepid=$!
pids+=("$fusepid")
for _ in $(seq 100); do mountpoint -q "$work/fuse/mnt" && break; sleep 0.05; done
out=$(timeout 20 "$py" - "$sock" "$work/fuse/mnt/f" "$fusepid" <<'PY2' 2>&1
import json, os, signal, socket, sys, time
sock, path, fusepid = sys.argv[1], sys.argv[2], int(sys.argv[3])
f = open(path, "r+")                     # kept open: our own close would wait too
os.kill(fusepid, signal.SIGSTOP)
try:
    c = socket.socket(socket.AF_UNIX); c.settimeout(5); c.connect(sock)
    socket.send_fds(c, [b'{"op":"ping","id":1}\n'], [f.fileno()])
    r1 = json.loads(c.makefile().readline())       # refused: ping takes no fd
    d = socket.socket(socket.AF_UNIX); d.settimeout(3); d.connect(sock)
    t = time.monotonic()
    d.sendall(b'{"op":"ping","id":2}\n')
    r2 = json.loads(d.makefile().readline())
    print("OK" if r1.get("errno") == 22 and r2 == {"ok": True, "id": 2} else "BAD",
          r1, r2, f"{time.monotonic() - t:.3f}s")
except Exception as e:
    print("BAD", type(e).__name__, e)
finally:
    os.kill(fusepid, signal.SIGCONT)
PY2
)
check passed-fd-on-hung-fuse-does-not-block "$([[ $out == OK* ]]; echo $?)" "$out"
umount "$work/fuse/mnt" 2>/dev/null || umount -l "$work/fuse/mnt"
RUNAS=$other hostile denied "$sock"
if [[ -n $nspid ]]; then
	# root's own daemon, which the user may not see, look at or stop
	timeout 10 "$bin/vfsd" ctl --control-socket "$sock" spawn roots --shared-dir "$work/share" \
		--socket-path "$work/s/roots.sock" >/dev/null 2>&1
	RUNAS=$user hostile user "$sock" "$work" "nspid=$nspid" "rootsb=roots" "${cgopt[@]}"
	timeout 10 "$bin/vfsd" ctl --control-socket "$sock" stop roots >/dev/null 2>&1
fi
alive "$sup"
check supervisor-survived-the-clients $? "$(tail -n 5 "$work/sup1.log")"

# A second supervisor on the same runtime dir is refused; daemon options are refused.
out=$(timeout 10 "$bin/vfsd" --runtime-dir="$rt" --control-socket="$work/other.sock" 2>&1)
rc=$?
check second-supervisor-refused "$([[ $rc == 1 && $out == *"another supervisor runs"* ]]; echo $?)" \
	"status $rc: $out"
out=$(timeout 10 "$bin/vfsd" --runtime-dir="$work/rt-x" --cache=never 2>&1)
rc=$?
check supervisor-refuses-daemon-options \
	"$([[ $rc == 2 && $out == *cache*"cannot be used with"* ]]; echo $?)" "status $rc: $out"
out=$(timeout 10 "$bin/vfsd" --runtime-dir="$work/rt-x" --shared-dir="$work/share" 2>&1)
rc=$?
check supervisor-refuses-shared-dir "$([[ $rc == 2 ]]; echo $?)" "status $rc: $out"

# --- 6: restart -----------------------------------------------------------------------------
hostile restart-before "$sock" "$work"
child=$(cat "$work/survivor.pid" 2>/dev/null || echo 0)
{
	kill -KILL "$sup"
	wait "$sup"
} 2>/dev/null
sleep 0.2
alive "$child"
check child-outlives-killed-supervisor $? "pid $child"

# What a new supervisor finds besides the survivor: files it must not trust.
sleep 0 & dead=$!
wait "$dead"
plant() { # SANDBOX CONTENT
	mkdir -p "$rt/sandboxes/$1"
	printf '%s' "$2" >"$rt/sandboxes/$1/state.json"
}
plant garbage-json '{"sandbox": "garbage-json", "state": "running", "pid": 1'
plant garbage-array '[1, 2, 3]'
plant garbage-empty ''
"$py" - "$work/s/dead.sock" <<'PY'
import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])
PY
plant dead-pid "{\"sandbox\":\"dead-pid\",\"state\":\"running\",\"pid\":$dead,\"start_ticks\":1,\
\"socket_path\":\"$work/s/dead.sock\",\"own_socket\":true}"
plant wrong-ticks '{"sandbox":"wrong-ticks","state":"running","pid":1,"start_ticks":12345}'
plant null-state '{"sandbox":"null-state","state":null,"pid":1,"start_ticks":12345}'
plant odd-types '{"sandbox":7,"state":"running","pid":"1","start_ticks":"x","adopted":"yes","error":3}'
mkdir -p "$rt/sandboxes/-not-an-id" "$rt/sandboxes/no-state-file"
plant -not-an-id '{"state":"running","pid":1,"start_ticks":12345}'

if start_supervisor "$work/sup2.log"; then
	check restarted-supervisor-starts 0
	hostile restart-after "$sock" "$work"
else
	check restarted-supervisor-starts 1 "$(tail -n 5 "$work/sup2.log")"
fi

# --- 7: vfsd ctl --------------------------------------------------------------------------
# ctl_expect NAME CODE PATTERN ARGS...: exit status CODE, output matching PATTERN
ctl_expect() {
	local name=$1 code=$2 pattern=$3
	shift 3
	expect_output "ctl-$name" "$code" "$pattern" "$bin/vfsd" ctl "$@"
}
S=(--control-socket "$sock")
timeout 20 "$bin/vfsd" ctl "${S[@]}" watch >"$work/watch.out" 2>&1 &
pids+=($!)
ctl_expect ping 0 '^ok$' "${S[@]}" ping
ctl_expect version 0 'control protocol 1' "${S[@]}" version
ctl_expect json-version 0 '"protocol":1' "${S[@]}" --json version
ctl_expect spawn 0 'sandbox c1: daemon [0-9]+ serving on' "${S[@]}" spawn c1 \
	--shared-dir "$work/share" --socket-path "$work/s/c1.sock" --label team=a -- --cache never
ctl_expect list 0 "c1 +[0-9]+ +running .*$work/s/c1.sock" "${S[@]}" list
ctl_expect json-list 0 '"sandbox":"c1"' "${S[@]}" --json list
ctl_expect status 0 'state +running' "${S[@]}" status c1
ctl_expect spawn-duplicate 1 'errno 17' "${S[@]}" spawn c1 --shared-dir "$work/share" \
	--socket-path "$work/s/c1b.sock"
ctl_expect spawn-bad-daemon-option 1 "unexpected argument '--bogus'" "${S[@]}" spawn c2 \
	--shared-dir "$work/share" --socket-path "$work/s/c2.sock" -- --bogus
ctl_expect spawn-missing-share 1 'errno 2\)' "${S[@]}" spawn c3 --shared-dir "$work/nope" \
	--socket-path "$work/s/c3.sock"
ctl_expect stop 0 'sandbox c1: daemon [0-9]+ stopped' "${S[@]}" stop c1 --grace-ms 2000
ctl_expect status-unknown 1 'errno 2\)' "${S[@]}" status c1
ctl_expect stop-unknown 1 'no sandbox' "${S[@]}" stop nosuch
ctl_expect json-refused 1 '"ok":false' "${S[@]}" --json status nosuch
ctl_expect no-supervisor 1 'cannot connect' --control-socket "$work/nosuch.sock" ping
ctl_expect unknown-command 2 "unknown command 'frobnicate'" "${S[@]}" frobnicate
ctl_expect status-without-id 2 'needs a SANDBOX' "${S[@]}" status
ctl_expect stop-without-id 2 'needs a SANDBOX' "${S[@]}" stop
ctl_expect spawn-without-id 2 'needs a SANDBOX' "${S[@]}" spawn
ctl_expect spawn-without-share 2 'needs --shared-dir' "${S[@]}" spawn c4 --socket-path "$work/s/c4.sock"
ctl_expect spawn-unknown-option 2 'unexpected argument' "${S[@]}" spawn c4 --shared-dir "$work/share" --bogus
ctl_expect spawn-bad-label 2 'KEY=VALUE' "${S[@]}" spawn c4 --shared-dir "$work/share" --label x
ctl_expect stop-bad-grace 2 'unexpected argument' "${S[@]}" stop c1 --grace-ms soon
ctl_expect ping-extra-argument 2 'unexpected argument' "${S[@]}" ping now
ctl_expect no-command 2 'Usage' "${S[@]}"
ctl_expect unknown-option 2 'unexpected argument' --bogus ping
ctl_expect help 0 'Usage: vfsd ctl' --help
sleep 0.3
grep -qE '^started c1 pid [0-9]+$' "$work/watch.out" && grep -qE '^exited c1 pid [0-9]+, ' "$work/watch.out"
check ctl-watch $? "$(head -c 300 "$work/watch.out")"

alive "$sup"
check restarted-supervisor-survived $? "$(tail -n 5 "$work/sup2.log")"
if ((fail)); then
	echo "-- supervisor logs (last lines)"
	tail -n 15 "$work/sup1.log" "$work/sup2.log" 2>/dev/null
fi
summary
