#!/usr/bin/python3
"""make bench-density: what one supervised vfsd child costs, and how fast the supervisor
starts and stops them (docs/benchmarks.md, "Supervisor density").

It starts its own supervisor (vfsd --runtime-dir=TMP/rt) and, over its control socket:

  - spawn latency, request written -> reply read (the reply comes once the child is ready to
    accept the VMM), for 1 child (repeated), then N = 10 and 100 children: sequentially, one
    request after another over one connection, and concurrently, N requests written at once
    on N connections (each latency from its own request; "wall" from the first request to the
    last reply);
  - stop latency, request -> reply (the reply comes once the child has exited), the same ways;
  - each idle child's RSS, PSS and private-dirty memory from /proc/PID/smaps_rollup (median
    and max over the largest N), its threads, page tables (VmPTE) and fds; the default
    --sandbox=chroot, then --sandbox=namespace (two processes per child, summed), then chroot
    children with a minimal vhost-user frontend connected (rings set up, FUSE_INIT answered,
    then idle);
  - the supervisor's own RSS, PSS and fds with 0 and with N children;
  - the kernel's share per child (/proc/meminfo deltas: kernel stacks, page tables, slab);
  - for scale, the same idle numbers for QEMU's C virtiofsd (/usr/lib/qemu/virtiofsd) and,
    when one is found already installed, the Rust virtiofsd.

Everything it starts is killed on the way out, failure or not. Stdlib only; run as root.
"""
import argparse
import glob
import json
import math
import mmap
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- /proc ------------------------------------------------------------------------------

def read_kv(path):
    """'Key:   123 kB' lines -> {Key: 123} (kB, or a bare number)."""
    out = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.partition(":")
            if not sep:
                continue
            parts = v.split()
            if parts and parts[0].lstrip("-").isdigit():
                out[k.strip()] = int(parts[0])
    return out


def descendants(pid):
    """Every process below pid (children of all its threads, recursively)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for t in glob.glob(f"/proc/{p}/task/*/children"):
            try:
                with open(t) as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def count_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def proc_mem(pid):
    """One process: kB of RSS, PSS, private dirty..., page tables, threads, fds."""
    r = read_kv(f"/proc/{pid}/smaps_rollup")
    s = read_kv(f"/proc/{pid}/status")
    return {
        "rss": r.get("Rss", 0), "pss": r.get("Pss", 0),
        "private_dirty": r.get("Private_Dirty", 0),
        "pss_anon": r.get("Pss_Anon", 0), "pss_file": r.get("Pss_File", 0),
        "pss_shmem": r.get("Pss_Shmem", 0),
        "pte": s.get("VmPTE", 0), "threads": s.get("Threads", 0), "fds": count_fds(pid),
        "processes": 1,
    }


def tree_mem(pid):
    """A daemon and every process it forked, summed (PSS adds up; RSS double-counts what the
    processes share, so it is an upper bound)."""
    total = proc_mem(pid)
    for d in descendants(pid):
        try:
            m = proc_mem(d)
        except OSError:
            continue
        for k, v in m.items():
            total[k] += v
    return total


def smaps_breakdown(pid):
    """Private-dirty kB of one process by mapping name."""
    groups, cur = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and ":" not in first:
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
                perm = parts[1]
                cur = f"{os.path.basename(name) if name.startswith('/') else name} {perm}"
                groups.setdefault(cur, {"size": 0, "rss": 0, "private_dirty": 0, "n": 0})
                groups[cur]["n"] += 1
                continue
            k, _, v = line.partition(":")
            if cur and k in ("Size", "Rss", "Private_Dirty"):
                groups[cur][{"Size": "size", "Rss": "rss", "Private_Dirty": "private_dirty"}[k]] += int(v.split()[0])
    rows = [dict(mapping=k, **v) for k, v in groups.items() if v["rss"]]
    rows.sort(key=lambda r: (-r["private_dirty"], -r["rss"]))
    return rows


def meminfo():
    return read_kv("/proc/meminfo")


def summary(values):
    v = sorted(values)
    if not v:
        return None
    return {
        "n": len(v), "min": v[0], "median": statistics.median(v),
        "p95": v[max(0, math.ceil(0.95 * len(v)) - 1)], "max": v[-1],
        "mean": statistics.fmean(v),
    }


def mem_summary(mems):
    keys = mems[0].keys()
    return {k: summary([m[k] for m in mems]) for k in keys}


# ---- the control socket -----------------------------------------------------------------

class Ctl:
    """One connection to the supervisor: a JSON object per line, both ways."""

    def __init__(self, path, timeout=60.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())

    def line(self):
        """A complete line already received, or None."""
        nl = self.buf.find(b"\n")
        if nl < 0:
            return None
        line, self.buf = self.buf[:nl], self.buf[nl + 1:]
        return json.loads(line)

    def feed(self):
        """Reads what is there; False at end of stream."""
        data = self.s.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def recv(self):
        while True:
            obj = self.line()
            if obj is not None:
                return obj
            if not self.feed():
                raise RuntimeError("the supervisor closed the control connection")

    def call(self, obj):
        self.send(obj)
        return self.recv()

    def close(self):
        self.s.close()


def check_reply(rep, what):
    if not rep.get("ok"):
        raise RuntimeError(f"{what}: {rep.get('error', rep)}")
    return rep


# ---- a minimal vhost-user frontend (a VMM that sets the rings up and sends FUSE_INIT) -----

VU_GET_FEATURES, VU_SET_FEATURES, VU_SET_OWNER, VU_SET_MEM_TABLE = 1, 2, 3, 5
VU_SET_VRING_NUM, VU_SET_VRING_ADDR, VU_SET_VRING_BASE = 8, 9, 10
VU_SET_VRING_KICK, VU_SET_VRING_CALL = 12, 13
VU_GET_PROTOCOL_FEATURES, VU_SET_PROTOCOL_FEATURES, VU_SET_VRING_ENABLE = 15, 16, 18
F_PROTOCOL_FEATURES, F_VERSION_1 = 1 << 30, 1 << 32


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise RuntimeError("the daemon closed the vhost-user socket")
        out += d
    return out


class Frontend:
    """Guest memory is a 1 MiB memfd; two queues (hiprio, requests) of 256 entries."""
    MEM = 1 << 20
    UVA = 0x7F0000000000  # our "virtual address" of guest memory: any number will do
    QSIZE = 256
    IN_BUF, OUT_BUF = 0x10000, 0x11000

    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        self.memfd = os.memfd_create("density-guest", os.MFD_CLOEXEC)
        os.ftruncate(self.memfd, self.MEM)
        self.mem = mmap.mmap(self.memfd, self.MEM)
        self.kick = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(2)]
        self.call = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(2)]

    @staticmethod
    def ring(q):
        base = 0x1000 + q * 0x3000
        return base, base + 0x1000, base + 0x2000  # desc, avail, used

    def send(self, req, payload=b"", fds=()):
        data = struct.pack("<III", req, 1, len(payload)) + payload
        if fds:
            socket.send_fds(self.s, [data], list(fds))
        else:
            self.s.sendall(data)

    def get_u64(self, req):
        self.send(req)
        r, flags, size = struct.unpack("<III", recv_exact(self.s, 12))
        body = recv_exact(self.s, size)
        if r != req or not flags & 4 or size < 8:
            raise RuntimeError(f"vhost-user: bad reply to request {req}")
        return struct.unpack_from("<Q", body)[0]

    def start(self):
        feats = self.get_u64(VU_GET_FEATURES)
        if feats & F_PROTOCOL_FEATURES:
            self.get_u64(VU_GET_PROTOCOL_FEATURES)
            self.send(VU_SET_PROTOCOL_FEATURES, struct.pack("<Q", 0))  # no REPLY_ACK: no acks
        self.send(VU_SET_OWNER)
        for q in range(2):
            self.send(VU_SET_VRING_CALL, struct.pack("<Q", q), [self.call[q]])
        self.send(VU_SET_FEATURES, struct.pack("<Q", feats & (F_VERSION_1 | F_PROTOCOL_FEATURES)))
        self.send(VU_SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, self.MEM, self.UVA, 0),
                  [self.memfd])
        for q in range(2):
            desc, avail, used = self.ring(q)
            self.send(VU_SET_VRING_NUM, struct.pack("<II", q, self.QSIZE))
            self.send(VU_SET_VRING_BASE, struct.pack("<II", q, 0))
            self.send(VU_SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, self.UVA + desc, self.UVA + used,
                                                     self.UVA + avail, 0))
            self.send(VU_SET_VRING_KICK, struct.pack("<Q", q), [self.kick[q]])
        if feats & F_PROTOCOL_FEATURES:
            for q in range(2):
                self.send(VU_SET_VRING_ENABLE, struct.pack("<II", q, 1))
        self.get_u64(VU_GET_FEATURES)  # a round trip: everything before it was handled

    def fuse_init(self, timeout=5.0):
        """FUSE_INIT (protocol 7.31) on the request queue; returns the reply's error (0)."""
        q = 1
        desc, avail, used = self.ring(q)
        req = struct.pack("<IIQQIIIHH", 40 + 64, 26, 1, 0, 0, 0, 0, 0, 0)
        req += struct.pack("<IIIII", 7, 31, 0x20000, 0, 0) + bytes(44)
        self.mem[self.IN_BUF:self.IN_BUF + len(req)] = req
        self.mem[self.OUT_BUF:self.OUT_BUF + 16] = bytes(16)
        struct.pack_into("<QIHH", self.mem, desc, self.IN_BUF, len(req), 1, 1)  # NEXT
        struct.pack_into("<QIHH", self.mem, desc + 16, self.OUT_BUF, 4096, 2, 0)  # WRITE
        struct.pack_into("<H", self.mem, avail + 4, 0)
        struct.pack_into("<H", self.mem, avail + 2, 1)
        os.eventfd_write(self.kick[q], 1)
        deadline = time.monotonic() + timeout
        while struct.unpack_from("<H", self.mem, used + 2)[0] != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("no reply to FUSE_INIT")
            time.sleep(0.0005)
        return struct.unpack_from("<IiQ", self.mem, self.OUT_BUF)[1]

    def close(self):
        for fd in self.kick + self.call + [self.memfd]:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.mem.close()
        except (BufferError, ValueError):
            pass
        self.s.close()


# ---- the run ----------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="vfsd-density-")
        os.chmod(self.tmp, 0o755)
        for d in ("rt", "s", "share", "v"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        self.sup = None
        self.ctl = None
        self.children = {}  # sandbox -> pid, while alive
        self.procs = []  # virtiofsd Popen objects
        self.frontends = []
        self.seq = 0

    # -- supervisor --

    def start_supervisor(self):
        rt = os.path.join(self.tmp, "rt")
        self.control = os.path.join(rt, "control.sock")
        self.sup_log = open(os.path.join(self.tmp, "supervisor.log"), "wb")
        self.sup = subprocess.Popen([self.args.vfsd, f"--runtime-dir={rt}"], stdin=subprocess.DEVNULL,
                                    stdout=self.sup_log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            if self.sup.poll() is not None:
                raise RuntimeError(f"the supervisor exited ({self.sup.returncode}): {self.log_tail()}")
            try:
                self.ctl = Ctl(self.control)
                check_reply(self.ctl.call({"op": "ping"}), "ping")
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise RuntimeError("the supervisor's control socket did not appear")
                time.sleep(0.01)

    def log_tail(self):
        try:
            with open(os.path.join(self.tmp, "supervisor.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def new_names(self, n):
        names = []
        for _ in range(n):
            self.seq += 1
            name = f"d{self.seq}"
            os.makedirs(os.path.join(self.tmp, "share", name), exist_ok=True)
            names.append(name)
        return names

    def spawn_req(self, name, rid, extra):
        req = {"op": "spawn", "id": rid, "sandbox": name,
               "shared_dir": os.path.join(self.tmp, "share", name),
               "socket_path": os.path.join(self.tmp, "s", name + ".sock")}
        if extra:
            req["args"] = list(extra)
        return req

    def sock_of(self, name):
        return os.path.join(self.tmp, "s", name + ".sock")

    def spawn_seq(self, names, extra=()):
        lat = []
        for name in names:
            req = self.spawn_req(name, self.seq, extra)
            t0 = time.perf_counter()
            rep = self.ctl.call(req)
            lat.append((time.perf_counter() - t0) * 1000)
            check_reply(rep, f"spawn {name}")
            self.children[name] = rep["pid"]
        return lat

    def stop_seq(self, names):
        lat = []
        for name in names:
            t0 = time.perf_counter()
            rep = self.ctl.call({"op": "stop", "sandbox": name})
            lat.append((time.perf_counter() - t0) * 1000)
            check_reply(rep, f"stop {name}")
            self.children.pop(name, None)
        return lat

    def connections(self, n):
        conns = []
        for _ in range(n):
            c = Ctl(self.control)
            check_reply(c.call({"op": "ping"}), "ping")  # accepted before the clock starts
            conns.append(c)
        return conns

    def concurrent(self, conns, reqs):
        """Writes reqs[i] on conns[i], all at once; returns (latencies ms, wall ms, replies)."""
        sel = selectors.DefaultSelector()
        t0s, done, replies = [0.0] * len(reqs), [0.0] * len(reqs), [None] * len(reqs)
        for i, (c, r) in enumerate(zip(conns, reqs)):
            sel.register(c.s, selectors.EVENT_READ, i)
        start = time.perf_counter()
        for i, (c, r) in enumerate(zip(conns, reqs)):
            t0s[i] = time.perf_counter()
            c.send(r)
        left = len(reqs)
        deadline = time.monotonic() + 120
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{left} concurrent replies never came")
            for key, _ in sel.select(timeout=1.0):
                i = key.data
                c = conns[i]
                if not c.feed():
                    raise RuntimeError("the supervisor closed a control connection")
                obj = c.line()
                if obj is not None and replies[i] is None:
                    done[i] = time.perf_counter()
                    replies[i] = obj
                    sel.unregister(c.s)
                    left -= 1
        sel.close()
        lat = [(d - t) * 1000 for d, t in zip(done, t0s)]
        return lat, (max(done) - start) * 1000, replies

    def spawn_conc(self, conns, names, extra=()):
        lat, wall, reps = self.concurrent(conns, [self.spawn_req(n, i, extra) for i, n in enumerate(names)])
        for name, rep in zip(names, reps):
            check_reply(rep, f"spawn {name}")
            self.children[name] = rep["pid"]
        return lat, wall

    def stop_conc(self, conns, names):
        lat, wall, reps = self.concurrent(conns, [{"op": "stop", "sandbox": n} for n in names])
        for name, rep in zip(names, reps):
            check_reply(rep, f"stop {name}")
            self.children.pop(name, None)
        return lat, wall

    def running(self):
        rep = check_reply(self.ctl.call({"op": "list"}), "list")
        return sum(1 for s in rep["sandboxes"] if s.get("state") == "running")

    # -- the other daemons --

    def start_virtiofsd(self, kind, path, n):
        """n instances, one after another, each waited for until its socket exists; returns
        (popens, sockets, start latencies ms)."""
        procs, socks, lat = [], [], []
        for i in range(n):
            share = os.path.join(self.tmp, "v", f"{kind}{i}")
            os.makedirs(share, exist_ok=True)
            sock = os.path.join(self.tmp, "v", f"{kind}{i}.sock")
            if kind == "c":
                argv = [path, f"--socket-path={sock}", "-o", f"source={share}", "-o", "sandbox=chroot"]
            elif kind == "vfsd":  # ready when it says so on --ready-fd, as for the supervisor
                rfd, wfd = os.pipe2(os.O_CLOEXEC)
                argv = [path, f"--socket-path={sock}", f"--shared-dir={share}", "--sandbox=chroot",
                        f"--ready-fd={wfd}"]
            else:
                argv = [path, f"--socket-path={sock}", f"--shared-dir={share}", "--sandbox=chroot"]
            log = open(os.path.join(self.tmp, "v", f"{kind}{i}.log"), "wb")
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, pass_fds=(wfd,) if kind == "vfsd" else ())
            log.close()
            self.procs.append(p)
            deadline = time.monotonic() + 10
            if kind == "vfsd":
                os.close(wfd)
                ready = select_read(rfd, 10)
                os.close(rfd)
                if not ready.startswith(b"R"):
                    raise RuntimeError(f"{path} did not say it was ready ({ready!r})")
            while not os.path.exists(sock):
                if p.poll() is not None:
                    with open(os.path.join(self.tmp, "v", f"{kind}{i}.log"), "rb") as f:
                        raise RuntimeError(f"{path} exited ({p.returncode}): {f.read()[-500:].decode(errors='replace')}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path}: no socket {sock} after 10 s")
                time.sleep(0.0005)
            lat.append((time.perf_counter() - t0) * 1000)
            procs.append(p)
            socks.append(sock)
        return procs, socks, lat

    def stop_procs(self, procs):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def connect_all(self, socks):
        """A frontend on each socket, rings started and FUSE_INIT answered."""
        fes, errors = [], 0
        for s in socks:
            fe = Frontend(s)
            self.frontends.append(fe)
            fe.start()
            if fe.fuse_init() != 0:
                errors += 1
            fes.append(fe)
        return fes, errors

    def close_frontends(self):
        for fe in self.frontends:
            fe.close()
        self.frontends = []

    # -- the way out --

    def ours(self):
        """Daemons whose command line names our temporary directory: only we started those."""
        exes = {os.path.realpath(x) for x in (self.args.vfsd, self.args.virtiofsd,
                                              getattr(self.args, "rust_path", None)) if x}
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                exe = os.path.realpath(os.readlink(f"/proc/{d}/exe"))
            except OSError:
                continue
            if exe in exes and any(self.tmp.encode() in a for a in argv):
                out.append(int(d))
        return out

    def cleanup(self):
        leftovers = []
        try:
            self.close_frontends()
        except Exception:
            pass
        if self.ctl:
            try:
                self.ctl.close()
            except OSError:
                pass
        pids = set(self.children.values())
        for p in list(pids):
            pids.update(descendants(p))
        pids.update(self.ours())
        if self.sup:
            pids.discard(self.sup.pid)
        for p in sorted(pids):
            try:
                os.kill(p, signal.SIGKILL)
                leftovers.append(p)
            except ProcessLookupError:
                pass
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if self.sup and self.sup.poll() is None:
            self.sup.terminate()
            try:
                self.sup.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.sup.kill()
                self.sup.wait()
        # a child we killed may still be on its way out: its files go with the directory
        time.sleep(0.05)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return leftovers


def select_read(fd, timeout):
    """What fd gives within timeout seconds (b"" at end of file or on timeout)."""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        return os.read(fd, 64) if sel.select(timeout) else b""
    finally:
        sel.close()


def find_rust_virtiofsd(given):
    if given:
        return given if os.access(given, os.X_OK) else None
    home = os.path.expanduser("~")
    cands = [os.path.join(os.environ.get("CARGO_HOME", os.path.join(home, ".cargo")), "bin", "virtiofsd"),
             os.path.join(home, ".cargo", "bin", "virtiofsd"), "/usr/libexec/virtiofsd"]
    for pat in ("~/.cache/*/bin/virtiofsd", "~/.cache/*/*/bin/virtiofsd", "~/.cache/*/*/release/virtiofsd",
                "/var/cache/*/bin/virtiofsd"):
        cands += sorted(glob.glob(os.path.expanduser(pat)))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    distro = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "distro": distro, "kernel": platform.release(),
            "mem_total_kb": meminfo().get("MemTotal", 0), "nofile_hard_limit": open_limit(),
            "loadavg_at_start": os.getloadavg()[0]}


def open_limit():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def daemon_version(path, kind):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except Exception:
        return kind


# ---- the measurements -------------------------------------------------------------------

def measure(run, res, log):
    a = run.args
    counts = sorted(set(a.counts))
    top = counts[-1]
    settle = a.settle
    lat, stop = res["spawn_latency_ms"], res["stop_latency_ms"]
    idle, sup = res["memory"], res["supervisor"]

    run.start_supervisor()
    time.sleep(settle)
    sup["0 children"] = proc_mem(run.sup.pid)
    log(f"supervisor {run.sup.pid} up: RSS {sup['0 children']['rss']} kB")

    if 1 in counts:
        l1, s1 = [], []
        for _ in range(a.repeat):
            names = run.new_names(1)
            l1 += run.spawn_seq(names)
            s1 += run.stop_seq(names)
        lat[f"1 (x{a.repeat}, one at a time)"] = {"summary": summary(l1), "wall_ms": None}
        stop[f"1 (x{a.repeat}, one at a time)"] = {"summary": summary(s1), "wall_ms": None}
        log(f"1 child: spawn median {statistics.median(l1):.2f} ms, stop {statistics.median(s1):.2f} ms")

    for n in counts:
        if n == 1:
            continue
        # sequential: one connection, one request after another
        mi0 = meminfo()
        names = run.new_names(n)
        t0 = time.perf_counter()
        l = run.spawn_seq(names)
        wall = (time.perf_counter() - t0) * 1000
        lat[f"{n} sequential"] = {"summary": summary(l), "wall_ms": wall}
        log(f"{n} sequential: spawn median {statistics.median(l):.2f} ms, wall {wall:.0f} ms")
        if n == top:
            if run.running() != n:
                raise RuntimeError(f"list does not show {n} running children")
            time.sleep(settle)
            mi1 = meminfo()
            mems = [proc_mem(run.children[x]) for x in names]
            idle["vfsd chroot, waiting for the VMM"] = mem_summary(mems)
            sup[f"{n} children, 1 connection"] = proc_mem(run.sup.pid)
            res["kernel_per_child_kb"] = {
                k: (mi1.get(k, 0) - mi0.get(k, 0)) / n
                for k in ("KernelStack", "PageTables", "SUnreclaim")}
            med = sorted(mems, key=lambda m: m["rss"])[len(mems) // 2]
            pid = run.children[names[mems.index(med)]]
            res["breakdown"] = {"pid": pid, "rollup": med, "mappings": smaps_breakdown(pid)}
        t0 = time.perf_counter()
        s = run.stop_seq(names)
        stop[f"{n} sequential"] = {"summary": summary(s), "wall_ms": (time.perf_counter() - t0) * 1000}

        # concurrent: n connections, n requests written at once
        conns = run.connections(n)
        names = run.new_names(n)
        l, wall = run.spawn_conc(conns, names)
        lat[f"{n} concurrent"] = {"summary": summary(l), "wall_ms": wall}
        log(f"{n} concurrent: spawn median {statistics.median(l):.2f} ms, wall {wall:.0f} ms")
        if n == top:
            time.sleep(settle)
            sup[f"{n} children, {n} connections"] = proc_mem(run.sup.pid)
            idle["vfsd chroot, waiting (concurrent set)"] = mem_summary(
                [proc_mem(run.children[x]) for x in names])
        s, wall = run.stop_conc(conns, names)
        stop[f"{n} concurrent"] = {"summary": summary(s), "wall_ms": wall}
        for c in conns:
            c.close()

    time.sleep(settle)
    sup["0 children again"] = proc_mem(run.sup.pid)

    if a.namespace:
        names = run.new_names(top)
        try:
            t0 = time.perf_counter()
            l = run.spawn_seq(names, ["--sandbox=namespace"])
            lat[f"{top} sequential, --sandbox=namespace"] = {
                "summary": summary(l), "wall_ms": (time.perf_counter() - t0) * 1000}
            time.sleep(settle)
            idle["vfsd namespace (both processes), waiting"] = mem_summary(
                [tree_mem(run.children[x]) for x in names])
            t0 = time.perf_counter()
            s = run.stop_seq([x for x in names if x in run.children])
            stop[f"{top} sequential, --sandbox=namespace"] = {
                "summary": summary(s), "wall_ms": (time.perf_counter() - t0) * 1000}
            log(f"namespace: spawn median {statistics.median(l):.2f} ms")
        except RuntimeError as e:
            res["notes"].append(f"--sandbox=namespace: {e}")
            run.stop_seq([x for x in names if x in run.children])

    if a.connected:
        names = run.new_names(top)
        run.spawn_seq(names)
        try:
            _, errs = run.connect_all([run.sock_of(x) for x in names])
            time.sleep(settle)
            idle["vfsd chroot, connected + FUSE_INIT, idle"] = mem_summary(
                [proc_mem(run.children[x]) for x in names])
            if errs:
                res["notes"].append(f"vfsd: {errs} FUSE_INIT replies carried an error")
            log("connected vfsd children measured")
        except (RuntimeError, OSError) as e:
            res["notes"].append(f"vfsd connected: {e}")
        run.stop_seq(names)
        run.close_frontends()

    vfs = [("vfsd", "vfsd without the supervisor", a.vfsd),
           ("c", "C virtiofsd", a.virtiofsd if os.access(a.virtiofsd or "", os.X_OK) else None)]
    rust = a.rust_path = find_rust_virtiofsd(a.rust_virtiofsd)
    vfs.append(("rust", "Rust virtiofsd", rust))
    for kind, label, path in vfs:
        if not a.others:
            break
        if not path:
            res["notes"].append(f"{label}: not available" + (
                " (none under ~/.cargo/bin, $CARGO_HOME/bin or a cache; this script does not install it)"
                if kind == "rust" else f" ({a.virtiofsd} missing)"))
            continue
        ver = daemon_version(path, label)
        res["others"][label] = {"path": path, "version": ver}
        try:
            procs, socks, l = run.start_virtiofsd(kind, path, top)
            res["others"][label]["start_ms"] = summary(l)
            res["others"][label]["start_until"] = "ready (--ready-fd)" if kind == "vfsd" else "its socket exists"
            time.sleep(settle)
            idle[f"{label}, waiting for the VMM"] = mem_summary([tree_mem(p.pid) for p in procs])
            log(f"{label}: {top} started, median {statistics.median(l):.2f} ms to {res['others'][label]['start_until']}")
            if a.connected:
                try:
                    _, errs = run.connect_all(socks)
                    time.sleep(settle)
                    idle[f"{label}, connected + FUSE_INIT, idle"] = mem_summary([tree_mem(p.pid) for p in procs])
                    if errs:
                        res["notes"].append(f"{label}: {errs} FUSE_INIT replies carried an error")
                except (RuntimeError, OSError) as e:
                    res["notes"].append(f"{label} connected: {e}")
            run.stop_procs(procs)
            run.close_frontends()
        except RuntimeError as e:
            res["notes"].append(f"{label}: {e}")


# ---- the report ---------------------------------------------------------------------------

def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def report(res):
    m = res["machine"]
    lines = [f"vfsd supervisor density: {m['cores']} cores, {m['distro']}, kernel {m['kernel']}, "
             f"{m['mem_total_kb'] // 1024} MiB, load average {m['loadavg_at_start']:.2f} at the start; "
             f"{res['vfsd']}", ""]

    def lat_rows(d):
        rows = []
        for k, v in d.items():
            s = v["summary"]
            rows.append([k, f"{s['min']:.2f}", f"{s['median']:.2f}", f"{s['p95']:.2f}", f"{s['max']:.2f}",
                         "-" if v["wall_ms"] is None else f"{v['wall_ms']:.1f}"])
        return rows

    head = ["children", "min", "median", "p95", "max", "wall (all of them)"]
    lines += ["Spawn latency, request written -> reply (child ready), ms", "",
              table(head, lat_rows(res["spawn_latency_ms"])), ""]
    lines += ["Stop latency, request written -> reply (child exited), ms", "",
              table(head, lat_rows(res["stop_latency_ms"])), ""]

    rows = []
    for k, s in res["memory"].items():
        rows.append([k, f"{s['processes']['median']:g}", f"{s['threads']['median']:g}",
                     f"{s['rss']['median']:.0f} / {s['rss']['max']:.0f}",
                     f"{s['pss']['median']:.0f} / {s['pss']['max']:.0f}",
                     f"{s['private_dirty']['median']:.0f} / {s['private_dirty']['max']:.0f}",
                     f"{s['pte']['median']:.0f}", f"{s['fds']['median']:.0f}", s["rss"]["n"]])
    lines += ["Idle daemon memory, kB (median / max over the daemons)", "",
              table(["daemon, state", "processes", "threads", "RSS", "PSS", "Private_Dirty",
                     "page tables", "fds", "daemons"], rows), ""]

    rows = [[k, v["rss"], v["pss"], v["private_dirty"], v["pte"], v["fds"], v["threads"]]
            for k, v in res["supervisor"].items()]
    lines += ["The supervisor itself, kB", "",
              table(["state", "RSS", "PSS", "Private_Dirty", "page tables", "fds", "threads"], rows), ""]

    if res.get("kernel_per_child_kb"):
        k = res["kernel_per_child_kb"]
        lines += ["Per child outside its RSS (/proc/meminfo, 0 -> N children, divided by N: machine-wide, so "
                  "approximate), kB", "",
                  table(list(k.keys()), [[f"{v:.1f}" for v in k.values()]]), ""]

    for label, o in res["others"].items():
        if o.get("start_ms"):
            s = o["start_ms"]
            lines.append(f"{label} ({o['version']}): exec -> {o['start_until']}, ms: min {s['min']:.2f}, "
                         f"median {s['median']:.2f}, p95 {s['p95']:.2f}, max {s['max']:.2f}")
    if res["others"]:
        lines.append("")

    if res.get("breakdown"):
        b = res["breakdown"]
        rows = [[r["mapping"], r["n"], r["size"], r["rss"], r["private_dirty"]]
                for r in b["mappings"][:16]]
        lines += [f"One idle vfsd child (pid {b['pid']}, median RSS) by mapping, kB, most private-dirty first", "",
                  table(["mapping", "count", "size", "RSS", "Private_Dirty"], rows), ""]
    for n in res["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vfsd", default=os.path.join(ROOT, "build", "vfsd"),
                    help="the vfsd binary; the supervisor runs it and its children are it")
    ap.add_argument("--virtiofsd", default="/usr/lib/qemu/virtiofsd", help="the C virtiofsd")
    ap.add_argument("--rust-virtiofsd", default=None,
                    help="the Rust virtiofsd (default: looked for under ~/.cargo/bin and caches)")
    ap.add_argument("--counts", default="1,10,100", type=lambda s: [int(x) for x in s.split(",")],
                    help="how many children at once (default 1,10,100; memory is read at the largest)")
    ap.add_argument("--repeat", type=int, default=5, help="spawns of the single child")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before reading memory")
    ap.add_argument("--no-namespace", dest="namespace", action="store_false",
                    help="skip the --sandbox=namespace children")
    ap.add_argument("--no-connected", dest="connected", action="store_false",
                    help="skip connecting a minimal vhost-user frontend to each daemon")
    ap.add_argument("--no-others", dest="others", action="store_false", help="skip the virtiofsds")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    a.vfsd = os.path.abspath(a.vfsd)
    if os.geteuid() != 0:
        print("density: run as root (the children chroot)", file=sys.stderr)
        return 2
    if not os.access(a.vfsd, os.X_OK):
        print(f"density: no {a.vfsd} (make first)", file=sys.stderr)
        return 2

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    def log(msg):
        if not a.quiet:
            print(f"density: {msg}", file=sys.stderr, flush=True)

    res = {"machine": machine(), "vfsd": f"{a.vfsd} ({daemon_version(a.vfsd, 'vfsd')})",
           "spawn_latency_ms": {}, "stop_latency_ms": {}, "memory": {}, "supervisor": {},
           "others": {}, "notes": []}
    run = Run(a)
    status = 0
    try:
        measure(run, res, log)
    except (RuntimeError, OSError) as e:
        print(f"density: {e}", file=sys.stderr)
        if run.sup and run.sup.poll() is not None:
            print(f"density: the supervisor ended (status {run.sup.returncode})", file=sys.stderr)
        tail = run.log_tail()
        if tail:
            print(f"density: supervisor log:\n{tail}", file=sys.stderr)
        status = 1
    finally:
        killed = run.cleanup()
        if killed and status == 0:
            res["notes"].append(f"killed {len(killed)} processes left over at the end: {killed}")
    print(report(res))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
