#!/usr/bin/env bash
# The lock and teardown paths under ThreadSanitizer (make tsan): the frontend's lock and
# protocol suites with and without a worker pool (SETLKW waiters answering while rings stop
# and the device is freed), the fd cache under four workers, and the /dev/fuse suite
# (interrupted locks, the transport's end).
# A race report fails the run: the daemons run with halt_on_error, and those without a
# sandbox also leave their reports in files that are counted here.
#   tests/tsan/run.sh [TSAN_DAEMON]   (default build/tsan/vfsd)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/tsan/vfsd}
work=$(mktemp -d -t vfsd-tsan.XXXXXX)
trap 'rm -rf "$work"' EXIT
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary

if ! grep -aq __tsan_init "$daemon" 2>/dev/null; then
	check tsan-build 1 "$daemon is not a ThreadSanitizer build (make tsan builds one)"
	summary
	exit
fi
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$work/report"

suite() { # NAME COMMAND...: its counts, and the reports it left
	local name=$1 out p f
	shift
	out=$("$@" 2>&1)
	printf '%s\n' "$out" | grep -E '^(FAIL|PASS) ' | sed "s/^/   [$name] /"
	p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' | tail -n 1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' | tail -n 1)
	[[ -n $p ]] || { p=0 f=1; }
	counted "$p" "$f"
	if compgen -G "$work/report*" >/dev/null; then
		check "$name-no-race" 1 "$(grep -h -m1 -A6 WARNING "$work"/report* | head -n 8)"
		mkdir -p "$repo/build/test-logs"
		cat "$work"/report* >"$repo/build/test-logs/tsan-$name.log"
		rm -f "$work"/report*
	else
		check "$name-no-race" 0
	fi
}

FE_SANDBOX=none FE_SECCOMP=none FE_DAEMON_ARGS="--thread-pool-size=4" \
	FE_SUITES="test_locks test_protocol" suite frontend-pool "$repo/tests/frontend/run.sh" "$daemon"
FE_SANDBOX=none FE_SECCOMP=none FE_DAEMON_ARGS="--queue-poll-us=0" \
	FE_SUITES="test_locks test_queues" suite frontend-queue-thread "$repo/tests/frontend/run.sh" "$daemon"
# The fd cache: evictions, walks down name records and lookups racing on four workers.
FE_SANDBOX=none FE_SECCOMP=none FE_SUITES="test_fuse_ops" \
	suite fd-cache "$repo/tests/frontend/run.sh" "$daemon" fd-cache-concurrent fd-cache-evicts
suite fusedev "$repo/tests/fusedev/run.sh" "$daemon"
summary
