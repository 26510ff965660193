#!/bin/bash
# Two guests on one share, each through its own vfsd (tests/vm/run.sh --guests 2): a POSIX
# lock and a flock lock taken in guest 1 are seen in guest 2, whose blocking lock waits until
# guest 1 lets go. The guests meet through marker files in the share, polled (the guest's
# cache=auto keeps a negative entry for 1 s at most).
# Usage: two-guests.sh TESTDIR, with VFSD_GUEST=1 or 2 (set by the initramfs from the kernel
# command line).
set -uo pipefail
T=${1:?usage: two-guests.sh TESTDIR}
me=${VFSD_GUEST:?not run as one of two guests}
D=$T/two-guests
W=$T/two-guests-work$me
export D W
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# mark NAME: a marker the other guest waits for (written whole, then renamed)
mark() {
    echo "$(date +%s.%N)" >"$D/.$1.tmp" && mv "$D/.$1.tmp" "$D/$1"
}
# await NAME: until the other guest's marker exists (90 s at most: both guests boot under TCG)
await() {
    local i
    for ((i = 0; i < 900; i++)); do
        [[ -e $D/$1 ]] && return 0
        sleep 0.1
    done
    fail "no '$1' from the other guest after 90 s"
}

locker() { # the Python half: KIND (posix|flock) ACTION (hold|probe|wait) FILE
    python3 - "$@" <<'PY'
import fcntl, os, sys, time
kind, action, path = sys.argv[1:4]
D = os.path.dirname(path)
lock = (lambda f, op: fcntl.lockf(f, op)) if kind == "posix" else (lambda f, op: fcntl.flock(f, op))
f = open(path, "r+")
def mark(name):
    with open(os.path.join(D, "." + name + ".tmp"), "w") as m:
        m.write(str(time.time()))
    os.rename(os.path.join(D, "." + name + ".tmp"), os.path.join(D, name))
def await_(name):
    for _ in range(900):
        if os.path.exists(os.path.join(D, name)):
            return
        time.sleep(0.1)
    sys.exit(f"no '{name}' from the other guest after 90 s")
if action == "hold":
    lock(f, fcntl.LOCK_EX)
    mark(f"{kind}-held")
    await_(f"{kind}-waiting")
    time.sleep(2)  # the other guest is blocked by now
    mark(f"{kind}-releasing")
    lock(f, fcntl.LOCK_UN)
    await_(f"{kind}-granted")
elif action == "probe":
    await_(f"{kind}-held")
    try:
        lock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sys.exit("granted while guest 1 holds it")
    except OSError:
        pass
elif action == "wait":
    mark(f"{kind}-waiting")
    t = time.time()
    lock(f, fcntl.LOCK_EX)
    got = time.time()
    released = os.path.join(D, f"{kind}-releasing")
    if not os.path.exists(released):
        sys.exit(f"granted after {got - t:.1f} s, before guest 1 released it")
    mark(f"{kind}-granted")
    lock(f, fcntl.LOCK_UN)
PY
}

t_posix_lock_held_in_guest1() { locker posix hold "$D/posix-file"; }
t_flock_held_in_guest1() { locker flock hold "$D/flock-file"; }
t_posix_lock_seen_in_guest2() { locker posix probe "$D/posix-file"; }
t_posix_lock_waits_for_guest1() { locker posix wait "$D/posix-file"; }
t_flock_seen_in_guest2() { locker flock probe "$D/flock-file"; }
t_flock_waits_for_guest1() { locker flock wait "$D/flock-file"; }
export_checks locker mark await

mkdir -p "$W"
if ((me == 1)); then
    rm -rf "$D" && mkdir -p "$D" && : >"$D/posix-file" && : >"$D/flock-file" && mark ready
    run posix-lock-held-in-guest1 120
    run flock-held-in-guest1 120
    await guest2-done
else
    await ready
    run posix-lock-seen-in-guest2 120
    run posix-lock-waits-for-guest1 120
    run flock-seen-in-guest2 120
    run flock-waits-for-guest1 120
    mark guest2-done
fi
rm -rf "$W"
((failures == 0))
