# Real container runtimes for the OCI hook's tests (sourced; needs root): crun from a bundle,
# and Podman rootful and rootless (as tests/lib/rootless-user.sh's user), on this machine's
# cgroup v1/v2 hybrid, which crun refuses: crun always runs in a private mount namespace with
# cgroup2 on /sys/fs/cgroup (through a wrapper named crun, which Podman is given too), rootless
# Podman is started in one. Rootful Podman and its overlays stay in the host's mount namespace.
# Each process started here sits in one cgroup v2 group, which oci_env_cleanup empties.
#   oci_rootfs DIR              a busybox rootfs: bin/ (busybox and its applet links),
#                               etc/passwd, etc/group, dev, proc, sys, tmp, root, run, var/tmp
#   oci_bundle BUNDLE HOOK [--userns] [--annotation K=V]... [--timeout S] [-- CMD...]
#                               a bundle: rootfs (writable) and config.json from `crun spec`:
#                               CMD (default sleep 3600), no terminal, hooks createRuntime and
#                               poststop running HOOK with args [basename, STAGE] and timeout S
#                               (default oci_hook_timeout); --userns: a user namespace mapping
#                               0 to 100000 (65536 ids), the rootfs owned by 100000:100000
#   crun_run BUNDLE ID          starts the bundle detached (its stdio: oci_log_dir/ID)
#   crun_exec ID CMD...         runs CMD in the container, stdio the caller's
#   crun_pid ID                 prints the container's init pid
#   crun_delete ID              kill, then delete -f (which runs the poststop hooks); returns
#                               once the init is dead
#   oci_crun ARGS...            any other crun command on the env's state (--root)
#   oci_hooks_dir DIR HOOK [--timeout S]
#                               a hooks.d (1.0.0) for Podman: one file per stage (createRuntime,
#                               poststop), each running HOOK with args [basename, STAGE] when
#                               the annotation io.vfsd.enable is "true"
#   podman_image_import [--rootless]
#                               the image oci_image (the busybox rootfs), unless it is there
#   podman_run_rootful HOOKS_DIR NAME [OPTION...] [-- CMD...]
#   podman_run_rootless HOOKS_DIR NAME [OPTION...] [-- CMD...]
#                               podman run -d of oci_image (imported if missing) with the
#                               annotation io.vfsd.enable=true and the hooks of HOOKS_DIR (which
#                               the rootless user must be able to read); CMD default sleep
#                               3600; prints the container id; OPTIONs go to podman run
#                               (--userns=auto: the subordinate ids of "containers" are added)
#   podman_rm [--rootless] NAME...
#                               stop (SIGKILL at once) and rm; Podman runs poststop as it
#                               cleans up
#   podman_rootful ARGS... / podman_rootless ARGS...
#                               any other podman command on the env's storage
#   oci_env_cleanup             removes every container, process, mount and file made here;
#                               safe in an EXIT trap, and twice
# Settings: oci_hook_timeout (10), oci_cmd_timeout (120 s for each engine command).
# For the test: oci_env_dir (everything lives there), oci_log_dir, oci_image.
# shellcheck shell=bash
# shellcheck source=rootless-user.sh
source "$(dirname "${BASH_SOURCE[0]}")/rootless-user.sh"

oci_image=localhost/vfsd-bb:1
oci_hook_timeout=${oci_hook_timeout:-10}
oci_env_dir='' oci_log_dir='' oci_cgroup=''
oci_auto_sub=1000000 # containers:1000000:1048576, the ids rootful --userns=auto takes

oci_rootfs() {
	local dir=$1 a
	mkdir -p "$dir"/{bin,etc,dev,proc,sys,tmp,root,run,var/tmp} || return 1
	cp /usr/bin/busybox "$dir/bin/busybox" || return 1
	for a in $(/usr/bin/busybox --list); do
		[[ $a == busybox ]] || ln -sf busybox "$dir/bin/$a" || return 1
	done
	chmod 1777 "$dir/tmp" "$dir/var/tmp"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/false' \
		>"$dir/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$dir/etc/group"
}

oci_bundle() {
	local bundle=$1 hook=$2 userns=0 timeout=$oci_hook_timeout ann='{}' cmd
	shift 2
	while (($#)); do
		case $1 in
		--userns) userns=1 ;;
		--annotation)
			ann=$(jq -c --arg kv "$2" '. + {($kv | sub("=.*"; "")): ($kv | sub("^[^=]*="; ""))}' \
				<<<"$ann") || return 1
			shift
			;;
		--timeout) timeout=$2 && shift ;;
		--) shift && break ;;
		*) echo "oci_bundle: unknown option $1" >&2 && return 1 ;;
		esac
		shift
	done
	(($#)) || set -- sleep 3600
	cmd=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
	mkdir -p "$bundle" && oci_rootfs "$bundle/rootfs" || return 1
	rm -f "$bundle/config.json"
	crun spec -b "$bundle" || return 1
	jq --argjson cmd "$cmd" --argjson ann "$ann" --arg hook "$hook" --arg name "${hook##*/}" \
		--argjson t "$timeout" --argjson userns "$userns" '
		def h(stage): [{path: $hook, args: [$name, stage], timeout: $t}];
		.process.terminal = false | .process.args = $cmd | .root.readonly = false
		| .hooks = {createRuntime: h("createRuntime"), poststop: h("poststop")}
		| .annotations = ((.annotations // {}) + $ann)
		| if $userns == 1 then
			.linux.namespaces += [{type: "user"}]
			| .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
			| .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
		  else . end' "$bundle/config.json" >"$bundle/config.json.new" &&
		mv "$bundle/config.json.new" "$bundle/config.json" || return 1
	if ((userns)); then chown -hR 100000:100000 "$bundle/rootfs" || return 1; fi
}

oci_hooks_dir() {
	local dir=$1 hook=$2 timeout=$oci_hook_timeout stage
	[[ ${3:-} == --timeout ]] && timeout=$4
	mkdir -p "$dir" || return 1
	for stage in createRuntime poststop; do
		jq -n --arg hook "$hook" --arg name "${hook##*/}" --arg stage "$stage" \
			--argjson t "$timeout" '{version: "1.0.0",
			hook: {path: $hook, args: [$name, $stage], timeout: $t},
			when: {annotations: {"^io\\.vfsd\\.enable$": "^true$"}}, stages: [$stage]}' \
			>"$dir/vfsd-$stage.json" || return 1
	done
}

# The env's directory, its cgroup and the crun wrapper, made on first use.
_oci_init() {
	local cg2
	[[ -n $oci_env_dir && -d $oci_env_dir ]] && return 0
	oci_env_dir=$(mktemp -d -t vfsd-oci.XXXXXX) || return 1
	chmod 755 "$oci_env_dir"
	oci_log_dir=$oci_env_dir/log
	mkdir -p "$oci_log_dir" "$oci_env_dir"/{bin,crun,podman} || return 1
	cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
	if [[ -z $cg2 ]]; then
		cg2=$oci_env_dir/cgroup2
		mkdir -p "$cg2" && mount -t cgroup2 none "$cg2" || return 1
	fi
	oci_cgroup=$cg2/${oci_env_dir##*/}
	mkdir "$oci_cgroup" || return 1
	# Named crun: Podman allows --cgroups=disabled by the runtime's name.
	cat >"$oci_env_dir/bin/crun" <<'EOF'
#!/bin/sh
# crun in a private mount namespace with cgroup2 on /sys/fs/cgroup: it refuses the hybrid.
exec unshare -m -- /bin/sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec /usr/bin/crun "$@"' \
	crun "$@"
EOF
	chmod 755 "$oci_env_dir/bin/crun"
}

# CMD... in the env's cgroup, killed after oci_cmd_timeout seconds.
# shellcheck disable=SC2016 # the inner shell expands
_oci_track() {
	timeout "${oci_cmd_timeout:-120}" /bin/sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
		"$oci_cgroup" "$@"
}

oci_crun() {
	_oci_init || return 1
	_oci_track "$oci_env_dir/bin/crun" --root "$oci_env_dir/crun" --cgroup-manager=disabled "$@"
}

crun_run() {
	_oci_init || return 1
	if ! oci_crun run -d -b "$1" "$2" </dev/null >"$oci_log_dir/$2" 2>&1; then
		echo "crun_run $2: $(tail -n 5 "$oci_log_dir/$2")" >&2
		return 1
	fi
}

crun_exec() {
	local id=$1
	shift
	oci_crun exec "$id" "$@"
}

crun_pid() {
	oci_crun state "$1" | jq -r .pid
}

crun_delete() {
	local pid rc st
	pid=$(crun_pid "$1" 2>/dev/null)
	oci_crun kill "$1" KILL 2>/dev/null
	oci_crun delete -f "$1"
	rc=$?
	# Dead once a zombie: pid 1 here takes a second or two to reap what crun leaves it.
	[[ $pid =~ ^[1-9][0-9]*$ ]] || return $rc
	for _ in $(seq 50); do
		st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)
		[[ -z $st || $st == Z* ]] && break
		sleep 0.1
	done
	return $rc
}

# Podman's engine settings, one containers.conf per user (conmon hands CONTAINERS_CONF on to
# the cleanup command it runs; the storage flags are handed on as flags). File locks, not the
# shared-memory segment every Podman of the machine would share.
_oci_podman_init() { # rootful|rootless
	local d
	_oci_init || return 1
	d=$oci_env_dir/podman/$1
	[[ -f $d/containers.conf ]] && return 0
	if [[ $1 == rootless ]]; then
		rootless_user_create || return 1
		mkdir -p "$d"/{home,xdg,storage,runroot,tmp} && chmod 700 "$d/xdg" &&
			chown -R "$rootless_uid:$rootless_gid" "$d" || return 1
	else
		mkdir -p "$d"/{storage,runroot,tmp} || return 1
	fi
	cat >"$d/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "$d/tmp"
EOF
}

podman_rootful() {
	_oci_podman_init rootful || return 1
	local d=$oci_env_dir/podman/rootful
	CONTAINERS_CONF=$d/containers.conf _oci_track podman --runtime "$oci_env_dir/bin/crun" \
		--root "$d/storage" --runroot "$d/runroot" --storage-driver overlay "$@"
}

# Rootless Podman's namespaces (kept by its pause process) come from a private mount
# namespace with cgroup2 on /sys/fs/cgroup, where it runs crun itself; / is shared there, as
# Podman wants it.
# shellcheck disable=SC2016 # the inner shell expands
podman_rootless() {
	_oci_podman_init rootless || return 1
	local d=$oci_env_dir/podman/rootless
	_oci_track unshare -m -- /bin/sh -c 'mount --make-rshared / &&
		mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' sh \
		runuser -u "$rootless_user" -- env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME="$d/home" XDG_RUNTIME_DIR="$d/xdg" CONTAINERS_CONF="$d/containers.conf" \
		podman --root "$d/storage" --runroot "$d/runroot" --storage-driver overlay "$@"
}

podman_image_import() {
	local p=podman_rootful r
	[[ ${1:-} == --rootless ]] && p=podman_rootless
	$p image exists "$oci_image" && return 0
	r=$(mktemp -d -t vfsd-oci-rootfs.XXXXXX) || return 1
	oci_rootfs "$r" && tar -C "$r" -cf - . | $p import -q - "$oci_image" >/dev/null
	set -- "${PIPESTATUS[@]}" $?
	rm -rf "$r"
	[[ $* == "0 0 0" ]]
}

# The subordinate ids rootful `podman --userns=auto` takes (user "containers"; idempotent).
_oci_auto_userns() {
	local f
	for f in /etc/subuid /etc/subgid; do
		grep -q '^containers:' "$f" 2>/dev/null || echo "containers:$oci_auto_sub:1048576" >>"$f"
	done
}

_oci_podman_run() { # rootful|rootless HOOKS_DIR NAME [OPTION...] [-- CMD...]
	local kind=$1 hooks=$2 name=$3 opts=() o imp=()
	shift 3
	while (($#)) && [[ $1 != -- ]]; do
		opts+=("$1")
		shift
	done
	[[ ${1:-} == -- ]] && shift
	(($#)) || set -- sleep 3600
	for o in "${opts[@]}"; do [[ $o == --userns=auto* ]] && _oci_auto_userns; done
	[[ $kind == rootless ]] && imp=(--rootless)
	podman_image_import "${imp[@]}" || return 1
	"podman_$kind" --hooks-dir "$hooks" run -d --name "$name" --annotation io.vfsd.enable=true \
		--cgroups=disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network=none \
		"${opts[@]}" "$oci_image" "$@" </dev/null
}

podman_run_rootful() { _oci_podman_run rootful "$@"; }
podman_run_rootless() { _oci_podman_run rootless "$@"; }

podman_rm() {
	local p=podman_rootful
	[[ ${1:-} == --rootless ]] && p=podman_rootless && shift
	$p stop -t 0 "$@" >/dev/null
	$p rm -f -t 0 "$@" >/dev/null
}

oci_env_cleanup() {
	local id pids m oci_cmd_timeout=30
	[[ -n $oci_env_dir && -d $oci_env_dir ]] || return 0
	for id in "$oci_env_dir"/crun/*/; do
		[[ -d $id ]] && crun_delete "$(basename "$id")" >/dev/null 2>&1
	done
	[[ -f $oci_env_dir/podman/rootful/containers.conf ]] &&
		podman_rootful rm -a -f -t 0 >/dev/null 2>&1
	[[ -f $oci_env_dir/podman/rootless/containers.conf ]] &&
		podman_rootless rm -a -f -t 0 >/dev/null 2>&1
	if [[ -n $oci_cgroup && -d $oci_cgroup ]]; then
		for _ in $(seq 50); do
			pids=$(cat "$oci_cgroup/cgroup.procs" 2>/dev/null)
			[[ -z $pids ]] && break
			# shellcheck disable=SC2086 # one pid a word
			kill -9 $pids 2>/dev/null
			sleep 0.1
		done
		rmdir "$oci_cgroup" 2>/dev/null
	fi
	awk -v d="$oci_env_dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m"; done
	rm -rf "$oci_env_dir"
	oci_env_dir='' oci_log_dir='' oci_cgroup=''
}
