#!/usr/bin/python3
"""The host half of the in-guest benchmark's phase marks (run by tests/bench/guest.sh).

The guest prints "VFSD-MARK NAME PHASE start|end" on its console as each fio job and each
metadata phase on daemon NAME's share starts and ends (tests/vm/guest/bench.sh). This follows
that console as QEMU writes it (tail -F, so a line is read as soon as it is written) and, for
each mark, records the host's monotonic time and the scheduler's two totals for every thread
of daemon NAME (/proc/PID/task/TID/schedstat): the time it ran and the time it was ready but
waited for a CPU. The difference between a phase's two marks is what the daemon spent on the
phase, waiting for a core included; guest-report.py turns it into a share of the phase.

Usage: phase-marks.py --dir BOOT_TMPDIR --boot-pid PID --out FILE --daemon NAME=PID...
BOOT_TMPDIR is where boot.sh makes its work directory (VFSD_BOOT_TMPDIR), so the console is
BOOT_TMPDIR/vfsd-boot.*/console.log; the sampler ends when boot.sh (PID) does. FILE gets one
line per mark: NAME PHASE EVENT HOST_NS RUN_NS WAIT_NS THREADS. A thread that ended between
two marks takes its times with it: the daemons here keep their threads for the run.
Stdlib only.
"""
import argparse
import glob
import os
import subprocess
import sys
import time


def schedstat(pid):
    run = wait = threads = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                r, w, _ = f.read().split()
        except (OSError, ValueError):
            continue  # the thread ended after the listing
        run += int(r)
        wait += int(w)
        threads += 1
    return run, wait, threads


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--boot-pid", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--daemon", action="append", default=[], metavar="NAME=PID")
    a = ap.parse_args()
    pids = {}
    for d in a.daemon:
        name, _, pid = d.partition("=")
        if not name or not pid.isdigit():
            ap.error(f"--daemon wants NAME=PID: {d}")
        pids[name] = int(pid)

    console = None
    while console is None:
        found = glob.glob(os.path.join(a.dir, "vfsd-boot.*", "console.log"))
        if found:
            console = found[0]
        elif not alive(a.boot_pid):
            return 0
        else:
            time.sleep(0.2)

    tail = subprocess.Popen(["tail", "-n", "+1", "-F", f"--pid={a.boot_pid}", console],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with open(a.out, "w") as out:
        for raw in tail.stdout:
            line = raw.decode("utf-8", "replace")
            at = line.find("VFSD-MARK ")
            if at < 0:
                continue
            t = time.monotonic_ns()
            fields = line[at:].split()
            if len(fields) != 4 or fields[3] not in ("start", "end"):
                continue
            _, name, phase, event = fields
            if name not in pids:
                continue
            st = schedstat(pids[name])
            if st is None:
                continue
            out.write(f"{name} {phase} {event} {t} {st[0]} {st[1]} {st[2]}\n")
            out.flush()
    tail.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
