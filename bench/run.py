#!/usr/bin/env python3
"""make bench: sockit's server designs side by side, and sockit against its peers.

Two views, both kept:
- `sockit bench` rows (sections "echo, 64 B, N conn", "short connections",
  "UDP echo", "idle"): every --model, driven by sockit's own load generator;
  CPU per op is the server process's utime+stime.
- Independent rows (bench/rows_*.py, ids ext-*, tls-*, files-*, relay-*,
  exec-*, proxy-*, reuseport-*): load generators that are not ours (echoload
  from ../shared/bench, wrk, iperf3, openssl s_time, rsync, socat, haproxy...),
  measured as ../shared/bench/README.md says (bench/measure.py, bench/README.md):
  server CPU from CPU 0's busy time, sides interleaved run by run, medians,
  system calls per op from a separate strace pass, context switches per op,
  and which side saturated.
A peer or a subcommand that is missing is skipped with a line saying so.
Results go to bench/results.md (+ results.json, results.png) or --out DIR.
Only loopback is used; every run is bounded in time.

    python3 bench/run.py [--quick] [--only ID[,ID...]] [--repeat N] [--duration S]
                         [--list] [--out DIR] [--pipelines 1,8,32] [--no-strace]
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cells
import measure
import rows_core
import rows_files
import rows_services
import rows_tls
from context import Ctx
from measure import Server, Skip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
SOCKIT = os.environ.get("SOCKIT", os.path.join(BUILD, "sockit"))  # e.g. another build to try
PEERS = os.path.join(BUILD, "bench")
ECHOLOAD_SRC = os.environ.get("ECHOLOAD_SRC", os.path.join(ROOT, "..", "shared", "bench", "echoload.c"))
SERVER_CPU, LOAD_CPU = str(measure.SERVER_CPU), str(measure.LOAD_CPU)
MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# the `sockit bench` rows use the same helpers as the rows measured from outside
cpu_seconds = measure.proc_cpu  # utime+stime of the server, its threads and children


def load(argv, timeout):
    """Run a load generator pinned to LOAD_CPU; return its stdout."""
    r = subprocess.run(["taskset", "-c", LOAD_CPU] + argv, capture_output=True,
                       timeout=timeout)
    if r.returncode not in (0,):
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode()[-300:]}")
    return r.stdout.decode()


def sockit_bench(args, duration, server):
    argv = [SOCKIT, "bench", "--json", "-d", str(duration), "--warmup", "0.5", "--workers", "1"] + args
    c0 = cpu_seconds(server.pid)
    out = load(argv, duration + 60)
    c1 = cpu_seconds(server.pid)
    j = json.loads(out)
    ops = j.get("ops", 0) or 0
    errors = sum(j.get("errors", {}).values())
    return {"rate": j.get("rate", 0.0), "ops": ops, "errors": errors,
            "p99_us": j.get("latency_us", {}).get("p99"),
            "bytes_s": j.get("throughput_bytes_s", 0.0),
            "cpu_us_op": (c1 - c0) * 1e6 / ops if ops else None, "raw": j}


def median_cell(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    def med(key):
        vals = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(vals) if vals else None
    return {"rate": med("rate"), "cpu_us_op": med("cpu_us_op"), "errors": sum(r["errors"] for r in runs),
            "bytes_s": med("bytes_s"), "p99_us": med("p99_us"), "runs": len(runs)}


class Suite:
    def __init__(self, args):
        self.a = args
        self.rows = {}      # section -> list of (name, cell)
        self.commands = {}  # section -> example command
        self.ext = {}       # independent rows: id -> cells.run_row's result
        self.order = []     # their ids in all_rows' order (a partial rerun keeps it)
        prev = os.path.join(args.out, "results.json")
        if args.only and os.path.exists(prev):
            # A partial rerun (--only) updates its cells and keeps the others.
            with open(prev) as f:
                old = json.load(f)
            self.commands = old.pop("_commands", {})
            self.ext = old.pop("_ext", {})
            self.rows = {s: [(n, c) for n, c in rows] for s, rows in old.items()}

    def want(self, name):
        return not self.a.only or any(x and x in name for x in self.a.only.split(","))

    def independent(self, ctx):
        """The rows measured from outside (bench/rows_*.py), in order."""
        rows = all_rows(ctx)
        self.order = [row.id for row in rows]
        strace = not self.a.no_strace
        if strace and shutil.which("strace") is None:
            log("strace not installed: no system calls per operation (scripts/deps.sh installs it)")
            strace = False
        for row in rows:
            if not self.want(row.id):
                continue
            log(f"-- {row.id}: {row.title}")
            t0 = time.monotonic()
            try:
                self.ext[row.id] = cells.run_row(row, self.a.ext_repeat, strace)
            except Skip as e:
                log(f"  {row.id}: skipped: {e}")
                self.ext[row.id] = {"title": row.title, "skipped_row": str(e)}
            log(f"  {row.id}: {time.monotonic() - t0:.0f} s")

    def record(self, section, name, cell, command):
        rows = self.rows.setdefault(section, [])
        rows[:] = [(n, c) for n, c in rows if n != name]  # a rerun replaces the old cell
        rows.append((name, cell))
        self.commands.setdefault(section, command)
        rate = cell.get("rate") or 0
        cpu = cell.get("cpu_us_op")
        log(f"  {section:28} {name:34} {rate:12.0f}/s  "
            f"{cpu if cpu is None else round(cpu, 2)} us/op  errors={cell.get('errors')}")

    # ---- echo and short connections, every model ----
    def models(self):
        d, r = self.a.sb_duration, self.a.repeat
        for model in MODELS:
            for conns in (1, 50, 500):
                name = f"sockit {model}"
                if not self.want(f"echo{conns} {name}"):
                    continue
                if model == "iterative" and conns > 1:
                    continue  # one at a time: the others would only wait
                workers = ["--workers", "16"] if model == "prefork" else []
                srv = Server([SOCKIT, "serve", "echo", "-q", "--model", model] + workers +
                             ["127.0.0.1:0"])
                try:
                    cell = median_cell(lambda: sockit_bench(
                        ["--mode", "echo", "-c", str(conns), "-s", "64",
                         f"127.0.0.1:{srv.port}"], d, srv), r)
                finally:
                    srv.stop()
                self.record(f"echo, 64 B, {conns} conn", name, cell,
                            f"sockit bench --mode echo -c {conns} -s 64 -d {d} --workers 1 ADDR")
            if self.want(f"conn {model}"):
                workers = ["--workers", "16"] if model == "prefork" else []
                srv = Server([SOCKIT, "serve", "echo", "-q", "--model", model] + workers +
                             ["127.0.0.1:0"])
                try:
                    cell = median_cell(lambda: sockit_bench(
                        ["--mode", "conn", "-c", "50", f"127.0.0.1:{srv.port}"], d, srv), r)
                finally:
                    srv.stop()
                self.record("short connections, 50 at a time", f"sockit {model}", cell,
                            f"sockit bench --mode conn -c 50 -d {d} --workers 1 ADDR")

    def peers(self):
        d, r = self.a.sb_duration, self.a.repeat
        for peer in ("epoll_echo", "uv_echo"):
            exe = os.path.join(PEERS, peer)
            for conns in (1, 50, 500):
                if not self.want(f"echo{conns} {peer}"):
                    continue
                srv = Server([exe, "0"], port_from="stdout")
                try:
                    cell = median_cell(lambda: sockit_bench(
                        ["--mode", "echo", "-c", str(conns), "-s", "64",
                         f"127.0.0.1:{srv.port}"], d, srv), r)
                finally:
                    srv.stop()
                self.record(f"echo, 64 B, {conns} conn", f"peer {peer}", cell, "")
            if self.want(f"conn {peer}"):
                srv = Server([exe, "0"], port_from="stdout")
                try:
                    cell = median_cell(lambda: sockit_bench(
                        ["--mode", "conn", "-c", "50", f"127.0.0.1:{srv.port}"], d, srv), r)
                finally:
                    srv.stop()
                self.record("short connections, 50 at a time", f"peer {peer}", cell, "")

    def udp(self):
        d, r = self.a.sb_duration, self.a.repeat
        if not self.want("udp"):
            return
        for name, argv, pf in (("sockit epoll", [SOCKIT, "serve", "echo", "-q", "udp://127.0.0.1:0"], "stderr"),
                               ("peer udp_echo", [os.path.join(PEERS, "udp_echo"), "0"], "stdout")):
            srv = Server(argv, port_from=pf)
            try:
                cell = median_cell(lambda: sockit_bench(
                    ["--mode", "udp", "-c", "16", "-s", "64", f"udp://127.0.0.1:{srv.port}"], d, srv), r)
            finally:
                srv.stop()
            self.record("UDP echo, 16 sockets", name, cell,
                        f"sockit bench --mode udp -c 16 -s 64 -d {d} --workers 1 ADDR")

    def idle(self):
        if not self.want("idle"):
            return
        n = self.a.idle
        srv = Server([SOCKIT, "serve", "echo", "-q", "127.0.0.1:0"])
        try:
            out = load([SOCKIT, "bench", "--json", "--mode", "idle", "-c", str(n), "-d", "5",
                        "--server-pid", str(srv.pid), f"127.0.0.1:{srv.port}"], 300)
            j = json.loads(out)
            cell = {"rate": j.get("held", 0), "errors": sum(j.get("errors", {}).values()),
                    "cpu_us_op": None, "rss_per_conn": j.get("rss_per_conn_bytes"), "raw": j}
        finally:
            srv.stop()
        self.record(f"{n} idle connections, epoll", "sockit", cell,
                    f"sockit bench --mode idle -c {n} --server-pid PID ADDR")

    # ---- output ----
    def write(self):
        md = ["# sockit benchmark results\n",
              f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}. "
              f"Server pinned to CPU {SERVER_CPU}, load to CPU {LOAD_CPU}. "
              f"The method is in bench/README.md.\n",
              f"Generated by `make bench` (`python3 bench/run.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"]
        if self.ext:
            md.append("\n## Measured from outside (independent load generators)\n\n"
                      "Server CPU per op: CPU 0's busy time over the window / ops (softirq included); "
                      "\"vs first\": that CPU per op over the first side's. Busy: fraction of the window "
                      "CPU 0 (server) and CPU 1 (load) were busy; saturated: which reached "
                      f"{measure.SATURATED:.0%}. System calls per op from a separate pass under "
                      "`strace -c -f` (top: the commonest calls per op); context switches per op "
                      "from /proc/PID/task/*/status of the server and its children.\n")
            table = cells.summary(self.ext, sorted(self.ext, key=lambda r: (
                self.order.index(r) if r in self.order else len(self.order))))
            if table:
                md.append("\n### Targets (issues 10-14): sockit's side over the peer's, medians\n\n"
                          "cpu: server CPU per op (CPU 0 busy); rate: operations or bytes per second; "
                          "where the load saturates, cpu is the figure that counts.\n\n" + table)

            def rank(rid):
                return self.order.index(rid) if rid in self.order else len(self.order)
            for rid, res in sorted(self.ext.items(), key=lambda kv: rank(kv[0])):
                if "skipped_row" in res:
                    md.append(f"\n### {res['title']} (`--only {rid}`)\n\nskipped: {res['skipped_row']}\n")
                else:
                    md.append(cells.markdown(rid, res))
        if self.rows:
            md.append("\n## Driven by `sockit bench`\n\nEach cell is the median of `--repeat` runs; "
                      "CPU/op is the server process's user+system time divided by operations.\n")
        for section, rows in self.rows.items():
            md.append(f"\n### {section}\n")
            if self.commands.get(section):
                md.append(f"Load: `{self.commands[section]}`\n")
            md.append("| server | rate (/s) | server CPU per op (us) | errors |\n|---|---:|---:|---:|")
            for name, c in rows:
                cpu = "" if c.get("cpu_us_op") is None else f"{c['cpu_us_op']:.2f}"
                rate = c.get("rate") or 0
                extra = ""
                if c.get("rss_per_conn") is not None:
                    extra = f" (RSS {c['rss_per_conn']:.0f} B/conn)"
                md.append(f"| {name}{extra} | {rate:,.0f} | {cpu} | {c.get('errors', 0)} |")
        os.makedirs(self.a.out, exist_ok=True)
        path = os.path.join(self.a.out, "results.md")
        with open(path, "w") as f:
            f.write("\n".join(md) + "\n")
        with open(os.path.join(self.a.out, "results.json"), "w") as f:
            out = {s: [[n, {k: v for k, v in c.items() if k != "raw"}] for n, c in rows]
                   for s, rows in self.rows.items()}
            out["_commands"] = self.commands
            out["_ext"] = self.ext
            json.dump(out, f, indent=1)
        log(f"wrote {path}")
        self.chart()

    def chart(self):  # also runnable alone: python3 -c 'import run; ...'
        """CPU per operation for each echo/conn section: the design comparison."""
        if shutil.which("gnuplot") is None:
            log("gnuplot missing: no chart")
            return
        sections = [s for s in self.rows if s.startswith(("echo", "short"))]
        if not sections:
            return
        names = []
        for s in sections:
            for n, _ in self.rows[s]:
                if n not in names:
                    names.append(n)
        data = os.path.join(tempfile.mkdtemp(), "d.dat")
        with open(data, "w") as f:
            f.write("server " + " ".join(f'"{s}"' for s in sections) + "\n")
            for n in names:
                vals = []
                for s in sections:
                    v = next((c.get("cpu_us_op") for nn, c in self.rows[s] if nn == n), None)
                    vals.append("NaN" if v is None else f"{v:.3f}")
                f.write(f'"{n}" ' + " ".join(vals) + "\n")
        png = os.path.join(self.a.out, "results.png")
        script = (f'set terminal pngcairo size 1000,560 font ",10"\nset output "{png}"\n'
                  'set termoption noenhanced\n'
                  'set title "Server CPU per operation, by server design (log scale; lower is better)"\n'
                  'set ylabel "microseconds of server CPU"\nset logscale y\nset yrange [1:*]\n'
                  'set style data histograms\n'
                  'set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n'
                  'set xtics rotate by -30\nset key outside right\nset grid ytics\n'
                  f'plot for [i=2:{len(sections) + 1}] "{data}" using i:xtic(1) title columnhead\n')
        r = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
        if r.returncode != 0:
            # gnuplot-nox may lack pngcairo: fall back to the plain png terminal
            script = script.replace('pngcairo size 1000,560 font ",10"', "png size 1000,560")
            subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
        log(f"wrote {png}")


def build_peers():
    """The hand-written peers and echoload into build/bench; one that does not
    build (libuv missing) is skipped by its rows, saying so."""
    os.makedirs(PEERS, exist_ok=True)
    src = os.path.join(ROOT, "bench", "peers")
    for name, path, libs in (("epoll_echo", os.path.join(src, "epoll_echo.c"), []),
                             ("udp_echo", os.path.join(src, "udp_echo.c"), []),
                             ("uv_echo", os.path.join(src, "uv_echo.c"), ["-luv"]),
                             ("echoload", ECHOLOAD_SRC, [])):
        exe = os.path.join(PEERS, name)
        if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(path):
            continue
        if not os.path.exists(path):
            log(f"  {name}: {path} missing: its rows are skipped")
            continue
        r = subprocess.run(["cc", "-O2", "-o", exe, path] + libs, capture_output=True)
        if r.returncode != 0:
            log(f"  {name} did not build (its rows are skipped): {r.stderr.decode()[-200:]}")


def all_rows(ctx):
    return (rows_core.rows(ctx) + rows_tls.rows(ctx) + rows_files.rows(ctx) + rows_services.rows(ctx))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 2 s per cell, smaller transfers, fewer idle connections")
    ap.add_argument("--only", default="",
                    help="run cells and rows whose name or id contains this (comma-separated: any)")
    ap.add_argument("--repeat", type=int, help="runs per `sockit bench` cell (3)")
    ap.add_argument("--ext-repeat", type=int, help="interleaved runs per independent row (5)")
    ap.add_argument("--duration", type=int, help="seconds per run of an independent row (3)")
    ap.add_argument("--sb-duration", type=int, help="seconds per `sockit bench` run (2)")
    ap.add_argument("--idle", type=int, help="sockit bench idle connections (19000)")
    ap.add_argument("--tls-idle", type=int, help="idle TLS connections (tls-idle; 10000)")
    ap.add_argument("--pipelines", default="1,32", help="messages in flight per TCP connection")
    ap.add_argument("--udp-pipelines", default="1,8", help="datagrams in flight per UDP socket")
    ap.add_argument("--no-strace", action="store_true", help="skip the system-call pass")
    ap.add_argument("--list", action="store_true", help="list the independent rows and exit")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench"),
                    help="directory for results.md/.json/.png (default bench/)")
    a = ap.parse_args()
    # --quick changes the defaults; what is given explicitly stays
    for k, full, quick in (("repeat", 3, 1), ("ext_repeat", 5, 1), ("duration", 3, 2),
                           ("sb_duration", 2, 2), ("idle", 19000, 2000), ("tls_idle", 10000, 1000)):
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    ctx = Ctx(a, SOCKIT, PEERS)
    try:
        if a.list:
            for row in all_rows(ctx):
                print(f"{row.id:20} {row.title}  [{', '.join(s.name for s in row.sides)}]")
            return 0
        if os.cpu_count() < 2:
            log("need 2 CPUs to pin server and load apart")
            return 1
        build_peers()
        t0 = time.monotonic()
        s = Suite(a)
        for part in (s.models, s.peers, s.udp, s.idle, lambda: s.independent(ctx)):
            try:
                part()
            except Exception as e:  # one broken part must not lose the others' results
                log(f"!! {getattr(part, '__name__', 'independent')}: {e!r}")
        s.write()
        log(f"make bench: {(time.monotonic() - t0) / 60:.1f} minutes")
    finally:
        ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
