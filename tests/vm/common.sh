# shellcheck shell=bash
# Shared helpers for the VM test scripts; sourced, not run.
# The run helpers below use and set the caller's state (listed there), and index its
# associative arrays (which shellcheck cannot see declared):
# shellcheck disable=SC2154,SC2034,SC2004

# vm_repo_root: top of the vfsd checkout (falls back to ../.. of this file outside git).
vm_repo_root() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd)
}

# vm_cache_dir: where the kernel, modules and initramfs are kept ($VFSD_CACHE overrides).
vm_cache_dir() {
    if [[ -n ${VFSD_CACHE:-} ]]; then
        printf '%s\n' "$VFSD_CACHE"
    else
        printf '%s/.cache/vm\n' "$(vm_repo_root)"
    fi
}

vm_die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# One VM run, shared by run.sh and boot.sh. These helpers read and fill the caller's state:
#   work             the run's work directory: sockets NAME.sock, daemon-NAME.log, console logs
#   results          file of host-side "PASS name" / "FAIL name reason" lines (vm_result)
#   daemon           the daemon binary; daemon_pid (assoc): name -> pid (its own session)
#   daemon_names     the started daemons; daemon_guest (assoc): name -> the guest it serves
#   qemu_pids        (assoc) guest number -> pid of the timeout that leads QEMU's group
#   guest_suffixes   per guest, the suffix of its files and daemons ("" for guest 1, "2"…)
#   guest_script     the script's path as the guest sees it
#   smp timeout_s boot_timeout_s verbose initrd VMLINUZ   as their names say
#   num_request_queues   (optional) each virtio-fs device's num-request-queues (QEMU's default 1)
#   extra_shares     (optional) TAG=SOCK per further virtio-fs device (boot.sh --extra-share)
#   failed_run reported   set by vm_setup_fail and vm_summary, read by the caller's cleanup
# Pids are cleared once reaped, so vm_kill_started never hits a reused one.

# vm_setup_fail MESSAGE: a failure before the VM ran; still ends with the summary line.
vm_setup_fail() {
    printf 'FAIL setup %s\n' "$*"
    if [[ -n ${work:-} ]]; then printf 'work directory kept: %s\n' "$work"; fi
    printf '0 passed, 1 failed\n'
    reported=1
    exit 1
}

# vm_check_inputs: resolve $daemon (a name on PATH, or a path) and $script (relative to
# tests/vm/, the current directory, or absolute) to absolute paths, or fail the setup.
vm_check_inputs() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    [[ $daemon == */* ]] || daemon=$(command -v "$daemon" || true)
    [[ -x $daemon ]] || vm_setup_fail "daemon not found or not executable: ${daemon:-?} (build it, or pass --daemon)"
    daemon=$(realpath "$daemon")
    if [[ $script != /* && -f $here/$script ]]; then
        script=$here/$script
    fi
    [[ -f $script ]] || vm_setup_fail "guest script not found: $script"
    script=$(realpath "$script")
}

# vm_boot_files: the guest kernel ($VMLINUZ, from setup-kernel.sh's env file) and $initrd.
vm_boot_files() {
    local here env_file
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    env_file=$("$here/setup-kernel.sh") || vm_setup_fail "tests/vm/setup-kernel.sh failed"
    # shellcheck source=/dev/null
    source "$env_file"
    initrd=$("$here/build-initramfs.sh") || vm_setup_fail "tests/vm/build-initramfs.sh failed"
}

# vm_guest_hidden PATH: the guest covers /tmp, /run, /proc, /sys and /dev with its own mounts,
# so it cannot see PATH through the rootfs share.
vm_guest_hidden() {
    case $1 in
    /tmp/* | /run/* | /proc/* | /sys/* | /dev/*) return 0 ;;
    esac
    return 1
}

# vm_kill_started [PID]...: kill every daemon's and QEMU's process group, the PIDs given, and
# any QEMU whose pidfile is left in $work; then reap them all.
vm_kill_started() {
    local pid
    for pid in "${daemon_pid[@]}" "${qemu_pids[@]}"; do
        if [[ -n $pid ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    done
    for pid in "$@"; do
        if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    for pid in "$work"/qemu*.pid; do
        if [[ -s $pid ]]; then kill -KILL "$(<"$pid")" 2>/dev/null || true; fi
    done
    wait 2>/dev/null || true
}

vm_now_us() { printf '%s\n' "${EPOCHREALTIME/./}"; }
vm_t0=$(vm_now_us)
vm_elapsed() { # seconds since $vm_t0, one decimal
    local d=$(($(vm_now_us) - vm_t0))
    printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000))
}

# vm_proc_alive PID: running (a zombie child that has exited counts as gone).
vm_proc_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

vm_result() { printf '%s\n' "$*" >>"$results"; }

# vm_start_daemon NAME DAEMON [ARG]...: DAEMON --socket-path=$work/NAME.sock ARG... in a
# session of its own, its output in $work/daemon-NAME.log; waits up to 10 s for the socket.
# On failure returns 1 with the reason in $vm_error (and the log's tail printed if it died).
vm_start_daemon() {
    local name=$1 sock="$work/$1.sock" cmd=$2 i
    shift 2
    setsid "$cmd" --socket-path="$sock" "$@" >"$work/daemon-$name.log" 2>&1 </dev/null &
    daemon_pid[$name]=$!
    for ((i = 0; i < 100; i++)); do
        [[ -S $sock ]] && return 0
        if ! vm_proc_alive "${daemon_pid[$name]}"; then
            tail -n 20 "$work/daemon-$name.log"
            vm_error="daemon for $name exited before creating its socket"
            return 1
        fi
        sleep 0.1
    done
    vm_error="daemon for $name did not create $sock within 10 s"
    return 1
}

# vm_start_qemu N SUFFIX ROOTFS_SOCK TEST_SOCK [CMDLINE_WORD]...: guest N in the background
# under `timeout $timeout_s`, its console in $work/console{SUFFIX}.log; sets qemu_pids[N].
# The guest's memory is $VFSD_VM_MEM (default 1G).
vm_start_qemu() {
    local n=$1 sfx=$2 append="console=ttyS0 panic=-1 quiet vfsd.script=$guest_script vfsd.guest=$1"
    append+=" vfsd.shutdown_watch=$((${VFSD_VM_EXIT_GRACE:-120} / 2))" # init.sh, shutdown_watch
    local fs_opts="queue-size=1024${num_request_queues:+,num-request-queues=$num_request_queues}"
    local mem=${VFSD_VM_MEM:-1G} # QEMU's size syntax: 1G, 4096M
    # Room for a second vCPU even when one runs: QEMU 7.2's TCG leaves the guest's memory
    # barriers out when the machine can never have two vCPUs (max_cpus 1), and then the
    # guest and the daemon can each miss the other's virtio notification. That hung a
    # guest's unmount on 704 FORGETs never kicked (docs/error-handling.md, "A notification
    # lost"). VFSD_VM_MAXCPUS=1 brings the race back, to show it.
    local maxcpus=${VFSD_VM_MAXCPUS:-$((smp > 1 ? smp : 2))}
    vm_maxcpus=$maxcpus # vm_reap_daemons
    if (($# > 4)); then append+=" ${*:5}"; fi
    # qemu64, not max: with AVX2 and AVX-512 offered, glibc picks vector string functions
    # that TCG emulates slowly, and every exec in the guest took twice as long (vm/core: 393
    # s against about 190 s). VFSD_VM_CPU picks another model.
    local qemu_args=(
        -accel "tcg,thread=multi" -cpu "${VFSD_VM_CPU:-qemu64}" -smp "$smp,maxcpus=$maxcpus" -m "$mem"
        -object "memory-backend-memfd,id=mem,size=$mem,share=on" -numa "node,memdev=mem"
        -chardev "socket,id=c0,path=$3"
        -device "vhost-user-fs-pci,$fs_opts,chardev=c0,tag=rootfs,id=fs0"
        -chardev "socket,id=c1,path=$4"
        -device "vhost-user-fs-pci,$fs_opts,chardev=c1,tag=test,id=fs1"
        -name "vfsd-guest$sfx,debug-threads=on" # threads named "CPU 0/TCG"... in top -H
        -nic none -nographic -no-reboot -pidfile "$work/qemu$sfx.pid"
        -qmp "unix:$work/qmp$sfx.sock,server=on,wait=off" # vm_dump_rings
        -kernel "$VMLINUZ" -initrd "$initrd"
        -append "$append"
    )
    local k=2 share
    for share in "${extra_shares[@]}"; do # boot.sh's --extra-share TAG=SOCK
        qemu_args+=(-chardev "socket,id=c$k,path=${share#*=}"
            -device "vhost-user-fs-pci,$fs_opts,chardev=c$k,tag=${share%%=*},id=fs$k")
        k=$((k + 1))
    done
    : >"$work/console$sfx.log"
    timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${qemu_args[@]}" \
        </dev/null >"$work/console$sfx.log" 2>&1 &
    qemu_pids[$n]=$! # timeout puts itself and QEMU in a process group of their own
}

# vm_printer SUFFIX LABEL QEMU_PID: live view of a console: result lines (everything with
# $verbose), stamped with run time; LABEL ("guest2/") goes before a second guest's lines.
vm_printer() {
    local sfx=$1 label=$2 pid=$3 line
    tail -n +1 -s 0.2 -F --pid="$pid" "$work/console$sfx.log" 2>/dev/null | while IFS= read -r line; do
        line=${line%$'\r'}
        [[ $line == *VFSD-* ]] && line=VFSD-${line#*VFSD-} # drop escape codes before a marker
        case $line in
        VFSD-GUEST-STEP*)
            printf '%s\n' "${line#VFSD-GUEST-STEP }" >"$work/init-step$sfx"
            if ((verbose)); then printf '[%6ss] %s| %s\n' "$(vm_elapsed)" "$label" "$line"; fi
            ;;
        VFSD-GUEST-START*)
            vm_elapsed >"$work/boot-seconds$sfx"
            printf '[%6ss] %sguest script started (%s)\n' "$(vm_elapsed)" "$label" "${line#VFSD-GUEST-START }"
            ;;
        "VFSD-TEST PASS "* | "VFSD-TEST FAIL "*)
            printf '[%6ss] %s%s\n' "$(vm_elapsed)" "$label" "${line#VFSD-TEST }"
            ;;
        VFSD-GUEST-EXIT*)
            vm_now_us >"$work/exit-us$sfx"
            printf '[%6ss] %s%s\n' "$(vm_elapsed)" "$label" "$line"
            ;;
        VFSD-GUEST-ERROR* | *"Kernel panic"* | *"BUG:"* | *"Oops"*)
            printf '[%6ss] %s%s\n' "$(vm_elapsed)" "$label" "$line"
            ;;
        *) if ((verbose)); then printf '[%6ss] %s| %s\n' "$(vm_elapsed)" "$label" "$line"; fi ;;
        esac
    done
}

vm_any_qemu_alive() {
    local pid
    for pid in "${qemu_pids[@]}"; do
        if [[ -n $pid ]] && vm_proc_alive "$pid"; then return 0; fi
    done
    return 1
}

# vm_dump_threads FILE: every task of the processes whose command line names $work (the
# daemons, whatever spawned them, and QEMU) and of their descendants: state, wait channel,
# syscall and kernel stack, for a guest that hangs in its shutdown (a daemon not answering).
vm_dump_threads() {
    local pid t seen=" " todo=() kids
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        if grep -qaF "$work" "/proc/$pid/cmdline" 2>/dev/null; then todo+=("$pid"); fi
    done
    {
        while ((${#todo[@]})); do
            pid=${todo[0]} todo=("${todo[@]:1}")
            [[ $seen == *" $pid "* ]] && continue
            seen+="$pid "
            echo "== pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)"
            for t in /proc/"$pid"/task/*; do
                echo "-- task ${t##*/} $(cat "$t/comm" 2>/dev/null)" \
                    "state=$(sed 's/.*) //; s/ .*//' "$t/stat" 2>/dev/null)" \
                    "wchan=$(cat "$t/wchan" 2>/dev/null)" \
                    "syscall=$(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
                sed 's/^/     /' "$t/stack" 2>/dev/null || echo "     (no kernel stack)"
            done
            kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null) || true
            for t in $kids; do todo+=("$t"); done
        done
    } >"$1" 2>&1
}

# vm_dump_rings FILE: each guest's virtio-fs rings (tests/vm/rings.py, through QEMU's QMP
# socket): which requests a daemon never took, took and never answered, or answered unseen.
vm_dump_rings() {
    local sock
    for sock in "$work"/qmp*.sock; do
        [[ -S $sock ]] || continue
        echo "== ${sock##*/}"
        timeout 60 /usr/bin/python3 "$(vm_repo_root)/tests/vm/rings.py" "$sock" 2>&1
    done >"$1"
}

# vm_watch: wait for every QEMU to exit. Every daemon exit before its QEMU's is a crash, and
# the guest would hang on it; a boot that never reaches the guest script hangs too (typically
# in mount), and so does a shutdown that does not end within $VFSD_VM_EXIT_GRACE s (default
# 120) of the script's end (an unmount waiting for a daemon's reply). Stop QEMU in all these
# cases: sets died_early[NAME], boot_hung and exit_hung (the reasons); a hung shutdown leaves
# the threads of the daemons and QEMU in $work/threads.txt first.
vm_watch() {
    local stop_at="" sfx name pid i ended grace=${VFSD_VM_EXIT_GRACE:-120}
    declare -gA died_early=()
    boot_hung="" exit_hung=""
    while vm_any_qemu_alive; do
        for sfx in "${guest_suffixes[@]}"; do
            ended=$(cat "$work/exit-us$sfx" 2>/dev/null) || continue
            if [[ -z $exit_hung && -n $ended ]] && (($(vm_now_us) - ended > grace * 1000000)); then
                vm_dump_threads "$work/threads.txt"
                vm_dump_rings "$work/rings.txt"
                exit_hung="guest${sfx:-1} did not power off within $grace s of its script's end"
                exit_hung+=" (last init step: $(cat "$work/init-step$sfx" 2>/dev/null || echo none);"
                exit_hung+=" the daemons' and QEMU's threads: $work/threads.txt, the rings:"
                exit_hung+=" $work/rings.txt)"
                vm_stop_qemu
            fi
        done
        if [[ -n $stop_at ]] && (($(vm_now_us) - stop_at > 10000000)); then
            for pid in "${qemu_pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
        fi
        for sfx in "${guest_suffixes[@]}"; do
            if [[ -z $boot_hung && ! -e $work/boot-seconds$sfx ]] &&
                (($(vm_now_us) - vm_t0 > boot_timeout_s * 1000000)); then
                boot_hung="guest${sfx:-1} script did not start within $boot_timeout_s s"
                boot_hung+=" (last init step: $(cat "$work/init-step$sfx" 2>/dev/null || echo none))"
                vm_stop_qemu
            fi
        done
        for name in "${daemon_names[@]}"; do
            if [[ -z ${died_early[$name]:-} ]] && ! vm_proc_alive "${daemon_pid[$name]}"; then
                # Its QEMU closes the sockets while exiting: give it a moment to finish first.
                pid=${qemu_pids[${daemon_guest[$name]}]}
                for ((i = 0; i < 30; i++)); do vm_proc_alive "$pid" && sleep 0.1; done
                if vm_proc_alive "$pid"; then
                    died_early[$name]=1
                    vm_stop_qemu
                fi
            fi
        done
        sleep 0.5
    done
}
vm_stop_qemu() { # TERM now (QEMU shuts down cleanly); vm_watch escalates to KILL after 10 s
    local pid g
    declare -gA qemu_stopped # vm_check_qemus: these guests' statuses are ours, not timeouts
    for ((g = 1; g <= ${#guest_suffixes[@]}; g++)); do
        pid=${qemu_pids[$g]}
        if [[ -n $pid ]] && vm_proc_alive "$pid"; then
            qemu_stopped[$g]=1
            kill -TERM -- "-$pid" 2>/dev/null || true
        fi
    done
    stop_at=${stop_at:-$(vm_now_us)}
}

# vm_wait_qemus: reap every QEMU (their statuses in qemu_rcs[N]).
vm_wait_qemus() {
    local g
    declare -gA qemu_rcs=()
    for ((g = 1; g <= ${#guest_suffixes[@]}; g++)); do
        qemu_rcs[$g]=0
        wait "${qemu_pids[$g]}" || qemu_rcs[$g]=$?
        qemu_pids[$g]=""
    done
    rm -f "$work"/qemu*.pid
}

# vm_reap_daemons: daemons exit on their own, status 0, once the VMM disconnects; one
# daemon-NAME-exit result each (failed too by a sanitizer report or, unless
# VFSD_VM_MAXCPUS=1 asked for the race, a lost ring notification in its log).
vm_reap_daemons() {
    local name pid rc i line
    for name in "${daemon_names[@]}"; do
        pid=${daemon_pid[$name]}
        for ((i = 0; i < 50; i++)); do vm_proc_alive "$pid" || break; sleep 0.1; done
        if vm_proc_alive "$pid"; then
            vm_result "FAIL daemon-$name-exit still running 5 s after QEMU exited"
            kill -KILL -- "-$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            daemon_pid[$name]=""
            continue
        fi
        rc=0
        wait "$pid" || rc=$?
        daemon_pid[$name]=""
        if [[ -n ${died_early[$name]:-} ]]; then
            vm_result "FAIL daemon-$name-exit died while the VM was running (status $rc)"
        elif ((rc > 128)); then
            vm_result "FAIL daemon-$name-exit crashed: killed by signal $((rc - 128))"
        elif ((rc != 0)); then
            vm_result "FAIL daemon-$name-exit exited with status $rc"
        elif grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
            "$work/daemon-$name.log"; then
            vm_result "FAIL daemon-$name-exit sanitizer report in daemon-$name.log"
        elif ((${vm_maxcpus:-2} > 1)) &&
            line=$(grep -m1 'a lost notification' "$work/daemon-$name.log"); then
            # vfsd recovered, but with the guest's barriers kept nothing should get lost:
            # a bug on one side of the ring (docs/error-handling.md, "A notification lost")
            vm_result "FAIL daemon-$name-exit ${line#*] }"
        else
            vm_result "PASS daemon-$name-exit"
        fi
    done
}

# vm_check_qemus: a boot that hung, and each QEMU that timed out or failed, is a result.
vm_check_qemus() {
    local g label
    if [[ -n $boot_hung ]]; then
        vm_result "FAIL guest-boot $boot_hung"
    fi
    if [[ -n $exit_hung ]]; then
        vm_result "FAIL guest-shutdown $exit_hung"
    fi
    for ((g = 1; g <= ${#guest_suffixes[@]}; g++)); do
        label=${guest_suffixes[g - 1]:+guest$g/}
        if [[ -n ${qemu_stopped[$g]:-} ]]; then
            : # stopped by vm_watch, which reported why
        elif ((qemu_rcs[$g] == 124 || qemu_rcs[$g] == 137)); then
            vm_result "FAIL ${label}qemu-exit timed out after $timeout_s s"
        elif ((qemu_rcs[$g] != 0)); then
            vm_result "FAIL ${label}qemu-exit status ${qemu_rcs[$g]}"
        fi
    done
}

# vm_console_txt CONSOLE OUT [LABEL]: the result lines of a console, with \r and any escape
# codes or printk text before the marker removed; LABEL ("guest2/") goes before check names.
vm_console_txt() {
    local label_expr=()
    if [[ -n ${3:-} ]]; then label_expr=(-e "s|^VFSD-TEST \([A-Z-]*\) |VFSD-TEST \1 $3|"); fi
    sed -e 's/\r$//' -e 's/^.*\(VFSD-\(TEST\|GUEST\|SHA\)\)/\1/' "${label_expr[@]}" "$1" >"$2"
}

# vm_guest_checks CONSOLE_TXT LABEL FAILS KNOWN_HIT: a result for each error /init reported,
# and one if the script did not finish, or failed without reporting a failure (FAILS and
# KNOWN_HIT, counts of its FAIL and KNOWN-FAIL lines, both 0).
vm_guest_checks() {
    local line exit_line
    while IFS= read -r line; do
        vm_result "FAIL ${2}guest-init ${line#VFSD-GUEST-ERROR }"
    done < <(grep '^VFSD-GUEST-ERROR' "$1" || true)
    exit_line=$(grep -m1 '^VFSD-GUEST-EXIT ' "$1" || true)
    if [[ -z $exit_line ]]; then
        vm_result "FAIL ${2}guest-exit no VFSD-GUEST-EXIT line on the console (guest hung or crashed)"
    elif [[ ${exit_line#VFSD-GUEST-EXIT } != 0 && $3 == 0 && $4 == 0 ]]; then
        vm_result "FAIL ${2}guest-exit guest script exited with status ${exit_line#VFSD-GUEST-EXIT } without reporting a failure"
    fi
}

# vm_tally CONSOLE_TXT: print the host-side results, and set passed and failed from them and
# the guest's result lines; then the guest's slowest checks.
vm_tally() {
    local line
    while IFS= read -r line; do printf '[  host ] %s\n' "$line"; done <"$results"
    passed=$(($(grep -c '^VFSD-TEST PASS ' "$1" || true) + $(grep -c '^PASS ' "$results" || true)))
    failed=$(($(grep -c '^VFSD-TEST FAIL ' "$1" || true) + $(grep -c '^FAIL ' "$results" || true)))
    # where the guest's time went: its five slowest checks
    line=$({ grep -a '^VFSD-TIME ' "$1" || true; } | sort -k3,3nr | head -n 5 |
        awk '{printf "%s%s %s s", (NR > 1 ? ", " : ""), $2, $3}')
    if [[ -n $line ]]; then printf 'slowest guest checks: %s\n' "$line"; fi
}

# vm_failure_tails CONSOLE_TXT: after a failure, the console's and each daemon log's last lines.
vm_failure_tails() {
    local name
    printf -- '--- last console lines ---\n'
    tail -n 15 "$1"
    for name in "${daemon_names[@]}"; do
        printf -- '--- daemon-%s.log (tail) ---\n' "$name"
        tail -n 10 "$work/daemon-$name.log"
    done
    if [[ -s $work/threads.txt ]]; then # a hung shutdown (vm_watch): where each task waits
        printf -- '--- threads.txt (tasks, without their stacks) ---\n'
        awk '/^(==|--) / && n++ < 60' "$work/threads.txt"
    fi
    # last, where a caller that shows only the tail (host-test.sh, vm_counted) sees them
    if [[ -s $work/rings.txt ]]; then # a hung shutdown (vm_watch)
        # what the guest said it waits for (init.sh, shutdown_watch): its first lines
        printf -- '--- the guest on its hung shutdown ---\n'
        grep -a '^VFSD-GUEST-HANG ' "$1" | head -n 60
        printf -- '--- rings.txt ---\n' # what the rings hold
        cat "$work/rings.txt"
    fi
}

# vm_summary KEEP: the last lines; failed_run stays 1 unless $failed == 0 and $passed > 0.
vm_summary() {
    if ((failed == 0 && passed > 0)); then failed_run=0; fi
    if ((failed_run || $1)); then printf 'work directory kept: %s\n' "$work"; fi
    printf '%d passed, %d failed\n' "$passed" "$failed"
    reported=1
}
