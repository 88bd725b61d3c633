#!/usr/bin/env python3
"""Turn bench/run's raw timings (bench/.out/raw.tsv) into the Markdown of bench/results.md.

Raw rows: method, N, rep, phase (setup|create|delete|check), status (ok|fail), seconds,
peak RSS in KiB (mcc only), note (the failure, or the API's in-process seconds).
"""
import argparse
import statistics
import sys

LABELS = {
    "mcc": "mcc",
    "compose": "docker-compose",
    "cli": "sequential docker CLI",
    "api": "engine API, 16 threads",
}
# mcc's targets at N = 30: mcc create time / method's create time must be at most this
TARGETS = [("api", 1.1), ("compose", 0.9), ("cli", 0.6)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("raw")
    for opt in ("date", "command", "reps", "sizes", "methods", "machine", "load", "versions"):
        p.add_argument("--" + opt, default="")
    a = p.parse_args()

    methods = a.methods.split(",")
    sizes = [int(s) for s in a.sizes.split()]
    ok = {}      # (method, n, phase) -> [seconds]
    rss = {}     # (method, phase) -> [KiB]
    inner = {}   # (n, phase) -> [seconds] for the API
    failed = {}  # method -> (n or None, reason)
    with open(a.raw) as f:
        for line in f:
            m, n, rep, phase, status, secs, kib, note = (line.rstrip("\n").split("\t") + [""] * 8)[:8]
            n = int(n) if n.isdigit() else None
            if status == "ok":
                ok.setdefault((m, n, phase), []).append(float(secs))
                if kib:
                    rss.setdefault((m, phase), []).append(int(kib))
                if m == "api" and note:
                    inner.setdefault((n, phase), []).append(float(note))
            elif m not in failed:
                failed[m] = (n, "%s: %s" % (phase, note) if phase != "setup" else note)

    def med(m, n, phase):
        v = ok.get((m, n, phase))
        return statistics.median(v) if v else None

    def fmt(x, digits=2):
        return "—" if x is None else "%.*f" % (digits, x)

    def ratio(x, y):
        return None if x is None or y is None or y == 0 else x / y

    out = []
    w = out.append
    w("# mcc cluster creation benchmark")
    w("")
    w("- date: %s" % a.date)
    w("- machine: %s" % a.machine)
    w("- %s" % a.load)
    try:
        start_load = float(a.load.split("at start ")[1].split()[0])
    except (IndexError, ValueError):
        start_load = 0.0
    if start_load > 1.0:
        w("- **the machine was busy when the run started (1-minute load %.2f): other work skews "
          "these figures; the minimums are the better estimate**" % start_load)
    w("- versions: %s" % a.versions)
    w("- command: `%s` (%s repetition%s; times are wall seconds of the whole command, median and min)"
      % (a.command, a.reps, "" if a.reps == "1" else "s"))
    w("- each method makes the same cluster: image mcc-test/busybox:latest, one user-defined bridge "
      "network, one volume at /home, a front-end + N workers running a keep-alive `sh` loop")
    w("")
    w("| method | N | create median | create min | delete median | delete min "
      "| create ÷ API | delete ÷ API | mcc ÷ this, create | mcc ÷ this, delete |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for m in methods:
            c, d = med(m, n, "create"), med(m, n, "delete")
            cmin = min(ok[(m, n, "create")]) if (m, n, "create") in ok else None
            dmin = min(ok[(m, n, "delete")]) if (m, n, "delete") in ok else None
            status = ""
            if m in failed and (failed[m][0] is None or failed[m][0] <= n or c is None):
                status = " **FAILED** (%s)" % failed[m][1].replace("|", "/")
            runs = len(ok.get((m, n, "create"), []))
            if c is not None and str(runs) != a.reps:
                status += " (%d of %s runs)" % (runs, a.reps)
            if c is None and d is None:
                w("| %s | %d | %s |  |  |  |  |  |  |  |" % (LABELS[m], n, status.strip() or "not run"))
                continue
            mc, md = med("mcc", n, "create"), med("mcc", n, "delete")
            w("| %s%s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                LABELS[m], status, n, fmt(c), fmt(cmin), fmt(d), fmt(dmin),
                fmt(ratio(c, med("api", n, "create"))), fmt(ratio(d, med("api", n, "delete"))),
                fmt(ratio(mc, c)) if m != "mcc" else "", fmt(ratio(md, d)) if m != "mcc" else ""))
    w("")
    for n in sizes:
        if inner.get((n, "create")):
            w("- engine API in-process time at N=%d (without the ~0.2 s Python start-up and SDK import): "
              "create %s s, delete %s s (medians)" % (
                  n, fmt(statistics.median(inner[(n, "create")])),
                  fmt(statistics.median(inner.get((n, "delete"), [0])))))
    if rss:
        w("- mcc peak RSS (`/usr/bin/time -v`, max over runs): " + ", ".join(
            "%s %.1f MiB" % (ph, max(v) / 1024) for (m, ph), v in sorted(rss.items())))
    w("")
    tn = 30 if 30 in sizes else max(sizes)
    w("## Targets at N = %d%s" % (tn, "" if tn == 30 else " (N = 30 was not run)"))
    w("")
    mc = med("mcc", tn, "create")
    for m, limit in TARGETS:
        other = med(m, tn, "create")
        r = ratio(mc, other)
        if r is None:
            why = "mcc not measured" if mc is None else "%s not measured" % LABELS[m]
            verdict = "NOT CHECKED (%s)" % why
        else:
            verdict = "%s (%.2f×)" % ("met" if r <= limit else "NOT met", r)
        w("- mcc create ≤ %.1f× %s: %s" % (limit, LABELS[m], verdict))
    w("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
