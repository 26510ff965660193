#!/bin/bash
# The in-guest benchmark's guest half (tests/bench/guest.sh): fio 4 KiB random read and
# write and 1 MiB sequential read and write on the test share, then a metadata loop over BENCH_FILES files in a fresh directory (create, stat, ls -l,
# unlink; each phase after the create starts from dropped caches). Raw results go to
# TESTDIR/out/ (fio.json, meta.txt, info.txt) for the host to read.
#
# Usage: bench.sh TESTDIR. TESTDIR/fio/read.dat and write.dat exist (the host made them).
# Environment (boot.sh --env): BENCH_RUNTIME and BENCH_RAMP (s per fio job, after a ramp),
# BENCH_IODEPTH, BENCH_SIZE_MB (the span fio uses of each file), BENCH_FILES, BENCH_ENGINE
# (auto, libaio, io_uring or psync), BENCH_DIRECT (auto, 1 or 0).
# One guest for every daemon (tests/bench/guest.sh's default): BENCH_SHARES=TAG:NAME,...
# names the shares, "test" first and the others mounted at /run/TAG (boot.sh --extra-share),
# each with its own fio files, and BENCH_ROUNDS=R runs both halves on each share in turn, R
# times, the order rotating each round; results go to TESTDIR/out/ROUND-NAME/. There each fio
# job and metadata phase prints "VFSD-MARK NAME PHASE start" and "... end" on the console, for
# the host's tests/bench/phase-marks.py.
set -euo pipefail

T=${1:?usage: bench.sh TESTDIR}
runtime=${BENCH_RUNTIME:-5}
ramp=${BENCH_RAMP:-1}
iodepth=${BENCH_IODEPTH:-16}
size_mb=${BENCH_SIZE_MB:-256}
nfiles=${BENCH_FILES:-2000}
engine=${BENCH_ENGINE:-auto}
direct=${BENCH_DIRECT:-auto}
out=$T/out
scratch=/tmp/bench # the guest's tmpfs: fio's own files are not share traffic
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

# give_up NAME REASON: one failure line, and no further jobs (the host rejects the run).
give_up() {
    report "$1" 1 "$2"
    exit 1
}

mkdir -p "$out" "$scratch"
for f in read write; do
    [[ -f $T/fio/$f.dat ]] || give_up setup "no $T/fio/$f.dat (the host makes it)"
done

# With "auto", the first engine and O_DIRECT setting a small read works with (the host pins
# the first guest's choice for the others): virtio-fs takes O_DIRECT with cache=auto, and the
# guest kernel has libaio and io_uring, but info.txt says which one ran.
probe() {
    fio --name=probe --filename="$T/fio/read.dat" --rw=randread --bs=4k --size=1m \
        --io_size=256k --ioengine="$1" --direct="$2" --iodepth=4 \
        --output="$scratch/probe.log" >/dev/null 2>&1
}
if [[ $engine == auto || $direct == auto ]]; then
    engines=(libaio io_uring psync) directs=(1 0)
    [[ $engine == auto ]] || engines=("$engine")
    [[ $direct == auto ]] || directs=("$direct")
    chosen=""
    for d in "${directs[@]}"; do
        for e in "${engines[@]}"; do
            if probe "$e" "$d"; then
                chosen="$e $d"
                break 2
            fi
        done
    done
    [[ -n $chosen ]] || give_up fio-probe "no fio engine works on the share: $(tail -n 3 "$scratch/probe.log" 2>/dev/null | tr '\n' ' ')"
    read -r engine direct <<<"$chosen"
fi

# Where the guest runs the work and takes the shares' interrupts. Left to the guest's
# scheduler, fio landed now on the vCPU that takes the request queue's interrupt and now on
# the other, and the two differ by more than 2x under TCG (8k against 20k IOPS of random
# read, the same daemon; docs/benchmarks.md, "Session 15"): a round's ratios measured the
# scheduler. So every virtio request and hiprio interrupt goes to the last CPU, and this
# script, with fio and the metadata loop it starts, runs on CPU 0.
pinned="no (one CPU)"
pin_cpus() {
    local ncpu irq name last
    ncpu=$(nproc)
    ((ncpu > 1)) || return 0
    last=$((ncpu - 1))
    for irq in /proc/irq/[0-9]*; do
        for name in "$irq"/virtio*; do
            case ${name##*/} in
            virtio*-requests* | virtio*-hiprio)
                echo "$last" >"$irq/smp_affinity_list" ||
                    give_up pin "cannot move interrupt ${irq##*/} (${name##*/}) to CPU $last"
                ;;
            esac
        done
    done
    taskset -pc 0 $$ >/dev/null || give_up pin "taskset cannot pin the benchmark to CPU 0"
    pinned="work on CPU 0, virtio request interrupts on CPU $last"
}
pin_cpus

info() { # OUTDIR
    {
        printf 'engine %s\ndirect %s\niodepth %s\nruntime %s\nramp %s\nsize_mb %s\nfiles %s\n' \
            "$engine" "$direct" "$iodepth" "$runtime" "$ramp" "$size_mb" "$nfiles"
        printf 'cpus %s\n' "$pinned"
        printf 'kernel %s\nfio %s\n' "$(uname -r)" "$(fio --version)"
    } >"$1/info.txt"
}

# mark_jobs NAME JOB: with a NAME, fio's lines that print "VFSD-MARK NAME JOB start" on the
# console as job JOB starts (after its file is laid out, before its ramp) and "... end" as it
# ends; the host's tests/bench/phase-marks.py reads the daemon NAME's scheduler times at each.
mark_jobs() {
    [[ -n $1 ]] || return 0
    printf "exec_prerun=sh -c 'echo VFSD-MARK %s %s start >/dev/console'\n" "$1" "$2"
    printf "exec_postrun=sh -c 'echo VFSD-MARK %s %s end >/dev/console'\n" "$1" "$2"
}

# The four jobs in one fio run (fio takes seconds to start under TCG), one after the other
# (stonewall), on share DIR; fio.json into OUTDIR; each job marked for daemon NAME if given.
run_fio() { # DIR OUTDIR [NAME]
    local d=$1 o=$2 m=${3:-} ok
    cat >"$scratch/jobs.fio" <<JOBS
[global]
ioengine=$engine
direct=$direct
iodepth=$iodepth
size=${size_mb}m
time_based
runtime=$runtime
ramp_time=$ramp
randrepeat=0
norandommap
stonewall
[randread]
filename=$d/fio/read.dat
rw=randread
bs=4k
$(mark_jobs "$m" randread)
[randwrite]
filename=$d/fio/write.dat
rw=randwrite
bs=4k
$(mark_jobs "$m" randwrite)
[seqread]
filename=$d/fio/read.dat
rw=read
bs=1m
$(mark_jobs "$m" seqread)
[seqwrite]
filename=$d/fio/write.dat
rw=write
bs=1m
$(mark_jobs "$m" seqwrite)
JOBS
    # In $scratch: fio writes each mark's output to JOB.prerun.txt in its directory.
    if ! (cd "$scratch" && fio --output-format=json --output="$scratch/fio.json" "$scratch/jobs.fio") \
        >"$scratch/fio.log" 2>&1; then
        give_up fio "fio failed on $d: $(cat "$scratch/fio.log" "$scratch/fio.json" 2>/dev/null |
            grep -m3 -i 'err' | tr '\n' ' ' | cut -c1-300)"
    fi
    ok=$(grep -c '"error" : 0,' "$scratch/fio.json" || true)
    ((ok == 4)) || give_up fio "$((4 - ok)) fio jobs reported an error on $d: $(grep '"error"' "$scratch/fio.json" | tr -s ' \n' ' ')"
    cp "$scratch/fio.json" "$o/"
}

# The metadata loop, in one process (an exec per file would measure the guest's exec). Each
# phase after the create starts from dropped caches: with cache=auto the guest trusts an entry
# for 1 s, so a warm phase's share of requests would depend on how fast the one before it was.
# ls -l runs as the real ls; its binary and the lookups it makes (passwd, group) are warmed
# first, on /. Each phase is marked on the console for daemon NAME if given, as fio's jobs are.
run_meta() { # DIR OUTDIR [NAME]: meta.txt into OUTDIR
    local meta=$1/meta.$$.$RANDOM
    if ! /usr/bin/python3 - "$meta" "$nfiles" "${3:-}" >"$2/meta.txt" 2>"$scratch/meta.log" <<'PY'; then
import os, subprocess, sys, time

d, n, mark_name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
console = open("/dev/console", "w") if mark_name else None


def mark(phase, event):
    if console:
        console.write("VFSD-MARK %s %s %s\n" % (mark_name, phase, event))
        console.flush()


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def phase(name, fn):
    mark(name, "start")
    t0 = time.monotonic()
    fn()
    t = time.monotonic() - t0
    mark(name, "end")
    print("%s %.6f" % (name, t))


def create():
    for p in names:
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def stat():
    for p in names:
        os.stat(p)


def ls():
    subprocess.run(["ls", "-l", d], stdout=subprocess.DEVNULL, check=True)


def unlink():
    for p in names:
        os.unlink(p)


os.mkdir(d)
phase("create", create)
drop_caches()
phase("stat", stat)
drop_caches()
subprocess.run(["ls", "-l", "/"], stdout=subprocess.DEVNULL, check=True)
phase("ls", ls)
drop_caches()
phase("unlink", unlink)
os.rmdir(d)
PY
        give_up metadata "the metadata loop failed on $1: $(tail -n 1 "$scratch/meta.log")"
    fi
}

# warm_up DIR: the four fio jobs and the metadata loop once, short and not measured. Under
# TCG a guest's first run of fio (and of the loop's Python) translates their code as it goes,
# and the daemon that came first in a guest was measured on a colder guest than the others
# (random read 14.5k against 18.4k IOPS for the same daemon; docs/benchmarks.md, "Session 15").
warm_up() {
    local runtime=2 ramp=0 nfiles=200
    mkdir -p "$scratch/warm"
    run_fio "$1" "$scratch/warm"
    run_meta "$1" "$scratch/warm"
}

if [[ -z ${BENCH_SHARES:-} ]]; then
    warm_up "$T"
    info "$out"
    run_fio "$T" "$out"
    report fio 0
    run_meta "$T" "$out"
    report metadata 0
    exit 0
fi
tags=() names=() dirs=()
IFS=, read -r -a pairs <<<"$BENCH_SHARES"
for p in "${pairs[@]}"; do
    tag=${p%%:*}
    tags+=("$tag") names+=("${p#*:}")
    if [[ $tag == test ]]; then
        dirs+=("$T")
        continue
    fi
    mkdir -p "/run/$tag"
    mount -t virtiofs "$tag" "/run/$tag" || give_up mount "cannot mount the share $tag"
    dirs+=("/run/$tag")
    for f in read write; do
        [[ -f /run/$tag/fio/$f.dat ]] || give_up setup "no fio/$f.dat on $tag (the host makes it)"
    done
done
n=${#names[@]} rounds=${BENCH_ROUNDS:-1}
warm_up "${dirs[0]}"
for ((r = 1; r <= rounds; r++)); do
    for ((k = 0; k < n; k++)); do
        i=$(((k + r - 1) % n))
        o=$out/$r-${names[i]}
        mkdir -p "$o"
        info "$o"
        run_fio "${dirs[i]}" "$o" "${names[i]}"
        run_meta "${dirs[i]}" "$o" "${names[i]}"
        echo "bench: round $r ${names[i]} done"
    done
done
report fio 0
report metadata 0
