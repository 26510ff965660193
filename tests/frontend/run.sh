#!/usr/bin/env bash
# The vhost-user frontend suites, against a daemon and no VM (seconds):
#   protocol  vhost-user messages, memory, rings, reset, disconnects, VMM sequences
#   fuse-ops  every FUSE opcode on success and on the errors a guest can cause
#   hostile   a hostile guest (vfsd only: the C virtiofsd aborts on several of these)
#   migrate   live migration: device state SAVE/LOAD between two daemons, dirty logging,
#             and the round trip through the Rust virtiofsd
#   queues    many request queues (num-request-queues): a thread per started ring, a blocked
#             ring holding back no other, no fd or thread for a ring never set up
#
# Usage: tests/frontend/run.sh [--c-virtiofsd] [DAEMON] [TEST|PREFIX*...]
#   DAEMON defaults to build/vfsd. A daemon whose name starts with "virtiofsd", or
#   --c-virtiofsd, is taken for QEMU's C virtiofsd: checks of what it lacks print SKIP and the
#   hostile suite is not run. FE_DAEMON_ARGS adds arguments to every daemon started (e.g.
#   "--thread-pool-size=4"); FE_SANDBOX=none|namespace runs vfsd with that sandbox instead of
#   -o sandbox=chroot and FE_SECCOMP=ACTION with that --seccomp (both none, automatically, for
#   sanitizer builds); FE_SUITES picks suites (default: test_protocol test_fuse_ops
#   test_locks test_hostile test_escape test_migrate test_queues); BUILD picks the test
#   binaries' build directory. FE_RUST_VIRTIOFSD is the Rust virtiofsd the migrate suite moves guests through
#   (default: VFSD_CACHE or ~/.cache/vfsd, then rust-virtiofsd/bin/virtiofsd, when it is there, as
#   scripts/rust-virtiofsd.sh installs it; unset, those cases SKIP saying so).
# Prints "PASS name", "FAIL name reason" or "SKIP name reason" per check (daemon log lines
# follow a failure, indented), then "N passed, M failed"; exits 0 only if nothing failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-build}
[[ $build == /* ]] || build=$repo/$build
bin=$build/frontend
c_virtiofsd=0
if [[ ${1:-} == --c-virtiofsd ]]; then
	c_virtiofsd=1
	shift
fi
daemon=${1:-$repo/build/vfsd}
(($#)) && shift
[[ $(basename "$daemon") == virtiofsd* ]] && c_virtiofsd=1
if [[ ! -x $daemon ]]; then
	echo "FAIL setup daemon '$daemon' is not an executable"
	echo "0 passed, 1 failed"
	exit 1
fi

# LeakSanitizer reads /proc, which a chrooted daemon no longer sees, and its exit-time scan
# makes calls outside vfsd's seccomp allow-list.
if ((!c_virtiofsd)) && [[ -z ${FE_SANDBOX:-} ]] && grep -aq __asan_init "$daemon"; then
	echo "NOTE sanitizer build: daemons run with --sandbox=none --seccomp=none so that LeakSanitizer works"
	export FE_SANDBOX=none FE_SECCOMP=none
fi

rust_default=${VFSD_CACHE:-${HOME:-/root}/.cache/vfsd}/rust-virtiofsd/bin/virtiofsd
if [[ -z ${FE_RUST_VIRTIOFSD+set} && -x $rust_default ]]; then
	export FE_RUST_VIRTIOFSD=$rust_default
fi

read -ra suites <<<"${FE_SUITES:-test_protocol test_fuse_ops test_locks test_hostile test_escape test_migrate test_queues}"
pass=0 fail=0
for s in "${suites[@]}"; do
	if ((c_virtiofsd)) && [[ $s == test_migrate ]]; then
		echo "SKIP migrate-suite not run against the C virtiofsd (it has no DEVICE_STATE)"
		continue
	fi
	if ((c_virtiofsd)) && [[ $s == test_hostile || $s == test_escape ]]; then
		echo "SKIP ${s#test_}-suite not run against the C virtiofsd (it aborts on hostile input)"
		continue
	fi
	if [[ ! -x $bin/$s ]]; then
		echo "FAIL $s not built (make frontend-tests)"
		fail=$((fail + 1))
		continue
	fi
	out=$(mktemp)
	flags=()
	((c_virtiofsd)) && flags+=(--c-virtiofsd)
	"$bin/$s" "${flags[@]}" "$daemon" "$@" | tee "$out"
	status=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	if ((status != 0 && f == 0)); then
		echo "FAIL $s the suite itself ended with status $status"
		f=1
	fi
	pass=$((pass + p))
	fail=$((fail + f))
	rm -f "$out"
done
echo "$pass passed, $fail failed"
((fail == 0))
