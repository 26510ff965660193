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
# shellcheck source=../lib/host-test.sh
source "$repo/tests/lib/host-test.sh" # check, counted, summary, exit_status_of
# shellcheck source=../lib/rootless-user.sh
source "$repo/tests/lib/rootless-user.sh" # rootless_user_create, host_owners

need_root rootless-setup "creating the test user needs root"
rootless_user_create || exit 1
user=$rootless_user sub=$rootless_sub uid=$rootless_uid gid=$rootless_gid

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
	local out p f work
	echo "-- rootless/$1"
	out=$("$repo/tests/vm/run.sh" --daemon "$bin/$2" --sandbox "$3" --share-owner "$user" \
		--script guest/rootless.sh --keep 2>&1)
	work=$(printf '%s\n' "$out" | sed -n 's/^vm: .* work=\(.*\)$/\1/p' | head -n 1)
	printf '%s\n' "$out" | grep -E '^\[.*(PASS|FAIL|KNOWN-FAIL) ' | sed "s/^/   [$1] /"
	p=$(printf '%s\n' "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s\n' "$out" | tail -n 1 | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [[ -z $p ]]; then
		printf '%s\n' "$out" | tail -n 15
		p=0 f=1
	fi
	counted "$p" "$f"
	if [[ -n $work && -d $work ]]; then
		# The owners the guest's files got on the host: the user itself for the guest's
		# root, and the subordinate id for the guest's 1000 (ns 1 is the first
		# subordinate id, so 1000 is sub + 999).
		host_owners "$1" "$work" "$uid:$gid" "$((sub + 999)):$((sub + 999))"
		rm -rf "$work"
	else
		check "$1-host-owners" 1 "no work directory to look at"
	fi
}

# Without the VM: the refusals, and the default map of an unprivileged namespace sandbox.
mkdir -p "$bin/share" "$bin/sock"
chown "$user:" "$bin/share" "$bin/sock"
out=$(runuser -u "$user" -- "$bin/vfsd" --sandbox chroot --shared-dir "$bin/share" \
	--socket-path "$bin/sock/c" 2>&1)
check chroot-refused-unprivileged "$([[ $? == 1 && $out == *"can only be used by root (Use '--sandbox namespace' instead)"* ]]; echo $?)" "$out"
runuser -u "$user" -- "$bin/vfsd" --sandbox namespace --shared-dir "$bin/share" \
	--socket-path "$bin/sock/n" >"$bin/n.log" 2>&1 &
npid=$!
for _ in $(seq 50); do grep -q "Waiting for vhost-user" "$bin/n.log" && break; sleep 0.1; done
# the pid file names the namespace parent; the daemon is its child
parent=$(cat "$bin/sock/n.pid" 2>/dev/null)
map=$(awk '{print $1, $2, $3}' "/proc/${parent:-0}/uid_map" 2>/dev/null)
check default-map-own-id-is-root "$([[ $map == "0 $uid 1" ]]; echo $?)" \
	"uid_map '$map' ($(tail -n 1 "$bin/n.log"))"
kill "$npid" "${parent:-}" 2>/dev/null
wait "$npid" 2>/dev/null

run unshare-map-auto-chroot unshare-map-auto chroot
run unshare-map-auto-none unshare-map-auto none
run namespace-uid-map own-userns namespace

summary
