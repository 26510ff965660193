# The unprivileged test user of the rootless host scripts (sourced; needs root), and the check
# of who owns, on the host, the files tests/vm/guest/rootless.sh left in its share.
#   rootless_user, rootless_sub       the user and the first of its 65536 subordinate ids
#   rootless_user_create              creates both if missing (idempotent) and sets
#                                     rootless_uid, rootless_gid; status non-zero on failure
#   host_owners NAME WORKDIR ROOT ID1000
#                                     check NAME-host-owners: rootless-kept/by-root is owned
#                                     by ROOT and rootless-kept/by-1000 by ID1000 ("uid:gid")
#                                     in WORKDIR's share (uses host-test.sh's check)
# shellcheck shell=bash
rootless_user=vfsd-rootless
rootless_sub=300000

rootless_user_create() {
	# one creator at a time: make check runs suites that call this side by side
	(
		flock 9
		id "$rootless_user" >/dev/null 2>&1 ||
			useradd --system --no-create-home --shell /usr/sbin/nologin "$rootless_user" ||
			exit 1
		for f in /etc/subuid /etc/subgid; do
			grep -q "^$rootless_user:" "$f" 2>/dev/null ||
				echo "$rootless_user:$rootless_sub:65536" >>"$f"
		done
	) 9>/run/lock/vfsd-rootless-user.lock || return 1
	# shellcheck disable=SC2034 # for the caller
	rootless_uid=$(id -u "$rootless_user") && rootless_gid=$(id -g "$rootless_user")
}

host_owners() {
	local k got
	k=$(echo "$2"/share.*/rootless-kept)
	got="$(stat -c %u:%g "$k/by-root" 2>&1) $(stat -c %u:%g "$k/by-1000" 2>&1)"
	check "$1-host-owners" "$([[ $got == "$3 $4" ]]; echo $?)" "host sees '$got', want '$3 $4'"
}
