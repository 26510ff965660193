# Shared by the host-side test scripts (sourced): one result line per check, and the summary
# line tests/run-all.sh reads.
#   check NAME STATUS [REASON]   "PASS NAME" when STATUS is 0, else "FAIL NAME REASON"
#   counted P F                  adds P passes and F failures counted elsewhere (a VM run)
#   vm_counted NAME COMMAND...   runs a tests/vm/run.sh COMMAND and counts its results: its
#                                result lines prefixed with [NAME], its tail (or console)
#                                on a failure; sets vm_out (the output) and vm_work (the
#                                work directory it named, if any)
#   summary                      "N passed, M failed"; its status is 0 only if M is 0
#   exit_status_of PID           sets rc to PID's exit status, or 124 if it runs on after 5 s
#   expect_output NAME CODE PATTERN COMMAND...
#                                check NAME: COMMAND exits with CODE (within 10 s) and its
#                                output matches the extended regex PATTERN
#   need_root NAME WHY           unless root: "FAIL NAME WHY", the summary line, exit 1
#   kill_exe PATH                SIGKILL every process running the binary PATH (a test's
#                                own copy of vfsd: the supervisor's children outlive it)
# shellcheck shell=bash
pass=0 fail=0

check() {
	if [[ $2 == 0 ]]; then
		echo "PASS $1"
		pass=$((pass + 1))
	else
		echo "FAIL $1 ${3:-}"
		fail=$((fail + 1))
	fi
}

counted() {
	pass=$((pass + $1))
	fail=$((fail + $2))
}

vm_counted() {
	local name=$1 p f
	shift
	vm_out=$("$@" 2>&1)
	# shellcheck disable=SC2034 # read by the caller
	vm_work=$(printf '%s\n' "$vm_out" | sed -n 's/^vm: .* work=\(.*\)$/\1/p' | head -n 1)
	printf '%s\n' "$vm_out" | grep -E '^\[.*(PASS|FAIL|KNOWN-FAIL) ' | sed "s/^/   [$name] /"
	p=$(printf '%s\n' "$vm_out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s\n' "$vm_out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [[ -z $p ]]; then
		printf '%s\n' "$vm_out" | tail -n 15
		p=0 f=1
	elif ((f)); then
		printf '%s\n' "$vm_out" | sed -n '/^--- last console lines ---$/,$p' | tail -n 100
	fi
	counted "$p" "$f"
}

summary() {
	echo "$pass passed, $fail failed"
	((fail == 0))
}

# shellcheck disable=SC2034 # rc is for the caller
exit_status_of() {
	rc=124
	for _ in $(seq 50); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			rc=$?
			return
		fi
		sleep 0.1
	done
}

expect_output() {
	local name=$1 code=$2 pattern=$3 out rc
	shift 3
	out=$(timeout 10 "$@" 2>&1)
	rc=$?
	if [[ $rc != "$code" ]]; then
		check "$name" 1 "exit $rc, wanted $code: $(head -c 300 <<<"$out")"
	elif ! grep -qE -- "$pattern" <<<"$out"; then
		check "$name" 1 "output does not match '$pattern': $(head -c 300 <<<"$out")"
	else
		check "$name" 0
	fi
}

need_root() {
	((EUID == 0)) && return 0
	echo "FAIL $1 $2"
	echo "0 passed, 1 failed"
	exit 1
}

kill_exe() {
	local d
	for d in /proc/[0-9]*; do
		[[ $(readlink "$d/exe" 2>/dev/null) == "$1" ]] && kill -KILL "${d#/proc/}" 2>/dev/null
	done
	return 0
}
