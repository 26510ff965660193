#!/bin/bash
# Guest checks for a daemon running rootless (tests/rootless/run.sh): ownership as the user
# namespace maps it. The share belongs to the unprivileged user, which is 0 in its namespace,
# and the subordinate ids from /etc/subuid are the rest. Usage: rootless.sh TESTDIR
set -uo pipefail
T=${1:?usage: rootless.sh TESTDIR}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # report

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

d=$T/rootless
mkdir -p "$d" && echo data >"$d/by-root" && drop_caches
got=$(stat -c %u:%g "$d/by-root" 2>&1)
[[ $got == 0:0 ]]
report created-by-root-is-root $? "owner $got (the user itself, 0 in its namespace)"

chown 1000:1000 "$d/by-root" 2>/dev/null && drop_caches
got=$(stat -c %u:%g "$d/by-root" 2>&1)
[[ $got == 1000:1000 ]]
report chown-to-subordinate-id $? "owner $got after chown 1000:1000"

chmod 755 "$T" # mktemp made it 0700
chmod 1777 "$d"
setpriv --reuid=1000 --regid=1000 --clear-groups sh -c "echo mine >'$d/by-1000'" 2>/dev/null
drop_caches
got=$(stat -c %u:%g "$d/by-1000" 2>&1)
[[ $got == 1000:1000 ]]
report created-by-1000 $? "owner $got"

[[ $(cat "$d/by-1000" 2>/dev/null) == mine ]]
report read-back $?

# Left for tests/rootless/run.sh to check the owners on the host.
k=$T/rootless-kept
mkdir -p "$k" && echo root >"$k/by-root" && chown 1000:1000 "$k" &&
    setpriv --reuid=1000 --regid=1000 --clear-groups sh -c "echo u >'$k/by-1000'"
report kept-files $?

rm -rf "$d"
report cleanup $?
((failures == 0))
