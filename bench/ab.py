#!/usr/bin/env python3
"""A/B: two servers on the same workloads, alternated, measured from outside.

The method of ../shared/bench/README.md: the server pinned to CPU 0, the load
to CPU 1; server CPU per operation = busy time of CPU 0 in /proc/stat over the
measured window (softirq work included) divided by the operations the load
generator counted; A and B alternated A B A B ... in one run; medians of N.
Process CPU per operation (utime+stime of the server's process tree) is shown
too: it misses softirq work, but other tenants of a shared machine do not
count in it.
The load generators are not ours: echoload (../shared/bench/echoload.c) for
TCP echo, short connections and UDP, wrk for HTTP; bulk is `sockit connect <
file` into `serve discard`, timed.

    python3 bench/ab.py --a OLD/sockit --b NEW/sockit [--runs 5] [--duration 5]
                        [--only ROW[,ROW...]] [--json FILE]
                        [--a-args "--model epoll" --b-args "--model uring"]

A and B are sockit binaries (e.g. the build of main before a change and the
build after it). Rows: echo, echo-q, echo-q-p32, udp-q, conn-q, http-1k,
http-1m, bulk. Only loopback is used; every run is bounded in time.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from measure import proc_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_LOAD = os.path.join(ROOT, "..", "shared", "bench", "echoload.c")
SERVER_CPU, LOAD_CPU = 0, 1
SERVE_EXTRA = []  # options given to `serve SERVICE` of the side being measured (--a-args/--b-args)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_busy(cpu):
    """Busy seconds of one CPU since boot (all but idle and iowait)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def build_echoload(out_dir):
    exe = os.path.join(out_dir, "echoload")
    if not os.path.exists(exe):
        subprocess.run(["cc", "-O2", "-o", exe, SHARED_LOAD], check=True)
    return exe


class Server:
    def __init__(self, argv, stdout=subprocess.DEVNULL):
        argv = argv[:3] + SERVE_EXTRA + argv[3:]  # after `sockit serve SERVICE`
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["taskset", "-c", str(SERVER_CPU)] + argv,
                                     stdout=stdout, stderr=subprocess.PIPE,
                                     start_new_session=True)
        line = self.proc.stderr.readline().decode()
        m = re.search(r":(\d+)/?\s*$", line) or re.search(r"(\d+)\s*$", line)
        if not m:
            self.stop()
            raise RuntimeError(f"{argv}: no port in {line!r}")
        self.port = int(m.group(1))
        time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def measured(load_argv, warmup, timeout, srv):
    """Run the load pinned to LOAD_CPU; CPU 0's busy time and the server's
    process CPU from the end of the warm-up to the end of the run. Returns
    (stdout, busy seconds, wall seconds); srv.proc_s gets the process CPU."""
    p = subprocess.Popen(["taskset", "-c", str(LOAD_CPU)] + load_argv,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(warmup)
    b0, t0, c0 = cpu_busy(SERVER_CPU), time.monotonic(), proc_cpu(srv.proc.pid)
    out, err = p.communicate(timeout=timeout)
    b1, t1, c1 = cpu_busy(SERVER_CPU), time.monotonic(), proc_cpu(srv.proc.pid)
    if p.returncode != 0:
        raise RuntimeError(f"{load_argv[0]}: exit {p.returncode}: {err.decode()[-300:]}")
    srv.proc_s = c1 - c0
    return out.decode(), b1 - b0, t1 - t0


def echoload_row(mode, conns, size, pipeline, extra):
    def run(a, sockit, d):
        srv = Server([sockit, "serve", "echo"] + extra + [
            "udp://127.0.0.1:0" if mode == "udp" else "127.0.0.1:0"])
        try:
            argv = [a.echoload, "-q", "-m", mode, "-w", "0.5"]
            if mode == "conn":
                argv += ["-S", "16"]
            argv += ["127.0.0.1", str(srv.port), str(conns), str(d), str(size), str(pipeline)]
            out, busy, _ = measured(argv, 0.5, d + 60, srv)
        finally:
            srv.stop()
        kv = dict(x.split("=", 1) for x in out.split() if "=" in x)
        ops = int(kv["completed"])
        return {"ops": ops, "rate": ops / float(kv["secs"]), "cpu_us": busy * 1e6 / max(ops, 1),
                "proc_us": srv.proc_s * 1e6 / max(ops, 1), "errors": int(kv["errors"])}
    return run


def http_row(size):
    def run(a, sockit, d):
        root = tempfile.mkdtemp(prefix="sockit-ab-")
        with open(os.path.join(root, "f"), "wb") as f:
            f.write(os.urandom(size))
        srv = Server([sockit, "serve", "http", "-q", "--root", root, "127.0.0.1:0"])
        try:
            out, busy, wall = measured(["wrk", "-t1", "-c50", f"-d{d}s",
                                        f"http://127.0.0.1:{srv.port}/f"], 0, d + 60, srv)
        finally:
            srv.stop()
            os.unlink(os.path.join(root, "f"))
            os.rmdir(root)
        reqs = int(re.search(r"(\d+) requests in", out).group(1))
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {"ops": reqs, "rate": reqs / wall, "cpu_us": busy * 1e6 / max(reqs, 1),
                "proc_us": srv.proc_s * 1e6 / max(reqs, 1),
                "errors": int(errs.group(1)) if errs else 0}
    return run


def bulk_row(a, sockit, d):
    path = a.bulk_file
    srv = Server([sockit, "serve", "discard", "-q", "127.0.0.1:0"])
    try:
        with open(path, "rb") as f:
            out, busy, wall = measured(
                ["sh", "-c", f'exec "$0" connect 127.0.0.1 {srv.port} < "$1"', sockit, path],
                0, 300, srv)
    finally:
        srv.stop()
    gib = os.path.getsize(path) / 2**30
    # ops = GiB moved; "rate" in Gbit/s; CPU 0 (the receiving server) in ms per GiB.
    return {"ops": gib, "rate": gib * 8 * 1.073741824 / wall, "cpu_us": busy * 1e3 / gib,
            "proc_us": srv.proc_s * 1e3 / gib, "errors": 0}


ROWS = {
    "echo": ("echo 64 B, 50 conn, default output", echoload_row("tcp", 50, 64, 1, [])),
    "echo-q": ("echo 64 B, 50 conn, -q", echoload_row("tcp", 50, 64, 1, ["-q"])),
    "echo-q-p32": ("echo 64 B, 50 conn x 32 in flight, -q",
                   echoload_row("tcp", 50, 64, 32, ["-q"])),
    "udp-q": ("UDP echo 64 B, 16 sockets, -q", echoload_row("udp", 16, 64, 1, ["-q"])),
    "conn-q": ("short connections, 50 at a time, -q", echoload_row("conn", 50, 64, 1, ["-q"])),
    "http-1k": ("HTTP 1 KiB, wrk -t1 -c50", http_row(1024)),
    "http-1m": ("HTTP 1 MiB, wrk -t1 -c50", http_row(1 << 20)),
    "bulk": ("bulk, connect < 1 GiB file into serve discard", bulk_row),
}
UNITS = {"bulk": ("Gbit/s", "ms/GiB")}  # bulk: CPU milliseconds per GiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="sockit binary A (before)")
    ap.add_argument("--b", required=True, help="sockit binary B (after)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--a-args", default="", help="serve options of A, e.g. '--model epoll'")
    ap.add_argument("--b-args", default="", help="serve options of B, e.g. '--model uring'")
    a = ap.parse_args()
    tools = tempfile.mkdtemp(prefix="sockit-ab-tools-")
    a.echoload = build_echoload(tools)
    rows = [r for r in ROWS if not a.only or r in a.only.split(",")]
    if "bulk" in rows:
        a.bulk_file = os.path.join("/dev/shm", "sockit-ab-bulk")
        if not os.path.exists(a.bulk_file) or os.path.getsize(a.bulk_file) != 1 << 30:
            subprocess.run(["head", "-c", str(1 << 30), "/dev/urandom"],
                           stdout=open(a.bulk_file, "wb"), check=True)
    results = {}
    try:
        for r in rows:
            title, fn = ROWS[r]
            cells = {"a": [], "b": []}
            for i in range(a.runs):
                for side in ("a", "b"):  # alternated: A B A B ...
                    SERVE_EXTRA[:] = getattr(a, side + "_args").split()
                    cells[side].append(fn(a, getattr(a, side), a.duration))
                    c = cells[side][-1]
                    log(f"{r:11} run {i + 1} {side.upper()}: {c['rate']:12.1f}/s "
                        f"{c['cpu_us']:9.2f} us/op {c['proc_us']:9.2f} proc us/op "
                        f"errors={c['errors']}")
            med = {s: {k: statistics.median(x[k] for x in cells[s])
                       for k in ("rate", "cpu_us", "proc_us")}
                   for s in cells}
            errors = sum(x["errors"] for s in cells for x in cells[s])
            results[r] = {"title": title, "a": med["a"], "b": med["b"], "errors": errors,
                          "runs": cells}
    finally:
        if "bulk" in rows:
            os.unlink(a.bulk_file)
    rate_u, cpu_u = "rate", "CPU/op"
    print(f"| workload | A rate | B rate | A {cpu_u} | B {cpu_u} | B/A CPU | A proc/op | "
          f"B proc/op | B/A proc | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r, x in results.items():
        ru, cu = UNITS.get(r, ("/s", "us"))
        print(f"| {x['title']} | {x['a']['rate']:.1f} {ru} | {x['b']['rate']:.1f} {ru} | "
              f"{x['a']['cpu_us']:.2f} {cu} | {x['b']['cpu_us']:.2f} {cu} | "
              f"{x['b']['cpu_us'] / x['a']['cpu_us']:.3f}x | "
              f"{x['a']['proc_us']:.2f} {cu} | {x['b']['proc_us']:.2f} {cu} | "
              f"{x['b']['proc_us'] / max(x['a']['proc_us'], 1e-9):.3f}x | {x['errors']} |")
    print(f"\nmedians of {a.runs} alternated runs of {a.duration} s; A={a.a} {a.a_args} "
          f"B={a.b} {a.b_args}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
