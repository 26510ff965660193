#!/usr/bin/env bash
# The in-guest benchmark's phase marks without a guest (seconds): tests/bench/phase-marks.py
# follows a console file that this script writes as a guest would, around phases in which a
# stand-in "daemon" (a process with two threads) is busy, idle, or busy while a competitor
# holds the CPUs; guest-report.py's share of each phase must say which.
#   busy      both threads spin for the whole phase: the share is about 2 (two threads)
#   idle      the process sleeps: the share is about 0
#   contended one thread spins while 3 × nproc spinners compete: its run plus its wait for a
#             CPU still fill the phase (about 1, a little more: the other thread wakes every
#             5 ms and waits too), where its run time alone would not
# Also: a mark for a daemon not named, a torn line and a mark before the console exists are
# ignored; the sampler ends with the process it watches (boot.sh's stand-in).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/host-test.sh
source "$here/../lib/host-test.sh"

work=$(mktemp -d)
pids=()
cleanup() {
	exec 2>/dev/null # no "Killed" job notices
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

# The stand-in daemon: spins its two threads while $work/busy holds "2", one while it holds
# "1", and sleeps while it holds "0".
cat >"$work/daemon.py" <<'PY'
import hashlib, sys, threading, time
ctl = sys.argv[1]
block = bytes(1 << 20)  # hashed with the GIL released, so both threads really run
def mode():
    try:
        with open(ctl) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0
def spin(k):
    while True:
        if mode() > k:
            t = time.monotonic() + 0.01
            while time.monotonic() < t:
                hashlib.sha256(block).digest()
        else:
            time.sleep(0.005)
threading.Thread(target=spin, args=(1,), daemon=True).start()
spin(0)
PY
echo 0 >"$work/busy"
/usr/bin/python3 "$work/daemon.py" "$work/busy" &
daemon=$!
pids+=("$daemon")
sleep 300 &
boot=$!
pids+=("$boot")

mkdir -p "$work/boot"
/usr/bin/python3 "$here/phase-marks.py" --dir "$work/boot" --boot-pid "$boot" \
	--out "$work/marks" --daemon "d=$daemon" 2>"$work/marks.err" &
sampler=$!
pids+=("$sampler")
sleep 0.5 # the sampler waits for the console to appear
mkdir -p "$work/boot/vfsd-boot.test"
console=$work/boot/vfsd-boot.test/console.log
say() { printf '%s\r\n' "$1" >>"$console"; }
say "Booting the guest"
sleep 0.5
phase() { # NAME MODE SECONDS
	echo "$2" >"$work/busy"
	sleep 0.1
	say $'\e[0mVFSD-MARK d '"$1"' start'
	sleep "$3"
	say "VFSD-MARK d $1 end"
	echo 0 >"$work/busy"
	sleep 0.1
}
phase busy 2 1
phase idle 0 1
hogs=()
for ((i = 0; i < 3 * $(nproc); i++)); do
	/usr/bin/python3 -c 'while True: pass' &
	hogs+=("$!")
	pids+=("$!")
done
phase contended 1 1.5
{
	kill -KILL "${hogs[@]}"
	wait "${hogs[@]}"
} 2>/dev/null
say "VFSD-MARK other busy start"
say "VFSD-MARK d torn"
kill "$boot"
for ((i = 0; i < 50; i++)); do kill -0 "$sampler" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$sampler" 2>/dev/null; then
	check sampler-ends 1 "phase-marks.py still runs 5 s after boot.sh's stand-in ended"
else
	check sampler-ends 0
fi

# guest-report.py's own arithmetic, on the marks as the sampler wrote them.
shares=$(/usr/bin/python3 - "$here" "$work/marks" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("report", sys.argv[1] + "/guest-report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)
for phase, (run, wait, secs) in sorted(report.read_marks(sys.argv[2]).items()):
    print(phase, "%.2f" % ((run + wait) / secs), "%.2f" % (run / secs))
PY
)
printf '%s\n' "$shares" | sed 's/^/  share /'
share_of() { awk -v p="$1" -v f="$2" '$1 == p { print $f }' <<<"$shares"; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x <= hi) }'; }

s=$(share_of busy 2)
within "$s" 1.6 2.2
check share-busy $? "two spinning threads over the phase: share $s, wanted about 2"
s=$(share_of idle 2)
within "$s" 0 0.1
check share-idle $? "a sleeping daemon: share $s, wanted about 0"
s=$(share_of contended 2) r=$(share_of contended 3)
within "$s" 0.8 1.4
check share-contended $? "one spinning thread among $((3 * $(nproc))) spinners: run + wait share $s, wanted about 1"
within "$r" 0 0.7
check contended-waits $? "one spinning thread among $((3 * $(nproc))) spinners: run share $r, wanted well under 1 (it waits for a CPU)"
n=$(wc -l <"$work/marks")
[[ $n == 6 ]]
check marks-only-named $? "$n marks recorded, wanted the 6 of daemon d (not the other daemon's, not the torn line)"
summary
