#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/ (run from anywhere; the files are
committed, this script only documents and regenerates them). Formats: the comment at the top
of each fuzz_*.c."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- FUSE (fuzz_fuse) ----
LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 17, 18, 20, 25, 26, 27, 28, 29
ACCESS, CREATE, INTERRUPT, DESTROY, BATCH_FORGET, READDIRPLUS, RENAME2 = 34, 35, 36, 38, 42, 44, 45
FALLOCATE, LSEEK, COPY_FILE_RANGE, SYNCFS = 43, 46, 47, 50
SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, GETLK, SETLK, SETLKW = 21, 22, 23, 24, 31, 32, 33
TMPFILE = 51
# conf bits: 1 readonly, 2 readdirplus, 4|8 cache policy, 16 xattr, 32 locks, 64 submounts,
# 128 ACLs + security labels + supplementary groups + an xattr map + file handles
FIX_LEN = 0x10  # shape bit: the harness writes the real length into the header

unique = 100


def fuse_req(opcode, nodeid=0, args=b"", uid=0, gid=0, ext=b""):
    global unique
    unique += 1
    return struct.pack("<IIQQIIIHH", 40 + len(args) + len(ext), opcode, unique, nodeid, uid, gid,
                       1234, len(ext) // 8, 0) + args + ext


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def secctx(name_=None, value=b""):
    # request extension: {size, type = number of contexts}, then {size, padding} name value
    body = b"" if name_ is None else struct.pack("<II", len(value), 0) + name(name_) + value
    rec_ = pad8(struct.pack("<II", 0, 0 if name_ is None else 1) + body)
    return struct.pack("<II", len(rec_), 0 if name_ is None else 1) + rec_[8:]


def groups(*gids):
    rec_ = pad8(struct.pack("<III", 0, 32, len(gids)) + b"".join(struct.pack("<I", g) for g in gids))
    return struct.pack("<II", len(rec_), 32) + rec_[8:]


def rec(req, cap=4096, shape=FIX_LEN):
    return struct.pack("<HBH", cap, shape, len(req)) + req


def name(s):
    return s.encode() + b"\0"


def read_in(fh, off, size, flags=0):
    # fuse_read_in: fh, offset, size, read_flags, lock_owner, flags, padding
    return struct.pack("<QQIIQII", fh, off, size, 0, 0, flags, 0)


def fuse_seeds():
    s = {}
    # node ids are deterministic per input: root 1, then 2, 3, ... in lookup order; fh 1, 2, ...
    s["lookup-getattr"] = bytes([2]) + rec(fuse_req(LOOKUP, 1, name("f"))) + \
        rec(fuse_req(GETATTR, 2, struct.pack("<IIQ", 0, 0, 0))) + \
        rec(fuse_req(LOOKUP, 1, name("d"))) + rec(fuse_req(LOOKUP, 3, name("g"))) + \
        rec(fuse_req(FORGET, 4, struct.pack("<Q", 1)))
    s["open-read"] = bytes([0]) + rec(fuse_req(LOOKUP, 1, name("big"))) + \
        rec(fuse_req(OPEN, 2, struct.pack("<II", os.O_RDONLY, 0))) + \
        rec(fuse_req(READ, 2, read_in(1, 100, 8192)), cap=8192 + 16, shape=FIX_LEN | 0x0a) + \
        rec(fuse_req(FLUSH, 2, struct.pack("<QIIQ", 1, 0, 0, 0))) + \
        rec(fuse_req(RELEASE, 2, struct.pack("<QIIQ", 1, 0, 0, 0)))
    s["write"] = bytes([4]) + rec(fuse_req(LOOKUP, 1, name("f"))) + \
        rec(fuse_req(OPEN, 2, struct.pack("<II", os.O_RDWR, 0))) + \
        rec(fuse_req(WRITE, 2, struct.pack("<QQIIQII", 1, 5, 11, 0, 0, os.O_RDWR, 0) +
                     b"hello again"), shape=FIX_LEN | 0x21) + \
        rec(fuse_req(FSYNC, 2, struct.pack("<QII", 1, 1, 0))) + \
        rec(fuse_req(SETATTR, 2, struct.pack("<IIQQQQQQIIIIIIII", 1 << 3 | 1 << 0, 0, 1, 3,
                                               0, 0, 0, 0, 0, 0, 0o600, 0, 0, 0, 0, 0)))
    s["readdirplus"] = bytes([2]) + rec(fuse_req(OPENDIR, 1, struct.pack("<II", 0, 0))) + \
        rec(fuse_req(READDIRPLUS, 1, read_in(1, 0, 4096)), cap=4096 + 16) + \
        rec(fuse_req(READDIR, 1, read_in(1, 0, 300)), cap=512, shape=FIX_LEN | 0x44) + \
        rec(fuse_req(RELEASEDIR, 1, struct.pack("<QIIQ", 1, 0, 0, 0)))
    s["create-tree"] = bytes([0]) + \
        rec(fuse_req(MKDIR, 1, struct.pack("<II", 0o755, 0o22) + name("n"), uid=1000, gid=1000)) + \
        rec(fuse_req(CREATE, 2, struct.pack("<IIII", os.O_RDWR | os.O_CREAT, 0o644, 0o22, 0) +
                     name("x"), uid=1000, gid=1000)) + \
        rec(fuse_req(SYMLINK, 2, name("s") + name("x"))) + \
        rec(fuse_req(MKNOD, 2, struct.pack("<IIII", 0o10644, 0, 0, 0) + name("fifo"))) + \
        rec(fuse_req(LINK, 2, struct.pack("<Q", 3) + name("y"))) + \
        rec(fuse_req(RENAME2, 2, struct.pack("<QII", 1, 0, 0) + name("y") + name("z"))) + \
        rec(fuse_req(RENAME, 1, struct.pack("<Q", 1) + name("z") + name("w"))) + \
        rec(fuse_req(UNLINK, 1, name("w"))) + rec(fuse_req(UNLINK, 2, name("s"))) + \
        rec(fuse_req(RMDIR, 1, name("n")))
    s["misc"] = bytes([8]) + rec(fuse_req(STATFS, 1)) + \
        rec(fuse_req(ACCESS, 1, struct.pack("<II", 7, 0), uid=1000)) + \
        rec(fuse_req(LOOKUP, 1, name("l"))) + rec(fuse_req(READLINK, 2)) + \
        rec(fuse_req(LOOKUP, 1, name("p"))) + \
        rec(fuse_req(OPEN, 3, struct.pack("<II", os.O_RDONLY, 0))) + \
        rec(fuse_req(BATCH_FORGET, 0, struct.pack("<II", 2, 0) + struct.pack("<QQQQ", 2, 1, 3, 1))) + \
        rec(fuse_req(INTERRUPT, 0, struct.pack("<Q", 5))) + rec(fuse_req(DESTROY)) + \
        rec(fuse_req(GETATTR, 1)) + \
        rec(fuse_req(INIT, 0, struct.pack("<IIII", 7, 31, 65536, 0)), cap=80) + \
        rec(fuse_req(LOOKUP, 1, name("..")), shape=FIX_LEN | 0x25)
    s["fallocate-lseek-copy"] = bytes([0]) + rec(fuse_req(LOOKUP, 1, name("big"))) + \
        rec(fuse_req(OPEN, 2, struct.pack("<II", os.O_RDWR, 0))) + \
        rec(fuse_req(FALLOCATE, 2, struct.pack("<QQQII", 1, 8192, 4096, 0, 0))) + \
        rec(fuse_req(LSEEK, 2, struct.pack("<QQII", 1, 0, 3, 0))) + \
        rec(fuse_req(LSEEK, 2, struct.pack("<QQII", 1, 0, 4, 0))) + \
        rec(fuse_req(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 0, 2, 1, 10000, 100, 0))) + \
        rec(fuse_req(SYNCFS, 1, struct.pack("<Q", 0)))

    def lk(fh, owner, start, end, typ, flock=False):
        # fuse_lk_in: fh, owner, lk {start, end, type, pid}, lk_flags, padding
        return struct.pack("<QQQQIIII", fh, owner, start, end, typ, 0, 1 if flock else 0, 0)

    F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
    s["xattr-locks"] = bytes([16 | 32 | 64]) + rec(fuse_req(LOOKUP, 1, name("f"))) + \
        rec(fuse_req(SETXATTR, 2, struct.pack("<II", 4, 0) + name("user.colour") + b"blue")) + \
        rec(fuse_req(GETXATTR, 2, struct.pack("<II", 0, 0) + name("user.colour"))) + \
        rec(fuse_req(GETXATTR, 2, struct.pack("<II", 64, 0) + name("user.colour")), cap=96) + \
        rec(fuse_req(LISTXATTR, 2, struct.pack("<II", 0, 0))) + \
        rec(fuse_req(LISTXATTR, 2, struct.pack("<II", 256, 0)), cap=300) + \
        rec(fuse_req(REMOVEXATTR, 2, name("user.colour"))) + \
        rec(fuse_req(GETXATTR, 1, struct.pack("<II", 64, 0) + name("system.posix_acl_access"))) + \
        rec(fuse_req(OPEN, 2, struct.pack("<II", os.O_RDWR, 0))) + \
        rec(fuse_req(SETLK, 2, lk(1, 7, 0, 9, F_WRLCK))) + \
        rec(fuse_req(GETLK, 2, lk(1, 8, 5, 20, F_RDLCK)), cap=64) + \
        rec(fuse_req(SETLKW, 2, lk(1, 8, 0, 9, F_WRLCK))) + \
        rec(fuse_req(SETLK, 2, lk(1, 9, 0, 2**63 - 1, F_WRLCK, flock=True))) + \
        rec(fuse_req(FLUSH, 2, struct.pack("<QIIQ", 1, 0, 0, 7))) + \
        rec(fuse_req(SETLK, 2, lk(1, 8, 0, 9, F_UNLCK))) + \
        rec(fuse_req(INTERRUPT, 0, struct.pack("<Q", 5))) + \
        rec(fuse_req(RELEASE, 2, struct.pack("<QIIQ", 1, 0, 0, 0)))
    # ACLs (SETXATTR_EXT), labels and groups (7.38 extensions), TMPFILE, the xattr map
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i in
                                          ((1, 6, 2**32 - 1), (2, 4, 1001), (4, 4, 2**32 - 1),
                                           (0x10, 4, 2**32 - 1), (0x20, 0, 2**32 - 1)))
    label = secctx("security.selinux", b"system_u:object_r:tmp_t:s0")
    s["acl-ext-tmpfile"] = bytes([16 | 128]) + \
        rec(fuse_req(MKDIR, 1, struct.pack("<II", 0o755, 0o22) + name("sd"), ext=label)) + \
        rec(fuse_req(CREATE, 1, struct.pack("<IIII", os.O_RDWR, 0o644, 0, 0) + name("sf"),
                     uid=1001, gid=1001, ext=secctx() + groups(0))) + \
        rec(fuse_req(TMPFILE, 1, struct.pack("<IIII", os.O_RDWR | 0o20200000, 0o600, 0o22, 0) +
                     name("/"), ext=secctx())) + \
        rec(fuse_req(LINK, 4, struct.pack("<Q", 4) + name("linked"))) + \
        rec(fuse_req(SETXATTR, 3, struct.pack("<IIII", len(acl), 0, 1, 0) +
                     name("system.posix_acl_access") + acl)) + \
        rec(fuse_req(GETXATTR, 3, struct.pack("<II", 64, 0) + name("system.posix_acl_access")),
            cap=96) + \
        rec(fuse_req(SETXATTR, 3, struct.pack("<IIII", 1, 0, 0, 0) + name("trusted.t") + b"1")) + \
        rec(fuse_req(LISTXATTR, 3, struct.pack("<II", 256, 0)), cap=300) + \
        rec(fuse_req(SYMLINK, 1, name("sl") + name("sf"), ext=secctx(""))) + \
        rec(fuse_req(MKNOD, 1, struct.pack("<IIII", 0o100644, 0, 0o22, 0) + name("sn"),
                     ext=groups(1, 2, 3)))
    # regression: an extension on a READ took bytes of its fixed arguments (a NULL
    # dereference before extensions were limited to creating ops)
    s["ext-on-read"] = bytes([128]) + rec(fuse_req(LOOKUP, 1, name("f"))) + \
        rec(fuse_req(OPEN, 2, struct.pack("<II", os.O_RDONLY, 0))) + \
        rec(fuse_req(READ, 2, read_in(1, 0, 16)[:24], ext=groups(0)), cap=64)
    return s


# ---- vhost-user (fuzz_vhost) ----
GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 15, 16, 17, 18
GET_CONFIG, RESET_DEVICE, GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG = 24, 34, 36, 37, 38
FZ_POKE, FZ_KICK = 0x1001, 0x1002
NEED_REPLY = 1 << 3
UVA = 0x7F0000000000
F_VERSION_1, F_INDIRECT, F_EVENT_IDX, F_PROTOCOL = 1 << 32, 1 << 28, 1 << 29, 1 << 30
P_MQ, P_REPLY_ACK, P_CONFIG, P_RESET, P_MEM_SLOTS = 1, 1 << 3, 1 << 9, 1 << 13, 1 << 15


def msg(request, payload=b"", flags=0):
    return struct.pack("<III", request, 1 | flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def region(gpa, size, uva, off):
    return struct.pack("<QQQQ", gpa, size, uva, off)


def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def ring_setup(q, features):
    return msg(SET_FEATURES, u64(features)) + \
        msg(SET_MEM_TABLE, struct.pack("<II", 1, 0) + region(0, 0x10000, UVA, 0)) + \
        msg(SET_VRING_NUM, struct.pack("<II", q, 16)) + \
        msg(SET_VRING_BASE, struct.pack("<II", q, 0)) + \
        msg(SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, UVA + 0x1000, UVA + 0x3000,
                                        UVA + 0x2000, 0)) + \
        msg(SET_VRING_CALL, u64(q)) + msg(SET_VRING_ERR, u64(q)) + msg(SET_VRING_KICK, u64(q))


def vhost_seeds():
    s = {}
    s["features-memreg"] = bytes([3]) + msg(GET_FEATURES) + msg(GET_PROTOCOL_FEATURES) + \
        msg(SET_FEATURES, u64(F_VERSION_1 | F_INDIRECT | F_EVENT_IDX | F_PROTOCOL)) + \
        msg(SET_PROTOCOL_FEATURES, u64(P_MQ | P_REPLY_ACK | P_RESET | P_MEM_SLOTS)) + \
        msg(SET_OWNER) + msg(GET_QUEUE_NUM) + msg(GET_MAX_MEM_SLOTS) + \
        msg(ADD_MEM_REG, u64(0) + region(0, 0x10000, UVA, 0), NEED_REPLY) + \
        msg(ADD_MEM_REG, u64(0) + region(0x10000, 0x10000, UVA + 0x10000, 0x10000)) + \
        msg(REM_MEM_REG, u64(0) + region(0x10000, 0x10000, UVA + 0x10000, 0x10000), NEED_REPLY) + \
        msg(RESET_DEVICE)
    chain = desc(0x8000, 64, 1, 1) + desc(0x9000, 128, 2, 0)  # NEXT, then WRITE
    avail = struct.pack("<HHH", 0, 1, 0)
    s["ring-kick"] = bytes([3]) + ring_setup(1, F_VERSION_1 | F_INDIRECT) + \
        msg(FZ_POKE, struct.pack("<I", 0x1000) + chain) + \
        msg(FZ_POKE, struct.pack("<I", 0x2000) + avail) + msg(FZ_KICK, b"\1") + \
        msg(GET_VRING_BASE, struct.pack("<II", 1, 0)) + msg(RESET_DEVICE)
    table = desc(0x8000, 40, 1, 1) + desc(0x9000, 4096, 2, 0)
    s["indirect-eventidx-pool"] = bytes([1]) + msg(GET_PROTOCOL_FEATURES) + \
        msg(SET_PROTOCOL_FEATURES, u64(P_REPLY_ACK | P_RESET)) + \
        ring_setup(0, F_VERSION_1 | F_INDIRECT | F_EVENT_IDX | F_PROTOCOL) + \
        msg(SET_VRING_ENABLE, struct.pack("<II", 0, 1), NEED_REPLY) + \
        msg(FZ_POKE, struct.pack("<I", 0x7000) + table) + \
        msg(FZ_POKE, struct.pack("<I", 0x1000) + desc(0x7000, 32, 4, 0)) + \
        msg(FZ_POKE, struct.pack("<I", 0x2000) + avail) + msg(FZ_KICK, b"\0") + \
        msg(GET_VRING_BASE, struct.pack("<II", 0, 0))
    s["config-tag"] = bytes([4 | 3]) + msg(GET_PROTOCOL_FEATURES) + \
        msg(SET_PROTOCOL_FEATURES, u64(P_CONFIG | P_REPLY_ACK)) + \
        msg(GET_CONFIG, struct.pack("<III", 0, 40, 0) + bytes(40)) + \
        msg(SET_VRING_CALL, u64(0x100)) + msg(SET_OWNER, b"", 1 << 30)
    return s


# ---- virtqueue (fuzz_virtq) ----
def virtq_seed(log2num, flags, descs, heads, extra=()):
    """Ring at gpa 0x100 (desc), 0x200 (avail), 0x300 (used); extra is (gpa, bytes) pairs."""
    hdr = struct.pack("<BBHHIII", log2num, flags, 0, 0, 0x100, 0x200, 0x300)
    mem = bytearray(0x200 + 4 + 2 * len(heads))
    parts = [(0x100, b"".join(descs)),
             (0x200, struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads))]
    for gpa, data in parts + list(extra):
        if len(mem) < gpa + len(data):
            mem.extend(bytes(gpa + len(data) - len(mem)))
        mem[gpa:gpa + len(data)] = data
    return hdr + bytes(mem)


def virtq_seeds():
    table = desc(0x8000, 40, 1, 1) + desc(0x9000, 4096, 2, 0)
    return {
        "chain": virtq_seed(4, 0, [desc(0x8000, 64, 1, 1), desc(0x9000, 128, 2, 0)], [0]),
        "cross-region": virtq_seed(3, 1, [desc(0xff00, 0x200, 2, 0)], [0]),
        "indirect": virtq_seed(2, 0, [desc(0x400, len(table), 4, 0)], [0, 0], [(0x400, table)]),
        "loop": virtq_seed(2, 0, [desc(0x8000, 8, 1, 1), desc(0x8000, 8, 1, 0)], [0, 1, 5]),
    }


# ---- control protocol (fuzz_ctl) ----
def ctl_line(*objs):
    """Request lines as a client writes them: each one compact and with its newline."""
    return b"".join(json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                    for o in objs)


def ctl_seeds():
    spawn = {"op": "spawn", "id": "sp-1", "sandbox": "vm-7.a_b", "shared_dir": "/srv/share",
             "socket_path": "/run/vfsd/vm-7.sock", "userns": "/proc/4242/ns/user",
             "cgroup": "/sys/fs/cgroup/vfsd/vm-7",
             "args": ["--cache=auto", "--xattr", "--log-level=debug", ""],
             "labels": {"tenant": "acme", "zone_2": "eu-west", "owner": "J\u00fcrgen \u2603"}}
    s = {
        # every op, as it should be
        "ping": ctl_line({"op": "ping"}),
        "version-id-string": ctl_line({"op": "version", "id": "req-1"}),
        "version-id-int": ctl_line({"id": 42, "op": "version"}),
        "spawn-full": ctl_line(spawn),
        "spawn-minimal": ctl_line({"op": "spawn", "sandbox": "s", "shared_dir": "/",
                                   "args": [], "labels": {}}),
        "stop-grace": ctl_line({"op": "stop", "sandbox": "vm-7", "grace_ms": 2500, "id": None}),
        "list": ctl_line({"op": "list", "id": -1}),
        "status": ctl_line({"op": "status", "sandbox": "vm-7"}),
        "watch": ctl_line({"op": "watch", "id": "w"}),
        # a session: several lines, one with a CR, one left without its newline
        "session": ctl_line({"op": "ping", "id": 1}, {"op": "status", "sandbox": "a", "id": 2}) +
        b'{"op":"stop","sandbox":"a","grace_ms":0}\r\n\n{"op":"list"',
        # and the ways to get it wrong
        "unknown-field": ctl_line({"op": "list", "sandbox": "a"}, {"op": "ping", "bogus": 1}),
        "unknown-op": ctl_line({"op": "reboot", "id": "x"}),
        "missing-field": ctl_line({"op": "spawn", "sandbox": "a"}, {"op": "stop"}, {"id": 3}),
        "wrong-types": ctl_line({"op": "stop", "sandbox": "a", "grace_ms": "10"},
                                {"op": 7}, {"op": "ping", "id": 1.5}, {"op": "ping", "id": [1]},
                                {"op": "status", "sandbox": 12}),
        "spawn-bad-fields": ctl_line(
            {"op": "spawn", "sandbox": "a", "shared_dir": "srv/share"},
            {"op": "spawn", "sandbox": "-a", "shared_dir": "/s"},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "args": "--xattr"},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "args": [1]},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "labels": {"9x": "v"}},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "labels": {"k": 1}},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "socket_path": "/" + "s" * 107}),
        "too-many": ctl_line(
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s", "args": ["-x"] * 65},
            {"op": "spawn", "sandbox": "a", "shared_dir": "/s",
             "labels": {"l%d" % i: "v" for i in range(17)}}),
        "nul-escape": b'{"op":"spawn","sandbox":"a","shared_dir":"/srv\\u0000/etc"}\n'
                      b'{"op":"ping","id":"a\\u0000b"}\n{"op\\u0000x":"ping"}\n',
        "nul-byte": b'{"op":"ping"}\0\n{"op":"ping","id":"\0"}\n',
        "deep-nesting": b'{"op":"ping","id":' + b"[" * 40 + b"]" * 40 + b"}\n" + b"[" * 20 +
                        b"\n",
        "trailing-garbage": b'{"op":"ping"} x\n{"op":"ping"} \t\r\n{"op":"ping"},\n',
        "two-objects": b'{"op":"ping"}{"op":"list"}\n{"op":"ping"} {"op":"list"}\n',
        "huge-number": b'{"op":"stop","sandbox":"a","grace_ms":99999999999999999999999}\n'
                       b'{"op":"ping","id":18446744073709551616}\n'
                       b'{"op":"stop","sandbox":"a","grace_ms":3600001}\n'
                       b'{"op":"stop","sandbox":"a","grace_ms":-1}\n',
        "non-object": b'["op","ping"]\n"ping"\n42\nnull\ntrue\n',
        "empty-line": b"\n",
        "unterminated-string": b'{"op":"ping","id":"abc\n{"op":"ping\n',
        "json-c-leniency": b"{'op':'ping'}\n{\"op\":\"ping\",}\n{\"op\":\"ping\" /* c */}\n"
                           b'{"op":"ping","id":NaN}\n{"op":"status","sandbox":"\\ud800"}\n',
        # past CTL_LINE_MAX: -E2BIG whole, and the supervisor's closing reply without a newline
        "line-too-long": b'{"op":"ping","id":"' + b"a" * 65536 + b'"}',
    }
    return s


# ---- the OCI hook's input (fuzz_hook) ----
def crun_spec(rootless=False, **extra):
    """`crun spec` (crun 1.8) as it writes it; extra members replace or add top-level ones."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    ns = [{"type": t} for t in ("pid", "network", "ipc", "uts")]
    ns += [{"type": "user"}] if rootless else []
    ns += [{"type": "mount"}]
    c = {
        "ociVersion": "1.0.0",
        "process": {"terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "TERM=xterm"],
                    "cwd": "/",
                    "capabilities": {"bounding": caps, "effective": caps, "inheritable": [],
                                     "permitted": caps, "ambient": caps},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "crun",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                   {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                  "namespaces": ns,
                  "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
                  "readonlyPaths": ["/proc/bus", "/proc/sys"]},
    }
    c.update(extra)
    return c


def hook_input(state, config=None, indent=None):
    """STATE, then NUL and config.json when there is one (the format in fuzz_hook.c)."""
    def enc(o):
        if isinstance(o, bytes):
            return o
        return json.dumps(o, indent=indent, separators=None if indent else (",", ":"),
                          ensure_ascii=False).encode()
    return enc(state) + (b"\0" + enc(config) if config is not None else b"")


def hook_seeds():
    pod_uid = "0b2c6c1e-3c58-4f0b-9a7e-5b8d9c0e1f2a"
    sb_id = "5c3f9a0e7d1b2c4a6f8e0d2c4b6a8f0e1d3c5b7a9f0e2d4c6b8a0f1e3d5c7b9a"
    ctr_id = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
    vfsd = {"io.vfsd.enable": "true", "io.vfsd.options": '["--cache=auto","--xattr"]'}

    def state(id_, pid=4242, bundle=None, annotations=None, status="created", **kw):
        st = {"ociVersion": "1.0.2-dev", "id": id_, "status": status, "pid": pid,
              "bundle": bundle or "/run/bundles/" + id_}
        if pid is None:
            del st["pid"]
        if annotations is not None:
            st["annotations"] = annotations
        st.update(kw)
        return st

    # containerd's CRI plugin: the pause container, then an application container
    cri_sb = dict(vfsd, **{
        "io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": sb_id,
        "io.kubernetes.cri.sandbox-name": "web-0", "io.kubernetes.cri.sandbox-namespace": "default",
        "io.kubernetes.cri.sandbox-uid": pod_uid,
        "io.kubernetes.cri.sandbox-log-directory": "/var/log/pods/default_web-0_" + pod_uid,
        "io.vfsd.share": "/var/lib/vfsd/pods/" + pod_uid, "io.vfsd.cgroup": "none"})
    cri_ctr = dict(vfsd, **{
        "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": sb_id,
        "io.kubernetes.cri.container-name": "nginx",
        "io.kubernetes.cri.image-name": "docker.io/library/nginx:1.25",
        "io.kubernetes.cri.sandbox-name": "web-0", "io.kubernetes.cri.sandbox-namespace": "default",
        "io.kubernetes.cri.sandbox-uid": pod_uid})
    k8s_linux = lambda cg, ns: {"cgroupsPath": cg, "namespaces": ns,
                                "uidMappings": [{"containerID": 0, "hostID": 65536 * 7, "size": 65536}],
                                "gidMappings": [{"containerID": 0, "hostID": 65536 * 7, "size": 65536}]}
    cri_sb_cfg = crun_spec(annotations=cri_sb, linux=k8s_linux(
        "kubepods-besteffort-pod%s.slice:cri-containerd:%s" % (pod_uid.replace("-", "_"), sb_id),
        [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"},
         {"type": "network", "path": "/var/run/netns/cni-7f0e2d4c-1b3a-5c6d-8e9f-0a1b2c3d4e5f"}]))
    cri_ctr_cfg = crun_spec(annotations=cri_ctr, linux=k8s_linux(
        "/kubepods/besteffort/pod%s/%s" % (pod_uid, ctr_id),
        [{"type": "mount"}, {"type": "ipc", "path": "/proc/4242/ns/ipc"},
         {"type": "uts", "path": "/proc/4242/ns/uts"}, {"type": "user", "path": "/proc/4242/ns/user"},
         {"type": "network", "path": "/proc/4242/ns/net"}]))
    # CRI-O: its own keys, and the kubelet's labels copied into the annotations
    crio = {"io.kubernetes.cri-o.KubeName": "web-0", "io.kubernetes.cri-o.Namespace": "prod",
            "io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod",
            "io.kubernetes.pod.uid": pod_uid,
            "io.kubernetes.cri-o.Labels": json.dumps({"app": "web", "io.kubernetes.pod.uid": pod_uid}),
            "io.kubernetes.cri-o.Annotations": json.dumps({"io.vfsd.enable": "true"})}
    crio_sb = dict(vfsd, **crio, **{"io.kubernetes.cri-o.ContainerType": "sandbox",
                                    "io.kubernetes.cri-o.SandboxID": sb_id})
    crio_ctr = dict(vfsd, **crio, **{"io.kubernetes.cri-o.ContainerType": "container",
                                     "io.kubernetes.cri-o.SandboxID": sb_id,
                                     "io.kubernetes.cri-o.ContainerName": "k8s_nginx_web-0_prod"})
    # Podman (rootless, with crun): its annotations, a systemd cgroup, the user's mappings
    pod_id = "3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
    podman_ann = dict(vfsd, **{"io.container.manager": "libpod",
                               "io.podman.annotations.autoremove": "FALSE",
                               "org.opencontainers.image.stopSignal": "15",
                               "io.vfsd.socket": "/run/user/1000/vfsd/" + pod_id[:12] + ".sock",
                               "io.vfsd.control-socket": "/run/user/1000/vfsd/control.sock"})
    podman_bundle = "/home/u/.local/share/containers/storage/overlay-containers/%s/userdata" % pod_id
    podman_cfg = crun_spec(
        rootless=True, annotations=podman_ann,
        root={"path": "/home/u/.local/share/containers/storage/overlay/9e8d/merged"},
        linux={"cgroupsPath": "user.slice:libpod:" + pod_id,
               "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                              {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"},
                              {"type": "user"}],
               "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                               {"containerID": 1, "hostID": 100000, "size": 65536}],
               "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    # runc's states as captured from a hook: createRuntime, then poststop without a pid
    runc = dict(vfsd)
    runc_cfg = crun_spec(rootless=True, annotations=runc)
    s = {
        "crun-spec": hook_input(
            {"ociVersion": "1.0.0", "id": "web-1", "pid": 4242, "root": "/run/crun/web-1",
             "bundle": "/var/lib/web-1", "rootfs": "/var/lib/web-1/rootfs", "status": "created",
             "annotations": vfsd},
            crun_spec(annotations=vfsd), indent="\t"),
        "crun-spec-rootless-config-annotations": hook_input(
            {"ociVersion": "1.0.0", "id": "web-2", "pid": 77, "bundle": "/var/lib/web-2",
             "status": "creating"},
            crun_spec(rootless=True, annotations=dict(vfsd, **{"io.vfsd.cgroup": "container"}),
                      linux={"namespaces": [{"type": "user"}, {"type": "mount"}],
                             "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})),
        "runc-createRuntime": hook_input(
            state("cap-runc-2", 2480, "/tmp/ocicap/b", runc, "creating"), runc_cfg),
        "runc-poststop": hook_input(
            state("cap-runc-2", None, "/tmp/ocicap/b", runc, "stopped"), runc_cfg),
        "runc-poststop-no-config": hook_input(state("cap-runc-2", None, "/tmp/ocicap/b", runc,
                                                    "stopped")),
        "podman": hook_input(state(pod_id, 2480, podman_bundle, podman_ann, "creating"), podman_cfg),
        "containerd-sandbox": hook_input(state(sb_id, 4242, None, cri_sb), cri_sb_cfg),
        "containerd-container": hook_input(state(ctr_id, 4300, None, cri_ctr), cri_ctr_cfg),
        "crio-sandbox": hook_input(state(sb_id, 4242, None, crio_sb), crun_spec(annotations=crio_sb)),
        "crio-container": hook_input(state(ctr_id, 4300, None, crio_ctr),
                                     crun_spec(annotations=crio_ctr)),
        # Kata's shim: no status, an empty ociVersion, no config.json read
        "kata": hook_input({"ociVersion": "", "id": sb_id, "pid": 913,
                            "bundle": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + sb_id,
                            "annotations": cri_sb}),
        # and the ways to get it wrong
        "bad-pid": hook_input(b'{"id":"a","bundle":"/b","pid":-1,"annotations":{}}'),
        "bad-pid-float": hook_input(b'{"id":"a","bundle":"/b","pid":4.2e1}', crun_spec()),
        "bad-pid-huge": hook_input(b'{"id":"a","bundle":"/b","pid":18446744073709551616}'),
        "bad-state-types": hook_input(b'{"id":7,"bundle":"b","status":[],"root":{}}'),
        "bad-annotation-type": hook_input(
            b'{"id":"a","bundle":"/b","pid":1,"annotations":{"io.vfsd.enable":true}}'),
        "bad-nul-escapes": hook_input(
            b'{"id":"a\\u0000","bundle":"/b","pid":1,"annotations":'
            b'{"io.vfsd.enable":"true","io.vfsd.share":"/srv\\u0000/etc"}}',
            b'{"root":{"path":"r\\u0000"}}'),
        "bad-config-types": hook_input(
            state("c1", annotations=vfsd),
            {"root": {"path": 5}, "linux": {"namespaces": [{"type": "user", "path": 1}, "pid"],
                                            "uidMappings": [{"containerID": -1, "hostID": 4294967296,
                                                             "size": 0}],
                                            "cgroupsPath": 7}}),
        "bad-config-not-object": hook_input(state("c1"), b'[{"root":{"path":"rootfs"}}]'),
        "bad-enable": hook_input(state("c1", annotations={"io.vfsd.enable": "TRUE"})),
        "bad-unknown-key": hook_input(state("c1", annotations=dict(vfsd, **{"io.vfsd.shrae": "/s"}))),
        "bad-paths": hook_input(state("c1", annotations=dict(vfsd, **{
            "io.vfsd.share": "srv", "io.vfsd.socket": "/" + "s" * 107,
            "io.vfsd.control-socket": "control.sock", "io.vfsd.cgroup": "relative/cg"}))),
        "bad-no-sandbox-id": hook_input(state("c1", annotations=dict(vfsd, **{
            "io.kubernetes.cri.container-type": "container"}))),
        "bad-type": hook_input(state("c1", annotations=dict(vfsd, **{
            "io.kubernetes.cri-o.ContainerType": "podsandbox"}))),
        "bad-options": hook_input(state("c1", annotations=dict(
            vfsd, **{"io.vfsd.options": "[" + ",".join(['"-x"'] * 65) + "]"}))),
        "bad-options-entry": hook_input(state("c1", annotations=dict(
            vfsd, **{"io.vfsd.options": '["--xattr",1]'}))),
        "bad-label-long": hook_input(state("c1", annotations=dict(
            vfsd, **{"io.kubernetes.pod.name": "n" * 1025}))),
        "bad-nul-cri-type": hook_input(
            b'{"id":"c1","bundle":"/b","pid":1,"annotations":{"io.vfsd.enable":"true",'
            b'"io.kubernetes.cri.container-type":"sandbox\\u0000"}}'),
        "bad-nul-pod-uid": hook_input(
            b'{"id":"c1","bundle":"/b","pid":1,"annotations":{"io.vfsd.enable":"true",'
            b'"io.kubernetes.pod.uid":"u\\u0000"}}'),
        "bad-linux": hook_input(state("c1", annotations=vfsd), {"linux": ["namespaces"]}),
        "bad-sandbox-id": hook_input(state("c1", annotations=dict(
            vfsd, **{"io.kubernetes.cri.sandbox-id": "../" + "x" * 130}))),
        "deep-nesting": hook_input(b'{"id":"a","bundle":"/b","pid":1,"x":' + b"[" * 40 + b"]" * 40 +
                                   b"}", b'{"annotations":' + b'{"a":' * 70 + b'"v"' + b"}" * 71),
        "trailing-garbage": hook_input(b'{"id":"a","bundle":"/b","pid":1} {}', b"{}x"),
        "not-utf8": hook_input(b'{"id":"\xff","bundle":"/b","pid":1}', b'{"x":"\xc0\xaf"}'),
        "empty": b"",
        "empty-parts": b"\0",
    }
    return s


# ---- the metrics region (fuzz_metrics) ----
# lib/metrics/metrics.h: a 40-byte header, 5 gauges and 16 queue counters, then 8 slots from
# 4096 on, each of requests[64], duration_ns[64], buckets[64][23], errors[64][40] and the read
# and write bytes, padded to 64 bytes.
M_SLOTS, M_OPCODES, M_ERRNOS, M_BUCKETS, M_QUEUES = 8, 64, 40, 23, 16
M_SLOT0, M_SLOT_SIZE, M_REGION = 4096, 33344, 274432
M_ENOENT = 1  # ENOENT's errno index; the last (39) is "other"
MG_INODES, MG_HANDLES, MG_GUEST_FDS, MG_GUEST_FD_LIMIT, MG_BUDGET_EXHAUSTED = range(5)


def metrics_header(magic=0x31727465536d6676, version=1, size=M_REGION):
    return struct.pack("<QIIIIIIII", magic, version, size, M_SLOTS, M_OPCODES, M_ERRNOS,
                       M_BUCKETS, M_QUEUES, 0)


class MetricsRegion:
    def __init__(self, header=None):
        self.b = bytearray(M_REGION)
        self.b[0:40] = metrics_header() if header is None else header

    def u64(self, off, v):
        struct.pack_into("<Q", self.b, off, v & (2**64 - 1))

    def gauge(self, g, v):
        struct.pack_into("<q", self.b, 40 + 8 * g, v)

    def kicks(self, q, n):
        self.u64(80 + 8 * q, n)

    def request(self, slot, op, n, ns, bucket, errno_index=None, errors=0):
        base = M_SLOT0 + slot * M_SLOT_SIZE
        self.u64(base + 8 * op, n)
        self.u64(base + 512 + 8 * op, ns)
        self.u64(base + 1024 + 8 * (op * M_BUCKETS + bucket), n)
        if errno_index is not None:
            self.u64(base + 12800 + 8 * (op * M_ERRNOS + errno_index), errors)

    def rw_bytes(self, slot, read, write):
        base = M_SLOT0 + slot * M_SLOT_SIZE
        self.u64(base + 33280, read)
        self.u64(base + 33288, write)


def metrics_seeds():
    # the control byte: 1 pads a short file to a region, 2 writes the valid header over it,
    # 4 | 8 choose the process numbers (none, valid with fds, valid without, fds only). Only
    # two seeds are a whole region: the others end after their last non-zero byte and pad.
    GETATTR, LOOKUP, READ, WRITE, OTHER = 3, 1, 15, 16, 63
    full = MetricsRegion()
    full.request(0, GETATTR, 3, 4500, 1)
    full.request(1, GETATTR, 2, 2000, 1)
    full.request(0, LOOKUP, 4, 200, 0, M_ENOENT, 1)
    full.request(1, LOOKUP, 1, 80, 0, M_ERRNOS - 1, 1)
    full.request(2, READ, 2, 60000, 7)
    full.request(7, OTHER, 1, 20 * 10**9, M_BUCKETS - 1, 31, 1)  # ENOSYS
    full.rw_bytes(2, 8192, 0)
    full.rw_bytes(3, 0, 4096)
    for g, v in ((MG_INODES, 12), (MG_HANDLES, 3), (MG_GUEST_FDS, 15),
                 (MG_GUEST_FD_LIMIT, 1000), (MG_BUDGET_EXHAUSTED, 2)):
        full.gauge(g, v)
    full.kicks(0, 1)
    full.kicks(1, 40)
    full.kicks(M_QUEUES - 1, 2)
    # one slot's counts: a few opcodes, errors, bytes
    slot0 = MetricsRegion()
    slot0.request(0, GETATTR, 5, 7000, 2)
    slot0.request(0, LOOKUP, 2, 100, 0, M_ENOENT, 2)
    slot0.request(0, WRITE, 1, 10**6, 9)
    slot0.rw_bytes(0, 0, 65536)
    slot0.gauge(MG_INODES, 3)
    # counts that wrap: a histogram's buckets, two slots' bytes; gauges at their ends
    wrap = MetricsRegion()
    wrap.request(0, WRITE, 2**64 - 1, 2**64 - 1, 3, 5, 2**64 - 1)
    wrap.u64(M_SLOT0 + 1024 + 8 * (WRITE * M_BUCKETS + 4), 2)
    wrap.rw_bytes(0, 2**63, 2**64 - 1)
    wrap.rw_bytes(1, 2**63, 2)
    wrap.gauge(MG_INODES, -2**63)
    wrap.gauge(MG_GUEST_FDS, 2**63 - 1)
    wrap.kicks(3, 2**64 - 1)

    def padded(ctl, region):
        return bytes([ctl | 1]) + bytes(region.b).rstrip(b"\0")

    return {
        "empty": b"",
        "header-short": bytes([0]) + metrics_header(),
        "header-padded": bytes([1]) + metrics_header(),
        "gauges-forced": bytes([3]) + bytes(40) + struct.pack("<5q", 5, 1, 9, 10, 0) +
        struct.pack("<2Q", 7, 8),
        "full-counts": bytes([4]) + bytes(full.b),
        "full-cut": bytes([0]) + bytes(full.b[:-1]),  # one byte short of a region
        "slot0": padded(4, slot0),
        "slot0-fds-only": padded(12, slot0),
        "slot0-no-fds": padded(8, slot0),
        "wrap": padded(0, wrap),
        "bad-magic": padded(0, MetricsRegion(metrics_header(magic=0x31727465536d6677))),
        "bad-version": padded(0, MetricsRegion(metrics_header(version=2))),
        "bad-size": padded(0, MetricsRegion(metrics_header(size=M_REGION - 4096))),
        "bad-magic-forced": bytes([3]) + metrics_header(magic=0),
    }

# ---- device state (fuzz_migrate) ----
# lib/migrate/native.c and postcard.c describe both formats; an inode is (id, nlookup, loc,
# loc's value, verify), loc 0 root, 1 (parent, name), 2 full path, 3 file handle, 4 invalid;
# a file handle is (mnt_id, type, bytes).
MIG_ROOT, MIG_PATH, MIG_FULL, MIG_FH, MIG_INVALID = range(5)


def crc32c(b):
    crc = 0xffffffff
    for c in b:
        crc ^= c
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff


class MigState:
    def __init__(self, inodes, handles=(), mounts=(), known=True, minor=38, enabled=0x1234,
                 bits=0b10101, next_inode=0, next_handle=0):
        self.inodes, self.handles, self.mounts = list(inodes), list(handles), list(mounts)
        self.known, self.minor, self.enabled, self.bits = known, minor, enabled, bits
        self.next_inode, self.next_handle = next_inode, next_handle


def native(st, major=1, minor=0, flags=0):
    def fh(h):
        return struct.pack("<QiH", h[0], h[1], len(h[2])) + h[2]

    def s16(b):
        return struct.pack("<H", len(b)) + b

    out = b"VFSDSTAT" + struct.pack("<HHI", major, minor, flags)
    out += struct.pack("<BIQB", st.known, st.minor, st.enabled, st.bits)
    out += struct.pack("<QQI", st.next_inode, st.next_handle, len(st.inodes))
    for ino, nlookup, loc, val, verify in st.inodes:
        out += struct.pack("<QQB", ino, nlookup, loc)
        if loc == MIG_PATH:
            out += struct.pack("<Q", val[0]) + s16(val[1])
        elif loc == MIG_FULL:
            out += s16(val)
        elif loc == MIG_FH:
            out += fh(val)
        out += b"\1" + fh(verify) if verify else b"\0"
    out += struct.pack("<I", len(st.handles))
    for hid, node, flags_, pos in st.handles:
        out += struct.pack("<QQiBQQ", hid, node, flags_, pos is not None, *(pos or (0, 0)))
    out += struct.pack("<I", len(st.mounts))
    for mid, path in st.mounts:
        out += struct.pack("<Q", mid) + s16(path)
    return out + struct.pack("<I", crc32c(out))


def varint(v):
    out = bytearray()
    while True:
        out.append((v & 0x7f) | (0x80 if v > 0x7f else 0))
        v >>= 7
        if not v:
            return bytes(out)


def zigzag(v):
    return varint(((v << 1) ^ (v >> 31)) & 0xffffffff)


def postcard(st, v1=False):
    """The Rust virtiofsd's PassthroughFs; refcount = nlookup + children that name it."""
    def fh(h):
        return varint(h[0]) + zigzag(h[1]) + varint(len(h[2])) + h[2]

    def string(b):
        return varint(len(b)) + b

    children = {}
    for ino in st.inodes:
        if ino[2] == MIG_PATH:
            children[ino[3][0]] = children.get(ino[3][0], 0) + 1
    variant = {MIG_ROOT: 0, MIG_PATH: 1, MIG_INVALID: 2, MIG_FULL: 3, MIG_FH: 4}
    out = varint(0 if v1 else 1) + varint(len(st.inodes))
    for ino, nlookup, loc, val, verify in st.inodes:
        out += varint(ino) + varint(nlookup + children.get(ino, 0)) + varint(variant[loc])
        if loc == MIG_PATH:
            out += varint(val[0]) + string(val[1])
        elif loc == MIG_FULL:
            out += string(val)
        elif loc == MIG_FH:
            out += fh(val)
        out += b"\1" + fh(verify) if verify else b"\0"
    out += varint(max([st.next_inode] + [i[0] + 1 for i in st.inodes]))
    out += varint(len(st.handles))
    for hid, node, flags_, _ in st.handles:
        out += varint(hid) + varint(node) + varint(0) + zigzag(flags_)
    out += varint(max([st.next_handle] + [h[0] + 1 for h in st.handles]) if st.handles
                  else st.next_handle)
    out += bytes([st.bits & 1, st.bits >> 1 & 1, st.bits >> 2 & 1, st.bits >> 3 & 1])
    if not v1:
        out += varint(len(st.mounts))
        for mid, path in st.mounts:
            out += varint(mid) + string(path)
    return out


def migrate_seeds():
    O_RDONLY, O_RDWR, O_DIRECTORY, O_APPEND = 0, 2, 0o200000, 0o2000
    fh20 = (33, 0x81, bytes(range(20)))
    rich = MigState(
        [(1, 3, MIG_ROOT, None, (21, 1, b"\1\2\3\4\5\6\7\x08")),
         (2, 1, MIG_PATH, (1, b"dir"), None),
         (5, 1, MIG_FH, fh20, None),
         (9, 4, MIG_INVALID, None, None),
         (0x10, 1, MIG_PATH, (0xfffffffe00000007, b"later"), None),
         (0x100000003, 2, MIG_PATH, (2, b"caf\xc3\xa9"), (21, -7, bytes(range(128)))),
         (0x100000004, 0, MIG_FULL, b"dir/sub/file", None),
         (0xfffffffe00000007, 2**64 - 2, MIG_PATH, (0x100000003, b"x"), None)],
        handles=[(0, 2, O_RDONLY | O_DIRECTORY, (0, 77)), (1, 0x100000003, O_RDWR | O_APPEND,
                                                            (4096, 0)), (300, 5, 1, None)],
        mounts=[(21, b"."), (33, b"sub/mnt"), (7, b"a/./b")],
        next_inode=0x200000010, next_handle=7)
    tiny = MigState([(1, 2, MIG_ROOT, None, None),
                     (2, 1, MIG_PATH, (1, b"a"), (5, -2, b"\xab\xcd"))],
                    handles=[(0, 2, O_RDWR, None)], mounts=[(5, b".")], known=False, minor=0,
                    enabled=0, bits=0b101, next_inode=300, next_handle=1)
    # a slot reused with a new generation sorts above the slots after it: any order is valid
    slots = MigState([(1, 1, MIG_ROOT, None, None), (0x300000002, 1, MIG_FULL, b"a/b", None),
                      (3, 5, MIG_PATH, (1, b"c"), None)],
                     handles=[(0x200000001, 3, O_RDWR, (10, 0)), (2, 1, O_DIRECTORY, (0, 3))])
    latin1 = MigState([(1, 1, MIG_ROOT, None, None), (2, 1, MIG_PATH, (1, b"caf\xe9"), None)])
    root_only = MigState([(1, 1, MIG_ROOT, None, None)], known=False, bits=0)
    # valid for vfsd, beyond what the Rust format holds: no next number, a refcount past 64 bits
    max_inode = MigState([(1, 1, MIG_ROOT, None, None), (2**64 - 1, 1, MIG_INVALID, None, None)])
    max_handle = MigState([(1, 1, MIG_ROOT, None, None)],
                          handles=[(2**64 - 1, 1, O_DIRECTORY, None)])
    max_refs = MigState([(1, 2**64 - 1, MIG_ROOT, None, None), (2, 0, MIG_PATH, (1, b"n"), None)])
    good = native(rich)
    trailer_fixed = bytes([1])
    as_is = bytes([0])

    def flip(b, i):
        return b[:i] + bytes([b[i] ^ 0x40]) + b[i + 1:]

    pc_tiny = postcard(tiny)

    def string_pc(b):
        return varint(len(b)) + b
    return {
        "native-rich": as_is + good,
        "native-tiny": as_is + native(tiny),
        "native-slots": as_is + native(slots),
        "native-latin1": as_is + native(latin1),  # no Rust String holds it
        "native-root-only": as_is + native(root_only),
        "native-max-inode": as_is + native(max_inode),
        "native-max-handle": as_is + native(max_handle),
        "native-max-refs": as_is + native(max_refs),
        "native-flipped": as_is + flip(good, 100),  # checksum
        "native-flipped-fixed": trailer_fixed + flip(good, 100),
        "native-cut": as_is + good[:len(good) // 2],
        "native-extra": as_is + good + b"\0",
        "native-v2": as_is + native(tiny, major=2),
        "native-v1.1": as_is + native(tiny, minor=1),
        "native-flags": as_is + native(tiny, flags=1),
        "native-count": trailer_fixed + good[:46] + struct.pack("<I", 1000) + good[50:],
        "postcard-rich": as_is + postcard(rich),
        "postcard-tiny": as_is + pc_tiny,
        "postcard-v1": as_is + postcard(rich, v1=True),
        "postcard-slots": as_is + postcard(slots),
        "postcard-v3": as_is + b"\2" + pc_tiny[1:],
        "postcard-overlong": as_is + pc_tiny[:18] + b"\xff" * 9 + b"\2" + pc_tiny[20:],
        "postcard-bool2": as_is + pc_tiny[:26] + b"\2" + pc_tiny[27:],
        "postcard-not-utf8": as_is + pc_tiny[:10] + b"\2\xc0\xaf" + pc_tiny[12:],
        "postcard-dotdot": as_is + pc_tiny[:10] + b"\2.." + pc_tiny[12:],
        # the ends of well-formed UTF-8 (U+D7FF, U+E000, U+10FFFF, U+0800, U+10000, U+0080):
        # a byte away from a surrogate, an overlong form or a code point too large
        "postcard-utf8-edges": as_is + pc_tiny[:10] + string_pc(
            b"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\xe0\xa0\x80\xf0\x90\x80\x80\xc2\x80") +
        pc_tiny[12:],
        "postcard-refcount-low": as_is + pc_tiny[:3] + b"\0" + pc_tiny[4:],
        "postcard-trailing": as_is + pc_tiny + b"\0",
        "postcard-count": as_is + b"\1\x64" + pc_tiny[2:8],
        "empty": b"",
    }


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, "seed-" + k), "wb") as f:
            f.write(v)


# gen-seeds.py [TARGET...]: those targets' seeds only
targets = {"fuzz_fuse": fuse_seeds, "fuzz_vhost": vhost_seeds, "fuzz_virtq": virtq_seeds,
           "fuzz_ctl": ctl_seeds, "fuzz_hook": hook_seeds, "fuzz_metrics": metrics_seeds,
           "fuzz_migrate": migrate_seeds}
for t in sys.argv[1:] or targets:
    write(t, targets[t]())
