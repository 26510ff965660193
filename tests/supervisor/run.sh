#!/usr/bin/env bash
# The supervisor (vfsd --runtime-dir) with real guests and a real unprivileged caller: the
# rootless test user (tests/lib/rootless-user.sh) keeps a user namespace alive with
#   runuser -u vfsd-rootless -- unshare -r --map-auto sleep 3600
# as rootless engines do, and tests/vm/run.sh's daemons are spawned by that user through
# `vfsd ctl spawn --userns /proc/PID/ns/user` (tests/supervisor/wrapper.sh):
#   path       the daemon creates its socket; in a cgroup delegated to the user (--cgroup)
#   fd         the socket is made by the runtime and passed (--fd 3, as Kata's)
#   translate  with --translate-uid/--translate-gid map:1000:2000:1
#   restart    the supervisor is SIGKILLed and replaced while the guest copies ~70 MB in; the
#              new one must re-adopt both daemons and the copy must verify
# plus the refusals a non-root caller meets. Needs root. Usage: run.sh [VFSD]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary
# shellcheck source=../lib/rootless-user.sh
source "$repo/tests/lib/rootless-user.sh" # rootless_user_create, host_owners

need_root supervisor-setup "needs root (a test user, cgroups, a root supervisor)"
rootless_user_create || exit 1
user=$rootless_user sub=$rootless_sub uid=$rootless_uid gid=$rootless_gid
group=$(id -gn "$user")

# Everything lives in bin: the binary where the user and the children can run it, the
# supervisor's runtime dir, tests/vm/run.sh's work dirs (TMPDIR), the cgroup2 mount.
bin=$(mktemp -d -t vfsd-supervisor.XXXXXX)
chmod 755 "$bin"
cp "$daemon" "$bin/vfsd"
run=$bin/run control=$bin/run/control.sock record=$bin/record cg=$bin/cgroup
mkdir -m 755 "$bin/tmp" "$record"
ns_runuser="" ns_pid="" helper_pid="" cg_mounted=0

# proc_ticks PID: field 22 of /proc/PID/stat (with the pid it names one process), for a
# process that has not ended.
proc_ticks() {
	local st f
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	read -r -a f <<<"$st"
	[[ ${f[0]} != Z ]] && echo "${f[19]}"
}

# Kill everything this suite started, the supervisor's children included (they outlive it).
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local f pid ticks m
	exec 2>/dev/null
	[[ -n $helper_pid ]] && kill "$helper_pid"
	for f in "$run"/sandboxes/*/state.json; do
		[[ -f $f ]] || continue
		pid=$(jq -r .pid "$f") ticks=$(jq -r .start_ticks "$f")
		[[ $(proc_ticks "$pid") == "$ticks" ]] && kill -KILL "$pid"
	done
	pid=$(cat "$bin/supervisor.pid")
	[[ -n $pid && $(tr '\0' ' ' <"/proc/$pid/cmdline") == "$bin/vfsd "* ]] && kill -KILL "$pid"
	[[ -n $ns_pid ]] && kill -KILL "$ns_pid"
	[[ -n $ns_runuser ]] && kill -KILL "$ns_runuser"
	wait
	if ((cg_mounted)); then
		for f in "$cg"/vfsd-*/; do
			for _ in $(seq 50); do rmdir "$f" && break; sleep 0.1; done
		done
		umount "$cg"
	fi
	# a tests/vm/run.sh killed before its own cleanup leaves its tmpfs in the share
	while read -r m; do umount -l "$m"; done < <(findmnt -rn -o TARGET | grep "^$bin/")
	rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ctl() { runuser -u "$user" -- "$bin/vfsd" ctl --control-socket "$control" "$@"; }

# A root supervisor the user may use; its pid in supervisor.pid (a restart happens in a
# background helper).
start_supervisor() {
	local pid
	setsid "$bin/vfsd" --runtime-dir="$run" --control-allow-uid="$uid" \
		--control-socket-group="$group" >>"$bin/supervisor.log" 2>&1 </dev/null &
	pid=$!
	disown "$pid" # no "Killed" notice when the restart check kills it
	echo "$pid" >"$bin/supervisor.pid"
	for _ in $(seq 100); do
		ctl ping >/dev/null 2>&1 && return 0
		proc_ticks "$pid" >/dev/null || break
		sleep 0.1
	done
	tail -n 5 "$bin/supervisor.log"
	return 1
}

# --- the user's namespace and the supervisor ------------------------------------------------
runuser -u "$user" -- unshare -r --map-auto sleep 3600 </dev/null >/dev/null 2>&1 &
ns_runuser=$!
for _ in $(seq 50); do
	ns_pid=$(pgrep -P "$ns_runuser" -x sleep) && [[ $(readlink "/proc/$ns_pid/ns/user") != "$(readlink /proc/self/ns/user)" ]] && break
	ns_pid=""
	sleep 0.1
done
check userns-sleeper "$([[ -n $ns_pid ]]; echo $?)" "no sleep in a user namespace of its own under runuser $ns_runuser"
userns=/proc/${ns_pid:-0}/ns/user
# --map-auto: the user is 0, its subordinate ids from 1 (65535 of them, as unshare maps them)
map=$(awk '{print $1, $2, $3}' "/proc/${ns_pid:-0}/uid_map" 2>/dev/null | tr '\n' ' ')
check userns-map-auto "$([[ $map == "0 $uid 1 1 $sub 65535 " ]]; echo $?)" "uid_map '$map'"

start_supervisor
check supervisor-starts $? "$(tail -n 3 "$bin/supervisor.log")"

# A cgroup delegated to the user, as systemd's Delegate= does: it owns the directory and its
# cgroup.procs. A v2 mount of our own: on a v1/v2 hybrid, nothing need have mounted it.
mkdir "$cg" && mount -t cgroup2 none "$cg" && cg_mounted=1
mkdir "$cg/vfsd-path" && chown "$user:" "$cg/vfsd-path" "$cg/vfsd-path/cgroup.procs"
check cgroup-delegated $? "cannot set up cgroup2 at $cg"

# --- refusals, without a VM -----------------------------------------------------------------
mkdir -m 755 "$bin/share" "$bin/sock" && chown "$user:" "$bin/share" "$bin/sock"
refused() { # NAME WANT SPAWN-ARGS...: the user's spawn fails with a message holding WANT
	local name=$1 want=$2 out rc
	shift 2
	out=$(ctl spawn "$name" --shared-dir "$bin/share" "$@" 2>&1)
	rc=$?
	check "$name" "$([[ $rc == 1 && $out == *"$want"* ]]; echo $?)" "status $rc: $out"
	ctl stop "$name" >/dev/null 2>&1 # an exited record goes
}
refused refuse-no-userns "name the sandbox's \"userns\"" --socket-path "$bin/sock/a"
refused refuse-undelegated-cgroup "cannot move processes into cgroup" \
	--socket-path "$bin/sock/b" --userns "$userns" --cgroup "$cg"
refused refuse-args-source "args may not set the share" \
	--socket-path "$bin/sock/c" --userns "$userns" -- -o source=/
refused refuse-args-socket "args may not set the share" \
	--socket-path "$bin/sock/d" --userns "$userns" -- --socket-path "$bin/sock/e"
out=$(ctl list 2>&1)
check refusals-leave-no-daemon "$([[ $(wc -l <<<"$out") == 1 ]]; echo $?)" "$out"

# --- the VM cases ---------------------------------------------------------------------------
# make_wrapper NAME MODE [SPAWN-OPTS [TEST-DAEMON-OPTS]]: $bin/wrap-NAME for --daemon.
make_wrapper() {
	cat >"$bin/wrap-$1" <<SH
#!/bin/sh
export WRAP_VFSD='$bin/vfsd' WRAP_CONTROL='$control' WRAP_USER='$user' WRAP_USERNS='$userns'
export WRAP_NAME='$1' WRAP_MODE='$2' WRAP_SPAWN='${3:-}' WRAP_TEST_ARGS='${4:-}'
export WRAP_RECORD='$record'
exec '$repo/tests/supervisor/wrapper.sh' "\$@"
SH
	chmod 755 "$bin/wrap-$1"
}

# vm NAME SCRIPT: tests/vm/run.sh with $bin/wrap-NAME as the daemon of both shares, as the
# test user; its results counted; sets work (kept: the caller removes it).
vm() {
	echo "-- supervisor/$1"
	vm_counted "$1" env TMPDIR="$bin/tmp" "$repo/tests/vm/run.sh" --daemon "$bin/wrap-$1" \
		--sandbox chroot --share-owner "$user" --script "$2" --keep
	work=$vm_work
	printf '%s\n' "$vm_out" | grep '^QEMU start to guest script' | sed "s/^/   [$1] /"
}

# daemons_seen NAME: the two daemons of case NAME ran as the user (host uid), in the
# sleeper's user namespace, right after their spawn.
daemons_seen() {
	local d got want_ns
	want_ns=$(readlink "$userns")
	for d in rootfs test; do
		got="$(awk '{print $2}' "$record/$1-$d.status" 2>&1 | tr '\n' ' ')"
		check "$1-$d-runs-as-user" "$([[ $got == "$uid $gid " ]]; echo $?)" \
			"real uid and gid '$got', want '$uid $gid '"
		got=$(cat "$record/$1-$d.userns" 2>&1)
		check "$1-$d-in-userns" "$([[ $got == "$want_ns" ]]; echo $?)" \
			"in '$got', want '$want_ns'"
	done
}

# owners NAME ROOT ID1000: host_owners on the kept work dir.
owners() {
	if [[ -n $work && -d $work ]]; then
		host_owners "$1" "$work" "$2" "$3"
	else
		check "$1-host-owners" 1 "no work directory to look at"
	fi
}

# ended NAME [DAEMON...]: the case's daemons (default rootfs and test) are gone, and so are
# their records (the wrapper forgets them).
ended() {
	local name=$1 d pid left="" daemons=(rootfs test)
	shift
	(($#)) && daemons=("$@")
	for d in "${daemons[@]}"; do
		pid=$(cat "$record/$name-$d.pid" 2>/dev/null)
		[[ -n $pid ]] && proc_ticks "$pid" >/dev/null && left+=" $d:$pid"
	done
	check "$name-daemons-ended" "$([[ -z $left ]]; echo $?)" "still running:$left"
	left=$(ctl --json list 2>&1 | jq -r ".sandboxes[].sandbox | select(startswith(\"$name-\"))" 2>&1)
	check "$name-records-forgotten" "$([[ -z $left ]]; echo $?)" "the supervisor still lists: $left"
}

# The wrapper's own contract, without a VM: SIGTERM stops its daemon through the supervisor.
make_wrapper term path
"$bin/wrap-term" --socket-path="$bin/sock/w.sock" -o source="$bin/share" >"$bin/term.log" 2>&1 &
wpid=$!
for _ in $(seq 100); do [[ -s $record/term-w.json ]] && break; sleep 0.1; done
kill -TERM "$wpid"
exit_status_of "$wpid"
dpid=$(cat "$record/term-w.pid" 2>/dev/null)
check wrapper-sigterm-stops "$([[ $rc == 0 && -n $dpid ]] && ! proc_ticks "$dpid" >/dev/null && [[ ! -e $bin/sock/w.sock ]]; echo $?)" \
	"wrapper status $rc, daemon ${dpid:-?}: $(tail -n 2 "$bin/term.log")"
ended term w

# 1. The daemon makes its socket; both daemons in the user's delegated cgroup.
t=$SECONDS
make_wrapper path path "--cgroup $cg/vfsd-path"
vm path guest/rootless.sh
daemons_seen path
for d in rootfs test; do
	got=$(grep '^0::' "$record/path-$d.cgroup" 2>&1)
	check "path-$d-in-cgroup" "$([[ $got == "0::/vfsd-path" ]]; echo $?)" "cgroup '$got'"
done
owners path "$uid:$gid" "$((sub + 999)):$((sub + 999))"
ended path
rm -rf "$work"
echo "   [path] $((SECONDS - t)) s"

# 2. The socket is the runtime's, passed as fd 3.
t=$SECONDS
make_wrapper fd fd
vm fd guest/rootless.sh
daemons_seen fd
got=$(jq -c '[.socket_fd, .socket_path]' "$record/fd-test.json" 2>&1)
check fd-test-by-fd "$([[ $got == '[true,null]' ]]; echo $?)" "status says [socket_fd, socket_path] $got"
owners fd "$uid:$gid" "$((sub + 999)):$((sub + 999))"
ended fd
rm -rf "$work"
echo "   [fd] $((SECONDS - t)) s"

# 3. Soft translation inside the namespace: the guest's 1000 is the namespace's 2000, so the
# host sees sub + 1999; the guest still sees 1000 (rootless.sh). ACLs carry raw ids: off.
t=$SECONDS
make_wrapper translate path "" \
	"--translate-uid map:1000:2000:1 --translate-gid map:1000:2000:1 -o no_posix_acl"
vm translate guest/rootless.sh
daemons_seen translate
owners translate "$uid:$gid" "$((sub + 1999)):$((sub + 1999))"
ended translate
rm -rf "$work"
echo "   [translate] $((SECONDS - t)) s"

# 4. A supervisor restart while the guest writes. The helper waits for the guest's
# restart-start, SIGKILLs the supervisor, starts a new one on the same runtime dir and wants
# both daemons back, the same pids, running and adopted, while the copy still goes on; then it
# answers restart-done. One "PASS name" / "FAIL name reason" line per verdict in restart.results.
restart_helper() { # NAME
	local name=$1 res=$bin/restart.results start share old before after want
	local deadline=$((SECONDS + 600))
	local sel="[.sandboxes[] | select(.sandbox | startswith(\"$name-\")) | {sandbox, pid, state, adopted}] | sort_by(.sandbox)"
	until start=$(compgen -G "$bin/tmp/vfsd-vm.*/share.*/restart-start"); do
		if ((SECONDS > deadline)); then
			echo "FAIL $name-guest-started the guest never wrote restart-start" >>"$res"
			return
		fi
		sleep 0.1
	done
	share=$(dirname "$start")
	before=$(ctl --json list 2>&1 | jq -c "$sel" 2>&1)
	want=$(jq -c "[.[] | .adopted = true]" <<<"$before" 2>&1)
	if [[ $(jq -c '[.[] | .state]' <<<"$before" 2>&1) == '["running","running"]' ]]; then
		echo "PASS $name-before-two-running" >>"$res"
	else
		echo "FAIL $name-before-two-running the supervisor lists $before" >>"$res"
	fi
	old=$(<"$bin/supervisor.pid")
	kill -KILL "$old"
	for _ in $(seq 50); do proc_ticks "$old" >/dev/null || break; sleep 0.1; done
	if proc_ticks "$old" >/dev/null; then
		echo "FAIL $name-supervisor-killed supervisor $old still runs" >>"$res"
	fi
	if start_supervisor >>"$bin/supervisor.log"; then
		echo "PASS $name-new-supervisor" >>"$res"
	else
		echo "FAIL $name-new-supervisor no new supervisor on $control" >>"$res"
	fi
	for _ in $(seq 50); do
		after=$(ctl --json list 2>&1 | jq -c "$sel" 2>&1)
		[[ $after == "$want" ]] && break
		sleep 0.1
	done
	if [[ $after == "$want" && $(jq length <<<"$after") == 2 ]]; then
		echo "PASS $name-children-readopted" >>"$res"
	else
		echo "FAIL $name-children-readopted after the restart the supervisor lists $after, want $want" >>"$res"
	fi
	if [[ ! -e $share/restart-copied ]]; then
		echo "PASS $name-during-copy" >>"$res"
	else
		echo "FAIL $name-during-copy the guest's copy ended before the restart was done" >>"$res"
	fi
	echo done >"$share/restart-done"
}
t=$SECONDS
make_wrapper restart path
: >"$bin/restart.results"
restart_helper restart &
helper_pid=$!
vm restart guest/supervisor-restart.sh
kill "$helper_pid" 2>/dev/null
wait "$helper_pid" 2>/dev/null
helper_pid=""
while read -r verdict name reason; do
	check "$name" "$([[ $verdict == PASS ]]; echo $?)" "$reason"
done <"$bin/restart.results"
check restart-verdicts "$([[ -s $bin/restart.results ]]; echo $?)" "the host helper gave none"
daemons_seen restart
copied=$(cat "$work"/share.*/restart-copied 2>/dev/null)
ended restart
rm -rf "$work"
echo "   [restart] $((SECONDS - t)) s (the guest's copy took ${copied:-?} s)"

summary
