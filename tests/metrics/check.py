#!/usr/bin/python3
"""Checks for tests/metrics/run.sh, on Prometheus's own parser (python3-prometheus-client).

  check.py families FILE            FILE parses as text format 0.0.4 and every vfsd family has
                                    its type; histograms are cumulative with +Inf == _count
  check.py group URL SANDBOX OUT    the gateway's /metrics at URL, parsed: the samples of job
                                    vfsd and this sandbox, as JSON {"name{labels}": value}, to OUT
                                    (exit 1 when there are none)
  check.py absent URL SANDBOX       the gateway has no sample of this sandbox
  check.py ge FILE SERIES N         FILE's SERIES (name{k=v,...}, labels of the group left out)
                                    is at least N
  check.py has FILE NAME            FILE has a sample of family NAME
  check.py labels FILE K=V...       FILE's samples carry exactly these label values
  check.py monotonic OLD NEW        every counter, histogram bucket, _sum and _count in OLD is
                                    in NEW and not smaller
  check.py prometheus URL SANDBOX   Prometheus at URL answers the query vfsd_fuse_requests_total
                                    with a series of this sandbox (retried for 30 s)
Prints one line saying what is wrong and exits 1, or exits 0 in silence.
"""
import json
import sys
import time
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

TYPES = {
    "vfsd_fuse_requests": "counter",
    "vfsd_fuse_errors": "counter",
    "vfsd_fuse_request_duration_seconds": "histogram",
    "vfsd_read_bytes": "counter",
    "vfsd_write_bytes": "counter",
    "vfsd_inodes": "gauge",
    "vfsd_open_handles": "gauge",
    "vfsd_open_fds": "gauge",
    "vfsd_guest_fd_budget_remaining": "gauge",
    "vfsd_guest_fd_budget_exhausted": "counter",
    "vfsd_inode_fd_evictions": "counter",
    "vfsd_inode_fd_reopens": "counter",
    "vfsd_vhost_queue_notifications": "counter",
    "vfsd_process_resident_memory_bytes": "gauge",
    "vfsd_process_cpu_seconds": "counter",
    "vfsd_process_threads": "gauge",
    "vfsd_process_open_fds": "gauge",
}
GROUP = ("job", "instance", "sandbox", "cri_name", "cri_namespace", "cri_uid")  # the group's labels


def fail(msg):
    print(msg)
    sys.exit(1)


def key(name, labels, drop=()):
    kv = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in drop)
    return f"{name}{{{kv}}}"


def families(text):
    try:
        return list(text_string_to_metric_families(text))
    except Exception as e:  # the parser says what is malformed
        fail(f"the text does not parse: {e}")


def check_families(path):
    with open(path, encoding="utf-8") as f:
        fams = families(f.read())
    seen = {}
    for fam in fams:
        if not fam.name.startswith("vfsd_"):
            continue
        want = TYPES.get(fam.name)
        if want is None:
            fail(f"unknown family {fam.name}")
        if fam.type != want:
            fail(f"{fam.name} is a {fam.type}, not a {want}")
        if not fam.documentation:
            fail(f"{fam.name} has no HELP")
        seen[fam.name] = fam
        if want == "histogram":
            check_histogram(fam)
        for s in fam.samples:
            if s.timestamp is not None:
                fail(f"{s.name} carries a timestamp")
            if want == "counter" and s.value < 0:
                fail(f"{s.name} is negative")
    for name in ("vfsd_fuse_requests", "vfsd_fuse_request_duration_seconds", "vfsd_inodes"):
        if name not in seen or not seen[name].samples:
            fail(f"no samples of {name}")


def check_histogram(fam):
    groups = {}
    for s in fam.samples:
        base = key("", {k: v for k, v in s.labels.items() if k != "le"})
        g = groups.setdefault(base, {"buckets": [], "count": None, "sum": None})
        if s.name.endswith("_bucket"):
            g["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            g["count"] = s.value
        elif s.name.endswith("_sum"):
            g["sum"] = s.value
    for base, g in groups.items():
        b = sorted(g["buckets"])
        if not b or b[-1][0] != float("inf"):
            fail(f"{fam.name}{base} has no +Inf bucket")
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            fail(f"{fam.name}{base} buckets are not cumulative")
        if g["count"] != b[-1][1]:
            fail(f"{fam.name}{base} _count {g['count']} != +Inf bucket {b[-1][1]}")
        if g["sum"] is None or g["sum"] < 0:
            fail(f"{fam.name}{base} has no _sum")


def gateway_samples(url, sandbox):
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as r:
        text = r.read().decode("utf-8")
    out = {}
    for fam in families(text):
        for s in fam.samples:
            if s.labels.get("job") == "vfsd" and s.labels.get("sandbox") == sandbox and \
               s.name.startswith("vfsd_"):
                out[key(s.name, s.labels, GROUP)] = s.value
                out.setdefault("__labels__", dict(s.labels))
    return out


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv):
    cmd = argv[1]
    if cmd == "families":
        check_families(argv[2])
    elif cmd == "group":
        out = gateway_samples(argv[2], argv[3])
        if not out:
            fail(f"the gateway has no sample of sandbox {argv[3]}")
        with open(argv[4], "w", encoding="utf-8") as f:
            json.dump(out, f)
    elif cmd == "absent":
        out = gateway_samples(argv[2], argv[3])
        if out:
            fail(f"the gateway still has {len(out) - 1} samples of sandbox {argv[3]}")
    elif cmd == "ge":
        d = load(argv[2])
        if argv[3] not in d:
            fail(f"no series {argv[3]}")
        if d[argv[3]] < float(argv[4]):
            fail(f"{argv[3]} is {d[argv[3]]}, below {argv[4]}")
    elif cmd == "eq":
        d = load(argv[2])
        if argv[3] not in d:
            fail(f"no series {argv[3]}")
        if not argv[4].replace(".", "", 1).isdigit() or d[argv[3]] != float(argv[4]):
            fail(f"{argv[3]} is {d[argv[3]]}, not {argv[4]}")
    elif cmd == "has":
        d = load(argv[2])
        if not any(k.startswith(argv[3] + "{") for k in d):
            fail(f"no sample of {argv[3]}")
    elif cmd == "labels":
        labels = load(argv[2])["__labels__"]
        for kv in argv[3:]:
            k, v = kv.split("=", 1)
            if labels.get(k) != v:
                fail(f"label {k} is {labels.get(k)!r}, not {v!r}")
    elif cmd == "monotonic":
        old, new = load(argv[2]), load(argv[3])
        for k, v in old.items():
            name = k.split("{", 1)[0]
            if k == "__labels__" or not name.endswith(("_total", "_bucket", "_sum", "_count")):
                continue
            if k not in new:
                fail(f"{k} is gone")
            if new[k] < v:
                fail(f"{k} went down from {v} to {new[k]}")
    elif cmd == "prometheus":
        q = urllib.parse.urlencode({"query": f'vfsd_fuse_requests_total{{sandbox="{argv[3]}"}}'})
        last = "no answer"
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"{argv[2]}/api/v1/query?{q}", timeout=5) as r:
                    ans = json.load(r)
                res = ans.get("data", {}).get("result", [])
                if ans.get("status") == "success" and res:
                    return
                last = f"empty result: {ans}"
            except Exception as e:
                last = str(e)
            time.sleep(0.5)
        fail(f"Prometheus has no vfsd_fuse_requests_total of {argv[3]}: {last}")
    else:
        fail(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
