#!/usr/bin/env bash
# The whole suite behind `make check`: unit tests, command-line tests, VM end-to-end tests.
# Every check counts once; the last line is "N passed, M failed" and the exit status is 0
# only when nothing failed.
#   --unit-only   skip the VM runs (seconds instead of minutes)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
build=${BUILD:-build}
unit_only=0
[[ ${1:-} == --unit-only ]] && unit_only=1

total_pass=0 total_fail=0
failed_suites=()

# crictl, for tests/hook/engines.sh, is built from the Go module proxy once (~2 min on a clean
# machine): in the background from the start, so the unit and host suites hide the wait.
if ((!unit_only)); then
	mkdir -p "$build"
	(source tests/lib/cri-env.sh && cri_tools_install) >"$build/crictl-install.log" 2>&1 &
fi

# tally NAME OUTPUT_FILE STATUS: prints the suite's counts and appends "NAME P F" to
# $counts; a suite that printed no counts fails.
tally() {
	local name=$1 out=$2 status=$3 line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [[ -z $line ]]; then
		# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
		p=${p:-0} f=${f:-0}
	else
		p=${line%% passed*}
		f=${line#*, }
		f=${f%% failed*}
	fi
	if ((status != 0 && f == 0)); then f=1; fi # crashed or gave up without counting
	if ((p + f == 0)); then f=1; fi
	printf '%s %d %d\n' "$name" "$p" "$f" >>"$counts"
	printf '== %-40s %d passed, %d failed\n' "$name" "$p" "$f"
}

# add_counts FILE: the totals and the failed suites from tally's lines in FILE.
add_counts() {
	local name p f
	while read -r name p f; do
		total_pass=$((total_pass + p))
		total_fail=$((total_fail + f))
		((f == 0)) || failed_suites+=("$name")
	done <"$1"
	: >"$1"
}

suite_block() { # NAME COMMAND...: runs one suite and prints its block; tally records it
	local name=$1 out status start=$SECONDS
	shift
	out=$(mktemp)
	echo "-- $name: $*"
	"$@" >"$out" 2>&1 </dev/null
	status=$?
	echo "   ($((SECONDS - start)) s)"
	grep -E '^(FAIL|\[  FAILED|\[  ERROR|\[   LINE)|FAIL ' "$out" | head -n 40
	tally "$name" "$out" "$status"
	if ((status != 0)); then
		# again at the very end, where the tail of a CI log shows them
		grep -E '^(FAIL|\[  FAILED)|FAIL ' "$out" | head -n 10 |
			sed "s|^|   $name: |" >>"$failures"
		mkdir -p "$build/test-logs"
		cp "$out" "$build/test-logs/${name//\//_}.log"
		echo "   full output: $build/test-logs/${name//\//_}.log"
	fi
	rm -f "$out"
}

counts=$(mktemp)
failures=$(mktemp) # suite_block's copy of the failed checks' lines, printed at the end
lanes_dir=$(mktemp -d)
trap 'rm -rf "$counts" "$failures" "$lanes_dir"' EXIT

run_suite() { # NAME COMMAND...
	suite_block "$@"
	add_counts "$counts"
}

# The VM suites run in two lanes at once, each guest with one vCPU: a TCG guest keeps about
# one core busy whatever its vCPU count, so two lanes take about half the time of one.
# lane N NAME COMMAND...: the suite joins lane N (run by run_lanes, in order within its lane).
lane() {
	local n=$1 q
	shift
	printf -v q '%q ' "$@"
	printf '%s\n' "$q" >>"$lanes_dir/lane$n.todo"
}

# run_lanes: both lanes at once; each lane's blocks are printed when it ends, lane 1 first.
run_lanes() {
	local n pids=()
	echo "-- two lanes at once, each printed when it ends:" \
		"$(cat "$lanes_dir"/lane*.todo | awk '{printf "%s%s", (NR > 1 ? ", " : ""), $1}')"
	for n in 1 2; do
		[[ -f $lanes_dir/lane$n.todo ]] || continue
		(
			export VFSD_VM_SMP=1
			counts=$lanes_dir/lane$n.counts
			while IFS= read -r cmd; do
				eval "suite_block $cmd"
			done <"$lanes_dir/lane$n.todo"
		) >"$lanes_dir/lane$n.out" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for n in 1 2; do
		[[ -f $lanes_dir/lane$n.todo ]] || continue
		cat "$lanes_dir/lane$n.out"
		[[ -f $lanes_dir/lane$n.counts ]] && add_counts "$lanes_dir/lane$n.counts"
		rm -f "$lanes_dir/lane$n".*
	done
}

for t in "$build"/tests/test_*; do
	[[ -x $t ]] || continue
	run_suite "unit/$(basename "$t")" "$t"
done
run_suite cli tests/cli/run.sh "$build/vfsd"
# The man pages: groff without a warning, every option of --help in them (a second).
run_suite cli/man tests/cli/man.sh "$build"
# make install / uninstall into a DESTDIR, in two layouts (seconds).
run_suite install tests/install/run.sh
# deploy/k8s rendered by kustomize and checked by the Kubernetes API's schema (seconds).
run_suite k8s tests/k8s/run.sh
# The supervisor's control socket against hostile clients, real users and restarts (seconds).
run_suite ctl tests/ctl/run.sh "$build/vfsd"
# A sandbox's daemon moved by export-state and spawn's import_state, a guest reconnecting.
FRONTEND_BUILD=${FRONTEND_BUILD:-$build} run_suite migrate/ctl tests/migrate/ctl.sh "$build"
# vfsd-hook against a real supervisor: pods, labels, poststop, bad input (seconds).
run_suite hook tests/hook/run.sh "$build"
# Every committed fuzzer seed and regression input, replayed through the sanitized targets.
if ((!unit_only)); then
	run_suite fuzz-replay tests/fuzz/replay.sh
fi
# The vhost-user frontend suites (protocol, every FUSE opcode, a hostile guest, escapes): on vfsd, on
# its sanitizer build with a worker pool, and the protocol and opcode parts on the C virtiofsd.
fe_build=${FRONTEND_BUILD:-$build} # where the frontend test binaries are
# The Rust virtiofsd, for the migrate suite's round trip (built once into ~/.cache/vfsd, ~2
# minutes; without Cargo's registry those cases SKIP saying why).
if ((!unit_only)) && rust=$(scripts/rust-virtiofsd.sh); then
	export FE_RUST_VIRTIOFSD=$rust
fi
BUILD=$fe_build run_suite frontend/vfsd tests/frontend/run.sh "$build/vfsd"
# The escape suite again in the other sandbox modes (the run above uses chroot): with none,
# vfsd's own name resolution is the only wall.
for sb in namespace none; do
	BUILD=$fe_build FE_SANDBOX=$sb FE_SUITES=test_escape \
		run_suite "frontend/escape-sandbox-$sb" tests/frontend/run.sh "$build/vfsd"
done
# Every opcode, lock and escape test again with inodes held by file handles.
BUILD=$fe_build FE_DAEMON_ARGS="--inode-file-handles=mandatory" \
	FE_SUITES="test_fuse_ops test_locks test_escape" \
	run_suite frontend/file-handles tests/frontend/run.sh "$build/vfsd"
if ((!unit_only)) && [[ -x build/asan/vfsd ]]; then
	# No polling here: the kick and call paths alone must carry every request.
	BUILD=$fe_build FE_DAEMON_ARGS="--thread-pool-size=4 --queue-poll-us=0" \
		run_suite frontend/vfsd-asan-pool tests/frontend/run.sh build/asan/vfsd
fi
# Lock waiters, ring stops and the device's end under ThreadSanitizer: a race fails it.
if ((!unit_only)) && [[ -x build/tsan/vfsd ]]; then
	BUILD=$fe_build run_suite tsan tests/tsan/run.sh build/tsan/vfsd
fi
if [[ -x /usr/lib/qemu/virtiofsd ]]; then
	BUILD=$fe_build run_suite frontend/c-virtiofsd tests/frontend/run.sh /usr/lib/qemu/virtiofsd
fi

# make bench-guest's phase marks, without a guest: the share of a phase a busy, an idle and
# a CPU-starved stand-in daemon spent (seconds).
run_suite bench/marks tests/bench/marks-check.sh
# The host kernel as the FUSE client, through /dev/fuse (--fuse-mountpoint): the differential
# POSIX transcript in several configurations, interrupted locks, --readonly. Seconds.
run_suite fusedev tests/fusedev/run.sh "$build/vfsd"
# Metrics against a real Pushgateway and Prometheus: labels, outages, 400s, deletes (~40 s).
if ((!unit_only)); then
	FRONTEND_BUILD=$fe_build run_suite metrics tests/metrics/run.sh "$build"
	# libvirt starts vfsd from the installed descriptor for a domain naming no binary (~20 s).
	run_suite install/libvirt tests/install/libvirt.sh "$build"
fi

if ((!unit_only)); then
	# The guest workload, on vfsd as the default configuration runs it…
	lane 1 vm/core tests/vm/run.sh --daemon "$build/vfsd"
	# …real programs on the share: git, tar, sqlite3 against a host writer, fio, stress-ng…
	lane 1 vm/workloads tests/vm/run.sh --daemon "$build/vfsd" --script guest/workloads.sh
	# …far more inodes than fds (docs/fd-cache.md): both daemons, the root filesystem's too,
	# with 90 fds for the guest, and no stat, read or listing may fail; QEMU sets up 4
	# request queues on each device (vfsd offers 255)…
	lane 2 vm/fd-cache tests/vm/run.sh --daemon "$build/vfsd" --script guest/fdcache.sh \
		--daemon-arg=--rlimit-nofile=700 --num-request-queues 4
	# …two guests on one share, each through its own vfsd: a lock taken in one is seen in the
	# other, whose blocking lock waits for it…
	lane 2 vm/two-guests tests/vm/run.sh --daemon "$build/vfsd" --guests 2 \
		--script guest/two-guests.sh
	# …rootless, as container engines launch it: unshare -r --map-auto with chroot and none,
	# and vfsd's own user namespace with --uid-map/--gid-map…
	lane 2 rootless tests/rootless/run.sh "$build/vfsd"
	# …a guest whose shutdown hangs on a stopped daemon: the harness names the ring, the
	# request left unanswered and where the guest waits (what a rare hang in CI needs)…
	lane 2 vm/hang tests/vm/hang.sh "$build/vfsd"
	# …through the supervisor: a rootless user's spawns into its own user namespace and
	# cgroup (socket by path, by fd, with --translate-uid), and a supervisor SIGKILLed and
	# restarted while a guest copies a tree through its children…
	lane 1 supervisor tests/supervisor/run.sh "$build/vfsd"
	# …and started by vfsd-hook from real engines: crun, Podman rootful, --userns=auto and
	# rootless, containerd's CRI through crictl, each served to a guest…
	lane 2 hook/engines tests/hook/engines.sh "$build"
	# …and built with AddressSanitizer and UBSan, with a worker pool, no guest caching (every
	# request really reaches vfsd), no ring polling (kicks and calls carry everything),
	# KILLPRIV_V2 (vfsd, not the guest, drops set-id bits), inodes held by file handles
	# where the filesystem has them, and the namespace sandbox; a sanitizer report fails
	# the run.
	asan=build/asan/vfsd
	[[ -x $asan ]] || asan=$build/vfsd
	# LeakSanitizer cannot read /proc once the sandbox pivoted away from it: leaks are checked
	# by the sandbox-less suites above instead.
	lane 2 vm/core-asan-pool-cache-none-namespace env ASAN_OPTIONS=detect_leaks=0 \
		tests/vm/run.sh --daemon "$asan" \
		--cache none --daemon-arg=--thread-pool-size=4 --daemon-arg=--queue-poll-us=0 \
		--daemon-arg=--killpriv-v2 --daemon-arg=--inode-file-handles=prefer \
		--daemon-arg=-o \
		--daemon-arg=sandbox=namespace
	run_lanes
fi

if ((${#failed_suites[@]})); then
	echo "failed suites: ${failed_suites[*]}"
	cat "$failures"
fi
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
