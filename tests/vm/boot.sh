#!/usr/bin/env bash
# Lean VM launcher: boot the test guest with its rootfs share (the host's /, read-only in the
# guest) served by a daemon this script starts, and its test share (/run/test) on a
# vhost-user socket someone else serves (e.g. a supervisor-spawned vfsd), and run a guest script.
#
# Usage: tests/vm/boot.sh --test-socket SOCK --script SCRIPT [--timeout SECS] [--verbose]
#                         [--keep] [--daemon PATH] [--env NAME=VALUE]...
#                         [--num-request-queues N] [--extra-share TAG=SOCK]...
#   --test-socket  the test share's listening vhost-user socket; boot.sh neither starts nor
#              stops its daemon
#   --extra-share  one more virtio-fs device, tagged TAG, on another such socket (repeatable);
#              the guest script mounts it
#   --script   guest script, relative to tests/vm/ or the current directory, or absolute; one
#              the guest cannot see (under /tmp, /run, ...) is copied into the work directory,
#              with the *.sh files beside it (and guest/lib.sh if none of them is a lib.sh)
#   --daemon   the rootfs share's daemon (default: $VFSD, else <repo>/build/vfsd)
#   --timeout  limit for the whole VM run in seconds (default $VFSD_VM_TIMEOUT or 600); the
#              guest script must also start within $VFSD_VM_BOOT_TIMEOUT s (default 120)
#   --env      export NAME=VALUE to the guest script (repeatable), as vfsd.env.NAME=VALUE on
#              the kernel command line: VALUE without blanks or quotes, 1 KiB in all
#   --num-request-queues  QEMU's num-request-queues of both virtio-fs devices (1 to 255;
#              default QEMU's, 1), also given to the guest script as VFSD_REQUEST_QUEUES
#   --keep     keep the work directory even when everything passed
#   --verbose  echo the whole guest console, not just result lines
# The work directory is made in $VFSD_BOOT_TMPDIR (default /var/tmp), which the guest must see.
# The guest has $VFSD_VM_SMP CPUs (default 2) and $VFSD_VM_MEM of memory (default 1G).
# Prints the guest's result lines and, on a failure, the console's tail; host-side checks
# (guest boot, exit, timeout, the rootfs daemon) are reported only when they fail. The last
# line is "N passed, M failed"; the exit status is 0 only if M == 0 and N > 0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
repo=$(vm_repo_root)

daemon=${VFSD:-$repo/build/vfsd}
script="" test_sock=""
timeout_s=${VFSD_VM_TIMEOUT:-600}
boot_timeout_s=${VFSD_VM_BOOT_TIMEOUT:-120}
smp=${VFSD_VM_SMP:-2} keep=0 verbose=0
num_request_queues=""
env_words=()
extra_shares=() # TAG=SOCK, for vm_start_qemu

usage() {
    sed -n '6,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

add_extra_share() {
    [[ $1 =~ ^[A-Za-z0-9_-]+=.+$ && ${1%%=*} != rootfs && ${1%%=*} != test ]] ||
        vm_setup_fail "--extra-share wants TAG=SOCK, TAG not rootfs or test: $1"
    [[ -S ${1#*=} ]] || vm_setup_fail "no vhost-user socket at --extra-share ${1#*=}"
    extra_shares+=("${1%%=*}=$(realpath "${1#*=}")")
}

add_env() {
    [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*=[^[:space:]\"\']*$ ]] ||
        vm_setup_fail "--env wants NAME=VALUE, VALUE without blanks or quotes: $1"
    env_words+=("vfsd.env.$1")
}

while (($#)); do
    case $1 in
    --test-socket) test_sock=${2:?}; shift 2 ;;
    --test-socket=*) test_sock=${1#*=}; shift ;;
    --script) script=${2:?}; shift 2 ;;
    --script=*) script=${1#*=}; shift ;;
    --daemon) daemon=${2:?}; shift 2 ;;
    --daemon=*) daemon=${1#*=}; shift ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --env) add_env "${2:?}"; shift 2 ;;
    --env=*) add_env "${1#*=}"; shift ;;
    --num-request-queues) num_request_queues=${2:?}; shift 2 ;;
    --num-request-queues=*) num_request_queues=${1#*=}; shift ;;
    --extra-share) add_extra_share "${2:?}"; shift 2 ;;
    --extra-share=*) add_extra_share "${1#*=}"; shift ;;
    --keep) keep=1; shift ;;
    --verbose | -v) verbose=1; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 >&2 ;;
    esac
done

# --- inputs ---------------------------------------------------------------------------------
if [[ -z $test_sock || -z $script ]]; then
    printf 'boot.sh: --test-socket and --script are required\n' >&2
    usage 2 >&2
fi
[[ -S $test_sock ]] || vm_setup_fail "no vhost-user socket at --test-socket $test_sock"
if [[ -n $num_request_queues ]]; then
    if [[ ! $num_request_queues =~ ^[1-9][0-9]{0,2}$ ]] || ((num_request_queues > 255)); then
        vm_setup_fail "--num-request-queues takes 1 to 255, not $num_request_queues"
    fi
    add_env "VFSD_REQUEST_QUEUES=$num_request_queues"
fi
test_sock=$(realpath "$test_sock")
env_line="${env_words[*]:-}"
((${#env_line} <= 1024)) || vm_setup_fail "--env: ${#env_line} bytes on the kernel command line, 1024 at most"
vm_check_inputs
vm_boot_files

# --- work directory and cleanup -------------------------------------------------------------
tmpdir=${VFSD_BOOT_TMPDIR:-/var/tmp}
! vm_guest_hidden "$(realpath "$tmpdir")/" || vm_setup_fail "the guest cannot see $tmpdir: set VFSD_BOOT_TMPDIR"
work=$(mktemp -d "$tmpdir/vfsd-boot.XXXXXX")
console="$work/console.log"
results="$work/results"
: >"$results"
failed_run=1 reported=0
declare -A daemon_pid=() qemu_pids=() daemon_guest=([rootfs]=1)
daemon_names=(rootfs) guest_suffixes=("")
printer_pid=""

# Kill everything this run started (never the test socket's daemon).
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    exec 2>/dev/null # no "Killed" job notices
    if ((failed_run && !reported)); then printf 'work directory kept: %s\n' "$work"; fi
    vm_kill_started "$printer_pid"
    ((failed_run || keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A script the guest cannot see through the rootfs share is copied where it can.
guest_script=$script
if vm_guest_hidden "$script"; then
    mkdir "$work/guest"
    find "$(dirname "$script")" -maxdepth 1 -type f -name '*.sh' -exec cp -p {} "$work/guest/" \;
    cp -p "$script" "$work/guest/"
    [[ -e $work/guest/lib.sh ]] || cp -p "$here/guest/lib.sh" "$work/guest/"
    guest_script=$work/guest/$(basename "$script")
fi

printf 'boot: daemon=%s script=%s test-socket=%s work=%s\n' "$daemon" "$script" "$test_sock" "$work"

# --- the rootfs daemon, QEMU, the watchdog --------------------------------------------------
vm_start_daemon rootfs "$daemon" -o source=/ -o cache=auto -o sandbox=chroot ||
    vm_setup_fail "$vm_error"
vm_t0=$(vm_now_us) # run time counts from QEMU's start
vm_start_qemu 1 "" "$work/rootfs.sock" "$test_sock" "${env_words[@]}"
vm_printer "" "" "${qemu_pids[1]}" &
printer_pid=$!
vm_watch
vm_wait_qemus
total=$(vm_elapsed)
wait "$printer_pid" 2>/dev/null || true
printer_pid=""

# --- checks and report ----------------------------------------------------------------------
vm_reap_daemons
vm_check_qemus
vm_console_txt "$console" "$work/console.txt"
vm_guest_checks "$work/console.txt" "" "$(grep -c '^VFSD-TEST FAIL ' "$work/console.txt" || true)" 0
sed -i '/^PASS /d' "$results" # the host's checks count only when they fail
vm_tally "$work/console.txt"
boot=$(cat "$work/boot-seconds" 2>/dev/null || echo '?')
printf 'QEMU start to guest script: %s s, QEMU total: %s s\n' "$boot" "$total"
if ((failed)); then vm_failure_tails "$work/console.txt"; fi
vm_summary "$keep"
exit "$failed_run"
