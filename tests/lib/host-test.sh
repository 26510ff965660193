# Shared by the host-side test scripts (sourced): one result line per check, and the summary
# line tests/run-all.sh reads.
#   check NAME STATUS [REASON]   "PASS NAME" when STATUS is 0, else "FAIL NAME REASON"
#   counted P F                  adds P passes and F failures counted elsewhere (a VM run)
#   summary                      "N passed, M failed"; its status is 0 only if M is 0
#   exit_status_of PID           sets rc to PID's exit status, or 124 if it runs on after 5 s
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
