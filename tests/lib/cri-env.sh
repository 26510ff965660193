# A private containerd CRI node for the OCI hook tests (sourced; needs root, bash, jq).
# Debian's containerd 1.6 runs in a mount namespace of its own, with cgroup2 on
# /sys/fs/cgroup (runc and crun refuse this machine's v1/v2 hybrid) and WORKDIR/cri/run bound
# on /run/containerd (the runc v2 shim keeps its sockets under that fixed path). Its root,
# state and sockets are under WORKDIR/cri; of the host's /run/containerd only an empty mount
# point is made when missing, and removed again. Images are built here: no registry.
#   cri_tools_install            builds crictl $cri_crictl_version into $cri_gobin once and
#                                sets CRICTL; non-zero, saying so, when the Go module proxy is
#                                out of reach (the caller skips)
#   cri_base_spec HOOKS_JSON     prints containerd's default OCI spec with "hooks" set to the
#                                object HOOKS_JSON ({"createRuntime": [{"path": …}], …})
#   cri_start WORKDIR BASE_SPEC  starts containerd with the runtime handler $CRI_RUNTIME (runc
#                                v2 shim and runc, or $CRI_OCI_RUNTIME) whose base_runtime_spec
#                                is the file BASE_SPEC and which passes pod annotations
#                                io.vfsd.* on, besides the plain default handler "runc"; waits
#                                for `crictl info`. Exports CRI_DIR CRI_SOCK CRI_PID CRI_RUN
#   cri_import_pause             builds busybox images $CRI_PAUSE_IMAGE (the sandbox image,
#                                sleeps) and $CRI_APP_IMAGE and imports both
#   cri_crictl ARGS, cri_ctr ARGS
#                                crictl, `ctr -n k8s.io` against that containerd
#   cri_ns CMD...                runs CMD in containerd's mount namespace, where the hooks run
#                                and a container's rootfs is mounted
#   cri_pod_json NAME NAMESPACE UID [KEY=VALUE...]
#                                a pod sandbox config, host network, the pairs as pod
#                                annotations, for `cri_crictl runp --runtime "$CRI_RUNTIME" FILE`
#   cri_container_json NAME CMD...
#                                a container config running CMD in $CRI_APP_IMAGE, for
#                                `cri_crictl create POD FILE POD_FILE`
#   cri_stop                     removes every pod, stops containerd, kills what is left in its
#                                namespace and in its containers' cgroups, removes those cgroups
#                                and WORKDIR/cri but its logs; idempotent, fit for an EXIT trap
# Containerd 1.6 builds the sandbox (pause) container's spec without base_runtime_spec, so
# its hooks run for the app containers only, at `crictl start`. Cgroups are left to the
# runtime (disable_cgroup): only hugetlb is free for cgroup2 here, and CRI's cpu shares would
# fail. runc, not crun: crun 1.8 raises RLIMIT_MEMLOCK for its eBPF device filter, which
# fails without CAP_SYS_RESOURCE.
# shellcheck shell=bash
cri_crictl_version=v1.34.0
cri_gobin=${XDG_CACHE_HOME:-$HOME/.cache}/vfsd/go/bin
CRI_RUNTIME=vfsd
CRI_PAUSE_IMAGE=vfsd.local/pause:1
CRI_APP_IMAGE=vfsd.local/busybox:1
export CRI_RUNTIME CRI_PAUSE_IMAGE CRI_APP_IMAGE

cri_tools_install() {
	local go=${GO:-} log tmp=$cri_gobin/.tmp.$$ lock
	CRICTL=$cri_gobin/crictl
	export CRICTL
	mkdir -p "$cri_gobin" || return 1
	# One build at a time: tests/run-all.sh starts one early, in the background.
	exec {lock}>"$cri_gobin/.lock" && flock "$lock"
	if [[ -x $CRICTL ]] && "$CRICTL" --version 2>/dev/null | grep -qF " $cri_crictl_version"; then
		exec {lock}>&-
		return 0
	fi
	[[ -n $go ]] || go=$(command -v go || echo /usr/local/go/bin/go)
	log=$(mktemp) || { exec {lock}>&-; return 1; }
	# Built in a scratch GOBIN and moved, so a half-built binary never looks installed.
	if GOBIN=$tmp GOFLAGS=-buildvcs=false "$go" install \
		-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$cri_crictl_version" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$cri_crictl_version" >"$log" 2>&1 &&
		mv -f "$tmp/crictl" "$CRICTL"; then
		rm -rf "$tmp" "$log"
		exec {lock}>&-
		return 0
	fi
	exec {lock}>&-
	echo "cri-env: cannot build crictl $cri_crictl_version with '$go': the Go module proxy is" \
		"out of reach (or Go is missing). Its last words:" >&2
	tail -n 5 "$log" >&2
	rm -rf "$tmp" "$log"
	return 1
}

cri_base_spec() {
	ctr oci spec | jq --argjson h "$1" '.hooks = $h'
}

cri_crictl() {
	"$CRICTL" --config "$CRI_DIR/crictl.yaml" "$@"
}

cri_ctr() {
	ctr --address "$CRI_SOCK" --namespace k8s.io "$@"
}

cri_ns() {
	nsenter --target "$CRI_PID" --mount -- "$@"
}

# Runs the sh script $1 with cgroup2 on /sys/fs/cgroup, there, with the arguments after it.
cri_cgroup_sh() {
	local script=$1
	shift
	# shellcheck disable=SC2016 # for that sh
	unshare --mount -- sh -c 'mount -t cgroup2 none /sys/fs/cgroup && cd /sys/fs/cgroup && eval "$0"' \
		"$script" "$@"
}

cri_start() {
	local w=$1 spec=$2 d rt
	[[ -n ${CRICTL:-} ]] || cri_tools_install || return 1
	[[ -f $spec ]] || { echo "cri-env: no base spec '$spec'" >&2; return 1; }
	rt=$(command -v "${CRI_OCI_RUNTIME:-runc}") || { echo "cri-env: no ${CRI_OCI_RUNTIME:-runc}" >&2; return 1; }
	spec=$(realpath "$spec")
	d=$(realpath -m "$w/cri")
	((${#d} <= 80)) || { echo "cri-env: '$d' is too long for socket paths" >&2; return 1; }
	mkdir -p "$d"/{root,state,run,opt,logs,cni/net.d,cni/bin} || return 1
	CRI_DIR=$d CRI_SOCK=$d/containerd.sock CRI_RUN=$d/run
	export CRI_DIR CRI_SOCK CRI_RUN
	cat >"$d/config.toml" <<-EOF
		version = 2
		root = "$d/root"
		state = "$d/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
		  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
		[grpc]
		  address = "$CRI_SOCK"
		[ttrpc]
		  address = "$CRI_SOCK.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$d/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$CRI_PAUSE_IMAGE"
		  disable_tcp_service = true
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  restrict_oom_score_adj = true
		  disable_cgroup = true
		  disable_apparmor = true
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$d/cni/bin"
		    conf_dir = "$d/cni/net.d"
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        BinaryName = "$rt"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$CRI_RUNTIME]
		      runtime_type = "io.containerd.runc.v2"
		      base_runtime_spec = "$spec"
		      pod_annotations = ["io.vfsd.*"]
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$CRI_RUNTIME.options]
		        BinaryName = "$rt"
	EOF
	cat >"$d/crictl.yaml" <<-EOF
		runtime-endpoint: unix://$CRI_SOCK
		image-endpoint: unix://$CRI_SOCK
		timeout: 60
		pull-image-on-create: false
		disable-pull-on-run: true
	EOF
	# The runtime enables cgroup2 controllers at the root; cri_stop disables them again.
	cri_cgroup_sh 'cat cgroup.subtree_control' >"$d/subtree_control" || return 1
	if [[ ! -d /run/containerd ]]; then
		mkdir /run/containerd && : >"$d/made-run-containerd" || return 1
	fi
	# shellcheck disable=SC2016 # for that sh
	unshare --mount --propagation private -- sh -c \
		'mount -t cgroup2 none /sys/fs/cgroup && mount --bind "$0" /run/containerd &&
		exec containerd --config "$1"' "$CRI_RUN" "$d/config.toml" \
		</dev/null >"$d/logs/containerd.log" 2>&1 &
	CRI_PID=$!
	export CRI_PID
	for _ in $(seq 300); do
		if ! kill -0 "$CRI_PID" 2>/dev/null; then
			echo "cri-env: containerd died; its log ends:" >&2
			tail -n 20 "$d/logs/containerd.log" >&2
			cri_stop
			return 1
		fi
		# Its namespace, recorded once containerd runs in it, finds the shims later.
		[[ -s $d/mntns || $(readlink "/proc/$CRI_PID/exe") != */containerd ]] ||
			readlink "/proc/$CRI_PID/ns/mnt" >"$d/mntns"
		[[ -s $d/mntns ]] && cri_crictl --timeout 2s info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "cri-env: containerd did not answer within 30 s" >&2
	cri_stop
	return 1
}

# Writes to FILE a docker-archive of two images on one busybox layer.
cri_image_archive() {
	local out=$1 t a diff arch rc
	t=$(mktemp -d) || return 1
	mkdir -p "$t/img" "$t/root"/{bin,etc,dev,proc,sys,tmp,root,run,var}
	chmod 1777 "$t/root/tmp"
	cp /usr/bin/busybox "$t/root/bin/busybox" || { rm -rf "$t"; return 1; }
	for a in $(/usr/bin/busybox --list); do
		[[ $a == busybox ]] || ln -s busybox "$t/root/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$t/root/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$t/root/etc/group"
	tar -C "$t/root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		-cf "$t/img/layer.tar" . || { rm -rf "$t"; return 1; }
	diff=sha256:$(sha256sum "$t/img/layer.tar" | cut -d' ' -f1)
	arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
	# The pause process: sleeps until SIGTERM or SIGKILL.
	jq -n --arg s "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait \$!; done" \
		'{Entrypoint: ["/bin/sh", "-c", $s]}' >"$t/pause.json"
	jq -n '{Cmd: ["/bin/sh"]}' >"$t/app.json"
	for a in pause app; do
		jq -n --arg arch "$arch" --arg diff "$diff" --slurpfile c "$t/$a.json" '{
			architecture: $arch, os: "linux", created: "1970-01-01T00:00:00Z",
			config: ({Env: ["PATH=/bin"], WorkingDir: "/"} + $c[0]),
			rootfs: {type: "layers", diff_ids: [$diff]}}' >"$t/img/$a.json"
	done
	jq -n --arg p "$CRI_PAUSE_IMAGE" --arg a "$CRI_APP_IMAGE" \
		'[{Config: "pause.json", RepoTags: [$p], Layers: ["layer.tar"]},
		  {Config: "app.json", RepoTags: [$a], Layers: ["layer.tar"]}]' >"$t/img/manifest.json" &&
		tar -C "$t/img" -cf "$out" manifest.json pause.json app.json layer.tar
	rc=$?
	rm -rf "$t"
	return "$rc"
}

cri_import_pause() {
	cri_image_archive "$CRI_DIR/images.tar" &&
		cri_ctr images import --snapshotter overlayfs "$CRI_DIR/images.tar" >/dev/null &&
		cri_crictl inspecti "$CRI_PAUSE_IMAGE" >/dev/null && cri_crictl inspecti "$CRI_APP_IMAGE" >/dev/null
}

cri_pod_json() {
	local name=$1 ns=$2 uid=$3 kv ann='{}'
	shift 3
	for kv; do
		ann=$(jq -c --arg k "${kv%%=*}" --arg v "${kv#*=}" '. + {($k): $v}' <<<"$ann")
	done
	mkdir -p "$CRI_DIR/logs/$name"
	# No hostname: a host-network pod has no UTS namespace of its own. network 2 is NODE,
	# pid 1 CONTAINER (the kubelet's defaults).
	jq -n --arg n "$name" --arg ns "$ns" --arg uid "$uid" --arg log "$CRI_DIR/logs/$name" \
		--argjson ann "$ann" '{
		metadata: {name: $n, namespace: $ns, uid: $uid, attempt: 0},
		log_directory: $log, annotations: $ann,
		linux: {security_context: {namespace_options: {network: 2, pid: 1}}}}'
}

cri_container_json() {
	local name=$1
	shift
	jq -n --arg n "$name" --arg img "$CRI_APP_IMAGE" '{
		metadata: {name: $n}, image: {image: $img}, command: $ARGS.positional,
		log_path: ($n + ".log"),
		linux: {security_context: {namespace_options: {network: 2, pid: 1}}}}' --args -- "$@"
}

# The ids of the tasks containerd ran: their bundles' names, and the ids in its log (a task
# that failed to start has no bundle left, but may have a cgroup). With disable_cgroup the
# runtime puts each one in the cgroup /ID.
cri_task_ids() {
	{
		ls "$CRI_DIR/state/io.containerd.runtime.v2.task/k8s.io" 2>/dev/null
		grep -oE '\b[0-9a-f]{64}\b' "$CRI_DIR/logs/containerd.log" 2>/dev/null
	} | sort -u
}

# The pids in containerd's mount namespace (shims, runtimes, hooks) and in the tasks' cgroups.
cri_pids() {
	local p ns
	ns=$(cat "$CRI_DIR/mntns" 2>/dev/null)
	if [[ -n $ns ]]; then
		for p in /proc/[0-9]*; do
			[[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$ns" ]] && echo "${p#/proc/}"
		done
	fi
	# shellcheck disable=SC2016,SC2046 # for that sh; a list of ids
	cri_cgroup_sh 'for i; do [ ! -f "$i/cgroup.procs" ] || cat "$i/cgroup.procs"; done' \
		$(cri_task_ids) 2>/dev/null
}

cri_stop() {
	local d=${CRI_DIR:-} id left
	[[ -n $d && -d $d ]] || return 0
	if [[ -n ${CRI_PID:-} ]] && kill -0 "$CRI_PID" 2>/dev/null; then
		for id in $(cri_crictl --timeout 10s pods -q 2>/dev/null); do
			cri_crictl --timeout 20s stopp "$id" >/dev/null 2>&1 || :
			cri_crictl --timeout 20s rmp -f "$id" >/dev/null 2>&1 || :
		done
		kill -TERM "$CRI_PID" 2>/dev/null || :
		for _ in $(seq 50); do
			kill -0 "$CRI_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$CRI_PID" 2>/dev/null || :
	fi
	[[ -z ${CRI_PID:-} ]] || wait "$CRI_PID" 2>/dev/null || :
	for _ in $(seq 50); do
		left=$(cri_pids)
		[[ -n $left ]] || break
		# shellcheck disable=SC2086 # a list of pids
		kill -KILL $left 2>/dev/null || :
		sleep 0.1
	done
	# shellcheck disable=SC2016,SC2046 # for that sh; a list of ids
	cri_cgroup_sh 'for i; do [ ! -d "$i" ] || find "$i" -depth -type d -exec rmdir {} +; done' \
		$(cri_task_ids) 2>/dev/null || :
	if [[ -f $d/subtree_control ]]; then
		# shellcheck disable=SC2016 # for that sh
		cri_cgroup_sh 'for c in $(cat cgroup.subtree_control); do
			grep -qw "$c" "$1" || echo "-$c" >cgroup.subtree_control; done' "$d/subtree_control" 2>/dev/null || :
	fi
	# The mount point goes only when no other namespace still mounts something on it.
	if [[ -e $d/made-run-containerd ]] && ! grep -qs ' /run/containerd ' /proc/[0-9]*/mountinfo; then
		rmdir /run/containerd 2>/dev/null || :
	fi
	rm -rf "${d:?}"/{root,state,run,opt,cni,images.tar,containerd.sock,containerd.sock.ttrpc} \
		"$d"/{mntns,made-run-containerd,subtree_control}
	unset CRI_PID
}
