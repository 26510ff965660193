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
#   --smp      guest CPUs (default 2)
#   --sandbox  --sandbox=MODE for both daemons instead of -o sandbox=chroot
#   --share-owner USER  the test share belongs to USER (for daemons running as USER)
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
smp=2
keep=0
verbose=0
extra_args=()
known_failures=()
nguests=1

# setup_fail MESSAGE: a failure before the VM ran; still ends with the summary line.
setup_fail() {
    printf 'FAIL setup %s\n' "$*"
    if [[ -n ${work:-} ]]; then printf 'work directory kept: %s\n' "$work"; fi
    printf '0 passed, 1 failed\n'
    reported=1
    exit 1
}

usage() {
    sed -n '6,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
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
    --guests) nguests=${2:?}; shift 2 ;;
    --guests=*) nguests=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    --verbose | -v) verbose=1; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 >&2 ;;
    esac
done

# --- inputs ---------------------------------------------------------------------------------
[[ $daemon == */* ]] || daemon=$(command -v "$daemon" || true)
[[ -x $daemon ]] || setup_fail "daemon not found or not executable: ${daemon:-?} (build it, or pass --daemon)"
daemon=$(realpath "$daemon")
if [[ $script != /* && -f $here/$script ]]; then
    script=$here/$script
fi
[[ -f $script ]] || setup_fail "guest script not found: $script"
[[ $nguests == 1 || $nguests == 2 ]] || setup_fail "--guests takes 1 or 2, not $nguests"
script=$(realpath "$script")

env_file=$("$here/setup-kernel.sh") || setup_fail "tests/vm/setup-kernel.sh failed"
# shellcheck source=/dev/null
source "$env_file"
initrd=$("$here/build-initramfs.sh") || setup_fail "tests/vm/build-initramfs.sh failed"

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
    local pid
    exec 2>/dev/null # no "Killed" job notices
    if ((failed_run && !reported)); then printf 'work directory kept: %s\n' "$work"; fi
    for pid in "${daemon_pid[@]}" "${qemu_pids[@]}"; do
        if [[ -n $pid ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    done
    for pid in "$helper_pid" "$lock_helper_pid" "$sqlite_helper_pid" "$printer_pid"; do
        if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    for pid in "$work"/qemu*.pid; do
        if [[ -s $pid ]]; then kill -KILL "$(<"$pid")" 2>/dev/null || true; fi
    done
    wait 2>/dev/null || true
    if ((submount_mounted)); then umount -l "$share/submount" 2>/dev/null || true; fi
    rm -f "$share/host-big.bin" "$share/guest-big.bin"
    ((failed_run || keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now_us() { printf '%s\n' "${EPOCHREALTIME/./}"; }
t0=$(now_us)
elapsed() { # seconds since start, one decimal
    local d=$(($(now_us) - t0))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# proc_alive PID: running (a zombie child that has exited counts as gone).
proc_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

result() { printf '%s\n' "$*" >>"$results"; }

# The guest covers /tmp, /run, /proc, /sys and /dev with its own mounts: a script living
# there is handed over through the test share instead.
guest_script=$script
case $script in
/tmp/* | /run/* | /proc/* | /sys/* | /dev/*)
    mkdir -p "$share/.guest"
    cp -a "$(dirname "$script")/." "$share/.guest/"
    guest_script=/run/test/.guest/$(basename "$script")
    ;;
esac

printf 'vm: daemon=%s %s script=%s cache=%s work=%s\n' "$daemon" "${extra_args[*]}" "$script" "$cache_mode" "$work"

# --- daemons --------------------------------------------------------------------------------
start_daemon() { # NAME SOURCE_DIR [ARG]...
    local name=$1 src=$2 sock="$work/$1.sock" i
    shift 2
    setsid "$daemon" --socket-path="$sock" -o source="$src" -o cache="$cache_mode" \
        "${sandbox_args[@]}" "$@" "${extra_args[@]}" >"$work/daemon-$name.log" 2>&1 </dev/null &
    daemon_pid[$name]=$!
    for ((i = 0; i < 100; i++)); do
        [[ -S $sock ]] && return 0
        if ! proc_alive "${daemon_pid[$name]}"; then
            tail -n 20 "$work/daemon-$name.log"
            setup_fail "daemon for $name exited before creating its socket"
        fi
        sleep 0.1
    done
    setup_fail "daemon for $name did not create $sock within 10 s"
}
# A tmpfs inside the test share, mounted before the daemons start (a namespace sandbox copies
# the mount table then): the guest must see it as a submount of its own.
mkdir "$share/submount"
mount -t tmpfs -o size=4m vfsd-submount "$share/submount" || setup_fail "cannot mount a tmpfs"
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
    for i in range(200):
        db.execute("INSERT INTO t VALUES('host', ?)", (i,))
    db.close()
except Exception as e:  # reported to the guest, which fails the check
    verdict = f"{type(e).__name__}: {e}"
with open(os.path.join(share, "sqlite-host-done.tmp"), "w") as f:
    f.write(verdict + "\n")
os.rename(os.path.join(share, "sqlite-host-done.tmp"), os.path.join(share, "sqlite-host-done"))
PY
sqlite_helper_pid=$!

# --- QEMU -----------------------------------------------------------------------------------
# start_qemu SUFFIX N: guest N, on the daemons rootfsSUFFIX and testSUFFIX, its console in
# console{SUFFIX}.log.
start_qemu() {
    local sfx=$1 n=$2
    local qemu_args=(
        -accel "tcg,thread=multi" -cpu max -smp "$smp" -m 1G
        -object "memory-backend-memfd,id=mem,size=1G,share=on" -numa "node,memdev=mem"
        -chardev "socket,id=c0,path=$work/rootfs$sfx.sock"
        -device "vhost-user-fs-pci,queue-size=1024,chardev=c0,tag=rootfs"
        -chardev "socket,id=c1,path=$work/test$sfx.sock"
        -device "vhost-user-fs-pci,queue-size=1024,chardev=c1,tag=test"
        -nic none -nographic -no-reboot -pidfile "$work/qemu$sfx.pid"
        -kernel "$VMLINUZ" -initrd "$initrd"
        -append "console=ttyS0 panic=-1 quiet vfsd.script=$guest_script vfsd.guest=$n"
    )
    : >"$work/console$sfx.log"
    timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" \
        </dev/null >"$work/console$sfx.log" 2>&1 &
    qemu_pids[$n]=$! # timeout puts itself and QEMU in a process group of their own
}
t0=$(now_us) # run time counts from QEMU's start
for ((g = 1; g <= nguests; g++)); do start_qemu "${guest_suffixes[g - 1]}" "$g"; done
any_qemu_alive() {
    local pid
    for pid in "${qemu_pids[@]}"; do
        if [[ -n $pid ]] && proc_alive "$pid"; then return 0; fi
    done
    return 1
}

# Live view of a console: result lines (everything with --verbose), stamped with run time;
# printer SUFFIX LABEL QEMU_PID for guest 2 ("guest2/" before its lines).
printer() {
    local sfx=$1 label=$2 pid=$3 line
    tail -n +1 -s 0.2 -F --pid="$pid" "$work/console$sfx.log" 2>/dev/null | while IFS= read -r line; do
        line=${line%$'\r'}
        [[ $line == *VFSD-* ]] && line=VFSD-${line#*VFSD-} # drop escape codes before a marker
        case $line in
        VFSD-GUEST-STEP*)
            printf '%s\n' "${line#VFSD-GUEST-STEP }" >"$work/init-step$sfx"
            if ((verbose)); then printf '[%6ss] %s| %s\n' "$(elapsed)" "$label" "$line"; fi
            ;;
        VFSD-GUEST-START*)
            elapsed >"$work/boot-seconds$sfx"
            printf '[%6ss] %sguest script started (%s)\n' "$(elapsed)" "$label" "${line#VFSD-GUEST-START }"
            ;;
        "VFSD-TEST PASS "* | "VFSD-TEST FAIL "*)
            printf '[%6ss] %s%s\n' "$(elapsed)" "$label" "${line#VFSD-TEST }"
            ;;
        VFSD-GUEST-ERROR* | VFSD-GUEST-EXIT* | *"Kernel panic"* | *"BUG:"* | *"Oops"*)
            printf '[%6ss] %s%s\n' "$(elapsed)" "$label" "$line"
            ;;
        *) if ((verbose)); then printf '[%6ss] %s| %s\n' "$(elapsed)" "$label" "$line"; fi ;;
        esac
    done
}
printer_pids=()
for ((g = 1; g <= nguests; g++)); do
    sfx=${guest_suffixes[g - 1]}
    printer "$sfx" "${sfx:+guest$sfx/}" "${qemu_pids[$g]}" &
    printer_pids+=($!)
done
printer_pid=${printer_pids[0]}

# Watchdog: every daemon exit before QEMU's is a crash, and the guest would hang on it; a boot
# that never reaches the guest script hangs too (typically in mount). Stop QEMU in both cases.
declare -A died_early
boot_hung="" stop_at=""
stop_qemu() { # TERM now (QEMU shuts down cleanly); the loop escalates to KILL after 10 s
    local pid
    for pid in "${qemu_pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    stop_at=${stop_at:-$(now_us)}
}
while any_qemu_alive; do
    if [[ -n $stop_at ]] && (($(now_us) - stop_at > 10000000)); then
        for pid in "${qemu_pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    fi
    for sfx in "${guest_suffixes[@]}"; do
        if [[ -z $boot_hung && ! -e $work/boot-seconds$sfx ]] &&
            (($(now_us) - t0 > boot_timeout_s * 1000000)); then
            boot_hung="guest${sfx:-1} script did not start within $boot_timeout_s s"
            boot_hung+=" (last init step: $(cat "$work/init-step$sfx" 2>/dev/null || echo none))"
            stop_qemu
        fi
    done
    for name in "${daemon_names[@]}"; do
        if [[ -z ${died_early[$name]:-} ]] && ! proc_alive "${daemon_pid[$name]}"; then
            # Its QEMU closes the sockets while exiting: give it a moment to finish first.
            pid=${qemu_pids[${daemon_guest[$name]}]}
            for ((i = 0; i < 30; i++)); do proc_alive "$pid" && sleep 0.1; done
            if proc_alive "$pid"; then
                died_early[$name]=1
                stop_qemu

            fi
        fi
    done
    sleep 0.5
done
declare -A qemu_rcs=()
for ((g = 1; g <= nguests; g++)); do
    qemu_rcs[$g]=0
    wait "${qemu_pids[$g]}" || qemu_rcs[$g]=$?
    qemu_pids[$g]=""
done
rm -f "$work"/qemu*.pid
total=$(elapsed)
for pid in "${printer_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
printer_pid=""

# --- host-side checks after the VM is gone --------------------------------------------------
# Daemons exit on their own, status 0, once the VMM disconnects.
for name in "${daemon_names[@]}"; do
    pid=${daemon_pid[$name]}
    for ((i = 0; i < 50; i++)); do proc_alive "$pid" || break; sleep 0.1; done
    if proc_alive "$pid"; then
        result "FAIL daemon-$name-exit still running 5 s after QEMU exited"
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        daemon_pid[$name]=""
        continue
    fi
    rc=0
    wait "$pid" || rc=$?
    daemon_pid[$name]=""
    if [[ -n ${died_early[$name]:-} ]]; then
        result "FAIL daemon-$name-exit died while the VM was running (status $rc)"
    elif ((rc > 128)); then
        result "FAIL daemon-$name-exit crashed: killed by signal $((rc - 128))"
    elif ((rc != 0)); then
        result "FAIL daemon-$name-exit exited with status $rc"
    elif grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
        "$work/daemon-$name.log"; then
        result "FAIL daemon-$name-exit sanitizer report in daemon-$name.log"
    else
        result "PASS daemon-$name-exit"
    fi
done

if [[ -n $boot_hung ]]; then
    result "FAIL guest-boot $boot_hung"
fi
for ((g = 1; g <= nguests; g++)); do
    label=${guest_suffixes[g - 1]:+guest$g/}
    if ((qemu_rcs[$g] == 124 || qemu_rcs[$g] == 137)); then
        result "FAIL ${label}qemu-exit timed out after $timeout_s s"
    elif ((qemu_rcs[$g] != 0)); then
        result "FAIL ${label}qemu-exit status ${qemu_rcs[$g]}"
    fi
done

# Result lines, with \r and any escape codes or printk text before the marker removed; a
# second guest's check names get "guest2/" in front.
sed -e 's/\r$//' -e 's/^.*\(VFSD-\(TEST\|GUEST\|SHA\)\)/\1/' "$console" >"$work/console.txt"
if ((nguests == 2)); then
    sed -e 's/\r$//' -e 's/^.*\(VFSD-\(TEST\|GUEST\|SHA\)\)/\1/' \
        -e 's/^VFSD-TEST \([A-Z-]*\) /VFSD-TEST \1 guest2\//' \
        "$work/console2.log" >"$work/console2.txt"
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
while IFS= read -r line; do
    result "FAIL guest-init ${line#VFSD-GUEST-ERROR }"
done < <(grep '^VFSD-GUEST-ERROR' "$work/console.txt" || true)
check_guest_exit() { # CONSOLE_TXT LABEL FAILS
    local exit_line
    exit_line=$(grep -m1 '^VFSD-GUEST-EXIT ' "$1" || true)
    if [[ -z $exit_line ]]; then
        result "FAIL ${2}guest-exit no VFSD-GUEST-EXIT line on the console (guest hung or crashed)"
    elif [[ ${exit_line#VFSD-GUEST-EXIT } != 0 && $3 == 0 && $known_hit == 0 ]]; then
        result "FAIL ${2}guest-exit guest script exited with status ${exit_line#VFSD-GUEST-EXIT } without reporting a failure"
    fi
}
check_guest_exit "$work/console.txt" "" "$guest_fails"
if ((nguests == 2)); then
    guest2_fails=$(grep -c '^VFSD-TEST FAIL ' "$work/console2.txt" || true)
    while IFS= read -r line; do
        result "FAIL guest2/guest-init ${line#VFSD-GUEST-ERROR }"
    done < <(grep '^VFSD-GUEST-ERROR' "$work/console2.txt" || true)
    check_guest_exit "$work/console2.txt" guest2/ "$guest2_fails"
    guest_fails=$((guest_fails + guest2_fails))
    grep '^VFSD-TEST ' "$work/console2.txt" >>"$work/console.txt" || true
fi

# The guest-written 256 MiB file, hashed again on the host.
sha_line=$(grep -m1 '^VFSD-SHA guest-big.bin ' "$work/console.txt" || true)
if [[ -n $sha_line ]]; then
    want=${sha_line##* }
    if [[ ! -f $share/guest-big.bin ]]; then
        result "FAIL host-sha-guest-big guest-big.bin missing on the host"
    else
        size=$(stat -c %s "$share/guest-big.bin")
        got=$(sha256sum "$share/guest-big.bin" | cut -d' ' -f1)
        if [[ $got == "$want" && $size == $((256 << 20)) ]]; then
            result "PASS host-sha-guest-big"
        else
            result "FAIL host-sha-guest-big host sees size $size sha $got, guest said $want"
        fi
    fi
elif grep -q 'big-guest-to-host' "$work/console.txt"; then
    result "FAIL host-sha-guest-big the guest printed no VFSD-SHA line for guest-big.bin"
fi

# The host half of the visibility check, for scripts that ran the guest half.
if [[ -s $work/visibility ]]; then
    result "$(<"$work/visibility")"
elif grep -q '^VFSD-TEST [A-Z]* visibility' "$work/console.txt"; then
    result "FAIL host-sees-guest-file the guest never wrote from-guest"
fi

# --- report ---------------------------------------------------------------------------------
while IFS= read -r line; do printf '[  host ] %s\n' "$line"; done <"$results"

passed=$(($(grep -c '^VFSD-TEST PASS ' "$work/console.txt" || true) + $(grep -c '^PASS ' "$results" || true)))
failed=$((guest_fails + $(grep -c '^FAIL ' "$results" || true)))

logdir=${VFSD_VM_LOGDIR:-$cache/logs}
mkdir -p "$logdir"
base=$(basename "$script" .sh)-$(basename "$daemon")
cp "$work/console.txt" "$logdir/$base.console.log"
for name in "${daemon_names[@]}"; do cp "$work/daemon-$name.log" "$logdir/$base.daemon-$name.log"; done

boot=$(cat "$work/boot-seconds" 2>/dev/null || echo '?')
printf 'QEMU start to guest script: %s s, QEMU total: %s s; logs: %s/%s.*\n' "$boot" "$total" "$logdir" "$base"
if ((failed)); then
    printf -- '--- last console lines ---\n'
    tail -n 15 "$work/console.txt"
    for name in "${daemon_names[@]}"; do
        printf -- '--- daemon-%s.log (tail) ---\n' "$name"
        tail -n 10 "$work/daemon-$name.log"
    done
fi
if ((failed == 0 && passed > 0)); then failed_run=0; fi
if ((failed_run || keep)); then printf 'work directory kept: %s\n' "$work"; fi
printf '%d passed, %d failed\n' "$passed" "$failed"
reported=1
exit "$failed_run"
