#!/usr/bin/env bash
# The host kernel as vfsd's FUSE client: vfsd mounts the share on a host directory through
# /dev/fuse (--fuse-mountpoint) and the checks run there in seconds, no VM. The same FUSE
# server and filesystem serve a guest over vhost-user; tests/vm is the full proof.
#   tests/fusedev/run.sh [DAEMON]      (root: it mounts, and the transcript changes users)
# Prints "PASS name" / "FAIL name reason" lines and ends with "N passed, M failed".
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
posix=${POSIX_BIN:-$repo/build/posix/posix-transcript}
# Under /tmp: the plain directory the transcript is compared with is on the share's filesystem.
work=$(mktemp -d -t vfsd-fusedev.XXXXXX)
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary, exit_status_of
declare -A pid_of=()

cleanup() {
	local d
	for d in "${!pid_of[@]}"; do
		mountpoint -q "$d/mnt" && umount -l "$d/mnt"
		kill -KILL "${pid_of[$d]}" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# start NAME ARGS...: vfsd serves $work/NAME/share on $work/NAME/mnt; sets d to $work/NAME.
start() {
	d=$work/$1
	shift
	mkdir -p "$d/share" "$d/mnt"
	"$daemon" --shared-dir="$d/share" --fuse-mountpoint="$d/mnt" "$@" >"$d/log" 2>&1 &
	pid_of[$d]=$!
	for _ in $(seq 100); do
		mountpoint -q "$d/mnt" && return 0
		kill -0 "${pid_of[$d]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "   vfsd did not mount: $(tail -n 3 "$d/log")"
	return 1
}

# stop: unmounting ends the daemon; returns its exit status (124 if it runs on).
stop() {
	local rc
	umount "$d/mnt" || umount -l "$d/mnt"
	exit_status_of "${pid_of[$d]}"
	((rc == 124)) || unset "pid_of[$d]" # one that runs on is killed at exit
	((rc == 0)) || echo "   vfsd exit status $rc: $(tail -n 3 "$d/log")"
	return $rc
}

# posix NAME [--allow REGEX] ARGS...: the differential POSIX transcript (tests/posix/posix.c)
# in a plain directory and on the vfsd mount of a share on the same filesystem must be the
# same, except for the lines REGEX matches, and vfsd must end cleanly when unmounted.
posix() {
	local name=$1 why='' allowed='^$'
	shift
	if [[ ${1:-} == --allow ]]; then
		allowed=$2
		shift 2
	fi
	if ! start "$name" "$@"; then
		check "$name" 1 "no mount"
		return
	fi
	mkdir "$d/plain" "$d/mnt/run"
	"$posix" "$d/plain" >"$d/host.txt" 2>&1
	timeout 120 "$posix" "$d/mnt/run" >"$d/vfsd.txt" 2>&1 || why="transcript program failed: $(tail -n 1 "$d/vfsd.txt")"
	grep -Ev "$allowed" "$d/host.txt" >"$d/host.cmp"
	grep -Ev "$allowed" "$d/vfsd.txt" >"$d/vfsd.cmp"
	if [[ -z $why ]] && ! diff "$d/host.cmp" "$d/vfsd.cmp" >"$d/diff.txt"; then
		why="transcripts differ (host < > vfsd): $(grep '^[<>]' "$d/diff.txt" | head -n 4 | tr '\n' ' ')"
	fi
	if [[ -z $why ]] && (($(wc -l <"$d/host.txt") < 70)); then
		why="the transcript is short: $(wc -l <"$d/host.txt") lines"
	fi
	stop || why="${why:+$why; }vfsd did not end cleanly on unmount"
	check "$name" "${why:+1}${why:-0}" "$why"
}

[[ -x $posix ]] || {
	echo "FAIL setup: no $posix (make posix-transcript)"
	echo "0 passed, 1 failed"
	exit 1
}

posix posix-namespace --posix-acl --security-label
posix posix-chroot-cache-never-pool-handles --posix-acl --sandbox=chroot --cache=never --thread-pool-size=4 --inode-file-handles=mandatory
# With the writeback cache the kernel holds written pages and does not write them back before
# it asks for SEEK_DATA/SEEK_HOLE (fs/fuse/file.c, fuse_lseek), so vfsd's file has a hole
# where the kernel's cache has data: a property of the FUSE client, not of vfsd.
posix posix-none-writeback --allow '^seek-(data|hole)[a-z-]*:' --posix-acl --sandbox=none --writeback
# The sanitizer build without a sandbox and without seccomp, so LeakSanitizer can read /proc
# and ptrace the threads at exit: a leak or any other report fails it.
if [[ -x $repo/build/asan/vfsd ]]; then
	daemon_saved=$daemon
	daemon=$repo/build/asan/vfsd
	posix posix-asan-none-pool -o posix_acl --sandbox=none --seccomp=none --thread-pool-size=2
	daemon=$daemon_saved
fi

# A waiting lock that the process gives up: the host kernel sends INTERRUPT, vfsd ends the
# waiting SETLKW with EINTR, and the lock works again afterwards. POSIX (fcntl) and flock.
lock_interrupt() {
	local name=$1 kind=$2 out
	start "$name" --sandbox=none || {
		check "$name" 1 "no mount"
		return
	}
	echo data >"$d/share/f"
	out=$(timeout 20 python3 - "$d/share/f" "$d/mnt/f" "$kind" <<'PY' 2>&1
import fcntl, os, signal, sys, time
host, mnt, kind = sys.argv[1:]
lock = (lambda f, op: fcntl.lockf(f, op)) if kind == "posix" else (lambda f, op: fcntl.flock(f, op))
r, w = os.pipe()
holder = os.fork()
if holder == 0:  # a host process holds the lock on the share itself
    f = open(host, "r+")
    lock(f, fcntl.LOCK_EX)
    os.write(w, b"x")
    time.sleep(30)
    os._exit(0)
os.read(r, 1)
class Gave(Exception):
    pass
def give_up(sig, frame):
    raise Gave()
signal.signal(signal.SIGALRM, give_up)
f = open(mnt, "r+")
signal.alarm(1)
t = time.monotonic()
try:
    lock(f, fcntl.LOCK_EX)
    sys.exit("the lock was granted while the host process held it")
except Gave:
    pass
waited = time.monotonic() - t
assert waited < 5, f"the interrupted lock returned after {waited:.1f} s"
try:
    lock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    sys.exit("a non-blocking lock was granted while the host process held it")
except OSError:
    pass
os.kill(holder, signal.SIGKILL)
os.waitpid(holder, 0)
lock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now
print("ok")
PY
)
	local why=''
	[[ $out == ok ]] || why="$(tail -n 2 <<<"$out" | tr '\n' ' ')"
	stop || why="${why:+$why; }vfsd did not end cleanly on unmount"
	check "$name" "${why:+1}${why:-0}" "$why"
}
lock_interrupt interrupt-posix-lock posix
lock_interrupt interrupt-flock flock

# --readonly as the host kernel sees it: reads work, every change is EROFS.
readonly_mount() {
	local why=''
	start readonly --readonly --sandbox=none || {
		check readonly 1 "no mount"
		return
	}
	echo data >"$d/share/f"
	mkdir "$d/share/dir"
	[[ $(cat "$d/mnt/f") == data ]] || why="cannot read f"
	for op in "touch $d/mnt/new" "mkdir $d/mnt/newdir" "rm $d/mnt/f" "mv $d/mnt/f $d/mnt/g" \
		"ln -s f $d/mnt/sl" "chmod 600 $d/mnt/f" "rmdir $d/mnt/dir"; do
		out=$($op 2>&1) && why="${why:+$why; }'$op' succeeded"
		[[ $out == *"Read-only file system"* ]] || why="${why:+$why; }'$op': $out"
	done
	out=$( (echo x >>"$d/mnt/f") 2>&1) && why="${why:+$why; }append succeeded"
	[[ $(cat "$d/share/f") == data && -d $d/share/dir ]] || why="${why:+$why; }the share changed"
	stop || why="${why:+$why; }vfsd did not end cleanly on unmount"
	check readonly "${why:+1}${why:-0}" "$why"
}
readonly_mount

# --xattrmap through the kernel: the guest's trusted.* stored in the host's user.virtiofs.*,
# the host's own names hidden and out of reach.
xattrmap_mount() {
	local why='' list
	start xattrmap --sandbox=none --xattrmap=:map::user.virtiofs.: || {
		check xattrmap 1 "no mount"
		return
	}
	echo data >"$d/share/f"
	setfattr -n user.host -v h "$d/share/f"
	setfattr -n trusted.t -v 1 "$d/mnt/f" || why="setfattr trusted.t failed"
	[[ $(getfattr --absolute-names --only-values -n user.virtiofs.trusted.t "$d/share/f" 2>&1) == 1 ]] ||
		why="${why:+$why; }the host has no user.virtiofs.trusted.t"
	list=$(getfattr -d -m - --absolute-names "$d/mnt/f" 2>&1)
	[[ $list == *'trusted.t="1"'* && $list != *user.host* && $list != *user.virtiofs* ]] ||
		why="${why:+$why; }the mount lists: $(tr '\n' ' ' <<<"$list")"
	getfattr -n user.host "$d/mnt/f" >/dev/null 2>&1 && why="${why:+$why; }user.host is reachable"
	stop || why="${why:+$why; }vfsd did not end cleanly on unmount"
	check xattrmap "${why:+1}${why:-0}" "$why"
}
xattrmap_mount

summary
