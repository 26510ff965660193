#!/usr/bin/env bash
# make bench-guest: the in-guest benchmark. A Linux guest under QEMU (TCG) runs fio and a
# metadata loop (tests/vm/guest/bench.sh) on test shares served by vfsd, QEMU's C virtiofsd
# and the Rust virtiofsd, each share in turn, the order rotating each round. Prints each metric's median per daemon and the ratios (tests/bench/guest-report.py),
# and writes them as JSON; with one guest for all (the default), also each daemon's share of
# each phase, from its scheduler times at the guest's marks (tests/bench/phase-marks.py).
# docs/benchmarks.md ("In a guest") says how to read it.
#
# Usage: tests/bench/guest.sh [OPTION]...
#   --rounds N         rounds, each running every daemon once (default 4)
#   --runtime S        seconds per fio job, after --ramp S more (default 5 and 1)
#   --files N          files in the metadata loop (default 2000)
#   --size-mb N        size of each fio file (default 256)
#   --iodepth N        fio's iodepth (default 16)
#   --engine E         fio engine in the guest: auto (default: the first guest's probe picks
#                      libaio, io_uring or psync), or one of them
#   --direct D         auto (default: 1 when it works), 1 or 0
#   --thread-pool-size N   every daemon's thread pool (default 0: the queue thread serves)
#   --vfsd PATH        vfsd (default build/vfsd), which also serves every guest's rootfs
#                      share; --vfsd-opts OPTS adds options to it (not to the rootfs share's)
#   --vfsd2 PATH       a second vfsd column (default: the same binary) with
#                      --vfsd2-opts OPTS added after --vfsd-opts' (default --queue-poll-us=0)
#                      and --vfsd2-label NAME (default "vfsd (poll 0)"); --no-vfsd2 drops it
#   --ref PATH         the C virtiofsd (default /usr/lib/qemu/virtiofsd); --no-ref drops it
#   --rust PATH        the Rust virtiofsd (default: what scripts/rust-virtiofsd.sh prints;
#                      its column is skipped, saying why, when that fails); --no-rust
#   --json FILE        results (default build/bench/guest.json)
#   --work DIR         the share (DIR/share) and each guest's raw results (DIR/runs/ROUND-NAME)
#                      (default build/bench/guest)
#   --keep             keep every guest's boot.sh work directory
#   --guest-each       one guest per daemon and round, instead of the default one guest per
#                      round: there every daemon serves its own share (DIR/shares/NAME, the
#                      fio files hard links) at once, and the guest takes them in turn, so
#                      that the numbers compared come from one boot (guests booted minutes
#                      apart differ by up to 2x; docs/benchmarks.md); the order, and which
#                      virtio-fs device serves which daemon, rotate each round
# Environment: GUEST_BENCH_VFSD_OPTS and GUEST_BENCH_VFSD2_OPTS are the defaults of
# --vfsd-opts and --vfsd2-opts. Root (QEMU, the daemons' chroot). Exits non-zero, printing no
# ratios, when a guest does not boot, fio or the metadata loop fails, or a daemon dies while
# its guest runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

rounds=4 runtime=5 ramp=1 files=2000 size_mb=256 iodepth=16 engine=auto direct=auto pool=0
vfsd=$repo/build/vfsd vfsd_opts=${GUEST_BENCH_VFSD_OPTS:-}
vfsd2="" vfsd2_opts=${GUEST_BENCH_VFSD2_OPTS---queue-poll-us=0} vfsd2_label="vfsd (poll 0)"
use_vfsd2=1 one_guest=1
ref=/usr/lib/qemu/virtiofsd use_ref=1
rust="" use_rust=1
json=$repo/build/bench/guest.json
top=$repo/build/bench/guest
keep=()

usage() {
    sed -n '8,37s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}
die() {
    printf 'bench-guest: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case $1 in
    --rounds) rounds=${2:?}; shift 2 ;;
    --runtime) runtime=${2:?}; shift 2 ;;
    --ramp) ramp=${2:?}; shift 2 ;;
    --files) files=${2:?}; shift 2 ;;
    --size-mb) size_mb=${2:?}; shift 2 ;;
    --iodepth) iodepth=${2:?}; shift 2 ;;
    --engine) engine=${2:?}; shift 2 ;;
    --direct) direct=${2:?}; shift 2 ;;
    --thread-pool-size) pool=${2:?}; shift 2 ;;
    --vfsd) vfsd=${2:?}; shift 2 ;;
    --vfsd-opts) vfsd_opts=$2; shift 2 ;;
    --vfsd2) vfsd2=${2:?}; shift 2 ;;
    --vfsd2-opts) vfsd2_opts=$2; shift 2 ;;
    --vfsd2-label) vfsd2_label=${2:?}; shift 2 ;;
    --no-vfsd2) use_vfsd2=0; shift ;;
    --ref) ref=${2:?}; shift 2 ;;
    --no-ref) use_ref=0; shift ;;
    --rust) rust=${2:?}; shift 2 ;;
    --no-rust) use_rust=0; shift ;;
    --json) json=${2:?}; shift 2 ;;
    --work) top=${2:?}; shift 2 ;;
    --keep) keep=(--keep); shift ;;
    --guest-each) one_guest=0; shift ;;
    -h | --help) usage 0 ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage 2 >&2 ;;
    esac
done
for n in rounds runtime ramp files size_mb iodepth pool; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "--${n//_/-} wants a number: ${!n}"
done
((rounds > 0 && runtime > 0 && files > 0 && size_mb > 0 && iodepth > 0)) ||
    die "--rounds, --runtime, --files, --size-mb and --iodepth want more than 0"
((EUID == 0)) || die "needs root (QEMU, the daemons' chroot sandbox)"

# --- the daemons: name, label, binary, spelling (vfsd and C share one), extra options ------
names=()
declare -A label=() bin=() kind=() extra=()
add_daemon() {
    [[ -x $3 ]] || die "$2: not found or not executable: $3"
    names+=("$1")
    label[$1]=$2 bin[$1]=$(realpath "$3") kind[$1]=$4 extra[$1]=$5
}
add_daemon vfsd vfsd "$vfsd" legacy "$vfsd_opts"
if ((use_vfsd2)); then
    add_daemon vfsd2 "$vfsd2_label" "${vfsd2:-$vfsd}" legacy "$vfsd_opts${vfsd_opts:+ }$vfsd2_opts"
fi
if ((use_ref)); then add_daemon c "C virtiofsd" "$ref" legacy ""; fi
rust_note=""
if ((use_rust)); then
    if [[ -z $rust ]] && ! rust=$("$repo/scripts/rust-virtiofsd.sh"); then
        rust="" rust_note="scripts/rust-virtiofsd.sh failed (see above)"
    fi
    if [[ -n $rust ]]; then add_daemon rust "Rust virtiofsd" "$rust" rust ""; fi
else
    rust_note="--no-rust"
fi
if [[ -n $rust_note ]]; then
    printf 'bench-guest: no Rust virtiofsd column: %s\n' "$rust_note" >&2
fi

# --- the share, its fio files, and cleanup ---------------------------------------------------
mkdir -p "$top"
top=$(realpath "$top")
share=$top/share
runs=$top/runs
mkdir -p "$share/fio"
rm -rf "$runs" "$share/out" "$share"/meta.*
mkdir -p "$runs"
for f in read write; do
    if [[ $(stat -c %s "$share/fio/$f.dat" 2>/dev/null || echo 0) != $((size_mb << 20)) ]]; then
        head -c $((size_mb << 20)) /dev/urandom >"$share/fio/$f.dat"
    fi
done

# cache_fio_files: the fio files into the host's page cache before a guest starts. On a host
# that pages out idle page cache (this one's DAMON pages out what was not touched for a
# minute) the first daemon of a round read them from disk and the others from memory
# (docs/benchmarks.md, "Session 15").
cache_fio_files() {
    cat "$share/fio/read.dat" "$share/fio/write.dat" >/dev/null
}

# The VM scripts as they are now: a 15-minute run must not pick up an edit to tests/vm halfway.
rm -rf "$top/vm"
cp -a "$repo/tests/vm" "$top/vm"
export VFSD_CACHE=${VFSD_CACHE:-$repo/.cache/vm} # the kernel and initramfs (tests/vm/common.sh)

daemon_pid="" boot_pid=""
daemon_pids=() # one guest for all
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if [[ -n $boot_pid ]]; then
        kill -TERM "$boot_pid" 2>/dev/null || true # boot.sh stops its QEMU and rootfs daemon
        wait "$boot_pid" 2>/dev/null || true
    fi
    local p
    for p in $daemon_pid "${daemon_pids[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# cpu_ticks PID: user+system CPU time of the process, all its threads, in clock ticks.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a stat <<<"${stat##*) }"
    printf '%d\n' $((stat[11] + stat[12]))
}

alive() { # PID running, not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# daemon_cmd NAME SOCK [SHARE]: the daemon's command line, in the caller's array cmd.
daemon_cmd() {
    local -a more
    local dir=${3:-$share}
    read -r -a more <<<"${extra[$1]}"
    if [[ ${kind[$1]} == rust ]]; then
        cmd=("${bin[$1]}" --socket-path="$2" --shared-dir="$dir" --cache=auto
            --sandbox=chroot --thread-pool-size="$pool")
    else
        cmd=("${bin[$1]}" --socket-path="$2" -o source="$dir" -o cache=auto
            -o sandbox=chroot --thread-pool-size="$pool")
    fi
    cmd+=("${more[@]}")
}

fail_run() { # DIR MESSAGE: the run's logs, then stop
    printf 'bench-guest: %s\n' "$2" >&2
    printf -- '--- %s/boot.log (tail) ---\n' "$1" >&2
    tail -n 25 "$1/boot.log" >&2 2>/dev/null || echo "(none)" >&2
    printf -- '--- %s/daemon.log (tail) ---\n' "$1" >&2
    tail -n 10 "$1/daemon.log" >&2 2>/dev/null || echo "(none)" >&2
    exit 1
}

# wait_socket DIR NAME PID SOCK: daemon NAME (PID) listens on SOCK within 10 s, or the run stops.
wait_socket() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -S $4 ]] && return
        alive "$3" || fail_run "$1" "${label[$2]} exited before creating its socket"
        sleep 0.1
    done
    fail_run "$1" "${label[$2]} did not create $4 within 10 s"
}

# bench_env: the guest script's settings, as boot.sh arguments, in guest_env.
bench_env() {
    guest_env=(--env "BENCH_RUNTIME=$runtime" --env "BENCH_RAMP=$ramp" --env "BENCH_FILES=$files"
        --env "BENCH_SIZE_MB=$size_mb" --env "BENCH_IODEPTH=$iodepth"
        --env "BENCH_ENGINE=$engine" --env "BENCH_DIRECT=$direct")
}

# pin_engine INFO_TXT: every later guest uses what the first one's probe chose.
pin_engine() {
    [[ $engine == auto || $direct == auto ]] || return 0
    engine=$(awk '$1 == "engine" { print $2 }' "$1")
    direct=$(awk '$1 == "direct" { print $2 }' "$1")
    printf 'bench-guest: fio in the guest: ioengine=%s direct=%s\n' "$engine" "$direct"
}

# run_one ROUND NAME: one guest against daemon NAME; raw results into $runs/ROUND-NAME/.
run_one() {
    local r=$1 name=$2 dir=$runs/$1-$2 sock=$top/test.sock i rc=0 start secs
    local -a cmd
    mkdir -p "$dir"
    rm -rf "$share/out" "$share"/meta.* "$sock"
    sync -f "$share/fio" # the previous guest's writes are not written back during this one
    daemon_cmd "$name" "$sock"
    printf '%s\n' "${cmd[*]}" >"$dir/cmd"
    setsid "${cmd[@]}" >"$dir/daemon.log" 2>&1 </dev/null &
    daemon_pid=$!
    wait_socket "$dir" "$name" "$daemon_pid" "$sock"

    cache_fio_files
    cut -d' ' -f1 /proc/loadavg >"$dir/load" # other work on the host shows here
    bench_env
    start=${EPOCHREALTIME/./}
    "$top/vm/boot.sh" --test-socket "$sock" --script "$top/vm/guest/bench.sh" \
        --daemon "${bin[vfsd]}" \
        --timeout $((4 * (runtime + ramp) + 240)) "${keep[@]}" \
        "${guest_env[@]}" >"$dir/boot.log" 2>&1 &
    boot_pid=$!
    # The daemon exits once QEMU disconnects; before the guest's script has ended, that is a
    # crash, and the guest would wait for it until boot.sh's timeout.
    # Its CPU time is sampled until it exits (the last sample is at most 0.5 s old).
    local ticks=0 t
    while alive "$boot_pid"; do
        if t=$(cpu_ticks "$daemon_pid"); then ticks=$t; fi
        if ! alive "$daemon_pid" && ! grep -q 'VFSD-GUEST-EXIT' "$dir/boot.log"; then
            sleep 3
            if alive "$boot_pid" && ! grep -q 'VFSD-GUEST-EXIT' "$dir/boot.log"; then
                fail_run "$dir" "${label[$name]} died while its guest was running (round $r)"
            fi
        fi
        sleep 0.5
    done
    wait "$boot_pid" || rc=$?
    boot_pid=""
    secs=$(((${EPOCHREALTIME/./} - start) / 1000000))
    printf '%s\n' "$((ticks * 100 / $(getconf CLK_TCK)))" >"$dir/daemon-cpu-cs"
    ((rc == 0)) || fail_run "$dir" "round $r, ${label[$name]}: the guest run failed (boot.sh status $rc)"

    for ((i = 0; i < 100; i++)); do alive "$daemon_pid" || break; sleep 0.1; done
    if alive "$daemon_pid"; then
        printf 'bench-guest: %s still running 10 s after its guest ended; killed\n' "${label[$name]}" >&2
        kill -KILL -- "-$daemon_pid" 2>/dev/null || true
    fi
    rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=""
    ((rc <= 128)) || fail_run "$dir" "${label[$name]} was killed by signal $((rc - 128)) (round $r)"
    if ((rc != 0)); then
        printf 'bench-guest: %s exited with status %d after its guest (round %s)\n' \
            "${label[$name]}" "$rc" "$r" >&2
    fi
    [[ -f $share/out/fio.json && -f $share/out/meta.txt ]] ||
        fail_run "$dir" "round $r, ${label[$name]}: the guest left no results"
    mv "$share/out"/* "$dir/"
    printf '[%s] round %d/%d  %-16s %4d s\n' "$(date +%T)" "$r" "$rounds" "${label[$name]}" "$secs"
    pin_engine "$dir/info.txt"
}

# run_one_guest ROUND: every daemon at once on its own share, one guest taking them in turn
# (the default); the order, and so which virtio-fs device each daemon serves, rotates each
# round. Raw results into $runs/ROUND-NAME/ as run_one leaves them.
run_one_guest() {
    local r=$1 dir=$runs/guest-$1 name k rc=0 start secs i t sh marks_pid boot_tmp
    local -a cmd order=() shares_arg=() extra_arg=() marks_args=()
    local -A pid_of=() sock_of=() ticks=()
    mkdir -p "$dir"
    for ((k = 0; k < ${#names[@]}; k++)); do order+=("${names[(k + r - 1) % ${#names[@]}]}"); done
    k=0
    for name in "${order[@]}"; do
        sh=$top/shares/$name
        rm -rf "$sh"
        mkdir -p "$sh/fio"
        ln "$share/fio/read.dat" "$share/fio/write.dat" "$sh/fio/"
        sync -f "$sh/fio" # the previous guest's writes are not written back during this one
        sock_of[$name]=$top/$name.sock
        rm -f "${sock_of[$name]}"
        daemon_cmd "$name" "${sock_of[$name]}" "$sh"
        printf '%s\n' "${cmd[*]}" >"$dir/cmd-$name"
        setsid "${cmd[@]}" >"$dir/daemon-$name.log" 2>&1 </dev/null &
        pid_of[$name]=$! ticks[$name]=0
        daemon_pids+=("$!")
        if ((k == 0)); then
            shares_arg+=("test:$name")
        else
            shares_arg+=("test$((k + 1)):$name")
            extra_arg+=(--extra-share "test$((k + 1))=${sock_of[$name]}")
        fi
        k=$((k + 1))
    done
    for name in "${order[@]}"; do
        wait_socket "$dir" "$name" "${pid_of[$name]}" "${sock_of[$name]}"
    done
    cache_fio_files
    cut -d' ' -f1 /proc/loadavg >"$dir/load"
    bench_env
    start=${EPOCHREALTIME/./}
    # boot.sh's work directory alone in a directory of its own (which the guest must see, as
    # boot.sh's), so that phase-marks.py finds the console there.
    boot_tmp=$(mktemp -d "${VFSD_BOOT_TMPDIR:-/var/tmp}/vfsd-bench.XXXXXX")
    VFSD_BOOT_TMPDIR=$boot_tmp "$top/vm/boot.sh" --test-socket "${sock_of[${order[0]}]}" "${extra_arg[@]}" \
        --script "$top/vm/guest/bench.sh" --daemon "${bin[vfsd]}" \
        --timeout $((${#names[@]} * (4 * (runtime + ramp) + 120) + 240)) "${keep[@]}" \
        "${guest_env[@]}" --env "BENCH_SHARES=$(IFS=,; echo "${shares_arg[*]}")" --env "BENCH_ROUNDS=1" \
        >"$dir/boot.log" 2>&1 &
    boot_pid=$!
    marks_args=()
    for name in "${order[@]}"; do marks_args+=(--daemon "$name=${pid_of[$name]}"); done
    /usr/bin/python3 "$here/phase-marks.py" --dir "$boot_tmp" --boot-pid "$boot_pid" \
        --out "$dir/marks" "${marks_args[@]}" 2>"$dir/marks.err" &
    marks_pid=$!
    while alive "$boot_pid"; do
        for name in "${order[@]}"; do
            if t=$(cpu_ticks "${pid_of[$name]}"); then ticks[$name]=$t; fi
            if ! alive "${pid_of[$name]}" && ! grep -q 'VFSD-GUEST-EXIT' "$dir/boot.log"; then
                sleep 3
                if alive "$boot_pid" && ! grep -q 'VFSD-GUEST-EXIT' "$dir/boot.log"; then
                    fail_run "$dir" "${label[$name]} died while the guest was running (round $r)"
                fi
            fi
        done
        sleep 0.5
    done
    wait "$boot_pid" || rc=$?
    boot_pid=""
    wait "$marks_pid" || true
    if ((rc == 0 && ${#keep[@]} == 0)); then rm -rf "$boot_tmp"; fi
    secs=$(((${EPOCHREALTIME/./} - start) / 1000000))
    ((rc == 0)) || fail_run "$dir" "round $r: the guest run failed (boot.sh status $rc)"
    for name in "${order[@]}"; do
        for ((i = 0; i < 100; i++)); do alive "${pid_of[$name]}" || break; sleep 0.1; done
        kill -KILL -- "-${pid_of[$name]}" 2>/dev/null || true
        wait "${pid_of[$name]}" 2>/dev/null || true
        i=$top/shares/${order[0]}/out/1-$name
        [[ -f $i/fio.json && -f $i/meta.txt ]] ||
            fail_run "$dir" "round $r, ${label[$name]}: the guest left no results"
        mkdir -p "$runs/$r-$name"
        mv "$i"/* "$runs/$r-$name/"
        cp "$dir/cmd-$name" "$runs/$r-$name/cmd"
        cp "$dir/load" "$runs/$r-$name/load"
        grep "^$name " "$dir/marks" >"$runs/$r-$name/marks" 2>/dev/null || true
        printf '%s\n' "$((ticks[$name] * 100 / $(getconf CLK_TCK)))" >"$runs/$r-$name/daemon-cpu-cs"
    done
    daemon_pids=()
    printf '[%s] round %d/%d  one guest, %s: %d s\n' "$(date +%T)" "$r" "$rounds" \
        "$(for n in "${order[@]}"; do printf '[%s] ' "${label[$n]}"; done)" "$secs"
    pin_engine "$runs/$r-${order[0]}/info.txt"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'bench-guest: %d rounds of %s; fio %s+%s s per job, iodepth %s; %s files\n' \
    "$rounds" "$(for n in "${names[@]}"; do printf '[%s] ' "${label[$n]}"; done)" \
    "$ramp" "$runtime" "$iodepth" "$files"
if ((one_guest)); then
    for ((r = 1; r <= rounds; r++)); do run_one_guest "$r"; done
else
    for ((r = 1; r <= rounds; r++)); do
        for ((k = 0; k < ${#names[@]}; k++)); do
            run_one "$r" "${names[(k + r - 1) % ${#names[@]}]}"
        done
    done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

report_args=()
for n in "${names[@]}"; do report_args+=(--daemon "$n" "${label[$n]}" "$(cat "$runs/1-$n/cmd")"); done
mkdir -p "$(dirname "$json")"
/usr/bin/python3 "$here/guest-report.py" --runs "$runs" --rounds "$rounds" --json "$json" \
    --rust-note="$rust_note" --load "$load_before" --load "$load_after" \
    --commit "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
    "${report_args[@]}"
