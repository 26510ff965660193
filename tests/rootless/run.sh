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
	echo "-- rootless/$1"
	vm_counted "$1" "$repo/tests/vm/run.sh" --daemon "$bin/$2" --sandbox "$3" \
		--share-owner "$user" --script guest/rootless.sh --keep
	if [[ -n $vm_work && -d $vm_work ]]; then
		# The owners the guest's files got on the host: the user itself for the guest's
		# root, and the subordinate id for the guest's 1000 (ns 1 is the first
		# subordinate id, so 1000 is sub + 999).
		host_owners "$1" "$vm_work" "$uid:$gid" "$((sub + 999)):$((sub + 999))"
		rm -rf "$vm_work"
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

# The fd cache where file handles cannot help (no CAP_DAC_READ_SEARCH): far more inodes than
# the 90 fds --rlimit-nofile=700 leaves the guest (tests/vm/guest/fdcache.sh).
fdcache() { # NAME WRAPPER SANDBOX
	echo "-- rootless/$1"
	vm_counted "$1" "$repo/tests/vm/run.sh" --daemon "$bin/$2" --sandbox "$3" \
		--share-owner "$user" --script guest/fdcache.sh --daemon-arg=--rlimit-nofile=700 \
		--daemon-arg=--inode-file-handles=prefer
}

run unshare-map-auto-chroot unshare-map-auto chroot
run unshare-map-auto-none unshare-map-auto none
run namespace-uid-map own-userns namespace
fdcache fd-cache-unshare-map-auto unshare-map-auto chroot

summary
