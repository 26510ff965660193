#!/usr/bin/env bash
# Rootless launches, as container engines make them, each with a real guest: an unprivileged
# user with /etc/subuid and /etc/subgid ranges runs
#   unshare -r --map-auto -- vfsd --sandbox chroot ...
#   unshare -r --map-auto -- vfsd --sandbox none ...
#   vfsd --sandbox namespace --uid-map ... --gid-map ...   (vfsd's own user namespace)
# and the guest sees ownership as the namespace maps it (tests/vm/guest/rootless.sh).
# Creates the user and its ranges itself (idempotent); needs root. Usage: run.sh [DAEMON]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
daemon=${1:-$repo/build/vfsd}
user=vfsd-rootless
sub=300000
total_pass=0 total_fail=0

if ((EUID != 0)); then
	echo "FAIL rootless-setup creating the test user needs root"
	echo "0 passed, 1 failed"
	exit 1
fi
id "$user" >/dev/null 2>&1 ||
	useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || exit 1
for f in /etc/subuid /etc/subgid; do
	grep -q "^$user:" "$f" 2>/dev/null || echo "$user:$sub:65536" >>"$f"
done
uid=$(id -u "$user")
gid=$(id -g "$user")

# The binary where the user can reach it.
bin=$(mktemp -d -t vfsd-rootless.XXXXXX)
trap 'rm -rf "$bin"' EXIT
chmod 755 "$bin"
cp "$daemon" "$bin/vfsd"
cat >"$bin/unshare-map-auto" <<SH
#!/bin/sh
exec runuser -u $user -- unshare -r --map-auto -- $bin/vfsd "\$@"
SH
cat >"$bin/own-userns" <<SH
#!/bin/sh
exec runuser -u $user -- $bin/vfsd "\$@" --uid-map :0:$uid:1: --uid-map :1:$sub:65536: \
	--gid-map :0:$gid:1: --gid-map :1:$sub:65536:
SH
chmod 755 "$bin/unshare-map-auto" "$bin/own-userns"

run() { # NAME WRAPPER SANDBOX
	local out p f
	echo "-- rootless/$1"
	out=$("$repo/tests/vm/run.sh" --daemon "$bin/$2" --sandbox "$3" --share-owner "$user" \
		--script guest/rootless.sh 2>&1)
	printf '%s\n' "$out" | grep -E '^\[.*(PASS|FAIL|KNOWN-FAIL) ' | sed "s/^/   [$1] /"
	p=$(printf '%s\n' "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s\n' "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [[ -z $p ]]; then
		printf '%s\n' "$out" | tail -n 15
		p=0 f=1
	fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

run unshare-map-auto-chroot unshare-map-auto chroot
run unshare-map-auto-none unshare-map-auto none
run namespace-uid-map own-userns namespace

echo "$total_pass passed, $total_fail failed"
((total_fail == 0))
