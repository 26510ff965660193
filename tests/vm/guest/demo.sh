#!/bin/bash
# The guest side of `make demo`: shows a guest whose root and shared folder are served by vfsd.
# Usage: demo.sh SHAREDIR
set -uo pipefail
dir=${1:?usage: demo.sh SHAREDIR}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
check() { # NAME COMMAND...: one result line for run.sh
	if "${@:2}"; then echo "VFSD-TEST PASS $1"; else echo "VFSD-TEST FAIL $1"; fi
}

say "guest kernel and what serves its files"
uname -sr
grep -E ' (/|/run/test) virtiofs ' /proc/mounts
say "the root filesystem is the host's /, read-only, over virtio-fs"
df -h / | tail -n 1
ls /usr/bin | head -n 5
say "the shared folder, as the host filled it"
ls -l "$dir" | grep -v -e big -e src-tree
cat "$dir/host-hello.txt"
check host-file grep -q "hello from the host" "$dir/host-hello.txt"
say "the guest writes into the shared folder"
{
	echo "hello from the guest, kernel $(uname -r)"
	date -u
} >"$dir/hello-from-guest.txt"
mkdir -p "$dir/made-in-guest/a/b"
seq 1 1000 >"$dir/made-in-guest/a/b/numbers"
check guest-write test "$(wc -l <"$dir/made-in-guest/a/b/numbers")" = 1000
sha256sum "$dir/made-in-guest/a/b/numbers"
say "done; powering off"
