# Shared by the guest scripts (sourced): result lines as tests/vm/run.sh reads them.
#   report NAME STATUS [REASON]   one result from a status; failures counts the FAILs
#   run NAME [LIMIT]              t_NAME (a function) in its own bash with errexit and a time
#                                 limit (default $CHECK_TIMEOUT), in $W/NAME; the last line it
#                                 printed is the reason of a FAIL; "VFSD-TIME NAME SECS"
#                                 says how long it took
#   fail MESSAGE                  inside a check: print the reason and end it
# shellcheck shell=bash
failures=0
CHECK_TIMEOUT=${CHECK_TIMEOUT:-${VFSD_CHECK_TIMEOUT:-300}}

report() {
    if (($2 == 0)); then
        echo "VFSD-TEST PASS $1"
    else
        echo "VFSD-TEST FAIL $1 ${3:-}"
        failures=$((failures + 1))
    fi
}

fail() {
    printf '%s\n' "$*" >&2
    exit 1
}

run() {
    local name=$1 limit=${2:-$CHECK_TIMEOUT} fn out rc reason start=$SECONDS
    fn=t_${name//-/_}
    mkdir -p "$W/$name"
    out=$(cd "$W/$name" && timeout -k 5 "$limit" bash -c "set -euo pipefail; $fn" 2>&1)
    rc=$?
    echo "VFSD-TIME $name $((SECONDS - start))"
    if ((rc == 0)); then
        echo "VFSD-TEST PASS $name"
        rm -rf "${W:?}/$name"
        return
    fi
    if ((rc == 124 || rc == 137)); then
        reason="timed out after $limit s"
    else
        reason=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)
        reason="${reason:-exit status $rc}"
    fi
    echo "VFSD-TEST FAIL $name ${reason:0:300}"
    failures=$((failures + 1))
}

# Every t_* function and the helpers named as arguments, for the checks' own bash.
export_checks() {
    local checks
    mapfile -t checks < <(compgen -A function t_)
    export -f fail "$@" "${checks[@]}"
}
