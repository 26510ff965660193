#!/usr/bin/python3
"""
The supervisor's control socket under hostile and awkward clients (driven by tests/ctl/run.sh).
Prints "PASS name" / "FAIL name reason" lines; every wait is bounded.

  hostile.py root SOCK WORK sup=PID bin=VFSD [cgroup=DIR]   protocol, bad input, clients, children
  hostile.py denied SOCK                                    a uid the supervisor does not allow
  hostile.py user SOCK WORK nspid=PID [cgroup=DIR]           an allowed uid, its own user namespace
  hostile.py restart-before SOCK WORK                        a child that outlives its supervisor
  hostile.py restart-after SOCK WORK                         ...and the next supervisor adopts it

WORK is run.sh's work directory: WORK/share (a share), WORK/s (sockets), WORK/rt (runtime dir);
for "user", WORK/u/{share,sock} belong to the user, WORK/u/{rootonly,rootsock} to root.
"""
import errno
import fcntl
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import termios
import time
import traceback

TIMEOUT = 5.0


def check(name, ok, why=""):
    if ok:
        print(f"PASS {name}", flush=True)
    else:
        print(f"FAIL {name} {why}"[:600], flush=True)
    return ok


class Conn:
    """One control connection: request lines out, reply and event lines in."""

    def __init__(self, path, timeout=TIMEOUT):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except BlockingIOError:  # the listen backlog is full: the supervisor is behind
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        self.buf = b""
        self.timeout = timeout

    def send(self, data, fds=None):
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        if fds:
            n = socket.send_fds(self.s, [data], fds)
            self.s.sendall(data[n:])
        else:
            self.s.sendall(data)

    def line(self, timeout=None):
        """The next line (bytes, without newline); None once the peer closed."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within the time limit")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self, timeout=None):
        line = self.line(timeout)
        return None if line is None else json.loads(line)

    def req(self, obj, fds=None, timeout=None):
        self.send(obj, fds)
        return self.recv(timeout)

    def at_eof(self, timeout=2.0):
        """True when the peer closes (after any lines still owed) within the timeout."""
        try:
            while self.line(timeout) is not None:
                pass
            return True
        except TimeoutError:
            return False

    def close(self):
        self.s.close()


def quick(sock, obj, timeout=TIMEOUT):
    c = Conn(sock, timeout)
    try:
        return c.req(obj)
    finally:
        c.close()


def wait_until(fn, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def gone(pid):
    """The process has ended (a zombie no one reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return st[st.rindex(")") + 2] in "ZX"


def fd_inodes(pid):
    """The socket inodes among a process's open files."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def describe(r):
    return json.dumps(r)[:300] if r is not None else "no reply (connection closed)"


def is_error(r, err, substr=None):
    """Why r is not the error reply wanted ('' when it is)."""
    if not isinstance(r, dict):
        return f"not an object: {describe(r)}"
    if r.get("ok") is not False:
        return f"ok is not false: {describe(r)}"
    if not isinstance(r.get("error"), str) or not r["error"]:
        return f"no error sentence: {describe(r)}"
    if r.get("errno") != err:
        return f"errno {r.get('errno')}, wanted {err} ({errno.errorcode.get(err)}): {describe(r)}"
    if substr and substr not in r["error"]:
        return f"error does not say '{substr}': {describe(r)}"
    return ""


class Suite:
    def __init__(self, sock, work, opts):
        self.sock = sock
        self.work = work
        self.opts = opts
        self.share = f"{work}/share"
        self.sdir = f"{work}/s"
        self.rt = f"{work}/rt"
        self.sup = int(opts["sup"]) if "sup" in opts else None
        self.n = 0

    def sockpath(self, name):
        return f"{self.sdir}/{name}.sock"

    def spawn_req(self, sb, **kw):
        r = {"op": "spawn", "sandbox": sb, "shared_dir": self.share}
        if "fd" not in kw:
            r["socket_path"] = self.sockpath(sb)
        kw.pop("fd", None)
        r.update(kw)
        return {k: v for k, v in r.items() if v is not None}

    def bad(self, c, name, line, err, substr=None, fds=None, want_id=None):
        """One bad request on connection c: one error line, then c still answers a ping."""
        try:
            c.send(line, fds)
            r = c.recv()
            why = is_error(r, err, substr)
            if not why and want_id is not None and r.get("id") != want_id:
                why = f"id {r.get('id')!r} not echoed as {want_id!r}"
            self.n += 1
            p = c.req({"op": "ping", "id": f"after-{self.n}"})
            if not why and (not p or p.get("ok") is not True or p.get("id") != f"after-{self.n}"):
                why = f"the next line is not the ping's reply: {describe(p)}"
        except Exception as e:  # a timeout or a closed connection is a failure of this check
            why = f"{type(e).__name__}: {e}"
        return check(name, not why, why)

    def status(self, sb):
        return quick(self.sock, {"op": "status", "sandbox": sb})

    def stop(self, sb, **kw):
        return quick(self.sock, {"op": "stop", "sandbox": sb, **kw}, timeout=10)

    # --- 1. the ops that answer at once ---------------------------------------------------

    def protocol(self):
        c = Conn(self.sock)
        r = c.req({"op": "ping"})
        check("ping", r == {"ok": True}, describe(r))
        r = c.req({"op": "ping", "id": "req-1"})
        check("ping-id-string", r == {"ok": True, "id": "req-1"}, describe(r))
        r = c.req({"op": "ping", "id": 42})
        check("ping-id-integer", r == {"ok": True, "id": 42}, describe(r))
        r = c.req({"op": "ping", "id": -9007199254740993})
        check("ping-id-big-integer", r and r.get("id") == -9007199254740993, describe(r))
        r = c.req({"op": "version", "id": "v"})
        ops = {"ping", "version", "spawn", "stop", "list", "status", "watch", "metrics",
               "export-state", "resume"}
        check("version", r and r.get("ok") is True and r.get("id") == "v" and
              isinstance(r.get("version"), str) and r.get("protocol") == 1 and
              set(r.get("ops", [])) == ops, describe(r))
        r = c.req({"op": "list", "id": 7})
        check("list", r and r.get("ok") is True and r.get("id") == 7 and
              isinstance(r.get("sandboxes"), list), describe(r))
        r = c.req({"op": "status", "sandbox": "no-such-sandbox", "id": "s"})
        check("status-unknown-enoent", not is_error(r, errno.ENOENT) and r.get("id") == "s",
              is_error(r, errno.ENOENT) or "id not echoed")
        r = c.req({"op": "stop", "sandbox": "no-such-sandbox"})
        check("stop-unknown-enoent", not is_error(r, errno.ENOENT), is_error(r, errno.ENOENT))
        # several requests in one write: one reply each, in order
        c.send(b'{"op":"ping","id":1}\n{"op":"version","id":2}\n{"op":"list","id":3}\n')
        ids = [(c.recv() or {}).get("id") for _ in range(3)]
        check("pipelined-requests", ids == [1, 2, 3], f"ids {ids}")
        # a request split over many writes
        for ch in b'{"op": "ping", "id": "slow"}':
            c.s.sendall(bytes([ch]))
        c.s.sendall(b"\n")
        r = c.recv()
        check("request-byte-by-byte", r == {"ok": True, "id": "slow"}, describe(r))
        r = c.req(b'  {"op":"ping","id":"ws"} \r')
        check("whitespace-and-cr-around-object", r == {"ok": True, "id": "ws"}, describe(r))
        c.close()

    # --- 2. bad input ----------------------------------------------------------------------

    def bad_input(self):
        c = Conn(self.sock)
        E, N, B = errno.EINVAL, errno.ENOSYS, self.bad
        B(c, "malformed-json", '{"op":', E, "malformed JSON")
        B(c, "malformed-garbage", "hello there", E, "malformed JSON")
        B(c, "malformed-unclosed-string", '{"op":"ping', E, "malformed JSON")
        B(c, "text-after-object", '{"op":"ping"} {"op":"ping"}', E, "text after")
        B(c, "empty-line", "", E)
        B(c, "json-array", '[{"op":"ping"}]', E, "JSON object")
        B(c, "json-number", "42", E)  # json-c cannot tell where a bare number ends
        B(c, "json-number-space", "42 ", E, "JSON object")
        B(c, "json-string", '"ping"', E, "JSON object")
        B(c, "json-null", "null", E)
        B(c, "json-true", "true", E)
        B(c, "no-op", "{}", E, '"op"')
        B(c, "no-op-echoes-id", '{"id":"no-op"}', E, '"op"', want_id="no-op")
        B(c, "op-number", '{"op":1}', E, '"op" must be a string')
        B(c, "op-null", '{"op":null}', E, '"op"')
        B(c, "op-array", '{"op":["ping"]}', E, '"op"')
        B(c, "op-object", '{"op":{"ping":1}}', E, '"op"')
        B(c, "op-bool", '{"op":true}', E, '"op"')
        B(c, "unknown-op", '{"op":"frobnicate","id":"u"}', N, "unknown op", want_id="u")
        B(c, "unknown-op-uppercase", '{"op":"PING"}', N, "unknown op")
        B(c, "unknown-op-empty", '{"op":""}', N)
        B(c, "unknown-field", '{"op":"ping","bogus":1,"id":9}', E, "unknown field 'bogus'", want_id=9)
        B(c, "field-of-another-op", '{"op":"ping","sandbox":"a"}', E, "unknown field 'sandbox'")
        B(c, "grace-on-list", '{"op":"list","grace_ms":1}', E, "unknown field")
        B(c, "socket-on-stop", '{"op":"stop","sandbox":"a","socket_path":"/x"}', E, "unknown field")
        B(c, "id-array", '{"op":"ping","id":[1]}', E, '"id"')
        B(c, "id-object", '{"op":"ping","id":{"a":1}}', E, '"id"')
        B(c, "id-float", '{"op":"ping","id":1.5}', E, '"id"')
        B(c, "id-bool", '{"op":"ping","id":false}', E, '"id"')
        B(c, "id-too-long", json.dumps({"op": "ping", "id": "x" * 300}), E, '"id"')
        # every field with a wrong type
        sp = self.spawn_req
        for name, field, val, what in [
            ("sandbox-number", "sandbox", 1, '"sandbox"'),
            ("sandbox-null", "sandbox", None, '"sandbox"'),
            ("sandbox-array", "sandbox", ["a"], '"sandbox"'),
            ("shared_dir-number", "shared_dir", 5, '"shared_dir"'),
            ("shared_dir-null", "shared_dir", None, '"shared_dir"'),
            ("socket_path-array", "socket_path", [], '"socket_path"'),
            ("socket_path-bool", "socket_path", True, '"socket_path"'),
            ("userns-object", "userns", {}, '"userns"'),
            ("userns-number", "userns", 1, '"userns"'),
            ("cgroup-bool", "cgroup", False, '"cgroup"'),
            ("cgroup-array", "cgroup", ["/sys/fs/cgroup"], '"cgroup"'),
            ("args-string", "args", "--cache=never", '"args"'),
            ("args-object", "args", {"cache": "never"}, '"args"'),
            ("args-number-entry", "args", ["--cache=never", 1], '"args"[1]'),
            ("args-null-entry", "args", [None], '"args"[0]'),
            ("args-too-many", "args", ["--readdirplus"] * 65, '"args"'),
            ("args-entry-too-long", "args", ["x" * 4097], '"args"[0]'),
            ("labels-array", "labels", ["a"], '"labels"'),
            ("labels-string", "labels", "a=b", '"labels"'),
            ("labels-number-value", "labels", {"team": 1}, "label 'team'"),
            ("labels-null-value", "labels", {"team": None}, "label 'team'"),
            ("labels-bad-name", "labels", {"1team": "x"}, "label name"),
            ("labels-dash-name", "labels", {"team-a": "x"}, "label name"),
            ("labels-too-many", "labels", {f"l{i}": "x" for i in range(17)}, '"labels"'),
            ("labels-value-too-long", "labels", {"team": "x" * 1025}, "label 'team'"),
        ]:
            req = sp(f"types-{name}")
            req[field] = val
            B(c, f"type-{name}", json.dumps(req), E, what)
        for name, val in [("string", '"5"'), ("float", "1.5"), ("negative", "-1"),
                          ("too-big", "3600001"), ("null", "null"), ("array", "[5]")]:
            B(c, f"type-grace_ms-{name}", '{"op":"stop","sandbox":"a","grace_ms":%s}' % val, E,
              '"grace_ms"')
        # a NUL inside a string, and a raw NUL byte
        sh = json.dumps(self.share)[1:-1]
        B(c, "nul-in-op", r'{"op":"ping\u0000"}', E, '"op"')
        B(c, "nul-in-id", r'{"op":"ping","id":"a\u0000b"}', E, '"id"')
        B(c, "nul-in-sandbox", r'{"op":"status","sandbox":"a\u0000b"}', E, '"sandbox"')
        B(c, "nul-in-shared_dir",
          r'{"op":"spawn","sandbox":"n","shared_dir":"%s\u0000/x","socket_path":"%s"}'
          % (sh, self.sockpath("n")), E, "NUL")
        B(c, "nul-in-socket_path",
          r'{"op":"spawn","sandbox":"n","shared_dir":"%s","socket_path":"/tmp/a\u0000b"}' % sh,
          E, "NUL")
        B(c, "nul-in-arg",
          r'{"op":"spawn","sandbox":"n","shared_dir":"%s","socket_path":"%s","args":["--cache\u0000=never"]}'
          % (sh, self.sockpath("n")), E, '"args"[0]')
        B(c, "nul-in-label",
          r'{"op":"spawn","sandbox":"n","shared_dir":"%s","socket_path":"%s","labels":{"a":"\u0000"}}'
          % (sh, self.sockpath("n")), E, "label 'a'")
        B(c, "nul-in-key", r'{"op":"ping","a\u0000b":1}', E)
        B(c, "nul-byte-in-line", b'{"op":"ping","id":"x\x00"}', E, "NUL")
        # paths that are not absolute
        for field, val in [("shared_dir", "share"), ("shared_dir", ""), ("socket_path", "x.sock"),
                           ("socket_path", "./x.sock"), ("userns", "proc/1/ns/user"),
                           ("cgroup", "sys/fs/cgroup")]:
            req = sp("rel")
            req[field] = val
            B(c, f"relative-{field}-{val or 'empty'}".replace("/", "_"), json.dumps(req), E,
              "absolute")
        # sandbox ids
        for i, sb in enumerate(["", ".hidden", "-x", "a/b", "../etc", "a b", "é", "a\nb", "x" * 129,
                                "a:b", "a*"]):
            B(c, f"bad-sandbox-id-{i}", json.dumps({"op": "status", "sandbox": sb}), E, '"sandbox"')
            B(c, f"bad-sandbox-id-{i}-spawn", json.dumps(sp(sb)), E, '"sandbox"')
        r = c.req({"op": "status", "sandbox": "x" * 128})
        check("sandbox-id-128-chars-valid", not is_error(r, errno.ENOENT), is_error(r, errno.ENOENT))
        r = c.req({"op": "status", "sandbox": "A-z_0.9"})
        check("sandbox-id-all-classes-valid", not is_error(r, errno.ENOENT), is_error(r, errno.ENOENT))
        # missing fields
        B(c, "spawn-without-shared_dir", json.dumps({"op": "spawn", "sandbox": "m",
                                                      "socket_path": self.sockpath("m")}), E,
          'needs "shared_dir"')
        B(c, "spawn-without-sandbox", json.dumps({"op": "spawn", "shared_dir": self.share,
                                                   "socket_path": self.sockpath("m")}), E,
          'needs "sandbox"')
        B(c, "stop-without-sandbox", '{"op":"stop"}', E, 'needs "sandbox"')
        B(c, "status-without-sandbox", '{"op":"status","id":"st"}', E, 'needs "sandbox"',
          want_id="st")
        B(c, "spawn-without-socket", json.dumps(sp("m", socket_path=None, fd=True)), E, "neither")
        c.close()
        self.bad_line_length()
        self.bad_spawns()
        self.bad_fds()

    def bad_line_length(self):
        # exactly CTL_LINE_MAX (65536) bytes before the newline is a valid line
        req = b'{"op":"ping","id":"max"}'
        c = Conn(self.sock)
        try:
            r = c.req(req + b" " * (65536 - len(req)))
            check("line-of-65536-bytes-accepted", r == {"ok": True, "id": "max"}, describe(r))
        except Exception as e:
            check("line-of-65536-bytes-accepted", False, f"{type(e).__name__}: {e}")
        c.close()
        for name, data in [("line-of-65537-bytes", req + b" " * (65537 - len(req)) + b"\n"),
                           ("line-of-200000-bytes-no-newline", b'{"op":"ping","id":"' + b"y" * 199980),
                           ("huge-string-value", b'{"op":"ping","id":"' + b"z" * 70000 + b'"}\n')]:
            c = Conn(self.sock)
            try:
                try:
                    c.s.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # it stopped reading: the reply is queued already
                r = c.recv()
                why = is_error(r, errno.E2BIG, "longer than 65536")
                if not why and not c.at_eof():
                    why = "not disconnected after the error"
            except Exception as e:
                why = f"{type(e).__name__}: {e}"
            check(f"{name}-e2big-then-disconnect", not why, why)
            c.close()
        r = quick(self.sock, {"op": "ping"})
        check("ping-after-long-lines", r == {"ok": True}, describe(r))

    def bad_spawns(self):
        c = Conn(self.sock, timeout=10)
        sp, B, E = self.spawn_req, self.bad, errno.EINVAL
        os.makedirs(f"{self.work}/notdir-parent", exist_ok=True)
        with open(f"{self.work}/file", "w") as f:
            f.write("not a directory\n")
        B(c, "share-missing-enoent", json.dumps(sp("bs-missing", shared_dir=f"{self.work}/nope")),
          errno.ENOENT, "No such file")
        B(c, "share-is-a-file-enotdir", json.dumps(sp("bs-file", shared_dir=f"{self.work}/file")),
          errno.ENOTDIR)
        B(c, "share-under-a-file-enotdir",
          json.dumps(sp("bs-file2", shared_dir=f"{self.work}/file/x")), errno.ENOTDIR)
        B(c, "userns-mnt-namespace", json.dumps(sp("bs-mntns", userns="/proc/self/ns/mnt")), E,
          "not a user namespace")
        B(c, "userns-regular-file", json.dumps(sp("bs-nsfile", userns=f"{self.work}/file")), E,
          "not a user namespace")
        B(c, "userns-missing", json.dumps(sp("bs-nsmissing", userns=f"{self.work}/nope")),
          errno.ENOENT)
        B(c, "socket-path-is-a-file", json.dumps(sp("bs-sockfile", socket_path=f"{self.work}/file")),
          errno.EEXIST, "already exists")
        B(c, "socket-path-dir-missing",
          json.dumps(sp("bs-sockdir", socket_path=f"{self.work}/nope/x.sock")), errno.ENOENT)
        long108 = f"{self.sdir}/" + "l" * (108 - len(self.sdir) - 1)
        B(c, "socket-path-108-bytes", json.dumps(sp("bs-long", socket_path=long108)), E, "107")
        B(c, "socket-path-4000-bytes", json.dumps(sp("bs-long", socket_path="/" + "l" * 4000)), E,
          "107")
        B(c, "cgroup-not-cgroup2", json.dumps(sp("bs-cg", cgroup=self.work)), E, "cgroup v2")
        B(c, "cgroup-missing", json.dumps(sp("bs-cg2", cgroup=f"{self.work}/nope")), errno.ENOENT)
        B(c, "args-bad-option", json.dumps(sp("bs-args", args=["--bogus"])), E,
          "unexpected argument '--bogus'")
        B(c, "args-bad-value", json.dumps(sp("bs-args", args=["--cache", "sometimes"])), E,
          "invalid value 'sometimes'")
        B(c, "args-missing-value", json.dumps(sp("bs-args", args=["--cache"])), E, "args:")
        B(c, "args-legacy-bad", json.dumps(sp("bs-args", args=["-o", "bogus"])), E,
          "Invalid compat argument")
        for name, args in [("shared-dir", ["--shared-dir", self.share]),
                           ("shared-dir-eq", [f"--shared-dir={self.share}"]),
                           ("o-source", ["-o", f"source={self.share}"]),
                           ("o-source-joined", [f"-osource={self.share},cache=auto"]),
                           ("socket-path", ["--socket-path", self.sockpath("other")]),
                           ("fd", ["--fd", "3"]),
                           ("fd-eq", ["--fd=0"]),
                           ("ready-fd", ["--ready-fd", "5"]),
                           ("help", ["--help"]), ("h", ["-h"]),
                           ("version", ["--version"]), ("V", ["-V"]),
                           ("print-capabilities", ["--print-capabilities"]),
                           ("fuse-mountpoint", ["--fuse-mountpoint", self.work]),
                           ("supervisor", ["--supervisor"]),
                           ("runtime-dir", ["--runtime-dir", f"{self.work}/rt2"]),
                           ("control-socket", ["--control-socket", f"{self.work}/c2.sock"])]:
            r = c.req(sp(f"bs-override-{name}", args=args))
            why = is_error(r, E)
            if not why and ("args" not in r["error"]):
                why = f"the error does not say it is the args: {describe(r)}"
            if check(f"args-may-not-override-{name}", not why, why) is False and r and r.get("ok"):
                c.req({"op": "stop", "sandbox": f"bs-override-{name}"})
        # --socket (the deprecated alias) never wins over the request's --socket-path
        r = c.req(sp("alias", args=["--socket", self.sockpath("alias-other")]))
        ok = (r and (r.get("ok") is False or (os.path.exists(self.sockpath("alias")) and
                                              not os.path.exists(self.sockpath("alias-other")))))
        check("args-socket-alias-cannot-move-the-socket", ok, describe(r))
        c.req({"op": "stop", "sandbox": "alias"})
        # a spawn refused above never left a socket behind or a record that is not exited
        left = [p for p in os.listdir(self.sdir) if p.startswith("bs-")]
        check("refused-spawns-leave-no-socket", not left, f"left {left}")
        r = c.req({"op": "list"})
        live = [x["sandbox"] for x in r.get("sandboxes", [])
                if x["sandbox"].startswith("bs-") and x["state"] != "exited"]
        check("refused-spawns-leave-no-live-record", r.get("ok") and not live, describe(r))
        # a live sandbox id cannot be spawned again, whatever else the request says
        r = c.req(sp("dup"))
        if check("spawn-for-duplicate-test", r and r.get("ok") is True, describe(r)):
            B(c, "duplicate-live-sandbox-eexist",
              json.dumps(sp("dup", socket_path=self.sockpath("dup2"))), errno.EEXIST,
              "already has a daemon")
            B(c, "socket-path-is-a-live-socket",
              json.dumps(sp("dup3", socket_path=self.sockpath("dup"))), errno.EEXIST,
              "already exists")
            r = c.req({"op": "stop", "sandbox": "dup"})
            check("stop-duplicate-test", r and r.get("ok") is True, describe(r))
        # a 107-byte socket path (the most sun_path holds) works
        long107 = f"{self.sdir}/" + "m" * (107 - len(self.sdir) - 1)
        r = c.req(sp("len107", socket_path=long107))
        check("socket-path-107-bytes-works", r and r.get("ok") is True and
              stat.S_ISSOCK(os.lstat(long107).st_mode), describe(r))
        r = c.req({"op": "stop", "sandbox": "len107"})
        check("socket-path-107-bytes-stop", r and r.get("ok") is True and
              not os.path.exists(long107), describe(r))
        # a sandbox whose spawn failed can be spawned again once the cause is gone
        os.makedirs(f"{self.work}/later", exist_ok=True)
        r = c.req(sp("bs-missing", shared_dir=f"{self.work}/later"))
        check("respawn-after-failed-spawn", r and r.get("ok") is True, describe(r))
        c.req({"op": "stop", "sandbox": "bs-missing"})
        c.close()

    def bad_fds(self):
        c = Conn(self.sock)
        B, E, sp = self.bad, errno.EINVAL, self.spawn_req
        passed = []

        def listener(name):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            path = self.sockpath(name)
            if os.path.exists(path):
                os.unlink(path)
            s.bind(path)
            s.listen(4)
            passed.append(s)
            return s

        l1, l2 = listener("fd-a"), listener("fd-b")
        B(c, "two-fds-without-import-state", json.dumps(sp("fd2", fd=True)), E,
          "do not fit", fds=[l1.fileno(), l2.fileno()])
        l3 = listener("fd-c")
        B(c, "three-fds-with-one-request", json.dumps(sp("fd3", fd=True)), errno.E2BIG,
          "two file descriptors", fds=[l1.fileno(), l2.fileno(), l3.fileno()])
        B(c, "import-state-without-fd", json.dumps(sp("fdimp", import_state=True)), E,
          "do not fit")
        B(c, "import-state-not-boolean", json.dumps(sp("fdimp2", import_state="yes")), E,
          "true or false")
        B(c, "export-state-without-fd", '{"op":"export-state","sandbox":"x"}', E,
          "needs the destination")
        B(c, "export-state-two-fds", '{"op":"export-state","sandbox":"x"}', E,
          "one file descriptor", fds=[l1.fileno(), l2.fileno()])
        B(c, "resume-with-fd", '{"op":"resume","sandbox":"x"}', E, "only spawn",
          fds=[l1.fileno()])
        B(c, "export-state-unknown-sandbox", '{"op":"export-state","sandbox":"nope"}',
          errno.ENOENT, "no sandbox", fds=[l1.fileno()])
        rd, wr = os.pipe()
        B(c, "fd-is-a-pipe", json.dumps(sp("fdpipe", fd=True)), errno.ENOTSOCK, "not a listening",
          fds=[rd])
        os.close(rd)
        os.close(wr)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        passed.append(u)
        B(c, "fd-is-an-unlistening-socket", json.dumps(sp("fdun", fd=True)), E, "not a listening",
          fds=[u.fileno()])
        d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        passed.append(d)
        B(c, "fd-is-a-datagram-socket", json.dumps(sp("fddg", fd=True)), errno.ENOTSOCK,
          "not a listening", fds=[d.fileno()])
        f = open(f"{self.work}/file")
        B(c, "fd-is-a-file", json.dumps(sp("fdfile", fd=True)), errno.ENOTSOCK, fds=[f.fileno()])
        f.close()
        B(c, "fd-with-ping", '{"op":"ping","id":"p"}', E, "only spawn", fds=[l1.fileno()],
          want_id="p")
        B(c, "fd-with-status", '{"op":"status","sandbox":"x"}', E, "only spawn", fds=[l1.fileno()])
        B(c, "fd-with-list", '{"op":"list"}', E, "only spawn", fds=[l1.fileno()])
        B(c, "fd-with-malformed-request", '{"op":', E, "malformed", fds=[l1.fileno()])
        B(c, "fd-and-socket_path", json.dumps(sp("fdboth")), E, "not both", fds=[l1.fileno()])
        B(c, "fd-with-args-socket-path",
          json.dumps(sp("fdargs", fd=True, args=["--socket-path", self.sockpath("z")])), E,
          "args", fds=[l1.fileno()])
        B(c, "fd-with-args-fd", json.dumps(sp("fdargs", fd=True, args=["--fd", "5"])), E, "args",
          fds=[l1.fileno()])
        # the supervisor kept none of what it was passed
        if self.sup:
            mine = {os.fstat(s.fileno()).st_ino for s in passed}
            kept = wait_until(lambda: not (mine & fd_inodes(self.sup)), 2) or (mine & fd_inodes(self.sup))
            check("refused-fds-closed-by-supervisor", kept is True, f"still holds {kept}")
        for s in passed:
            s.close()
        c.close()

    # --- 3. clients that misbehave ----------------------------------------------------------

    def timed_ping(self, limit=1.0):
        t = time.monotonic()
        try:
            r = quick(self.sock, {"op": "ping", "id": "t"}, timeout=limit + 1)
        except Exception as e:
            return False, f"{type(e).__name__}: {e}"
        dt = time.monotonic() - t
        return r == {"ok": True, "id": "t"} and dt < limit, f"{describe(r)} after {dt:.3f} s"

    def clients(self):
        idle = Conn(self.sock)
        half = Conn(self.sock)
        half.s.sendall(b'{"op":"ping","id":')
        ok, why = self.timed_ping()
        check("idle-and-half-line-clients-do-not-stall-ping", ok, why)
        # a spawn whose client hangs up before the reply: the child starts all the same
        gone_c = Conn(self.sock)
        gone_c.send(self.spawn_req("orphan-spawn"))
        gone_c.close()
        ok, why = self.timed_ping()
        check("disconnected-spawner-does-not-stall-ping", ok, why)
        st = wait_until(lambda: (self.status("orphan-spawn") or {}).get("state") == "running", 5)
        r = self.status("orphan-spawn")
        check("spawn-of-disconnected-client-still-starts", st and
              os.path.exists(self.sockpath("orphan-spawn")), describe(r))
        r = self.stop("orphan-spawn")
        check("stop-orphan-spawn", r and r.get("ok") is True, describe(r))
        # the half line is still a half line: completed later, it is answered
        half.s.sendall(b'"half"}\n')
        r = half.recv()
        check("half-line-completed-later", r == {"ok": True, "id": "half"}, describe(r))
        r = idle.req({"op": "ping"})
        check("idle-client-still-served", r == {"ok": True}, describe(r))
        idle.close()
        half.close()
        # a half-closed client (shutdown SHUT_WR) still gets its replies
        c = Conn(self.sock)
        c.s.sendall(b'{"op":"ping","id":1}\n{"op":"ping","id":2}\n')
        c.s.shutdown(socket.SHUT_WR)
        got = [c.recv(), c.recv()]
        check("half-closed-client-gets-replies", got == [{"ok": True, "id": 1}, {"ok": True, "id": 2}]
              and c.at_eof(), describe(got))
        c.close()
        c = Conn(self.sock, timeout=10)
        c.send(self.spawn_req("halfclose"))
        c.s.shutdown(socket.SHUT_WR)
        r = c.recv()
        check("half-closed-client-gets-spawn-reply", r and r.get("ok") is True, describe(r))
        c.close()
        self.stop("halfclose")
        self.pipelined_fd()
        self.pipelined_same_id()
        self.slow_watcher()
        self.many_connections()
        self.connection_limit()

    def pipelined_fd(self):
        """Requests queued behind a spawn, the last with a socket: each fd goes with its line."""
        path = self.sockpath("pipe-fd")
        if os.path.exists(path):
            os.unlink(path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(4)
        c = Conn(self.sock, timeout=10)
        c.send(self.spawn_req("pipe-a"))
        c.send({"op": "ping", "id": "between"})
        c.send(self.spawn_req("pipe-b", fd=True), fds=[ls.fileno()])
        ls.close()
        got = []
        try:
            for _ in range(3):
                got.append(c.recv())
        except Exception as e:
            got.append(f"{type(e).__name__}: {e}")
        ok = (len(got) == 3 and isinstance(got[0], dict) and got[0].get("ok") is True and
              got[1] == {"ok": True, "id": "between"} and isinstance(got[2], dict) and
              got[2].get("ok") is True)
        check("pipelined-requests-fd-goes-with-its-line", ok, describe(got))
        c.close()
        self.stop("pipe-a")
        self.stop("pipe-b")

    def pipelined_same_id(self):
        """A request that reuses the id the one before it freed, in the same write."""
        c = Conn(self.sock, timeout=10)
        r = c.req(self.spawn_req("reuse"))
        check("pipelined-reuse-spawn", r and r.get("ok") is True, describe(r))
        c.send(json.dumps({"op": "stop", "sandbox": "reuse"}) + "\n" +
               json.dumps(self.spawn_req("reuse")) + "\n" + '{"op":"status","sandbox":"reuse"}')
        got = [c.recv(), c.recv(), c.recv()]
        ok = (got[0] and got[0].get("ok") is True and got[1] and got[1].get("ok") is True and
              got[2] and got[2].get("state") == "running" and got[2].get("pid") == got[1].get("pid")
              and os.path.exists(f"{self.rt}/sandboxes/reuse/state.json")
              and os.path.exists(f"{self.rt}/sandboxes/reuse/vfsd.log"))
        check("pipelined-stop-then-spawn-same-id", ok, describe(got))
        c.req({"op": "stop", "sandbox": "reuse"})
        # a spawn that fails, and its retry with the cause fixed, in one write
        c.send(json.dumps(self.spawn_req("retry", shared_dir=f"{self.work}/nope")) + "\n" +
               json.dumps(self.spawn_req("retry")))
        got = [c.recv(), c.recv()]
        ok = (not is_error(got[0], errno.ENOENT) and got[1] and got[1].get("ok") is True)
        check("pipelined-failed-spawn-then-retry", ok, describe(got))
        c.req({"op": "stop", "sandbox": "retry"})
        c.close()

    def slow_watcher(self):
        """A watcher that never reads while hundreds of events are sent."""
        w = Conn(self.sock)
        r = w.req({"op": "watch", "id": "slow"})
        check("watch-reply", r == {"ok": True, "id": "slow"}, describe(r))
        c = Conn(self.sock, timeout=10)
        worst, failed, cycles = 0.0, "", 160
        t0 = time.monotonic()
        for i in range(cycles):
            sb = f"ev{i % 4}"
            r = c.req(self.spawn_req(sb))
            r2 = c.req({"op": "stop", "sandbox": sb})
            if not (r and r.get("ok") and r2 and r2.get("ok")):
                failed = f"cycle {i}: {describe(r)} {describe(r2)}"
                break
            if i % 20 == 0:
                t = time.monotonic()
                p = quick(self.sock, {"op": "ping"})
                worst = max(worst, time.monotonic() - t)
                if p != {"ok": True}:
                    failed = f"ping: {describe(p)}"
                    break
        check("spawns-go-on-while-a-watcher-does-not-read", not failed, failed)
        check("ping-fast-while-a-watcher-does-not-read", worst < 0.5, f"worst ping {worst:.3f} s")
        inq = int.from_bytes(fcntl.ioctl(w.s.fileno(), termios.FIONREAD, bytes(4)), "little")
        events, nbytes = [], 0
        try:
            while len(events) < 2 * cycles:
                line = w.line(timeout=5)
                nbytes += len(line) + 1
                events.append(json.loads(line))
        except Exception as e:
            events.append(f"{type(e).__name__}: {e}")
        # what the kernel held for it was less than what came: the rest waited in the
        # supervisor's own queue, and the loop went on meanwhile
        check("slow-watcher-backlog-queued-by-the-supervisor", 0 < inq < nbytes,
              f"{inq} bytes in the socket, {nbytes} sent in all")
        kinds = [e.get("event") if isinstance(e, dict) else e for e in events]
        ok = kinds == ["started", "exited"] * cycles
        check("slow-watcher-gets-every-event-in-order", ok,
              f"{len(events)} events in {time.monotonic() - t0:.1f} s, first odd: "
              f"{next((k for i, k in enumerate(kinds) if k != ['started', 'exited'][i % 2]), None)}")
        w.close()
        c.close()

    def many_connections(self, n=2500):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 500)), hard))
        before = len(os.listdir(f"/proc/{self.sup}/fd")) if self.sup else 0
        conns, err = [], ""
        t = time.monotonic()
        try:
            for _ in range(n):
                conns.append(Conn(self.sock))
        except Exception as e:
            err = f"after {len(conns)}: {type(e).__name__}: {e}"
        check(f"open-{n}-connections", not err, err)
        ok, why = self.timed_ping(2.0)
        check(f"ping-with-{n}-connections-open", ok, why)
        # every one of them is served
        bad = 0
        for i, c in enumerate(conns):
            c.send({"op": "ping", "id": i})
        for i, c in enumerate(conns):
            try:
                if c.recv() != {"ok": True, "id": i}:
                    bad += 1
            except Exception:
                bad += 1
        check(f"all-{n}-connections-answered", bad == 0, f"{bad} wrong or missing replies")
        if self.sup:
            during = len(os.listdir(f"/proc/{self.sup}/fd"))
            check("supervisor-holds-the-connections", during >= before + len(conns) - 10,
                  f"{during} fds, {before} before")
        for c in conns:
            c.close()
        if self.sup:
            after = wait_until(lambda: len(os.listdir(f"/proc/{self.sup}/fd")) <= before, 5)
            check(f"all-{n}-connections-closed-cleanly", after,
                  f"{len(os.listdir(f'/proc/{self.sup}/fd'))} fds, {before} before")
        ok, why = self.timed_ping()
        check(f"ping-after-{n}-connections", ok, why)
        check(f"{n}-connections-time", time.monotonic() - t < 20, f"{time.monotonic() - t:.1f} s")

    def connection_limit(self, limit=8192, extra=16):
        """Past CTL_CLIENTS_MAX connections, one EMFILE line each, and the rest are served."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = limit + extra + 500
        if hard < want:
            print(f"INFO connection-limit skipped: RLIMIT_NOFILE hard limit {hard} < {want}")
            return
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
        t = time.monotonic()
        conns = [Conn(self.sock) for _ in range(limit + extra)]
        served = refused = other = 0
        for i, c in enumerate(conns):
            try:
                c.send({"op": "ping", "id": i})
            except OSError:
                pass  # refused and closed already
        for i, c in enumerate(conns):
            try:
                r = c.recv()
                if r == {"ok": True, "id": i}:
                    served += 1
                elif not is_error(r, errno.EMFILE, "too many") and c.at_eof():
                    refused += 1
                else:
                    other += 1
            except Exception:
                other += 1
        check(f"connection-limit-{limit}", served + refused == len(conns) and
              limit - 4 <= served <= limit and refused >= extra,
              f"{served} served, {refused} refused with EMFILE, {other} neither")
        for c in conns:
            c.close()
        ok, why = self.timed_ping()
        check("ping-after-connection-limit", ok, f"{why} ({time.monotonic() - t:.1f} s)")

    # --- 4. children -----------------------------------------------------------------------

    def children(self):
        w = Conn(self.sock, timeout=10)
        r = w.req({"op": "watch"})
        check("watch", r == {"ok": True}, describe(r))

        def event(kind, sb, timeout=5):
            """The next event for sb, skipping others'; None if none comes."""
            try:
                while True:
                    e = w.recv(timeout=timeout)
                    if e is None:
                        return None
                    if e.get("sandbox") == sb and e.get("event") == kind:
                        return e
            except TimeoutError:
                return None

        c = Conn(self.sock, timeout=10)
        # by socket_path
        sock = self.sockpath("child1")
        r = c.req(self.spawn_req("child1", labels={"team": "storage", "pod": "p-1"},
                                 args=["--cache", "never"], id="sp1"))
        ok = (r and r.get("ok") is True and r.get("id") == "sp1" and isinstance(r.get("pid"), int)
              and r.get("socket_path") == sock and r.get("sandbox") == "child1")
        check("spawn-socket-path-reply", ok, describe(r))
        pid = r.get("pid") if ok else 0
        try:
            st = os.lstat(sock)
            check("spawn-socket-exists", stat.S_ISSOCK(st.st_mode), oct(st.st_mode))
            check("spawn-socket-mode-0700", stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode))
            check("spawn-socket-owned-by-root", st.st_uid == 0, f"uid {st.st_uid}")
        except OSError as e:
            check("spawn-socket-exists", False, str(e))
        try:
            with open(sock + ".pid") as f:
                got = f.read().strip()
            check("spawn-pid-file", got == str(pid), f"pid file says {got}, daemon is {pid}")
        except OSError as e:
            check("spawn-pid-file", False, str(e))
        check("spawn-child-alive", pid and not gone(pid), f"pid {pid}")
        e = event("started", "child1")
        check("watch-started-event", e and e.get("pid") == pid, describe(e))
        r = c.req({"op": "status", "sandbox": "child1", "id": 5})
        ok = (r and r.get("ok") is True and r.get("id") == 5 and r.get("state") == "running" and
              r.get("pid") == pid and r.get("shared_dir") == self.share and
              r.get("socket_path") == sock and r.get("labels") == {"team": "storage", "pod": "p-1"}
              and r.get("args") == ["--cache", "never"] and r.get("caller_uid") == 0 and
              r.get("adopted") is False and abs(r.get("started_at", 0) - time.time()) < 60)
        check("status-running", ok, describe(r))
        r = c.req({"op": "list"})
        mine = [x for x in r.get("sandboxes", []) if x.get("sandbox") == "child1"]
        check("list-shows-child", len(mine) == 1 and mine[0].get("state") == "running", describe(r))
        try:
            with open(f"{self.rt}/sandboxes/child1/state.json") as f:
                sj = json.load(f)
            check("state-file", sj.get("pid") == pid and sj.get("state") == "running" and
                  sj.get("start_ticks", 0) > 0, json.dumps(sj)[:300])
        except (OSError, ValueError) as ex:
            check("state-file", False, str(ex))
        try:
            with open(f"{self.rt}/sandboxes/child1/vfsd.log") as f:
                log = f.read()
            check("child-log-file", "Waiting for vhost-user socket connection" in log, log[-300:])
        except OSError as ex:
            check("child-log-file", False, str(ex))
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        check("child-runs-the-requested-args", b"--cache" in argv and b"never" in argv and
              b"--ready-fd" in argv, repr(argv))
        # stop: the socket and pid file go, the child goes, the record goes
        r = c.req({"op": "stop", "sandbox": "child1", "id": "stop1"})
        check("stop-reply", r and r.get("ok") is True and r.get("id") == "stop1" and
              r.get("pid") == pid and r.get("state") == "exited" and
              ("exit_status" in r or "signal" in r), describe(r))
        check("stop-child-gone", wait_until(lambda: gone(pid), 2), f"pid {pid} still runs")
        check("stop-removes-socket-and-pid-file",
              not os.path.exists(sock) and not os.path.exists(sock + ".pid"),
              str([p for p in (sock, sock + ".pid") if os.path.exists(p)]))
        e = event("exited", "child1")
        check("watch-exited-after-stop", e and e.get("pid") == pid, describe(e))
        r = c.req({"op": "status", "sandbox": "child1"})
        check("stop-forgets-record", not is_error(r, errno.ENOENT), is_error(r, errno.ENOENT))
        check("stop-removes-state-dir", not os.path.exists(f"{self.rt}/sandboxes/child1"), "")

        # a connection to the child's socket is accepted; its hang-up ends the daemon (status 0)
        r = c.req(self.spawn_req("conn1"))
        pid = r.get("pid") if r and r.get("ok") else 0
        event("started", "conn1")
        try:
            v = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            v.settimeout(2)
            v.connect(self.sockpath("conn1"))
            logp = f"{self.rt}/sandboxes/conn1/vfsd.log"
            accepted = wait_until(lambda: "Client connected" in open(logp).read(), 3)
            check("connect-to-child-socket", accepted, open(logp).read()[-300:])
            v.close()
        except OSError as ex:
            check("connect-to-child-socket", False, str(ex))
        e = event("exited", "conn1")
        check("child-exits-0-when-vmm-hangs-up", e and e.get("exit_status") == 0 and
              e.get("pid") == pid, describe(e))
        r = c.req({"op": "status", "sandbox": "conn1"})
        check("status-exited-on-its-own", r and r.get("state") == "exited" and
              r.get("exit_status") == 0 and not os.path.exists(self.sockpath("conn1")), describe(r))
        r = c.req({"op": "stop", "sandbox": "conn1"})
        r2 = c.req({"op": "status", "sandbox": "conn1"})
        check("stop-of-exited-forgets", r and r.get("ok") is True and
              not is_error(r2, errno.ENOENT), f"{describe(r)} then {describe(r2)}")

        # a listening socket passed with the request (SCM_RIGHTS)
        path = self.sockpath("fdchild")
        if os.path.exists(path):
            os.unlink(path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(4)
        r = c.req(self.spawn_req("fdchild", fd=True), fds=[ls.fileno()])
        ok = r and r.get("ok") is True and r.get("socket_path") is None
        check("spawn-passed-socket", ok, describe(r))
        pid = r.get("pid") if ok else 0
        ls.close()  # only the child holds the listener now
        e = event("started", "fdchild")
        check("watch-started-passed-socket", e and e.get("pid") == pid, describe(e))
        r = c.req({"op": "status", "sandbox": "fdchild"})
        check("status-passed-socket", r and r.get("socket_fd") is True and
              r.get("socket_path") is None and r.get("state") == "running", describe(r))
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        check("passed-socket-child-runs-with-fd", b"--fd" in argv and b"--socket-path" not in argv,
              repr(argv))
        try:
            v = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            v.settimeout(2)
            v.connect(path)
            logp = f"{self.rt}/sandboxes/fdchild/vfsd.log"
            accepted = wait_until(lambda: "Client connected" in open(logp).read(), 3)
            check("connect-to-passed-socket", accepted, open(logp).read()[-300:])
            v.close()
        except OSError as ex:
            check("connect-to-passed-socket", False, str(ex))
        e = event("exited", "fdchild")
        check("passed-socket-child-exits-0", e and e.get("exit_status") == 0, describe(e))
        check("passed-socket-file-left-alone", os.path.exists(path),
              "the supervisor removed a socket it did not create")
        c.req({"op": "stop", "sandbox": "fdchild"})

        # SIGKILL right after the spawn's reply, and a little later
        for name, delay in [("kill-at-once", 0), ("kill-later", 0.3)]:
            r = c.req(self.spawn_req(name))
            pid = r.get("pid") if r and r.get("ok") else 0
            if delay:
                time.sleep(delay)
            if pid:
                os.kill(pid, signal.SIGKILL)
            s = event("started", name)
            e = event("exited", name)
            check(f"watch-{name}-started-then-exited-signal-9", s and e and e.get("pid") == pid and
                  e.get("signal") == 9, f"{describe(s)} {describe(e)}")
            r = c.req({"op": "status", "sandbox": name})
            check(f"status-{name}-exited-signal-9", r and r.get("state") == "exited" and
                  r.get("signal") == 9 and r.get("pid") == pid, describe(r))
            check(f"{name}-socket-removed", not os.path.exists(self.sockpath(name)), "")
        # a killed sandbox can be spawned again under its id, with a new daemon
        r = c.req(self.spawn_req("kill-at-once"))
        check("respawn-after-kill", r and r.get("ok") is True and not gone(r.get("pid")),
              describe(r))
        event("started", "kill-at-once")
        for name in ("kill-at-once", "kill-later"):
            r = c.req({"op": "stop", "sandbox": name})
            check(f"stop-{name}", r and r.get("ok") is True, describe(r))

        # SIGKILL while it starts: either the spawn fails (and nothing was announced) or it had
        # become ready just before, and then it is announced both ways
        sp = Conn(self.sock, timeout=10)
        sp.send(self.spawn_req("kill-starting"))
        pid = wait_until(lambda: next((x.get("pid") for x in (quick(self.sock, {"op": "list"}) or {})
                                       .get("sandboxes", []) if x.get("sandbox") == "kill-starting"),
                                      None), 5, 0)
        if pid:
            os.kill(pid, signal.SIGKILL)
        r = sp.recv()
        sp.close()
        if r and r.get("ok") is False:
            s = event("started", "kill-starting", timeout=0.5)
            st = self.status("kill-starting")
            check("kill-while-starting-fails-the-spawn", r.get("errno") and s is None and
                  st.get("state") == "exited" and st.get("signal") == 9,
                  f"{describe(r)} {describe(s)} {describe(st)}")
        else:
            s = event("started", "kill-starting")
            e = event("exited", "kill-starting")
            check("kill-while-starting-fails-the-spawn", r and r.get("ok") and s and e and
                  e.get("signal") == 9, f"(it was ready first) {describe(r)} {describe(e)}")
        self.stop("kill-starting")

        # stop while it starts: the spawn fails with ECANCELED (unless it was ready first)
        sp = Conn(self.sock, timeout=10)
        sp.send(self.spawn_req("stop-starting"))
        pid = wait_until(lambda: next((x.get("pid") for x in (quick(self.sock, {"op": "list"}) or {})
                                       .get("sandboxes", []) if x.get("sandbox") == "stop-starting"
                                       and x.get("state") == "starting"), None), 2, 0)
        r2 = self.stop("stop-starting") if pid else None
        r = sp.recv()
        sp.close()
        if pid:
            print(f"INFO stop-while-starting: the spawn's reply: {describe(r)[:120]}")
            check("stop-while-starting-cancels-the-spawn",
                  (not is_error(r, errno.ECANCELED) or (r and r.get("ok") is True)) and
                  r2 and r2.get("ok") is True and gone(pid) and
                  not is_error(self.status("stop-starting"), errno.ENOENT),
                  f"spawn: {describe(r)} stop: {describe(r2)}")
        else:
            print("INFO stop-while-starting: the daemon was ready before it was seen starting")
            self.stop("stop-starting")

        # stop with a grace period: a stopped (SIGSTOP) daemon ignores SIGTERM until SIGKILL
        r = c.req(self.spawn_req("grace"))
        pid = r.get("pid") if r and r.get("ok") else 0
        event("started", "grace")
        os.kill(pid, signal.SIGSTOP)
        st = Conn(self.sock, timeout=10)
        cpu0 = cpu_seconds(self.sup) if self.sup else 0
        t = time.monotonic()
        st.send({"op": "stop", "sandbox": "grace", "grace_ms": 1500, "id": "g"})
        time.sleep(0.1)
        st.s.shutdown(socket.SHUT_WR)  # a half-closed client still gets its reply
        r2 = quick(self.sock, {"op": "stop", "sandbox": "grace"})
        check("second-stop-ealready", not is_error(r2, errno.EALREADY), is_error(r2, errno.EALREADY))
        ok, why = self.timed_ping()
        check("ping-during-stop", ok, why)
        r = st.recv()
        dt = time.monotonic() - t
        cpu = (cpu_seconds(self.sup) - cpu0) if self.sup else 0
        check("stop-grace-then-sigkill", r and r.get("ok") is True and r.get("id") == "g" and
              r.get("signal") == 9 and 1.4 < dt < 4, f"{describe(r)} after {dt:.2f} s")
        check("no-busy-loop-while-a-half-closed-client-waits", cpu < 0.15,
              f"the supervisor used {cpu:.2f} s of CPU in {dt:.2f} s")
        st.close()
        # a stop whose client hangs up at once still ends the daemon and forgets it
        r = c.req(self.spawn_req("stop-gone"))
        pid = r.get("pid") if r and r.get("ok") else 0
        g = Conn(self.sock)
        g.send({"op": "stop", "sandbox": "stop-gone"})
        g.close()
        check("stop-of-disconnected-client-ends-child", wait_until(lambda: gone(pid), 5), "")
        forgotten = wait_until(lambda: not is_error(self.status("stop-gone"), errno.ENOENT), 3)
        check("stop-of-disconnected-client-forgets", forgotten, describe(self.status("stop-gone")))
        self.stop("stop-gone")

        # vfsd ctl --fd N passes N with the request
        path = self.sockpath("ctlfd")
        if os.path.exists(path):
            os.unlink(path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(4)
        p = subprocess.run([self.opts["bin"], "ctl", "--control-socket", self.sock, "spawn", "ctlfd",
                            "--shared-dir", self.share, "--fd", str(ls.fileno()), "--label", "a=b"],
                           pass_fds=[ls.fileno()], capture_output=True, text=True, timeout=10)
        ls.close()
        r = self.status("ctlfd")
        check("ctl-spawn-fd", p.returncode == 0 and r.get("state") == "running" and
              r.get("socket_fd") is True and r.get("labels") == {"a": "b"},
              f"rc {p.returncode} {p.stdout}{p.stderr} {describe(r)}")
        self.stop("ctlfd")
        if "cgroup" in self.opts:
            self.cgroup(c)
        c.close()
        w.close()

    def cgroup(self, c):
        cg = self.opts["cgroup"]
        name = os.path.basename(cg)
        r = c.req(self.spawn_req("cg1", cgroup=cg))
        ok = r and r.get("ok") is True
        check("spawn-in-cgroup", ok, describe(r))
        if not ok:
            return
        pid = r["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        check("child-in-cgroup", f"0::/{name}" in lines, repr(lines))
        with open(f"{cg}/cgroup.procs") as f:
            procs = f.read().split()
        check("cgroup-procs-lists-child", procs == [str(pid)], repr(procs))
        r = c.req({"op": "status", "sandbox": "cg1"})
        check("status-shows-cgroup", r and r.get("cgroup") == cg, describe(r))
        r = c.req({"op": "stop", "sandbox": "cg1"})
        check("stop-cgroup-child", r and r.get("ok") is True, describe(r))
        empty = wait_until(lambda: open(f"{cg}/cgroup.procs").read().strip() == "", 2)
        check("cgroup-empty-after-stop", empty, "")
        B = self.bad
        B(c, "cgroup-missing-in-cgroup2", json.dumps(self.spawn_req("cg2", cgroup=f"{cg}/nope")),
          errno.ENOENT)

    # --- 5. a caller that is not root -------------------------------------------------------

    def denied(self):
        try:
            c = Conn(self.sock, timeout=3)
        except OSError as e:
            check("denied-user-can-connect", False, f"{e} (control socket permissions)")
            return
        try:
            r = c.recv()
            why = is_error(r, errno.EACCES, "may not use this control socket")
            if not why and not c.at_eof():
                why = "not disconnected"
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
        check("denied-user-refused-eacces-and-disconnected", not why, why)
        c.close()
        # one that speaks at once gets the same line, not a reply to its request
        try:
            c = Conn(self.sock, timeout=3)
            try:
                c.send({"op": "list", "id": 1})
            except OSError:
                pass
            r = c.recv()
            why = is_error(r, errno.EACCES)
            if not why and "id" in r:
                why = f"answered the request: {describe(r)}"
            if not why and not c.at_eof():
                why = "not disconnected"
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
        check("denied-user-request-not-served", not why, why)

    def user(self):
        uid = os.getuid()
        ns = f"/proc/{self.opts['nspid']}/ns/user"
        u = f"{self.work}/u"
        c = Conn(self.sock, timeout=10)
        r = c.req({"op": "ping", "id": "u"})
        check("allowed-user-ping", r == {"ok": True, "id": "u"}, describe(r))

        def req(sb, **kw):
            r = {"op": "spawn", "sandbox": sb, "shared_dir": f"{u}/share",
                 "socket_path": f"{u}/sock/{sb}.sock", "userns": ns}
            r.update(kw)
            return json.dumps({k: v for k, v in r.items() if v is not None})

        B = self.bad
        B(c, "user-spawn-without-userns-eperm", req("u1", userns=None), errno.EPERM, "userns")
        # pid 1's namespace: refused when opened with the caller's credentials (EACCES) where
        # the caller may not look at pid 1, else because its owner is uid 0 (EPERM)
        r = c.req(req("u2", userns="/proc/1/ns/user"))
        why = is_error(r, errno.EPERM, "belongs to uid 0") and is_error(r, errno.EACCES, "cannot open")
        check("user-spawn-into-pid-1-userns-refused", not why, why)
        # the user's own process in the initial namespace: it may open it, but uid 0 owns it
        B(c, "user-spawn-into-root-owned-userns-eperm", req("u3", userns=f"/proc/{os.getpid()}/ns/user"),
          errno.EPERM, "belongs to uid 0")
        B(c, "user-spawn-into-supervisors-userns-eperm", req("u3b", userns="/proc/self/ns/user"),
          errno.EPERM, "belongs to uid 0")
        B(c, "user-share-it-cannot-read-eacces", req("u4", shared_dir=f"{u}/rootonly"),
          errno.EACCES, "cannot read")
        B(c, "user-share-below-dir-it-cannot-search-eacces",
          req("u5", shared_dir=f"{u}/rootonly/inner"), errno.EACCES)
        B(c, "user-socket-in-dir-it-cannot-write-eacces",
          req("u6", socket_path=f"{u}/rootsock/u6.sock"), errno.EACCES, "cannot create")
        if "cgroup" in self.opts:
            B(c, "user-cgroup-it-cannot-write-eacces", req("u7", cgroup=self.opts["cgroup"]),
              errno.EACCES, "cannot move")
        B(c, "user-userns-missing-enoent", req("u8", userns=f"{u}/nope"), errno.ENOENT)
        r = c.req(req("uok", labels={"owner": "user"}))
        ok = r and r.get("ok") is True
        check("user-spawn-in-own-userns", ok, describe(r))
        if not ok:
            try:
                with open(f"{self.rt}/sandboxes/uok/vfsd.log") as f:
                    print(f.read()[-800:])
            except OSError:
                pass
            return
        pid = r["pid"]
        with open(f"/proc/{pid}/status") as f:
            uids = next(ln for ln in f if ln.startswith("Uid:")).split()[1:]
        check("user-child-real-uid-is-the-user", uids[0] == str(uid), f"Uid: {uids}, user {uid}")
        with open(f"/proc/{pid}/uid_map") as f:
            umap = f.read().split()
        check("user-child-is-root-in-its-namespace", os.readlink(f"/proc/{pid}/ns/user") ==
              os.readlink(ns) and umap[:3] == ["0", str(uid), "1"], f"uid_map {umap}")
        st = os.lstat(f"{u}/sock/uok.sock")
        check("user-socket-owned-by-user", stat.S_ISSOCK(st.st_mode) and st.st_uid == uid,
              f"uid {st.st_uid} mode {oct(st.st_mode)}")
        r = c.req({"op": "status", "sandbox": "uok"})
        check("user-status-caller-uid", r and r.get("caller_uid") == uid and
              r.get("userns") == ns, describe(r))
        v = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        v.settimeout(2)
        try:
            v.connect(f"{u}/sock/uok.sock")
            check("user-connect-to-child-socket", True)
        except OSError as e:
            check("user-connect-to-child-socket", False, str(e))
        v.close()
        if "rootsb" in self.opts:
            # a daemon root spawned: not listed, not shown, not stopped, not watched
            rs = self.opts["rootsb"]
            r = c.req({"op": "list"})
            names = [x.get("sandbox") for x in (r or {}).get("sandboxes", [])]
            check("user-list-shows-only-its-own", r and r.get("ok") is True and rs not in names
                  and "uok" in names, describe(r))
            B(c, "user-status-of-roots-daemon-eperm", json.dumps({"op": "status", "sandbox": rs}),
              errno.EPERM, "another user")
            B(c, "user-stop-of-roots-daemon-eperm", json.dumps({"op": "stop", "sandbox": rs}),
              errno.EPERM, "another user")
            w = Conn(self.sock, timeout=10)
            r = w.req({"op": "watch"})
            r = quick(self.sock, {"op": "spawn", "sandbox": "uok2", "shared_dir": f"{u}/share",
                                  "socket_path": f"{u}/sock/uok2.sock", "userns": ns})
            seen = []
            for _ in range(5):  # uok may end meanwhile: its client hung up above
                ev = w.recv()
                seen.append(ev)
                if not ev or ev.get("sandbox") == "uok2":
                    break
            check("user-watch-sees-its-own-events", ev and ev.get("event") == "started" and
                  ev.get("sandbox") == "uok2" and
                  all(e and e.get("sandbox") in ("uok", "uok2") for e in seen), describe(seen))
            quick(self.sock, {"op": "stop", "sandbox": "uok2"})
            w.close()
        # --max-daemons-per-uid=3: spawns past three live daemons of the user are refused
        # (uok may have ended already: its client hung up above)
        more = [c.req(req(f"umax{i}")) for i in range(4)]
        refused = [m for m in more if not (m and m.get("ok") is True)]
        r = c.req({"op": "list"})
        live = [x for x in (r or {}).get("sandboxes", []) if x.get("state") == "running"]
        check("user-max-daemons-per-uid", len(live) == 3 and refused and
              all(not is_error(m, errno.EAGAIN, "max-daemons-per-uid") for m in refused),
              f"{len(live)} running; {describe(more)}")
        for i in range(4):
            c.req({"op": "stop", "sandbox": f"umax{i}"})
        r = c.req({"op": "stop", "sandbox": "uok"})
        check("user-stop", r and r.get("ok") is True and wait_until(lambda: gone(pid), 2),
              describe(r))
        # the directory of its socket swapped for a symlink to root's: what goes with the
        # daemon is removed as the user would, so root's socket and pid file stay
        os.mkdir(f"{u}/sock/d")
        r = c.req(req("usym", socket_path=f"{u}/sock/d/x.sock"))
        if r and r.get("ok") is True:
            os.rename(f"{u}/sock/d", f"{u}/sock/d.real")
            os.symlink(f"{u}/rootsock", f"{u}/sock/d")
            r = c.req({"op": "stop", "sandbox": "usym"})
            kept = os.path.exists(f"{u}/rootsock/x.sock") and os.path.exists(f"{u}/rootsock/x.sock.pid")
            check("user-swapped-socket-dir-leaves-roots-files", r and r.get("ok") is True and kept,
                  f"{describe(r)}; root's x.sock and x.sock.pid {'kept' if kept else 'REMOVED'}")
        else:
            check("user-swapped-socket-dir-leaves-roots-files", False, describe(r))
        c.close()

    # --- 6. a supervisor restart ------------------------------------------------------------

    def restart_before(self):
        r = quick(self.sock, self.spawn_req("survivor", labels={"k": "v"}), timeout=10)
        ok = r and r.get("ok") is True
        check("restart-spawn-survivor", ok, describe(r))
        with open(f"{self.work}/survivor.pid", "w") as f:
            f.write(f"{r.get('pid', 0) if ok else 0}\n")

    def restart_after(self):
        with open(f"{self.work}/survivor.pid") as f:
            pid = int(f.read())
        r = quick(self.sock, {"op": "ping"})
        check("restart-new-supervisor-answers", r == {"ok": True}, describe(r))
        r = quick(self.sock, {"op": "list"})
        by = {x.get("sandbox"): x for x in (r or {}).get("sandboxes", [])}
        s = by.get("survivor", {})
        check("restart-adopts-running-child", s.get("state") == "running" and s.get("pid") == pid
              and s.get("adopted") is True and s.get("labels") == {"k": "v"}, describe(s))
        running = sorted(k for k, v in by.items() if v.get("state") != "exited")
        check("restart-only-the-live-child-runs", running == ["survivor"], f"running: {running}")
        for sb in ("dead-pid", "wrong-ticks", "null-state", "odd-types"):
            x = by.get(sb, {})
            check(f"restart-not-adopted-{sb}", x.get("state") == "exited" and
                  x.get("adopted") is not True, describe(x))
        check("restart-ignores-garbage-files", not ({"garbage-json", "garbage-array",
                                                     "garbage-empty", "-not-an-id",
                                                     "no-state-file"} & set(by)),
              f"listed: {sorted(by)}")
        check("restart-pid-1-untouched", not gone(1), "")
        check("restart-dead-record-socket-removed", not os.path.exists(self.sockpath("dead")), "")
        w = Conn(self.sock)
        w.req({"op": "watch"})
        r = self.stop("survivor")
        check("restart-stop-adopted-child", r and r.get("ok") is True and r.get("pid") == pid,
              describe(r))
        check("restart-adopted-child-gone", wait_until(lambda: gone(pid), 3), f"pid {pid}")
        check("restart-adopted-socket-removed",
              not os.path.exists(self.sockpath("survivor")) and
              not os.path.exists(self.sockpath("survivor") + ".pid"), "")
        try:
            e = w.recv(timeout=3)
        except TimeoutError:
            e = None
        check("restart-watch-sees-adopted-exit", e and e.get("event") == "exited" and
              e.get("sandbox") == "survivor" and e.get("pid") == pid, describe(e))
        w.close()
        r = self.status("survivor")
        check("restart-stop-forgets-adopted", not is_error(r, errno.ENOENT), describe(r))
        for sb in ("dead-pid", "wrong-ticks", "null-state", "odd-types"):
            self.stop(sb)


def main():
    mode, sock = sys.argv[1], sys.argv[2]
    work = sys.argv[3] if len(sys.argv) > 3 and "=" not in sys.argv[3] else ""
    opts = dict(a.split("=", 1) for a in sys.argv[3:] if "=" in a)
    s = Suite(sock, work, opts)
    sections = {
        "root": [s.protocol, s.bad_input, s.clients, s.children],
        "denied": [s.denied],
        "user": [s.user],
        "restart-before": [s.restart_before],
        "restart-after": [s.restart_after],
    }[mode]
    for fn in sections:
        try:
            fn()
        except Exception as e:
            check(f"{mode}-{fn.__name__}-ran-to-the-end", False,
                  f"{type(e).__name__}: {e} at " +
                  " < ".join(f"{f.name}:{f.lineno}" for f in reversed(traceback.extract_tb(e.__traceback__))))


if __name__ == "__main__":
    main()
