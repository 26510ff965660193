#!/usr/bin/env bash
# VM end-to-end test: boot a Linux guest under QEMU TCG whose root filesystem (the host's /,
# read-only) and writable test share are both served by the daemon under test, run a guest
# script, and report its checks plus the host-side ones.
#
# Usage: tests/vm/run.sh [--daemon PATH] [--script guest/core.sh] [--cache auto|always|none]
#                        [--timeout SECS] [--smp N] [--keep] [--verbose] [--daemon-arg ARG]...
#                        [--guests 2]
#   --daemon   daemon under test (default: $VFSD, else <repo>/build/vfsd)
#   --daemon-arg  one more argument for both daemons (repeatable), e.g. --thread-pool-size=4
#   --known-failure NAME  a guest check this daemon is known to fail (repeatable): reported as
#              KNOWN-FAIL and not counted, e.g. for the C virtiofsd's documented limits
#   --script   guest script, relative to tests/vm/ or the current directory, or absolute
#   --cache    the daemons' -o cache= mode (default auto)
#   --timeout  limit for the whole VM run in seconds (default $VFSD_VM_TIMEOUT or 900); the
#              guest script must also start within $VFSD_VM_BOOT_TIMEOUT s (default 120)
#   --smp      guest CPUs (default $VFSD_VM_SMP or 2)
#   --sandbox  --sandbox=MODE for both daemons instead of -o sandbox=chroot
#   --share-owner USER  the test share belongs to USER (for daemons running as USER)
#   --num-request-queues N  each virtio-fs device gets N request queues (QEMU's
#              num-request-queues; the guest kernel uses the first)
#   --guests 2 boot a second guest at the same time, with its own two daemons serving the
#              same directories; both run the script (VFSD_GUEST=1 or 2 tells them apart),
#              and the second one's checks are reported as guest2/NAME
#   --keep     keep the work directory even when everything passed
#   --verbose  echo the whole guest console, not just result lines
# Guest scripts print "VFSD-TEST PASS <name>" or "VFSD-TEST FAIL <name> <reason>" per check.
# The last line is "N passed, M failed"; the exit status is 0 only if M == 0 and N > 0.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
repo=$(vm_repo_root)

daemon=${VFSD:-$repo/build/vfsd}
script=guest/core.sh
cache_mode=auto
sandbox_args=(-o sandbox=chroot)
share_owner=""
timeout_s=${VFSD_VM_TIMEOUT:-900}
boot_timeout_s=${VFSD_VM_BOOT_TIMEOUT:-120}
smp=${VFSD_VM_SMP:-2}
keep=0
verbose=0
extra_args=()
known_failures=()
nguests=1
num_request_queues=""

usage() {
    sed -n '6,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

while (($#)); do
    case $1 in
    --daemon) daemon=${2:?}; shift 2 ;;
    --daemon=*) daemon=${1#*=}; shift ;;
    --script) script=${2:?}; shift 2 ;;
    --script=*) script=${1#*=}; shift ;;
    --sandbox) sandbox_args=("--sandbox=${2:?}"); shift 2 ;;
    --sandbox=*) sandbox_args=("--sandbox=${1#*=}"); shift ;;
    --share-owner) share_owner=${2:?}; shift 2 ;;
    --share-owner=*) share_owner=${1#*=}; shift ;;
    --cache) cache_mode=${2:?}; shift 2 ;;
    --cache=*) cache_mode=${1#*=}; shift ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --timeout=*) timeout_s=${1#*=}; shift ;;
    --smp) smp=${2:?}; shift 2 ;;
    --smp=*) smp=${1#*=}; shift ;;
    --daemon-arg) extra_args+=("${2:?}"); shift 2 ;;
    --daemon-arg=*) extra_args+=("${1#*=}"); shift ;;
    --known-failure) known_failures+=("${2:?}"); shift 2 ;;
    --known-failure=*) known_failures+=("${1#*=}"); shift ;;
    --num-request-queues) num_request_queues=${2:?}; shift 2 ;;
    --num-request-queues=*) num_request_queues=${1#*=}; shift ;;
    --guests) nguests=${2:?}; shift 2 ;;
    --guests=*) nguests=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --verbose | -v) verbose=1; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 >&2 ;;
    esac
done

# --- inputs ---------------------------------------------------------------------------------
vm_check_inputs
[[ $nguests == 1 || $nguests == 2 ]] || vm_setup_fail "--guests takes 1 or 2, not $nguests"
vm_boot_files

cache=$(vm_cache_dir)

# --- work directory and cleanup -------------------------------------------------------------
work=$(mktemp -d -t vfsd-vm.XXXXXX)
share=$(mktemp -d "$work/share.XXXXXX")
console="$work/console.log"
results="$work/results" # one "PASS name" / "FAIL name reason" line per host-side check
: >"$results"
failed_run=1 reported=0 submount_mounted=0
if [[ -n $share_owner ]]; then
    chmod 1777 "$work" # the daemons create their sockets here
    chown "$share_owner:" "$share"
fi
declare -A daemon_pid=()           # daemon name -> pid, each in its own process group (setsid)
declare -A qemu_pids=()            # guest number -> timeout's pid (it leads QEMU's group)
helper_pid="" lock_helper_pid="" sqlite_helper_pid="" printer_pid=""

# Kill everything this run started; pids are cleared once reaped, so nothing reused is hit.
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    exec 2>/dev/null # no "Killed" job notices
    if ((failed_run && !reported)); then printf 'work directory kept: %s\n' "$work"; fi
    vm_kill_started "$helper_pid" "$lock_helper_pid" "$sqlite_helper_pid" "$printer_pid"
    if ((submount_mounted)); then umount -l "$share/submount" 2>/dev/null || true; fi
    rm -f "$share/host-big.bin" "$share/guest-big.bin"
    ((failed_run || keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A script the guest cannot see through the rootfs share is handed over through the test share.
guest_script=$script
if vm_guest_hidden "$script"; then
    mkdir -p "$share/.guest"
    cp -a "$(dirname "$script")/." "$share/.guest/"
    guest_script=/run/test/.guest/$(basename "$script")
fi

printf 'vm: daemon=%s %s script=%s cache=%s work=%s\n' "$daemon" "${extra_args[*]}" "$script" "$cache_mode" "$work"

# --- daemons --------------------------------------------------------------------------------
start_daemon() { # NAME SOURCE_DIR [ARG]...
    local name=$1 src=$2
    shift 2
    vm_start_daemon "$name" "$daemon" -o source="$src" -o cache="$cache_mode" \
        "${sandbox_args[@]}" "$@" "${extra_args[@]}" || vm_setup_fail "$vm_error"
}
# A tmpfs inside the test share, mounted before the daemons start (a namespace sandbox copies
# the mount table then): the guest must see it as a submount of its own.
mkdir "$share/submount"
mount -t tmpfs -o size=4m vfsd-submount "$share/submount" || vm_setup_fail "cannot mount a tmpfs"
submount_mounted=1
# Guest N > 1 has daemons of its own ("rootfsN", "testN") serving the same directories.
guest_suffixes=("")
((nguests == 2)) && guest_suffixes+=(2)
daemon_names=()
declare -A daemon_guest=() # daemon name -> the guest it serves
for ((g = 1; g <= nguests; g++)); do
    sfx=${guest_suffixes[g - 1]}
    start_daemon "rootfs$sfx" /
    # The spelling both vfsd and QEMU 7.2's virtiofsd accept.
    start_daemon "test$sfx" "$share" -o xattr -o posix_acl -o announce_submounts
    daemon_names+=("rootfs$sfx" "test$sfx")
    daemon_guest[rootfs$sfx]=$g daemon_guest[test$sfx]=$g
done

# --- files the guest checks -----------------------------------------------------------------
token=$(tr -d '-' </proc/sys/kernel/random/uuid)
printf '%s\n' "$token" >"$share/token"
printf '%s\n' "$token" >"$share/submount/inner"
printf 'hello from the host %s\n' "$token" >"$share/host-hello.txt"
cp -a /usr/include/linux "$share/src-tree"
# 256 MiB from a seeded generator; the guest checks it against host-big.sha256.
python3 - "$share/host-big.bin" <<'PY'
import random, sys
rng = random.Random(20240601)
with open(sys.argv[1], "wb") as f:
    for _ in range(16):
        f.write(rng.randbytes(16 << 20))
PY
sha256sum "$share/host-big.bin" | cut -d' ' -f1 >"$share/host-big.sha256"

# --- the host's POSIX transcript, in a plain directory of the share's filesystem: the guest
# runs the same program on its vfsd mount and compares (core.sh posix-differential).
posix_bin=$repo/build/posix/posix-transcript
if [[ -x $posix_bin ]]; then
    mkdir "$work/posix-host"
    "$posix_bin" "$work/posix-host" >"$share/posix-host.txt" 2>&1 || true
    rm -rf "$work/posix-host"
    cp "$posix_bin" "$share/posix-transcript" # the checkout may be where the guest cannot see
fi

# --- host side of the host<->guest visibility check -----------------------------------------
# Once the guest has written from-guest: check it, create late-file, answer with from-host,
# and write the verdict to $work/visibility.

visibility_helper() {
    local want="guest:$token" got="" settle deadline=$((SECONDS + timeout_s + 60))
    while [[ ! -e $share/from-guest ]]; do
        ((SECONDS < deadline)) || return 0
        sleep 0.1
    done
    for ((settle = 0; settle < 20; settle++)); do # tolerate a non-atomic writer for 2 s
        got=$(cat "$share/from-guest" 2>/dev/null || true)
        [[ $got == "$want" ]] && break
        sleep 0.1
    done
    printf 'late:%s\n' "$token" >"$share/late-file"
    printf 'host:%s\n' "$token" >"$share/.from-host.tmp"
    mv "$share/.from-host.tmp" "$share/from-host"
    if [[ $got == "$want" ]]; then
        echo "PASS host-sees-guest-file" >"$work/visibility"
    else
        echo "FAIL host-sees-guest-file from-guest holds '${got:0:80}', want '$want'" >"$work/visibility"
    fi
}
visibility_helper &
helper_pid=$!

# --- host side of the lock checks: a host process holds a POSIX lock on locked-by-host until
# the guest asks it to let go (release-host-lock), and tests the guest's lock on
# locked-by-guest when the guest says it holds it (guest-holds-lock), answering in
# host-saw-guest-lock. The guest's t_locks does the other half.
printf 'x\n' >"$share/locked-by-host"
printf 'x\n' >"$share/locked-by-guest"
python3 - "$share" "$((timeout_s + 60))" <<'PY' &
import fcntl, os, sys, time
share, limit = sys.argv[1], time.monotonic() + float(sys.argv[2])
def wait_for(name):
    while not os.path.exists(os.path.join(share, name)):
        if time.monotonic() > limit:
            sys.exit(0)
        time.sleep(0.05)
held = open(os.path.join(share, "locked-by-host"), "r+")
fcntl.lockf(held, fcntl.LOCK_EX)
wait_for("release-host-lock")
time.sleep(1)  # the guest is blocked in its lock call by now
fcntl.lockf(held, fcntl.LOCK_UN)
wait_for("guest-holds-lock")
with open(os.path.join(share, "locked-by-guest"), "r+") as f:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        verdict = "no"
    except OSError:
        verdict = "yes"
with open(os.path.join(share, "host-saw-guest-lock.tmp"), "w") as out:
    out.write(verdict + "\n")
os.rename(os.path.join(share, "host-saw-guest-lock.tmp"), os.path.join(share, "host-saw-guest-lock"))
PY
lock_helper_pid=$!

# --- host side of the workloads' sqlite check: once the guest made the database
# (sqlite-start), a host process inserts 200 rows while the guest inserts its own; it says
# "ok" or the error in sqlite-host-done.
python3 - "$share" "$((timeout_s + 60))" <<'PY' &
import os, sqlite3, sys, time
share, limit = sys.argv[1], time.monotonic() + float(sys.argv[2])
while not os.path.exists(os.path.join(share, "sqlite-start")):
    if time.monotonic() > limit:
        sys.exit(0)
    time.sleep(0.05)
verdict = "ok"
try:
    db = sqlite3.connect(os.path.join(share, "shared.db"), timeout=20, isolation_level=None)
    for i in range(200):  # BEGIN IMMEDIATE: see t_sqlite in guest/workloads.sh
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES('host', ?)", (i,))
        db.execute("COMMIT")
    db.close()
except Exception as e:  # reported to the guest, which fails the check
    verdict = f"{type(e).__name__}: {e}"
with open(os.path.join(share, "sqlite-host-done.tmp"), "w") as f:
    f.write(verdict + "\n")
os.rename(os.path.join(share, "sqlite-host-done.tmp"), os.path.join(share, "sqlite-host-done"))
PY
sqlite_helper_pid=$!

# --- QEMU -----------------------------------------------------------------------------------
# Guest N, on the daemons rootfsSUFFIX and testSUFFIX, its console in console{SUFFIX}.log.
vm_t0=$(vm_now_us) # run time counts from QEMU's start
for ((g = 1; g <= nguests; g++)); do
    sfx=${guest_suffixes[g - 1]}
    vm_start_qemu "$g" "$sfx" "$work/rootfs$sfx.sock" "$work/test$sfx.sock"
done
printer_pids=()
for ((g = 1; g <= nguests; g++)); do
    sfx=${guest_suffixes[g - 1]}
    vm_printer "$sfx" "${sfx:+guest$sfx/}" "${qemu_pids[$g]}" &
    printer_pids+=($!)
done
printer_pid=${printer_pids[0]}
vm_watch
vm_wait_qemus
total=$(vm_elapsed)
for pid in "${printer_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
printer_pid=""

# --- host-side checks after the VM is gone --------------------------------------------------
vm_reap_daemons
vm_check_qemus

# Result lines; a second guest's check names get "guest2/" in front.
vm_console_txt "$console" "$work/console.txt"
if ((nguests == 2)); then
    vm_console_txt "$work/console2.log" "$work/console2.txt" guest2/
fi
known_hit=0
for name in "${known_failures[@]}"; do
    if grep -q "^VFSD-TEST FAIL $name\( \|$\)" "$work/console.txt"; then
        sed -i "s/^VFSD-TEST FAIL $name\( \|$\)/VFSD-TEST KNOWN-FAIL $name\1/" "$work/console.txt"
        grep "^VFSD-TEST KNOWN-FAIL $name" "$work/console.txt" | sed 's/^VFSD-TEST /[ known] /'
        known_hit=1
    fi
done
guest_fails=$(grep -c '^VFSD-TEST FAIL ' "$work/console.txt" || true)
vm_guest_checks "$work/console.txt" "" "$guest_fails" "$known_hit"
if ((nguests == 2)); then
    guest2_fails=$(grep -c '^VFSD-TEST FAIL ' "$work/console2.txt" || true)
    vm_guest_checks "$work/console2.txt" guest2/ "$guest2_fails" "$known_hit"
    grep '^VFSD-TEST ' "$work/console2.txt" >>"$work/console.txt" || true
fi

# The guest-written 256 MiB file, hashed again on the host.
sha_line=$(grep -m1 '^VFSD-SHA guest-big.bin ' "$work/console.txt" || true)
if [[ -n $sha_line ]]; then
    want=${sha_line##* }
    if [[ ! -f $share/guest-big.bin ]]; then
        vm_result "FAIL host-sha-guest-big guest-big.bin missing on the host"
    else
        size=$(stat -c %s "$share/guest-big.bin")
        got=$(sha256sum "$share/guest-big.bin" | cut -d' ' -f1)
        if [[ $got == "$want" && $size == $((256 << 20)) ]]; then
            vm_result "PASS host-sha-guest-big"
        else
            vm_result "FAIL host-sha-guest-big host sees size $size sha $got, guest said $want"
        fi
    fi
elif grep -q 'big-guest-to-host' "$work/console.txt"; then
    vm_result "FAIL host-sha-guest-big the guest printed no VFSD-SHA line for guest-big.bin"
fi

# The host half of the visibility check, for scripts that ran the guest half.
if [[ -s $work/visibility ]]; then
    vm_result "$(<"$work/visibility")"
elif grep -q '^VFSD-TEST [A-Z]* visibility' "$work/console.txt"; then
    vm_result "FAIL host-sees-guest-file the guest never wrote from-guest"
fi

# --- report ---------------------------------------------------------------------------------
vm_tally "$work/console.txt"

logdir=${VFSD_VM_LOGDIR:-$cache/logs}
mkdir -p "$logdir"
base=$(basename "$script" .sh)-$(basename "$daemon")
cp "$work/console.txt" "$logdir/$base.console.log"
for name in "${daemon_names[@]}"; do cp "$work/daemon-$name.log" "$logdir/$base.daemon-$name.log"; done
# a hung shutdown's diagnosis (vm_watch), kept with the logs: a caller may remove $work
for f in rings threads; do
    rm -f "$logdir/$base.$f.txt"
    if [[ -s $work/$f.txt ]]; then cp "$work/$f.txt" "$logdir/$base.$f.txt"; fi
done

boot=$(cat "$work/boot-seconds" 2>/dev/null || echo '?')
printf 'QEMU start to guest script: %s s, QEMU total: %s s; logs: %s/%s.*\n' "$boot" "$total" "$logdir" "$base"
if ((failed)); then vm_failure_tails "$work/console.txt"; fi
vm_summary "$keep"
exit "$failed_run"
