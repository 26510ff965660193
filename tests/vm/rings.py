#!/usr/bin/env python3
"""The state of every virtio-fs ring of a running guest, read through QEMU's QMP socket.

Usage: rings.py QMP_SOCKET

For a guest that hangs (tests/vm/common.sh, vm_watch): it tells a request the daemon never
took from one it took and never answered, and a reply the guest was not told about. Each
ring's indices are read from guest memory (QMP's human-monitor-command "xp"), where the
vhost-user ring lives, so this works whichever daemon serves the device:

  avail     the guest's avail.idx: chains it made available
  taken     avail_event, the index the daemon asked to be kicked at when it last went to
            sleep (with VIRTIO_RING_F_EVENT_IDX: its last_avail_idx then)
  used      used.idx: chains the daemon answered
  used_event  the index the guest asked to be interrupted at

A ring whose daemon sleeps with avail != taken missed a kick (or the guest did not send one);
used past used_event and the guest still waiting is an interrupt nobody delivered. One line
per ring; errors (QEMU gone, an older QEMU without the x-query-virtio commands) are printed
too, and the status is 0 anyway: this is a diagnosis, not a check.
"""
import json
import socket
import sys


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""
        self._read()  # the greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            msg = self._read()
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise RuntimeError(f"{name}: {msg['error'].get('desc', msg['error'])}")
            # an event: skip it

    def u16(self, gpa):
        out = self.cmd("human-monitor-command", **{"command-line": f"xp /1hx {gpa:#x}"})
        return int(out.split(":")[1].split()[0], 16)  # "00000000029b4002: 0x0003"


def ring_line(qmp, path, q):
    st = qmp.cmd("x-query-virtio-vhost-queue-status", path=path, queue=q)
    num, avail, used = st["num"], st["avail-phys"], st["used-phys"]
    if not num or not avail:
        return f"queue {q}: not set up"
    a_flags, a_idx = qmp.u16(avail), qmp.u16(avail + 2)
    used_event = qmp.u16(avail + 4 + 2 * num)
    u_flags, u_idx = qmp.u16(used), qmp.u16(used + 2)
    avail_event = qmp.u16(used + 4 + 8 * num)
    ahead = lambda a, b: (a - b) & 0xFFFF if 0 < (a - b) & 0xFFFF < 0x8000 else 0
    notes = []
    if ahead(a_idx, avail_event):
        notes.append(f"{ahead(a_idx, avail_event)} made available past avail_event")
    if ahead(a_idx, u_idx):
        notes.append(f"{ahead(a_idx, u_idx)} not answered")
    if ahead(u_idx, used_event):
        notes.append(f"{ahead(u_idx, used_event)} answered past used_event")
    return (f"queue {q}: num {num} avail {a_idx} avail_event {avail_event} used {u_idx} "
            f"used_event {used_event} avail.flags {a_flags:#x} used.flags {u_flags:#x}"
            + (" -- " + "; ".join(notes) if notes else ""))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        qmp = Qmp(sys.argv[1])
        devices = qmp.cmd("x-query-virtio")
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        print(f"rings: {sys.argv[1]}: {e}")
        return
    for dev in devices:
        path = dev["path"]
        try:
            tag = qmp.cmd("qom-get", path=path, property="tag")
        except RuntimeError:
            tag = "?"
        print(f"{path} (tag {tag}):")
        for q in range(256):
            try:
                print("  " + ring_line(qmp, path, q))
            except RuntimeError:
                break  # past the last ring
            except (OSError, EOFError, ValueError, IndexError, KeyError) as e:
                print(f"  queue {q}: {e}")
                break


if __name__ == "__main__":
    main()
