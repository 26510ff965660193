#!/usr/bin/env bash
# vfsd-hook against a real supervisor, without a container engine (seconds): containers are
# processes in user namespaces of their own (unshare -r) with a bundle each, and the hook is
# run with the state an engine would write on its stdin. Covers the standalone container, a
# containerd pod (sandbox and app containers), a CRI-O pod (app containers only), the labels,
# idempotence, poststop, and bad input of every kind: each gives one line on stderr, a
# non-zero exit (0 in poststop) and leaves nothing behind. The engines themselves (crun,
# Podman, containerd's CRI) are tests/hook/engines.sh. Needs root. Usage: run.sh [BUILD_DIR]
# Prints "PASS name" / "FAIL name reason" lines and ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
py=/usr/bin/python3
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, summary, expect_output, need_root

need_root hook-setup "the hook's tests need root (a supervisor, user namespaces)"

# short: a pod id is 64 characters and a socket path at most 107 bytes
work=$(mktemp -d /tmp/vh.XXXXXX)
chmod 755 "$work"
bin=$work/bin rt=$work/rt hd=$work/hooks
mkdir -p "$bin" "$hd"
mkdir -m 700 "$rt"
cp "$build/vfsd" "$build/vfsd-hook" "$bin/"
sock=$rt/control.sock
pids=()

cleanup() {
	local p
	{
		for p in "${pids[@]}"; do kill -KILL "$p"; done
		kill_exe "$bin/vfsd"
		wait
	} 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

"$bin/vfsd" --runtime-dir "$rt" >"$work/supervisor.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
check supervisor-up "$([[ -S $sock ]]; echo $?)" "$(tail -n 3 "$work/supervisor.log")"

ctl() { "$bin/vfsd" ctl --control-socket "$sock" "$@"; }
hook() { # STAGE [OPTIONS...] < STATE
	"$bin/vfsd-hook" "$@" --control-socket "$sock" --hook-dir "$hd"
}
jqs() { jq -r "$1" 2>/dev/null; }

# container NAME: a process in a user namespace of its own (its uid 0 is the host's root, so
# the daemon may serve files root owns) and a bundle with a rootfs; sets cpid.
container() {
	local b=$work/$1
	mkdir -p "$b/rootfs/etc"
	echo "rootfs of $1" >"$b/rootfs/etc/hostname"
	unshare --user --map-root-user --mount --fork sleep 600 &
	pids+=($!)
	cpid=""
	for _ in $(seq 50); do
		cpid=$(pgrep -P "${pids[-1]}" -x sleep) && break
		sleep 0.05
	done
}
# config NAME ANNOTATIONS_JSON: the bundle's config.json (a user namespace, a root.path).
config() {
	jq -n --argjson a "$2" '{ociVersion:"1.0.2", root:{path:"rootfs"}, annotations:$a,
		linux:{namespaces:[{type:"pid"},{type:"mount"},{type:"user"}],
		       uidMappings:[{containerID:0,hostID:0,size:1}]}}' >"$work/$1/config.json"
}
# state NAME PID [STATUS]: what an engine writes on the hook's stdin.
state() {
	jq -cn --arg id "$1" --argjson pid "$2" --arg b "$work/$1" --arg s "${3:-created}" \
		'{ociVersion:"1.0.2", id:$id, pid:$pid, bundle:$b, status:$s}'
}
listening() { # SOCKET: bound and listening (a connection would be the daemon's one VMM)
	[[ -S $1 ]] && awk -v p="$1" '$NF == p && $6 == "01" { f = 1 } END { exit !f }' /proc/net/unix
}

# --- a standalone container -----------------------------------------------------------------
container c1
config c1 '{"io.vfsd.enable":"true","io.vfsd.options":"[\"--cache=never\",\"--xattr\"]"}'
out=$(state c1 "$cpid" | hook createRuntime 2>&1)
check standalone-spawn $? "$out"
st=$(ctl --json status c1)
dpid=$(jqs .pid <<<"$st")
check standalone-running "$([[ $(jqs .state <<<"$st") == running ]]; echo $?)" "$st"
check standalone-in-userns "$([[ -n $dpid && $(readlink "/proc/$dpid/ns/user") == "$(readlink "/proc/$cpid/ns/user")" ]]; echo $?)" \
	"daemon $(readlink "/proc/$dpid/ns/user" 2>&1), container $(readlink "/proc/$cpid/ns/user")"
check standalone-share "$([[ $(jqs .shared_dir <<<"$st") == "$work/c1/rootfs" ]]; echo $?)" "$st"
check standalone-options "$([[ $(jqs '.args|join(" ")' <<<"$st") == "--cache=never --xattr" ]]; echo $?)" "$st"
check standalone-socket "$(listening "$hd/c1/vhost-user.sock"; echo $?)" "$(ls -la "$hd/c1" 2>&1)"
out=$(state c1 "$cpid" | hook createRuntime 2>&1)
check standalone-again "$([[ $? == 0 && $(ctl --json status c1 | jqs .pid) == "$dpid" ]]; echo $?)" "$out"
out=$(state c1 "$cpid" | hook poststart 2>&1)
check standalone-poststart "$([[ $? == 0 && $(ctl --json status c1 | jqs .pid) == "$dpid" ]]; echo $?)" "$out"
out=$(state c1 0 stopped | jq -c 'del(.pid)' | hook poststop 2>&1)
check standalone-poststop "$([[ $? == 0 ]] && ! ctl status c1 >/dev/null 2>&1 && ! kill -0 "$dpid" 2>/dev/null; echo $?)" "$out"
check standalone-nothing-left "$([[ ! -e $hd/c1 ]]; echo $?)" "$(ls -laR "$hd" 2>&1 | head -20)"
out=$(state c1 0 stopped | jq -c 'del(.pid)' | hook poststop 2>&1)
check poststop-no-daemon "$([[ $? == 0 && -z $out ]]; echo $?)" "$out"

# --- no stage: the state's status says (one hooks.d file for both stages) ---------------------
out=$(state c1 "$cpid" | hook 2>&1)
check auto-stage-spawns "$([[ $? == 0 && $(ctl --json status c1 | jqs .state) == running ]]; echo $?)" "$out"
out=$(state c1 0 stopped | jq -c 'del(.pid)' | hook 2>&1)
check auto-stage-stops "$([[ $? == 0 && ! -e $hd/c1 ]] && ! ctl status c1 >/dev/null 2>&1; echo $?)" "$out"
out=$(state c1 0 created | jq -c 'del(.pid)' | hook 2>&1)
check auto-stage-needs-pid "$([[ $? == 1 && $out == *'no "pid"'* ]]; echo $?)" "$out"

# --- not enabled ----------------------------------------------------------------------------
for a in '{}' '{"io.vfsd.enable":"false"}'; do
	config c1 "$a"
	out=$(state c1 "$cpid" | hook createRuntime 2>&1)
	check "disabled-$(jq -r '.["io.vfsd.enable"] // "absent"' <<<"$a")" \
		"$([[ $? == 0 && -z $out && ! -e $hd/c1 ]] && ! ctl status c1 >/dev/null 2>&1; echo $?)" "$out"
done

# --- a containerd pod: the sandbox container and an app container run the hook -------------
cri() { # TYPE SANDBOX: containerd's annotations
	jq -cn --arg t "$1" --arg s "$2" '{"io.vfsd.enable":"true",
		"io.kubernetes.cri.container-type":$t, "io.kubernetes.cri.sandbox-id":$s,
		"io.kubernetes.cri.sandbox-name":"web-0", "io.kubernetes.cri.sandbox-namespace":"shop",
		"io.kubernetes.cri.sandbox-uid":"7d1c2f0e-1b2c-4d5e-8f90-a1b2c3d4e5f6"}'
}
pod=5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5
container "$pod"
config "$pod" "$(cri sandbox "$pod")"
out=$(state "$pod" "$cpid" | hook createRuntime 2>&1)
check cri-sandbox-spawn $? "$out"
st=$(ctl --json status "$pod")
check cri-labels "$([[ $(jqs '.labels|to_entries|map("\(.key)=\(.value)")|join(",")' <<<"$st") == "cri_name=web-0,cri_namespace=shop,cri_uid=7d1c2f0e-1b2c-4d5e-8f90-a1b2c3d4e5f6" ]]; echo $?)" "$st"
dpid=$(jqs .pid <<<"$st")
container app1
config app1 "$(cri container "$pod")"
out=$(state app1 "$cpid" | hook createRuntime 2>&1)
check cri-app-joins "$([[ $? == 0 && $(ctl --json status "$pod" | jqs .pid) == "$dpid" && $(ctl --json list | jqs '.sandboxes|length') == 1 ]]; echo $?)" "$out"
out=$(state app1 0 stopped | hook poststop 2>&1)
check cri-app-poststop-keeps "$([[ $? == 0 && $(ctl --json status "$pod" | jqs .state) == running ]]; echo $?)" "$out"
out=$(state "$pod" 0 stopped | hook poststop 2>&1)
check cri-sandbox-poststop "$([[ $? == 0 && ! -e $hd/$pod ]] && ! kill -0 "$dpid" 2>/dev/null; echo $?)" "$out"

# --- a CRI-O pod: only app containers run the hook; the last one's poststop stops ------------
crio() { # SANDBOX
	jq -cn --arg s "$1" '{"io.vfsd.enable":"true", "io.kubernetes.cri-o.ContainerType":"container",
		"io.kubernetes.cri-o.SandboxID":$s, "io.kubernetes.pod.name":"db-1",
		"io.kubernetes.pod.namespace":"shop", "io.kubernetes.pod.uid":"u-1"}'
}
container appA
config appA "$(crio crio-pod)"
container appB
config appB "$(crio crio-pod)"
cpidA=$(pgrep -P "${pids[-3]}" -x sleep)
out=$( (state appA "$cpidA" | hook createRuntime) 2>&1)
check crio-first-spawns $? "$out"
dpid=$(ctl --json status crio-pod | jqs .pid)
check crio-labels "$([[ $(ctl --json status crio-pod | jqs '.labels.cri_name + "/" + .labels.cri_namespace + "/" + .labels.cri_uid') == db-1/shop/u-1 ]]; echo $?)"
out=$(state appB "$cpid" | hook createRuntime 2>&1)
check crio-second-joins "$([[ $? == 0 && $(ctl --json status crio-pod | jqs .pid) == "$dpid" ]]; echo $?)" "$out"
out=$(state appA 0 stopped | hook poststop 2>&1)
check crio-first-poststop-keeps "$([[ $? == 0 && $(ctl --json status crio-pod | jqs .state) == running ]]; echo $?)" "$out"
out=$(state appB 0 stopped | hook poststop 2>&1)
check crio-last-poststop-stops "$([[ $? == 0 && ! -e $hd/crio-pod ]] && ! kill -0 "$dpid" 2>/dev/null; echo $?)" "$out"

# --- the container's cgroup: an engine in a mount namespace with cgroup2 on /sys/fs/cgroup (the
# host's is a v1/v2 hybrid here) put the container in a cgroup of its own; the daemon joins it.
container cg1
config cg1 '{"io.vfsd.enable":"true"}'
out=$(state cg1 "$cpid" | unshare --mount -- sh -c 'mount -t cgroup2 none /sys/fs/cgroup &&
	mkdir -p /sys/fs/cgroup/vfsd-hook-test/cg1 && echo "$1" >/sys/fs/cgroup/vfsd-hook-test/cg1/cgroup.procs &&
	"$2" createRuntime --control-socket "$3" --hook-dir "$4"; rc=$?
	cat "/proc/$(cat "$5" 2>/dev/null || echo 0)/cgroup" >/dev/null 2>&1; exit $rc' sh \
	"$cpid" "$bin/vfsd-hook" "$sock" "$hd" /dev/null 2>&1)
rc=$?
st=$(ctl --json status cg1)
dpid=$(jqs .pid <<<"$st")
check cgroup-spawn "$rc" "$out"
check cgroup-is-the-containers "$(grep -qx '0::/vfsd-hook-test/cg1' "/proc/$dpid/cgroup" 2>/dev/null; echo $?)" \
	"daemon: $(grep '^0::' "/proc/$dpid/cgroup" 2>&1), status cgroup $(jqs .cgroup <<<"$st")"
out=$(state cg1 0 stopped | hook poststop 2>&1)
check cgroup-poststop "$([[ $? == 0 ]] && ! kill -0 "$dpid" 2>/dev/null; echo $?)" "$out"
# (the test cgroups go with the cgroup2 mount's last user: nothing of this test is in them now)
unshare --mount -- sh -c 'mount -t cgroup2 none /sys/fs/cgroup && kill -KILL $(cat /sys/fs/cgroup/vfsd-hook-test/cg1/cgroup.procs) 2>/dev/null; sleep 0.2;
	rmdir /sys/fs/cgroup/vfsd-hook-test/cg1 /sys/fs/cgroup/vfsd-hook-test' >/dev/null 2>&1

# --- concurrent hooks of one pod: one daemon -------------------------------------------------
for i in 1 2 3 4; do
	container "par$i"
	config "par$i" "$(crio par-pod)"
	(state "par$i" "$cpid" | hook createRuntime >"$work/par$i.out" 2>&1; echo $? >>"$work/par$i.out") &
done
wait -n; wait -n; wait -n; wait -n 2>/dev/null
sleep 0.2
rcs=$(tail -qn 1 "$work"/par?.out | tr '\n' ' ')
check concurrent-one-daemon "$([[ $rcs == "0 0 0 0 " && $(ctl --json list | jqs '[.sandboxes[]|select(.sandbox=="par-pod")]|length') == 1 ]]; echo $?)" "$rcs $(cat "$work"/par?.out | head -5)"
for i in 1 2 3 4; do state "par$i" 0 stopped | hook poststop >/dev/null 2>&1; done
check concurrent-all-stopped "$([[ ! -e $hd/par-pod ]] && ! ctl status par-pod >/dev/null 2>&1; echo $?)"

# --- bad input: one line on stderr, exit 1, nothing left --------------------------------------
container bad
config bad '{"io.vfsd.enable":"true"}'
good=$(state bad "$cpid")
nothing_left() { [[ ! -e $hd/bad && $(ctl --json list | jqs '.sandboxes|length') == 0 ]]; }
bad() { # NAME PATTERN [HOOK OPTIONS...] <<< STATE
	local name=$1 pat=$2 out rc
	shift 2
	out=$(timeout 20 "$bin/vfsd-hook" createRuntime --hook-dir "$hd" --control-socket "$sock" "$@" 2>&1)
	rc=$?
	if [[ $rc != 1 ]]; then
		check "bad-$name" 1 "exit $rc: $out"
	elif [[ $(wc -l <<<"$out") != 1 || ! $out =~ ^vfsd-hook:\ createRuntime:\ .*$pat ]]; then
		check "bad-$name" 1 "stderr: $out"
	elif ! nothing_left; then
		check "bad-$name" 1 "left behind: $(ls -R "$hd") $(ctl list)"
	else
		check "bad-$name" 0
	fi
}
bad empty-state "state on stdin is empty" </dev/null
bad truncated "malformed JSON" <<<"${good:0:30}"
bad array "not a JSON object" <<<'[1,2]'
bad null "not a JSON object" <<<'null'
bad not-utf8 "not UTF-8" < <(printf '{"id":"\xff"}')
bad trailing "text after" <<<"$good {}"
bad no-bundle 'no absolute "bundle"' < <(jq -c 'del(.bundle)' <<<"$good")
bad relative-bundle 'no absolute "bundle"' < <(jq -c '.bundle="b"' <<<"$good")
bad no-pid 'no "pid"' < <(jq -c 'del(.pid)' <<<"$good")
bad pid-string 'not a process id' < <(jq -c '.pid="1"' <<<"$good")
bad no-id 'no "id"' < <(jq -c 'del(.id)' <<<"$good")
bad huge "longer than 1 MiB" < <($py -c 'print("{\"x\":\"" + "a" * (2 << 20) + "\"}")')
bad annotation-type "annotation 'io.vfsd.enable' is not a string" < <(jq -c '.annotations={"io.vfsd.enable":true}' <<<"$good")
bad no-config "cannot read $work/nob/config.json" < <(jq -c --arg b "$work/nob" '.bundle=$b' <<<"$good")
cp "$work/bad/config.json" "$work/bad/config.good"
printf '{"annotations":' >"$work/bad/config.json"
bad config-truncated "config.json: malformed JSON" <<<"$good"
config bad '{"io.vfsd.enable":"yes"}'
bad enable-value 'must be "true" or "false"' <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.shares":"/x"}'
bad unknown-annotation "unknown annotation 'io.vfsd.shares'" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.options":"--cache=never"}'
bad options-not-array "io.vfsd.options" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.options":"[\"--cache=sometimes\"]"}'
bad options-refused "refused to start the daemon: .*cache" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.share":"relative/dir"}'
bad share-relative "io.vfsd.share must be an absolute path" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.share":"/nonexistent/share"}'
bad share-missing "refused to start the daemon" --trust-annotations <<<"$good"
# as root, what root shares, binds, asks and with which powers is not the annotation's to say
bad untrusted-share "io.vfsd.share chooses what a root hook does" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.socket":"/tmp/elsewhere.sock"}'
bad untrusted-socket "io.vfsd.socket chooses what a root hook does" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.control-socket":"/tmp/fake.sock"}'
bad untrusted-control-socket "io.vfsd.control-socket chooses" <<<"$good"
config bad '{"io.vfsd.enable":"true","io.vfsd.cgroup":"/sys/fs/cgroup/x"}'
bad untrusted-cgroup "io.vfsd.cgroup chooses" <<<"$good"
for o in '"--sandbox=none"' '"--modcaps=+sys_admin"' '"--seccomp=none"' '"--cache","auto"' '"-o","sandbox=none"'; do
	config bad "$(jq -cn --arg o "[$o]" '{"io.vfsd.enable":"true","io.vfsd.options":$o}')"
	n=${o//[^a-z]/}
	bad "untrusted-option-$n" "io.vfsd.options: '[^']*' is not one a root hook takes" <<<"$good"
done
config bad '{"io.vfsd.enabled":"true"}'
bad misspelt-enable "unknown annotation 'io.vfsd.enabled'" <<<"$good"
config bad '{"io.vfsd.enable":"true"}'
out=$(jq -c 'del(.status)' <<<"$good" | "$bin/vfsd-hook" --hook-dir "$hd" --control-socket "$sock" 2>&1)
check stage-less-no-status "$([[ $? == 1 && $out == *'no "status" to tell the stage by'* ]] && nothing_left; echo $?)" "$out"
config bad '{"io.vfsd.enable":"true"}'
bad pid-exited "process 4194000 has exited" < <(jq -c '.pid=4194000' <<<"$good")
bad sandbox-id 'sandbox id .* is not' < <(jq -c '.id="bad/id"' <<<"$good")
bad no-supervisor "cannot reach the vfsd supervisor at $work/none.sock" --control-socket "$work/none.sock" <<<"$good"

# A supervisor that hangs: a listener that accepts and never answers, one that never accepts.
$py - "$work/hang.sock" "$work/stuck.sock" <<'PY' &
import socket, sys, time
a = socket.socket(socket.AF_UNIX); a.bind(sys.argv[1]); a.listen(8)
b = socket.socket(socket.AF_UNIX); b.bind(sys.argv[2]); b.listen(0)
held = []
while True:
    c, _ = a.accept(); held.append(c)
PY
pids+=($!)
for _ in $(seq 50); do [[ -S $work/stuck.sock ]] && break; sleep 0.1; done
t0=$SECONDS
bad hung-supervisor "timed out waiting for the supervisor's status .* deadline" --control-socket "$work/hang.sock" --timeout 1000 <<<"$good"
bad stuck-supervisor "timed out .* deadline" --control-socket "$work/stuck.sock" --timeout 1000 <<<"$good"
check deadline-kept "$(((SECONDS - t0) <= 5 ? 0 : 1))" "two 1 s deadlines took $((SECONDS - t0)) s"
out=$(state bad 0 stopped | "$bin/vfsd-hook" poststop --hook-dir "$hd" --control-socket "$work/none.sock" 2>&1)
check poststop-failure-exit-0 "$([[ $? == 0 && $out == *"cannot reach the vfsd supervisor"* ]]; echo $?)" "$out"

# --- the hook's directory must be its own: not a symlink, nobody else may write it ------------
mkdir -m 777 "$work/open-dir"
expect_output hookdir-world-writable 1 "must be a directory of the hook's user" \
	"$bin/vfsd-hook" createRuntime --hook-dir "$work/open-dir" --control-socket "$sock" <<<"$good"
mkdir -p "$work/hd2" && ln -s /etc "$work/hd2/bad"
expect_output hookdir-sandbox-symlink 1 "must be a directory of the hook's user" \
	"$bin/vfsd-hook" createRuntime --hook-dir "$work/hd2" --control-socket "$sock" <<<"$good"
check hookdir-symlink-untouched "$([[ ! -e /etc/lock && -L $work/hd2/bad ]]; echo $?)"

# --- the command line -------------------------------------------------------------------------
expect_output cli-no-stage-no-state 1 "state on stdin is empty" "$bin/vfsd-hook" </dev/null
expect_output cli-bad-stage 2 "not a stage" "$bin/vfsd-hook" start
expect_output cli-in-container-stage 2 "runs inside the container" "$bin/vfsd-hook" startContainer
expect_output cli-bad-timeout 2 "--timeout takes" "$bin/vfsd-hook" createRuntime --timeout 0
expect_output cli-help 0 "io.vfsd.enable=true" "$bin/vfsd-hook" --help
# the hook links json-c, not the data path's libraries
check links-json-c-only "$(ldd "$bin/vfsd-hook" | grep -qE 'seccomp|cap-ng|curl' && echo 1 || echo 0)" "$(ldd "$bin/vfsd-hook")"

summary
