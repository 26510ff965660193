#!/usr/bin/python3
"""The in-guest benchmark's report (run by tests/bench/guest.sh): reads each guest's raw
results (RUNS/ROUND-NAME/fio.json, meta.txt, info.txt), takes each metric's median over the
rounds per daemon, and prints a table of the medians, vfsd's ratios to each reference daemon
and their geometric means, then each round's values; writes the same as JSON.

A metric is a rate (higher is better), so a ratio above 1 means vfsd is faster. Exits 1,
printing no ratios, when a round's results are missing or a fio job reported an error.
Stdlib only.
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

# (key, description, unit, where the value comes from)
METRICS = [
    ("randread_4k", "fio random read 4 KiB", "IOPS", ("fio", "randread", "read", "iops")),
    ("randwrite_4k", "fio random write 4 KiB", "IOPS", ("fio", "randwrite", "write", "iops")),
    ("seqread_1m", "fio sequential read 1 MiB", "MB/s", ("fio", "seqread", "read", "mbs")),
    ("seqwrite_1m", "fio sequential write 1 MiB", "MB/s", ("fio", "seqwrite", "write", "mbs")),
    ("create", "create (open O_CREAT + close)", "files/s", ("meta", "create")),
    ("stat", "stat, cold", "files/s", ("meta", "stat")),
    ("ls", "ls -l, cold", "files/s", ("meta", "ls")),
    ("unlink", "unlink, cold", "files/s", ("meta", "unlink")),
]
# The first daemon is vfsd; these are the references its ratios are taken to.
REFS = ["c", "rust"]


class Missing(Exception):
    pass


def read_info(path):
    info = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            info[k] = v
    return info


def read_run(d):
    """One guest's metrics: {key: rate}, and its info.txt."""
    for f in ("fio.json", "meta.txt", "info.txt"):
        if not os.path.isfile(os.path.join(d, f)):
            raise Missing(f"{d}: no {f}")
    info = read_info(os.path.join(d, "info.txt"))
    with open(os.path.join(d, "fio.json")) as f:
        text = f.read()
    # fio may put notes before the JSON itself
    fio = {j["jobname"]: j for j in json.loads(text[text.index("{"):])["jobs"]}
    meta = read_info(os.path.join(d, "meta.txt"))
    files = int(info["files"])
    out = {}
    for key, _, _, src in METRICS:
        if src[0] == "fio":
            job = fio.get(src[1])
            if job is None:
                raise Missing(f"{d}: fio job {src[1]} missing")
            if job["error"] != 0:
                raise Missing(f"{d}: fio job {src[1]} reported error {job['error']}")
            side = job[src[2]]
            if side["total_ios"] == 0:
                raise Missing(f"{d}: fio job {src[1]} did no I/O")
            out[key] = side["iops"] if src[3] == "iops" else side["bw_bytes"] / 1e6
        else:
            secs = float(meta.get(src[1], "nan"))
            if not secs > 0:
                raise Missing(f"{d}: no {src[1]} time in meta.txt")
            out[key] = files / secs
    return out, info


def read_marks(path):
    """The daemon's part of each phase from phase-marks.py's lines (one guest, one daemon):
    {phase: (seconds it ran, seconds it waited for a CPU, the phase's seconds)}; {} if the
    run has no marks (one guest per daemon, or an older run)."""
    seen, out = {}, {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            _, phase, event, t, run, wait, _ = line.split()
            t, run, wait = int(t), int(run), int(wait)
        except ValueError:
            continue
        if event == "start":
            seen[phase] = (t, run, wait)
        elif event == "end" and phase in seen:
            t0, run0, wait0 = seen.pop(phase)
            if t > t0:
                out[phase] = ((run - run0) / 1e9, (wait - wait0) / 1e9, (t - t0) / 1e9)
    return out


def read_number(path):
    try:
        with open(path) as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def median_or_none(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return "n/a"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--daemon", action="append", required=True, nargs=3,
                    metavar=("NAME", "LABEL", "CMD"))
    ap.add_argument("--rust-note", default="")
    ap.add_argument("--load", action="append", default=[])
    ap.add_argument("--commit", default="unknown")
    a = ap.parse_args()

    daemons = []
    for name, label, cmd in a.daemon:
        daemons.append({"name": name, "label": label, "cmd": cmd})
    names = [d["name"] for d in daemons]
    labels = {d["name"]: d["label"] for d in daemons}

    values = {n: {k: [] for k, *_ in METRICS} for n in names}
    # Not rates and not in the ratios: the host's load when each guest started, and the CPU
    # time the daemon under test used over the whole guest run (boot to power-off).
    extra = {n: {"load": [], "cpu_s": []} for n in names}
    # The daemon's part of each phase (run, wait for a CPU, the phase's time), per round.
    parts = {n: {k: [] for k, *_ in METRICS} for n in names}
    infos = []
    try:
        for r in range(1, a.rounds + 1):
            for n in names:
                d = os.path.join(a.runs, f"{r}-{n}")
                m, info = read_run(d)
                infos.append(info)
                for k, v in m.items():
                    values[n][k].append(v)
                extra[n]["load"].append(read_number(os.path.join(d, "load")))
                marks = read_marks(os.path.join(d, "marks"))
                for k, _, _, src in METRICS:
                    if src[1] in marks:
                        run, wait, secs = marks[src[1]]
                        parts[n][k].append({"run_s": run, "wait_s": wait, "phase_s": secs})
                cs = read_number(os.path.join(d, "daemon-cpu-cs"))
                extra[n]["cpu_s"].append(None if cs is None else cs / 100)
    except (Missing, KeyError, ValueError, json.JSONDecodeError) as e:
        print(f"bench-guest: incomplete results, no ratios: {e}", file=sys.stderr)
        return 1
    setting = {k: infos[0][k] for k in ("engine", "direct", "iodepth", "runtime", "ramp",
                                        "size_mb", "files", "kernel", "fio")}
    for k in ("direct", "iodepth", "runtime", "ramp", "size_mb", "files"):
        setting[k] = int(setting[k])
    for info in infos[1:]:
        for k in ("engine", "direct"):
            if info[k] != str(setting[k]):
                print(f"bench-guest: the guests ran fio differently ({k} {info[k]} and "
                      f"{setting[k]}), no ratios", file=sys.stderr)
                return 1

    med = {n: {k: statistics.median(values[n][k]) for k, *_ in METRICS} for n in names}
    # vfsd and the second vfsd column, each against each reference there is.
    subjects = [n for n in ("vfsd", "vfsd2") if n in names]
    refs = [n for n in REFS if n in names]
    ratios = {s: {ref: {k: med[s][k] / med[ref][k] for k, *_ in METRICS} for ref in refs}
              for s in subjects}
    gm = {s: {ref: geomean(list(ratios[s][ref].values())) for ref in refs} for s in subjects}
    short = {"c": "C", "rust": "Rust"}

    head = ["metric", "unit"] + [labels[n] for n in names]
    pairs = [(s, ref) for s in subjects for ref in refs]
    head += [f"{labels[s]} / {short[ref]}" for s, ref in pairs]
    rows = []
    for key, desc, unit, _ in METRICS:
        rows.append([desc, unit] + [fmt(med[n][key]) for n in names] +
                    [f"{ratios[s][ref][key]:.2f}" for s, ref in pairs])
    rows.append(["**geometric mean**", ""] + [""] * len(names) +
                [f"**{gm[s][ref]:.2f}**" for s, ref in pairs])
    cpu = {n: median_or_none(extra[n]["cpu_s"]) for n in names}
    rows.append(["daemon CPU per guest run (not in the means)", "s"] +
                [fmt(cpu[n]) for n in names] + [""] * len(pairs))

    print()
    print(f"In-guest benchmark: median of {a.rounds} rounds; fio ioengine={setting['engine']} "
          f"direct={setting['direct']} iodepth={setting['iodepth']}, {setting['ramp']}+"
          f"{setting['runtime']} s per job; metadata over {setting['files']} files; guest "
          f"kernel {setting['kernel']}, {setting['fio']}; {infos[0].get('cpus', 'cpus not pinned')}")
    if "rust" not in names:
        print(f"No Rust virtiofsd column: {a.rust_note or 'not run'}")
    print()
    print(table(head, rows))
    print()
    print("Each round's values (rounds in the order run; the daemon order rotated each round):")
    print()
    print(table(["metric"] + [labels[n] for n in names],
                [[desc] + [" / ".join(fmt(v) for v in values[n][key]) for n in names]
                 for key, desc, *_ in METRICS] +
                [["daemon CPU per guest run, s"] +
                 [" / ".join(fmt(v) for v in extra[n]["cpu_s"]) for n in names],
                 ["host load (1 min) at the guest's start"] +
                 [" / ".join("n/a" if v is None else f"{v:.2f}" for v in extra[n]["load"])
                  for n in names]]))
    shmed = {n: {k: median_or_none([(p["run_s"] + p["wait_s"]) / p["phase_s"] for p in parts[n][k]])
                 for k, *_ in METRICS} for n in names}
    ceiling = {ref: {k: 1 / (1 - shmed[ref][k]) for k, *_ in METRICS
                     if shmed[ref][k] is not None and shmed[ref][k] < 1} for ref in refs}
    if any(shmed[n][k] is not None for n in names for k, *_ in METRICS):
        print()
        print("The daemon's part of each phase: the time its threads ran plus the time they "
              "waited for a CPU, between the guest's marks, as a share of the phase (median "
              "of the rounds). A daemon taking no time at all would make a phase at most "
              "1 / (1 - share) as fast where the guest waits for each reply (the metadata "
              "phases); that bound, taken on each reference, is the highest ratio to it any "
              "daemon could reach by serving faster:")
        print()
        chead = ["metric"] + [labels[n] for n in names] + \
            [f"best any daemon / {short[ref]}" for ref in refs]
        crows = []
        for key, desc, *_ in METRICS:
            crows.append([desc] + ["n/a" if shmed[n][key] is None else f"{shmed[n][key]:.1%}"
                                   for n in names] +
                         [f"{ceiling[ref][key]:.2f}" if key in ceiling[ref] else "n/a"
                          for ref in refs])
        crows.append(["**geometric mean**"] + [""] * len(names) +
                     [f"**{geomean(list(ceiling[ref].values())):.2f}**" if ceiling[ref] else "n/a"
                      for ref in refs])
        print(table(chead, crows))
    for s in subjects:
        for ref in refs:
            lo = min(ratios[s][ref], key=ratios[s][ref].get)
            print(f"{labels[s]} / {labels[ref]}: geometric mean {gm[s][ref]:.2f}, lowest "
                  f"{ratios[s][ref][lo]:.2f} ({dict((k, d) for k, d, *_ in METRICS)[lo]})")

    res = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_start_end": a.load},
        "repo_commit": a.commit,
        "rounds": a.rounds,
        "setting": setting,
        "daemons": daemons,
        "rust_note": a.rust_note or None,
        "metrics": {key: {"description": desc, "unit": unit,
                          "median": {n: med[n][key] for n in names},
                          "rounds": {n: values[n][key] for n in names},
                          "ratios": {f"{s}/{ref}": ratios[s][ref][key] for s, ref in pairs}}
                    for key, desc, unit, _ in METRICS},
        "geomean": {f"{s}/{ref}": gm[s][ref] for s, ref in pairs},
        "daemon_cpu_s_per_guest": {n: {"median": cpu[n], "rounds": extra[n]["cpu_s"]}
                                   for n in names},
        "host_load_at_guest_start": {n: extra[n]["load"] for n in names},
        "daemon_share_of_phase": {n: {k: {"median": shmed[n][k], "rounds": parts[n][k]}
                                      for k, *_ in METRICS} for n in names},
        "best_ratio_by_serving_faster": {ref: dict(ceiling[ref], geomean=geomean(
            list(ceiling[ref].values())) if ceiling[ref] else None) for ref in refs},
    }
    with open(a.json, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
