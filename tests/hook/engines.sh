#!/usr/bin/env bash
# vfsd-hook run by real engines, and the daemon it gets proven by a real guest: for each
# engine a container (or pod) annotated io.vfsd.enable=true gets one daemon from the
# supervisor, in the container's user namespace; a QEMU guest mounts that daemon's socket
# and reads and writes the container's rootfs (tests/vm/guest/hook.sh); what the guest wrote
# is read back inside the container; removing the container stops the daemon.
#   crun         a bundle with a user namespace (0 -> 100000), hooks from oci/config-hooks.json
#   podman       rootful, hooks from oci/hooks.d/vfsd.json (one file, the stage from the state)
#   podman-auto  rootful with --userns=auto
#   rootless     rootless Podman as tests/lib/rootless-user.sh's user
#   cri          containerd 1.6's CRI and crictl, a runtime handler whose base runtime spec
#                carries oci/containerd/hooks.json: two containers of one pod share a daemon
#                keyed by the pod's sandbox id, with the pod's labels
# Engines come from tests/lib/oci-env.sh and tests/lib/cri-env.sh (crictl is built from the
# Go module proxy; without it the cri part says so and fails). Needs root.
# Usage: engines.sh [BUILD_DIR] [PART...]   Ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$repo/build
[[ ${1:-} == /* || ${1:-} == build* ]] && { build=$1; shift; }
parts=("$@")
((${#parts[@]})) || parts=(crun podman podman-auto rootless cri)
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary, need_root
need_root engines-setup "the engines' tests need root"
# shellcheck source=../lib/oci-env.sh
source "$repo/tests/lib/oci-env.sh"
# shellcheck source=../lib/cri-env.sh
source "$repo/tests/lib/cri-env.sh"

rootless_user_create || exit 1
# Short paths: sockets live under it. The rootless user and the daemons must reach it.
w=$(mktemp -d /tmp/vhe.XXXXXX)
chmod 755 "$w"
bin=$w/bin rt=$w/rt hd=$w/hooks hd_rl=$w/hooks-rl ctl_sock=$w/control.sock
mkdir -p "$bin" "$hd"
mkdir -m 700 "$rt"
install -d -m 700 -o "$rootless_uid" -g "$rootless_gid" "$hd_rl"
cp "$build/vfsd" "$build/vfsd-hook" "$bin/"
sup_pid=""

cleanup() {
	exec 2>/dev/null
	cri_stop
	oci_env_cleanup
	[[ -n $sup_pid ]] && kill -KILL "$sup_pid"
	kill_exe "$bin/vfsd"
	wait
	rm -rf "$w"
}
trap cleanup EXIT

"$bin/vfsd" --runtime-dir "$rt" --control-socket "$ctl_sock" \
	--control-socket-group "$(id -gn "$rootless_user")" --control-allow-uid "$rootless_uid" \
	>"$w/supervisor.log" 2>&1 &
sup_pid=$!
for _ in $(seq 50); do [[ -S $ctl_sock ]] && break; sleep 0.1; done
check supervisor-up "$([[ -S $ctl_sock ]]; echo $?)" "$(tail -n 3 "$w/supervisor.log")"

ctl() { "$bin/vfsd" ctl --control-socket "$ctl_sock" "$@"; }
jqs() { jq -r "$1" 2>/dev/null; }
hook_args=(--control-socket "$ctl_sock" --hook-dir)

# hooks_dir DIR HOOK_DIR: oci/hooks.d/vfsd.json with this test's binary and options.
hooks_dir() {
	mkdir -p "$1"
	jq --arg p "$bin/vfsd-hook" --arg s "$ctl_sock" --arg d "$2" \
		'.hook.path = $p | .hook.args += ["--control-socket", $s, "--hook-dir", $d]' \
		"$repo/oci/hooks.d/vfsd.json" >"$1/vfsd.json"
	chmod -R a+rX "$1"
}

# serve_check PART SANDBOX SOCKET EXEC...: the sandbox's daemon serves SOCKET; a guest reads
# what EXEC (a command running its arguments in the container) wrote, and writes a file EXEC
# then reads. Adds the guest's checks.
serve_check() {
	local part=$1 sb=$2 sock=$3 token out got st
	shift 3
	token=$part-$RANDOM$RANDOM
	st=$(ctl --json status "$sb")
	check "$part-daemon-running" "$([[ $(jqs .state <<<"$st") == running ]]; echo $?)" "$st"
	"$@" sh -c "echo $token >/vfsd-marker"
	out=$("$repo/tests/vm/boot.sh" --test-socket "$sock" --script guest/hook.sh \
		--env "TOKEN=$token" 2>&1)
	grep -E '^ *\[ *[0-9.]+s\] (PASS|FAIL) ' <<<"$out" | sed -E "s/^[^]]*\] (PASS|FAIL) /\1 $part-guest-/"
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -n 1)
	p=${line%% passed*} f=${line#*, } f=${f%% failed*}
	if [[ -z $line ]]; then
		check "$part-guest" 1 "$(tail -n 15 <<<"$out")"
	else
		counted "${p:-0}" "${f:-1}"
		((f == 0)) || tail -n 25 <<<"$out" | sed 's/^/    /'
	fi
	got=$("$@" cat /from-guest 2>&1)
	check "$part-container-sees-guest" "$([[ $got == "guest:$token" ]]; echo $?)" "from-guest: '$got'"
}

# same_userns PART DAEMON_PID CONTAINER_PID
same_userns() {
	local d c
	d=$(readlink "/proc/$2/ns/user" 2>&1) c=$(readlink "/proc/$3/ns/user" 2>&1)
	check "$1-daemon-in-container-userns" "$([[ $2 =~ ^[0-9]+$ && $d == "$c" ]]; echo $?)" "daemon $d, container $c"
}

# stopped PART SANDBOX DAEMON_PID HOOK_DIR
stopped() {
	local i
	for i in $(seq 50); do
		! kill -0 "$3" 2>/dev/null && ! ctl status "$2" >/dev/null 2>&1 && break
		sleep 0.1
	done
	check "$1-stopped" "$(! kill -0 "$3" 2>/dev/null && ! ctl status "$2" >/dev/null 2>&1; echo $?)" \
		"$(ctl list 2>&1 | tail -n +2)"
	check "$1-nothing-left" "$([[ ! -e $4/$2 ]]; echo $?)" "$(ls -la "$4/$2" 2>&1 | head -5)"
}

part_crun() {
	local b=$w/bundle id=vfsd-crun-1 dpid cpid
	oci_bundle "$b" "$bin/vfsd-hook" --userns || { check crun-bundle 1; return; }
	jq -s --arg p "$bin/vfsd-hook" --arg s "$ctl_sock" --arg d "$hd" '.[0] * .[1]
		| .hooks[][].path = $p | .hooks[][].args += ["--control-socket", $s, "--hook-dir", $d]' \
		"$b/config.json" "$repo/oci/config-hooks.json" >"$b/c.json" && mv "$b/c.json" "$b/config.json"
	crun_run "$b" "$id"
	check crun-run $? "$(tail -n 5 "$oci_log_dir/$id" 2>&1)"
	cpid=$(crun_pid "$id")
	dpid=$(ctl --json status "$id" | jqs .pid)
	same_userns crun "$dpid" "$cpid"
	check crun-uid-map "$([[ $(tr -s ' ' <"/proc/$dpid/uid_map") == " 0 100000 65536" ]]; echo $?)" \
		"$(cat "/proc/$dpid/uid_map" 2>&1)"
	serve_check crun "$id" "$hd/$id/vhost-user.sock" crun_exec "$id"
	crun_delete "$id"
	stopped crun "$id" "$dpid" "$hd"
}

# podman_part PART KIND HOOK_DIR [PODMAN OPTIONS...]
podman_part() {
	local part=$1 kind=$2 hdir=$3 id dpid cpid pm=podman_rootful
	shift 3
	[[ $kind == rootless ]] && pm=podman_rootless
	hooks_dir "$w/hooks.d-$part" "$hdir"
	# (in this shell: the env's state is made on first use, and $(...) would lose it)
	if [[ $kind == rootless ]]; then podman_image_import --rootless; else podman_image_import; fi
	id=$("podman_run_$kind" "$w/hooks.d-$part" "vfsd-$part" "$@" 2>"$w/$part.err")
	check "$part-run" $? "$(tail -n 5 "$w/$part.err")"
	[[ -n $id ]] || return
	cpid=$($pm inspect -f '{{.State.Pid}}' "$id")
	dpid=$(ctl --json status "$id" | jqs .pid)
	same_userns "$part" "$dpid" "$cpid"
	[[ $part == rootless ]] &&
		check rootless-caller "$([[ $(ctl --json status "$id" | jqs .caller_uid) == "$rootless_uid" ]]; echo $?)"
	if [[ $part == rootless ]]; then
		# root's hook for the same sandbox id neither joins nor stops the user's daemon
		local cfg state out
		cfg=$($pm inspect -f '{{.OCIConfigPath}}' "$id")
		state=$(jq -cn --arg id "$id" --argjson pid "${cpid:-0}" --arg b "${cfg%/config.json}" \
			'{ociVersion:"1.0.2", id:$id, pid:$pid, bundle:$b, status:"created"}')
		out=$("$bin/vfsd-hook" createRuntime "${hook_args[@]}" "$hd" <<<"$state" 2>&1)
		check rootless-id-not-roots "$([[ $? == 1 && $out == *"taken by a daemon uid $rootless_uid spawned"* ]]; echo $?)" "$out"
		out=$(jq -c '.status="stopped" | del(.pid)' <<<"$state" | "$bin/vfsd-hook" poststop "${hook_args[@]}" "$hd" 2>&1)
		check rootless-root-poststop-leaves-it "$([[ $? == 0 && $(ctl --json status "$id" | jqs .pid) == "$dpid" ]]; echo $?)" "$out"
	fi
	serve_check "$part" "$id" "$hdir/$id/vhost-user.sock" "$pm" exec "$id"
	if [[ $kind == rootless ]]; then podman_rm --rootless "$id"; else podman_rm "$id"; fi
	stopped "$part" "$id" "$dpid" "$hdir"
}

part_cri() {
	local hooks pod c1 c2 dpid st
	if ! cri_tools_install; then
		check cri-crictl 1 "crictl could not be built: the Go module proxy is out of reach"
		return
	fi
	hooks=$(jq -c --arg p "$bin/vfsd-hook" --arg s "$ctl_sock" --arg d "$hd" \
		'.[][].path = $p | .[][].args += ["--control-socket", $s, "--hook-dir", $d]' \
		"$repo/oci/containerd/hooks.json")
	cri_base_spec "$hooks" >"$w/base-spec.json"
	cri_start "$w" "$w/base-spec.json" || { check cri-start 1 "containerd did not start"; return; }
	cri_import_pause || { check cri-images 1; return; }
	cri_pod_json web-0 shop 7d1c2f0e-1b2c-4d5e-8f90-a1b2c3d4e5f6 io.vfsd.enable=true >"$w/pod.json"
	cri_container_json app1 sleep 3600 >"$w/c1.json"
	cri_container_json app2 sleep 3600 >"$w/c2.json"
	pod=$(cri_crictl runp --runtime "$CRI_RUNTIME" "$w/pod.json" 2>"$w/cri.err")
	check cri-runp $? "$(tail -n 3 "$w/cri.err")"
	c1=$(cri_crictl create "$pod" "$w/c1.json" "$w/pod.json" 2>>"$w/cri.err") &&
		cri_crictl start "$c1" >/dev/null 2>>"$w/cri.err"
	check cri-start-first $? "$(tail -n 3 "$w/cri.err")"
	st=$(ctl --json status "$pod")
	dpid=$(jqs .pid <<<"$st")
	check cri-keyed-by-pod "$([[ $(jqs .state <<<"$st") == running ]]; echo $?)" "$(ctl list)"
	check cri-pod-labels "$([[ $(jqs '.labels|to_entries|map("\(.key)=\(.value)")|join(",")' <<<"$st") == "cri_name=web-0,cri_namespace=shop,cri_uid=7d1c2f0e-1b2c-4d5e-8f90-a1b2c3d4e5f6" ]]; echo $?)" "$st"
	c2=$(cri_crictl create "$pod" "$w/c2.json" "$w/pod.json" 2>>"$w/cri.err") &&
		cri_crictl start "$c2" >/dev/null 2>>"$w/cri.err"
	check cri-start-second $? "$(tail -n 3 "$w/cri.err")"
	check cri-one-daemon-per-pod "$([[ $(ctl --json list | jqs '.sandboxes|length') == 1 && $(ctl --json status "$pod" | jqs .pid) == "$dpid" ]]; echo $?)" "$(ctl list)"
	cri_crictl stop "$c2" >/dev/null 2>&1
	cri_crictl rm "$c2" >/dev/null 2>&1
	check cri-one-gone-daemon-stays "$([[ $(ctl --json status "$pod" | jqs .state) == running ]]; echo $?)" "$(ctl list)"
	serve_check cri "$pod" "$hd/$pod/vhost-user.sock" cri_crictl exec "$c1"
	cri_crictl stopp "$pod" >/dev/null 2>&1
	stopped cri "$pod" "$dpid" "$hd"
	cri_crictl rmp "$pod" >/dev/null 2>&1
	cri_stop
}

for part in "${parts[@]}"; do
	echo "-- $part"
	case $part in
	crun) part_crun ;;
	podman) podman_part podman rootful "$hd" ;;
	podman-auto) podman_part podman-auto rootful "$hd" --userns=auto ;;
	rootless) podman_part rootless rootless "$hd_rl" ;;
	cri) part_cri ;;
	*) check "part-$part" 1 "no such part" ;;
	esac
done
summary
