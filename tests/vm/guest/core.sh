#!/bin/bash
# Core guest workload for the vfsd VM tests: POSIX file operations on the virtiofs test share,
# each verified by exit status and by content. Runs inside the guest (chroot into the host's /
# served read-only over virtiofs), started by tests/vm/init.sh.
#
# Usage: core.sh TESTDIR        (TESTDIR = the writable virtiofs share, /run/test)
# Prints "VFSD-TEST PASS <name>" or "VFSD-TEST FAIL <name> <reason>" per check, and
# "VFSD-SHA guest-big.bin <sha256>" for run.sh to compare on the host. Exit 1 on any failure.
#
# Files run.sh puts in TESTDIR before boot: token, host-hello.txt, host-big.bin (256 MiB),
# host-big.sha256, src-tree/ (a copy of the host's /usr/include/linux). While the VM runs,
# run.sh answers the guest's from-guest with late-file and from-host.

# The same script runs on a local directory as a baseline (VFSD_FSTYPE=any skips the check
# that the directory is a FUSE mount).
set -uo pipefail

T=${1:?usage: core.sh TESTDIR}
W=$T/core # each check works in $W/<name>
export T W
exec 3>&1 # checks print VFSD-SHA lines on fd 3, straight to the console
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # run, report, fail

# --- helpers used inside checks (each check runs in bash with set -euo pipefail) ---------------
expect_eq() { # ACTUAL EXPECTED WHAT
    [[ $1 == "$2" ]] || fail "$3: got '${1:0:120}', want '${2:0:120}'"
}
# Forget the guest's page, dentry and inode caches so the next access asks the daemon.
drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- checks: t_<name>, run in a fresh directory $W/<name> -------------------------------------

# Host <-> guest visibility: the guest writes from-guest; run.sh on the host checks it, creates
# late-file, then answers with from-host. The guest last saw late-file missing (maybe still as a
# cached negative entry), so an exclusive create of it right after must fail with EEXIST.
t_visibility() {
    python3 - "$T" <<'PY'
import os, sys, time
t = sys.argv[1]
token = open(f"{t}/token").read().strip()
late, answer = f"{t}/late-file", f"{t}/from-host"
if os.path.exists(late):
    sys.exit("late-file exists before the host made it")
with open(f"{t}/.from-guest.tmp", "w") as f:
    f.write(f"guest:{token}\n")
os.rename(f"{t}/.from-guest.tmp", f"{t}/from-guest")
deadline = time.monotonic() + 30
while not os.path.exists(answer):
    if time.monotonic() > deadline:
        sys.exit("from-host did not appear within 30 s")
    os.path.exists(late)  # keeps a negative entry for late-file fresh
    time.sleep(0.05)
try:
    os.open(late, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    sys.exit("O_EXCL create of late-file, made on the host, succeeded")
except FileExistsError:
    pass
for path, want in ((answer, f"host:{token}\n"), (late, f"late:{token}\n")):
    got = open(path).read()
    if got != want:
        sys.exit(f"{path}: got {got!r}, want {want!r}")
PY
}

t_host_file() {
    expect_eq "$(<"$T/host-hello.txt")" "hello from the host $(<"$T/token")" "host-hello.txt"
}

t_write_read() {
    printf 'line one\n' >f
    expect_eq "$(<f)" "line one" "after write"
    printf 'line two\n' >>f
    expect_eq "$(<f)" $'line one\nline two' "after append"
    expect_eq "$(stat -c %s f)" 18 "size after append"
    printf 'ONE' | dd of=f bs=1 seek=5 conv=notrunc status=none
    expect_eq "$(<f)" $'line ONE\nline two' "after overwrite at offset 5"
    # Every byte value, then read back through the daemon rather than the page cache.
    printf '%b' "$(printf '\\%03o' {0..255})" >bin
    for _ in 1 2 3 4 5 6 7; do cat bin bin >bin2 && mv bin2 bin; done
    expect_eq "$(stat -c %s bin)" 32768 "binary size"
    local want
    want=$(sha bin)
    drop_caches
    expect_eq "$(<f)" $'line ONE\nline two' "after drop_caches"
    expect_eq "$(sha bin)" "$want" "binary sha256 after drop_caches"
    expect_eq "$(od -An -tu1 -j 255 -N 2 bin | tr -s ' ')" " 255 0" "bytes 255..256"
}

# 256 MiB written on the host before boot, read in the guest.
t_big_host_to_guest() {
    expect_eq "$(stat -c %s "$T/host-big.bin")" 268435456 "size"
    expect_eq "$(sha "$T/host-big.bin")" "$(<"$T/host-big.sha256")" "sha256"
}

# 256 MiB from a seeded generator written in the guest; run.sh hashes it again on the host.
t_big_guest_to_host() {
    local want
    want=$(
        python3 - "$T/guest-big.bin" <<'PY'
import hashlib, random, sys
rng, h = random.Random(4242), hashlib.sha256()
with open(sys.argv[1], "wb") as f:
    for _ in range(256):
        block = rng.randbytes(1 << 20)
        h.update(block)
        f.write(block)
print(h.hexdigest())
PY
    )
    echo "VFSD-SHA guest-big.bin $want" >&3
    drop_caches
    expect_eq "$(stat -c %s "$T/guest-big.bin")" 268435456 "size"
    expect_eq "$(sha "$T/guest-big.bin")" "$want" "sha256 read back"
}

t_deep_mkdir() {
    local p
    p=$(printf 'level%02d/' {1..64})
    p=${p%/}
    mkdir -p "$p"
    [[ -d $p ]] || fail "64th level missing"
    echo bottom >"$p/leaf"
    drop_caches
    expect_eq "$(<"$p/leaf")" bottom "leaf content"
    expect_eq "$(find level01 -type d | wc -l)" 64 "directories found"
    expect_eq "$(find level01 -type f -printf '%d\n')" 64 "leaf depth"
    expect_eq "$(cd "$p" && pwd -P)" "$PWD/$p" "pwd at the bottom"
    rm -r level01
    [[ ! -e level01 ]] || fail "rm -r left level01"
}

t_rename() {
    local ino
    echo A >a
    ino=$(stat -c %i a)
    mv a b
    [[ ! -e a ]] || fail "a still exists after rename a -> b"
    expect_eq "$(<b)" A "b after rename"
    mkdir d1 d2
    mv b d1/c
    mv d1/c d2/c
    expect_eq "$(stat -c %i d2/c)" "$ino" "inode after renames across directories"
    [[ ! -e d1/c ]] || fail "d1/c still exists"
    # A directory with contents moves across directories.
    mkdir -p d1/sub/inner
    echo X >d1/sub/inner/x
    mv d1/sub d2/sub
    [[ ! -e d1/sub ]] || fail "d1/sub still exists"
    expect_eq "$(<d2/sub/inner/x)" X "moved tree content"
    # Rename over an existing file replaces it.
    echo old >d2/target
    echo new >d2/src
    mv -f d2/src d2/target
    [[ ! -e d2/src ]] || fail "d2/src still exists"
    expect_eq "$(<d2/target)" new "replaced target"
    # Over an empty directory: allowed; over a non-empty one: refused.
    mkdir d2/empty d2/full
    touch d2/full/f
    mv -T d2/sub d2/empty
    [[ -f d2/empty/inner/x && ! -e d2/sub ]] || fail "rename onto an empty directory"
    if mv -T d2/empty d2/full 2>/dev/null; then fail "rename onto a non-empty directory worked"; fi
    drop_caches
    expect_eq "$(ls d1)" "" "d1 after moves"
    # shellcheck disable=SC2012 # ls is the reader under test
    expect_eq "$(ls d2 | tr '\n' ' ')" "c empty full target " "d2 after moves"
}

t_hardlink() {
    echo data >a
    ln a b
    expect_eq "$(stat -c %h a)" 2 "link count of a"
    expect_eq "$(stat -c %h b)" 2 "link count of b"
    expect_eq "$(stat -c %i b)" "$(stat -c %i a)" "inode of b"
    echo more >>b
    expect_eq "$(<a)" $'data\nmore' "a after appending through b"
    mkdir sub
    ln b sub/c
    drop_caches
    expect_eq "$(stat -c %h a)" 3 "link count after a third link"
    rm a
    expect_eq "$(stat -c %h b)" 2 "link count after unlinking a"
    expect_eq "$(<sub/c)" $'data\nmore' "content through sub/c"
}

t_symlink() {
    local long
    echo target-data >target
    ln -s target rel
    ln -s "$PWD/target" abs
    expect_eq "$(readlink rel)" target "readlink rel"
    expect_eq "$(readlink abs)" "$PWD/target" "readlink abs"
    expect_eq "$(stat -c %F rel)" "symbolic link" "type"
    expect_eq "$(<rel)" target-data "through rel"
    expect_eq "$(<abs)" target-data "through abs"
    ln -s missing dangling
    [[ -L dangling && ! -e dangling ]] || fail "dangling symlink"
    mkdir dir
    echo inside >dir/f
    ln -s dir dl
    expect_eq "$(<dl/f)" inside "through a directory symlink"
    long=$(printf 'x%.0s' {1..1000})
    ln -s "$long" longlink
    ln -s loop2 loop1
    ln -s loop1 loop2
    drop_caches
    expect_eq "$(readlink longlink)" "$long" "1000-byte target"
    expect_eq "$(readlink rel)" target "readlink rel after drop_caches"
    if cat loop1 2>err; then fail "reading through a symlink loop worked"; fi
    grep -q 'Too many levels of symbolic links' err || fail "loop: $(<err)"
}

t_chmod() {
    local m
    touch f
    mkdir d
    for m in 600 644 755 0 4755 2750 1777; do
        chmod "$m" f
        expect_eq "$(stat -c %a f)" "$m" "mode of f"
    done
    chmod 1777 d
    drop_caches
    expect_eq "$(stat -c %a f)" 1777 "mode of f after drop_caches"
    expect_eq "$(stat -c %a d)" 1777 "mode of d"
}

t_chown() {
    touch f
    chown 1234:5678 f
    expect_eq "$(stat -c %u:%g f)" 1234:5678 "owner of f"
    ln -s f l
    chown -h 4321:8765 l
    expect_eq "$(stat -c %u:%g l)" 4321:8765 "owner of the symlink"
    expect_eq "$(stat -c %u:%g f)" 1234:5678 "owner of f after chown -h on l"
    # As on a local filesystem, chown clears set-user-ID on an executable.
    chmod 4755 f
    chown 1:1 f
    drop_caches
    expect_eq "$(stat -c %u:%g:%a f)" 1:1:755 "owner and mode after chown of a setuid file"
}

# Files, directories, nodes and symlinks made by a non-root guest user belong to that user on
# the host (the daemon switches its thread's credentials for creating requests), and that user
# cannot write where it has no permission.
t_owner_of_created() {
    chmod 1777 .
    as_user() { setpriv --reuid=4242 --regid=4343 --clear-groups "$@"; }
    as_user touch f
    as_user mkdir d
    as_user mkfifo p
    as_user ln -s f l
    drop_caches
    for n in f d p l; do
        expect_eq "$(stat -c %u:%g "$n")" 4242:4343 "owner of $n created by uid 4242"
    done
    mkdir root-only
    chmod 755 root-only
    if as_user touch root-only/x 2>/dev/null; then fail "uid 4242 created a file in a 755 root directory"; fi
    [[ ! -e root-only/x ]] || fail "root-only/x exists"
}

# Space and range operations that must reach the daemon: fallocate (allocate, punch a hole),
# SEEK_DATA/SEEK_HOLE (the guest's fallback would call the whole file data), copy_file_range,
# and syncfs through sync -f.
# Write access through a supplementary group the daemon is never told about (the guest kernel
# allowed it; the daemon must not refuse it for its foreign uid).
t_supp_group_create() {
    mkdir grp
    chgrp 777 grp
    chmod 775 grp
    setpriv --reuid=4242 --regid=4343 --groups=777 touch grp/x ||
        fail "uid 4242 with supplementary group 777 cannot create in a 775 directory of group 777"
    drop_caches
    expect_eq "$(stat -c %u:%g grp/x)" 4242:4343 "owner of grp/x"
}

t_space_ops() {
    python3 - <<'PY'
import os
MiB = 1 << 20
fd = os.open("f", os.O_RDWR | os.O_CREAT, 0o644)
os.posix_fallocate(fd, 0, 4 * MiB)
assert os.fstat(fd).st_size == 4 * MiB, "size after posix_fallocate"
os.pwrite(fd, b"d" * MiB, 2 * MiB)
os.fsync(fd)
os.close(fd)
PY
    fallocate --punch-hole --offset 0 --length 2097152 f
    python3 - <<'PY'
import os
MiB = 1 << 20
fd = os.open("f", os.O_RDWR)
assert os.pread(fd, 4096, 0) == bytes(4096), "punched range reads as zeros"
assert os.fstat(fd).st_size == 4 * MiB, "punching keeps the size"
data = os.lseek(fd, 0, os.SEEK_DATA)
assert data == 2 * MiB, f"SEEK_DATA from 0 gave {data}, want {2 * MiB}"
hole = os.lseek(fd, 0, os.SEEK_HOLE)
assert hole == 0, f"SEEK_HOLE from 0 gave {hole}, want 0"
out = os.open("copy", os.O_RDWR | os.O_CREAT, 0o644)
n = os.copy_file_range(fd, out, MiB, 2 * MiB, 0)
assert n == MiB, f"copy_file_range copied {n}"
assert os.pread(out, MiB, 0) == b"d" * MiB, "copied content"
os.close(out)
os.close(fd)
PY
    sync -f f
}

t_utimes() {
    touch f
    touch -d '2001-02-03 04:05:06 UTC' f
    expect_eq "$(stat -c %Y:%X f)" 981173106:981173106 "mtime:atime"
    touch -a -d '1999-12-31 23:59:59 UTC' f
    expect_eq "$(stat -c %Y:%X f)" 981173106:946684799 "after touch -a"
    touch -m -d '@1234567890.123456789' f
    drop_caches
    expect_eq "$(stat -c %.9Y f)" 1234567890.123456789 "nanosecond mtime"
    expect_eq "$(stat -c %X f)" 946684799 "atime kept"
}

t_truncate() {
    printf '0123456789' >f
    truncate -s 1M f
    expect_eq "$(stat -c %s f)" 1048576 "size after growing"
    expect_eq "$(head -c 10 f)" 0123456789 "data before the old end"
    expect_eq "$(tail -c +11 f | wc -c)" $((1048576 - 10)) "grown part length"
    expect_eq "$(tail -c +11 f | tr -d '\0' | wc -c)" 0 "non-zero bytes in the grown part"
    truncate -s 4 f
    drop_caches
    expect_eq "$(stat -c %s f)" 4 "size after shrinking"
    expect_eq "$(<f)" 0123 "content after shrinking"
    truncate -s 8 f
    expect_eq "$(od -An -c f | tr -s ' ')" ' 0 1 2 3 \0 \0 \0 \0' "shrink then grow"
    # A write past the end leaves a hole that reads as zeros.
    printf X | dd of=g bs=1 seek=100000 status=none
    expect_eq "$(stat -c %s g)" 100001 "size after writing past the end"
    expect_eq "$(head -c 100000 g | tr -d '\0' | wc -c)" 0 "non-zero bytes in the hole"
}

t_unlink_open() {
    printf 'still here\n' >f
    exec 4<f
    rm f
    [[ ! -e f ]] || fail "f exists after rm"
    drop_caches
    expect_eq "$(cat <&4)" "still here" "read through the open fd"
    exec 4<&-
    python3 - <<'PY'
import os
fd = os.open("g", os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"before")
os.unlink("g")
assert not os.path.exists("g"), "g exists after unlink"
assert os.fstat(fd).st_nlink == 0, f"nlink {os.fstat(fd).st_nlink} after unlink"
os.write(fd, b"+after")
os.lseek(fd, 0, os.SEEK_SET)
data = os.read(fd, 100)
assert data == b"before+after", f"read back {data!r}"
os.ftruncate(fd, 3)
assert os.fstat(fd).st_size == 3, f"size {os.fstat(fd).st_size} after ftruncate"
os.close(fd)
PY
}

t_many_files() {
    python3 - <<'PY'
import os
N = 10000
os.mkdir("many")
for i in range(N):
    fd = os.open(f"many/f{i:05d}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    if i % 500 == 0:
        os.write(fd, str(i).encode())
    os.close(fd)
PY
    drop_caches
    # shellcheck disable=SC2012 # ls is the reader under test
    expect_eq "$(ls many | wc -l)" 10000 "ls count"
    python3 - <<'PY'
import os
N = 10000
names = sorted(os.listdir("many"))
assert names == [f"f{i:05d}" for i in range(N)], f"listdir: {len(names)} names"
for i in range(0, N, 500):
    with open(f"many/f{i:05d}") as f:
        assert f.read() == str(i), f"content of f{i:05d}"
for n in names:
    os.unlink(f"many/{n}")
left = os.listdir("many")
assert left == [], f"{len(left)} names left after unlink"
os.rmdir("many")
PY
    [[ ! -e many ]] || fail "many still exists"
}

t_cp_tree() {
    local listing='%P %y %m %s %T@\n'
    cp -a "$T/src-tree" copy
    diff -r "$T/src-tree" copy >diff.out || fail "diff -r src-tree copy: $(head -n3 diff.out)"
    # The same tree read through the root share must match too.
    diff -r /usr/include/linux copy >diff.out || fail "diff -r /usr/include/linux copy: $(head -n3 diff.out)"
    drop_caches
    (cd "$T/src-tree" && find . -printf "$listing" | sort) >src.list
    (cd copy && find . -printf "$listing" | sort) >copy.list
    diff src.list copy.list >diff.out || fail "types, modes, sizes or mtimes differ: $(head -n3 diff.out)"
    (($(wc -l <copy.list) > 100)) || fail "copy has only $(wc -l <copy.list) entries"
}

t_statfs() {
    local blocks bfree bavail bsize files namelen type
    read -r blocks bfree bavail bsize files namelen type < <(stat -f -c '%b %f %a %S %c %l %t' .)
    [[ ${VFSD_FSTYPE:-65735546} == any ]] ||
        expect_eq "$type" "${VFSD_FSTYPE:-65735546}" "filesystem type (FUSE_SUPER_MAGIC)"
    ((blocks > 0)) || fail "total blocks $blocks"
    ((bsize > 0)) || fail "block size $bsize"
    ((bfree <= blocks && bavail <= bfree)) || fail "free $bfree / available $bavail / total $blocks"
    ((files > 0)) || fail "total inodes $files"
    expect_eq "$namelen" 255 "name length"
    df -P . >df.out || fail "df failed"
}

t_mkfifo() {
    local writer got
    mkfifo p
    expect_eq "$(stat -c %F p)" fifo "type"
    timeout 30 bash -c 'echo through-the-fifo >p' &
    writer=$!
    got=$(timeout 30 cat p)
    wait "$writer" || fail "writer failed"
    expect_eq "$got" through-the-fifo "read from the fifo"
    drop_caches
    expect_eq "$(stat -c %F p)" fifo "type after drop_caches"
}

# renameat2(2) through libc's syscall(): mv has no RENAME_NOREPLACE / RENAME_EXCHANGE here.
renameat2_py() {
    cat <<'PY'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
SYS_renameat2, AT_FDCWD = 316, -100
NOREPLACE, EXCHANGE = 1, 2
def renameat2(a, b, flags):
    r = libc.syscall(ctypes.c_long(SYS_renameat2), ctypes.c_long(AT_FDCWD), a.encode(),
                     ctypes.c_long(AT_FDCWD), b.encode(), ctypes.c_uint(flags))
    return 0 if r == 0 else ctypes.get_errno()
def put(p, s):
    with open(p, "w") as f: f.write(s)
def get(p):
    with open(p) as f: return f.read()
def expect(what, got, want):
    assert got == want, f"{what}: got {got!r}, want {want!r}"
PY
}

t_rename_noreplace() {
    {
        renameat2_py
        cat <<'PY'
put("a", "A"); put("b", "B"); os.mkdir("d")
expect("NOREPLACE onto existing", renameat2("a", "b", NOREPLACE), errno.EEXIST)
expect("a after refused rename", get("a"), "A")
expect("b after refused rename", get("b"), "B")
expect("NOREPLACE to a new name", renameat2("a", "c", NOREPLACE), 0)
expect("a exists", os.path.exists("a"), False)
expect("c content", get("c"), "A")
expect("NOREPLACE across directories", renameat2("c", "d/c", NOREPLACE), 0)
expect("d/c content", get("d/c"), "A")
put("c", "C2")
expect("NOREPLACE onto existing in another directory", renameat2("c", "d/c", NOREPLACE), errno.EEXIST)
expect("d/c unchanged", get("d/c"), "A")
PY
    } | python3 -
}

t_rename_exchange() {
    {
        renameat2_py
        cat <<'PY'
put("a", "A"); put("b", "B")
ia, ib = os.stat("a").st_ino, os.stat("b").st_ino
expect("EXCHANGE", renameat2("a", "b", EXCHANGE), 0)
expect("a after exchange", get("a"), "B")
expect("b after exchange", get("b"), "A")
expect("inodes swapped", (os.stat("a").st_ino, os.stat("b").st_ino), (ib, ia))
expect("EXCHANGE with a missing name", renameat2("a", "missing", EXCHANGE), errno.ENOENT)
os.mkdir("d1"); os.mkdir("d2"); os.mkdir("d2/y"); put("d1/x", "X"); put("d2/y/child", "Y")
expect("EXCHANGE file and directory", renameat2("d1/x", "d2/y", EXCHANGE), 0)
expect("d1/x is the directory", get("d1/x/child"), "Y")
expect("d2/y is the file", get("d2/y"), "X")
expect("NOREPLACE|EXCHANGE", renameat2("a", "b", NOREPLACE | EXCHANGE), errno.EINVAL)
PY
    } | python3 -
}

# 8 processes race O_CREAT|O_EXCL on one name, 20 rounds: exactly one wins each time.
t_excl_race() {
    python3 - <<'PY'
import os
N, ROUNDS = 8, 20
for r in range(ROUNDS):
    name = f"race{r}"
    rfd, wfd = os.pipe()
    pids = []
    for i in range(N):
        pid = os.fork()
        if pid == 0:
            os.close(wfd)
            os.read(rfd, 1)  # returns at EOF, when the parent closes the write end
            try:
                fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                os._exit(1)
            except OSError:
                os._exit(3)
            os.write(fd, str(i).encode())
            os.close(fd)
            os._exit(0)
        pids.append(pid)
    os.close(rfd)
    os.close(wfd)
    codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
    winners = [i for i, c in enumerate(codes) if c == 0]
    assert len(winners) == 1 and codes.count(1) == N - 1, f"round {r}: exit codes {codes}"
    with open(name) as f:
        got = f.read()
    assert got == str(winners[0]), f"round {r}: content {got!r}, winner {winners[0]}"
PY
}

# Extended attributes (the share is served with xattr on): set, read back after the caches are
# dropped, list, replace, remove; a missing one is ENODATA.
t_xattr() {
    echo data >f
    python3 - <<'PY'
import errno, os, subprocess
def drop():
    subprocess.run(["sh", "-c", "sync; echo 3 >/proc/sys/vm/drop_caches"], check=True)
os.setxattr("f", "user.vfsd", b"blue")
drop()
assert os.getxattr("f", "user.vfsd") == b"blue", os.getxattr("f", "user.vfsd")
assert "user.vfsd" in os.listxattr("f"), os.listxattr("f")
try:
    os.setxattr("f", "user.vfsd", b"red", os.XATTR_CREATE)
    raise SystemExit("XATTR_CREATE over an existing attribute succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, e
os.setxattr("f", "user.vfsd", b"green", os.XATTR_REPLACE)
drop()
assert os.getxattr("f", "user.vfsd") == b"green"
os.removexattr("f", "user.vfsd")
try:
    os.getxattr("f", "user.vfsd")
    raise SystemExit("a removed attribute is still there")
except OSError as e:
    assert e.errno == errno.ENODATA, e
PY
}

# A host mount inside the share (run.sh mounts a tmpfs at submount/): the daemon announces it,
# and the guest mounts it apart, with its own device number, and syncs it by itself.
t_submount() {
    local dev_share dev_sub
    # stat(2) does not trigger an automount: reading a file inside does.
    expect_eq "$(cat "$T/submount/inner")" "$(cat "$T/token")" "file inside the submount"
    dev_share=$(stat -c %d "$T")
    dev_sub=$(stat -c %d "$T/submount/.")
    [[ $dev_share != "$dev_sub" ]] || fail "submount/ has the share's device number $dev_share"
    grep -q " $T/submount virtiofs " /proc/mounts || fail "no virtiofs mount at $T/submount"
    echo "written in the guest" >"$T/submount/guest-file"
    sync -f "$T/submount/guest-file" # syncfs(2) of the submount
    rm "$T/submount/guest-file"
}

# CVE-2022-0358: a user who is not in a setgid directory's group creates a setgid file there
# (open O_CREAT, and mknod). The file takes the directory's group, so the host must strip the
# bit; vfsd creates with the user's credentials, without CAP_FSETID in effect.
t_sgid_create_non_member() {
    mkdir sgid
    chgrp 5555 sgid
    chmod 2777 sgid
    setpriv --reuid=4242 --regid=4343 --clear-groups /usr/bin/python3 - <<'PY'
import os
os.umask(0)
os.close(os.open("sgid/prog", os.O_CREAT | os.O_WRONLY, 0o2755))
os.mknod("sgid/prog2", 0o2755)
PY
    drop_caches
    expect_eq "$(stat -c %g:%a sgid/prog)" 5555:755 "group and mode of a setgid file made by a non-member"
    expect_eq "$(stat -c %g:%a sgid/prog2)" 5555:755 "group and mode of a setgid node made by a non-member"
}

# Set-user-ID and set-group-ID bits go when someone other than root writes, truncates, or
# changes the group of the file (the guest kernel asks vfsd to drop them).
t_suid_cleared_by_non_owner() {
    chmod 1777 .
    for f in w t; do
        echo data >"$f"
        chown 1234:2345 "$f"
        chmod 6777 "$f"
    done
    setpriv --reuid=4242 --regid=4343 --clear-groups sh -c 'echo more >>w'
    setpriv --reuid=4242 --regid=4343 --clear-groups truncate -s 1 t
    drop_caches
    expect_eq "$(stat -c %a w)" 777 "mode after a write by a non-owner"
    expect_eq "$(stat -c %a t)" 777 "mode after a truncate by a non-owner"
    # the owner changing the group to one of its own
    setpriv --reuid=4242 --regid=4343 --clear-groups touch g
    chmod 6755 g
    setpriv --reuid=4242 --regid=4343 --groups=4343,5555 chgrp 5555 g
    drop_caches
    expect_eq "$(stat -c %g:%a g)" 5555:755 "group and mode after chgrp by the owner"
}

# Locks are host locks (run.sh's lock helper is the host process): the host's POSIX lock blocks
# the guest's, a blocking lock waits until the host lets go, and the host sees the guest's.
t_locks() {
    /usr/bin/python3 - "$T" <<'PY'
import fcntl, os, sys, time
T = sys.argv[1]
f = open(os.path.join(T, "locked-by-host"), "r+")
deadline = time.monotonic() + 20
while True:  # the helper may not have taken it yet
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        break
    fcntl.lockf(f, fcntl.LOCK_UN)
    if time.monotonic() > deadline:
        raise SystemExit("the host's lock on locked-by-host is not seen in the guest")
    time.sleep(0.1)
open(os.path.join(T, "release-host-lock"), "w").close()
t0 = time.monotonic()
fcntl.lockf(f, fcntl.LOCK_EX)  # waits for the host
waited = time.monotonic() - t0
if waited < 0.5:
    raise SystemExit(f"the blocking lock did not wait for the host ({waited:.2f} s)")
fcntl.lockf(f, fcntl.LOCK_UN)
g = open(os.path.join(T, "locked-by-guest"), "r+")
fcntl.lockf(g, fcntl.LOCK_EX)
open(os.path.join(T, "guest-holds-lock"), "w").close()
answer = os.path.join(T, "host-saw-guest-lock")
deadline = time.monotonic() + 20
while not os.path.exists(answer):
    if time.monotonic() > deadline:
        raise SystemExit("no answer from the host's lock helper")
    time.sleep(0.1)
verdict = open(answer).read().strip()
if verdict != "yes":
    raise SystemExit(f"the host took a lock the guest holds (helper says {verdict})")
# flock: the guest's exclusive flock excludes another open in the guest as well
h1, h2 = open(os.path.join(T, "locked-by-guest")), open(os.path.join(T, "locked-by-guest"))
fcntl.flock(h1, fcntl.LOCK_EX)
try:
    fcntl.flock(h2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    raise SystemExit("two exclusive flocks on one file")
except BlockingIOError:
    pass
PY
}

# The differential POSIX transcript (tests/posix/posix.c): the same scripted syscalls on the
# vfsd share here and on a plain host directory by run.sh must print the same lines, ACLs
# (the share runs with posix_acl) and O_TMPFILE included. No difference is allowed; the
# pattern below is where one would be listed, with its reason.
t_posix_differential() {
    local bin=$T/posix-transcript # put there by run.sh
    [[ -x $bin ]] || fail "run.sh left no $bin (make posix-transcript)"
    [[ -s $T/posix-host.txt ]] || fail "run.sh left no host transcript"
    mkdir run
    "$bin" "$PWD/run" >guest.txt 2>&1 || fail "the transcript program failed: $(tail -n 1 guest.txt)"
    allowed='^$'
    grep -Ev "$allowed" "$T/posix-host.txt" >host.cmp
    grep -Ev "$allowed" guest.txt >guest.cmp
    diff host.cmp guest.cmp >diff.txt ||
        fail "transcripts differ (host < > guest): $(grep '^[<>]' diff.txt | head -n 4 | tr '\n' ' ')"
    [[ $(wc -l <host.cmp) -gt 70 ]] || fail "the transcript is short: $(wc -l <host.cmp) lines"
}

# --- runner: tests/vm/guest/lib.sh ---------------------------------------------------------
export_checks expect_eq drop_caches sha renameat2_py
mkdir -p "$W"

run visibility 60
run host-file
run write-read
run big-host-to-guest 600
run big-guest-to-host 600
run deep-mkdir
run rename
run hardlink
run symlink
run chmod
run chown
run owner-of-created
run supp-group-create
run space-ops
run utimes
run truncate
run unlink-open
run many-files 600
run cp-tree
run statfs
run mkfifo 60
run rename-noreplace
run rename-exchange
run excl-race
run xattr
run submount
run sgid-create-non-member
run suid-cleared-by-non-owner
run locks 60
run posix-differential 120

rmdir "$W" 2>/dev/null || true
((failures == 0))
