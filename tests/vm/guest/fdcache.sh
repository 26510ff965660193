#!/bin/bash
# The fd cache in a real guest (docs/fd-cache.md): the daemons run with a small
# --rlimit-nofile (tests/run-all.sh gives --rlimit-nofile=700: 90 fds for the guest, for the
# root filesystem's daemon too, which the guest boots from), and the guest walks, and keeps in
# its dcache, far more inodes than that. No stat, read or listing may fail with ENFILE or
# EMFILE (or anything else). Usage: fdcache.sh TESTDIR [FILES] (default $FDCACHE_FILES, else
# 5000). The files stay for the host to remove (a TCG guest is slow at it).
set -uo pipefail

T=${1:?usage: fdcache.sh TESTDIR [FILES]}
N=${2:-${FDCACHE_FILES:-5000}}
W=$T/fdcache
export T W N
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # run, report, fail

per=1000
dirs=$(((N + per - 1) / per))
export per dirs

# N files in directories of 1,000, made by the guest with mknod (one request per file).
t_create() {
    python3 -c '
import os, sys
top, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    p = os.path.join(top, str(d))
    os.makedirs(p)
    for f in range(per):
        os.mknod(os.path.join(p, str(f)), 0o644)
' "$W/tree" "$dirs" "$per" || fail "creating the files failed"
    got=$(find "$W/tree" -type f | wc -l)
    ((got == dirs * per)) || fail "find counts $got files, made $((dirs * per))"
}

# Every file stat'ed with its dentries kept (the guest's dcache holds them all), twice: the
# second pass meets inodes whose fds the daemon gave back.
t_stat_all() {
    for pass in 1 2; do
        find "$W/tree" -type f -printf '%i %s\n' >"$W/stat.$pass" 2>"$W/err.$pass" ||
            fail "find -printf (pass $pass): $(head -n 1 "$W/err.$pass")"
        [[ ! -s $W/err.$pass ]] || fail "pass $pass: $(head -n 1 "$W/err.$pass")"
        got=$(wc -l <"$W/stat.$pass")
        ((got == dirs * per)) || fail "pass $pass stat'ed $got files of $((dirs * per))"
    done
    cmp -s <(sort "$W/stat.1") <(sort "$W/stat.2") || fail "the two passes disagree"
}

# Data, listings with attributes and renames through inodes that were evicted.
t_use_evicted() {
    for ((d = 0; d < dirs; d += 7)); do
        echo "data $d" >"$W/tree/$d/17" || fail "write into $d/17"
    done
    find "$W/tree" -type f -printf '%s\n' >/dev/null 2>"$W/err" || fail "find: $(head -n 1 "$W/err")"
    for ((d = 0; d < dirs; d += 7)); do
        [[ $(cat "$W/tree/$d/17") == "data $d" ]] || fail "read back $d/17"
        ls -l "$W/tree/$d" >/dev/null 2>"$W/err" || fail "ls -l $d: $(head -n 1 "$W/err")"
    done
    mv "$W/tree/0/5" "$W/tree/1/moved" || fail "mv"
    find "$W/tree" -type f -printf '%s\n' >/dev/null 2>"$W/err" || fail "find: $(head -n 1 "$W/err")"
    stat "$W/tree/1/moved" >/dev/null || fail "stat of the moved file"
    [[ ! -e $W/tree/0/5 ]] || fail "the old name is still there"
}

# Open files keep their fds: 20 files open across a walk still read their own data (bash's
# own redirections and reads: no process per file). Each holds two of the 90 fds (its open
# and its inode's); the walk needs the rest for find's open directories and the releases
# the guest sends in the background.
t_open_files() {
    local fds=() line
    for ((i = 0; i < 20; i++)); do
        echo "file $i" >"$W/tree/2/$i"
        exec {fds[i]}<"$W/tree/2/$i"
    done
    find "$W/tree" -type f -printf '%s\n' >/dev/null 2>"$W/err" || fail "find: $(head -n 1 "$W/err")"
    for ((i = 0; i < 20; i++)); do
        read -r -u "${fds[i]}" line || fail "read of open file $i"
        [[ $line == "file $i" ]] || fail "open file $i reads '$line'"
    done
}

export_checks
mkdir -p "$W"
run create 600
run stat-all 600
run use-evicted 600
run open-files 300
exit $((failures > 0))
