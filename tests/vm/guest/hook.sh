#!/bin/bash
# Guest side of tests/hook/engines.sh: /run/test is a container's rootfs, served by the daemon
# vfsd-hook had the supervisor spawn. The host wrote MARKER (the token) into the container
# through the engine; the guest reads it, checks the rootfs is the container's, and writes
# from-guest, which the host then reads inside the container. Usage: hook.sh TESTDIR
# Environment (boot.sh --env): TOKEN.
set -uo pipefail
dir=${1:?usage: hook.sh TESTDIR}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

[[ $(stat -f -c %t "$dir") == 65735546 ]]
report rootfs-is-virtiofs $? "$dir is $(stat -f -c %t "$dir")"
[[ -x $dir/bin/busybox && -L $dir/bin/sh ]]
report rootfs-is-the-containers $? "$(ls "$dir" 2>&1 | head -c 200)"
got=$(cat "$dir/vfsd-marker" 2>&1)
[[ $got == "${TOKEN:-}" ]]
report sees-container-write $? "vfsd-marker holds '${got:0:80}', want '${TOKEN:-}'"
echo "guest:${TOKEN:-}" >"$dir/from-guest.tmp" && mv "$dir/from-guest.tmp" "$dir/from-guest" && sync
report guest-writes $?
mkdir -p "$dir/guest-dir/a" && echo x >"$dir/guest-dir/a/f" && rm -r "$dir/guest-dir"
report guest-mkdir-rm $?
((failures == 0))
