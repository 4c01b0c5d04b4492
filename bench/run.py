#!/usr/bin/env python3
"""make bench: every server design side by side, with peers, in one run.

Each cell starts a server pinned to CPU 0, drives it with a load generator
pinned to CPU 1 for DURATION seconds, and records the rate and the server's
CPU time per operation (utime+stime from /proc, so a saturated load generator
still tells servers apart). Each cell runs REPEAT times; the median is kept.
Results go to bench/results.md and bench/results.png (gnuplot).

Only loopback is used; every run is bounded by its duration and stops itself.

    python3 bench/run.py [--quick] [--only SUBSTRING] [--repeat N] [--duration S]
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
SOCKIT = os.path.join(BUILD, "sockit")
PEERS = os.path.join(BUILD, "bench")
SERVER_CPU, LOAD_CPU = "0", "1"
MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll"]
CLK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """utime+stime of pid and all its threads and reaped children."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / CLK  # utime stime cutime cstime
    except OSError:
        return 0.0
    # Live children (fork/prefork workers) are not in cutime until reaped.
    for child in children(pid):
        total += cpu_seconds(child)
    return total


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """A server process pinned to SERVER_CPU; `port` read from its output."""

    def __init__(self, argv, port=None, port_from="stderr", env=None):
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, start_new_session=True)
        self.port = port
        if port is None:
            stream = self.proc.stderr if port_from == "stderr" else self.proc.stdout
            line = stream.readline().decode()
            m = re.search(r"(\d+)\s*$", line)
            if not m:
                self.stop()
                raise RuntimeError(f"{argv[0]}: no port in {line!r}")
            self.port = int(m.group(1))
        time.sleep(0.3)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def load(argv, timeout):
    """Run a load generator pinned to LOAD_CPU; return its stdout."""
    r = subprocess.run(["taskset", "-c", LOAD_CPU] + argv, capture_output=True,
                       timeout=timeout)
    if r.returncode not in (0,):
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode()[-300:]}")
    return r.stdout.decode()


def sockit_bench(args, duration, server):
    argv = [SOCKIT, "bench", "--json", "-d", str(duration), "--workers", "1"] + args
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


def wrk(url, conns, duration, server):
    c0 = cpu_seconds(server.pid)
    out = load(["wrk", "-t1", f"-c{conns}", f"-d{duration}", url], duration + 60)
    c1 = cpu_seconds(server.pid)
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "ops": reqs, "errors": int(errs.group(1)) if errs else 0,
            "cpu_us_op": (c1 - c0) * 1e6 / reqs if reqs else None}


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
        prev = os.path.join(ROOT, "bench", "results.json")
        if args.only and os.path.exists(prev):
            # A partial rerun (--only) updates its cells and keeps the others.
            with open(prev) as f:
                old = json.load(f)
            self.commands = old.pop("_commands", {})
            self.rows = {s: [(n, c) for n, c in rows] for s, rows in old.items()}

    def want(self, name):
        return not self.a.only or self.a.only in name

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
        d, r = self.a.duration, self.a.repeat
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
        d, r = self.a.duration, self.a.repeat
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
        d, r = self.a.duration, self.a.repeat
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

    def bulk(self):
        """One TCP stream of SIZE bytes from the same file: sockit connect into
        sockit serve discard, iperf3 (its own memory buffer), socat (default
        8 KiB buffer). Rate = bytes / wall time of the whole transfer."""
        d, r = self.a.duration, self.a.repeat
        if not self.want("bulk"):
            return
        size = 4 << 30
        src = os.path.join(tempfile.mkdtemp(prefix="sockit-bulk-"), "zeros")
        with open(src, "wb") as f:
            f.truncate(size)  # sparse: no disk, page cache only
        subprocess.run(["sh", "-c", f"cat {src} > /dev/null"], check=True)  # warm the page cache

        def timed(argv):
            t0 = time.time()
            load(argv, d + 120)
            return {"rate": size / (time.time() - t0), "errors": 0}

        def sockit_run():
            srv = Server([SOCKIT, "serve", "discard", "-q", "127.0.0.1:0"])
            try:
                return timed(["sh", "-c", f"exec {SOCKIT} connect 127.0.0.1:{srv.port} < {src}"])
            finally:
                srv.stop()

        def socat_run():
            port = free_port()
            srv = Server(["socat", "-u", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "OPEN:/dev/null"],
                         port=port)
            try:
                return timed(["socat", "-u", f"OPEN:{src}", f"TCP:127.0.0.1:{port}"])
            finally:
                srv.stop()

        def iperf_run():
            port = free_port()
            srv = Server(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)], port=port)
            try:
                out = load(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-n", str(size), "-J"], d + 120)
                j = json.loads(out)
                return {"rate": j["end"]["sum_received"]["bits_per_second"] / 8, "errors": 0}
            finally:
                srv.stop()

        tools = (("sockit connect -> serve discard", sockit_run),
                 ("iperf3", iperf_run), ("socat (default buffer)", socat_run))
        try:
            # Interleaved (A B C, A B C, ...): drift in the machine's load hits
            # every tool alike instead of whichever ran during a busy spell.
            runs = {name: [] for name, _ in tools}
            for _ in range(r):
                for name, fn in tools:
                    runs[name].append(fn()["rate"])
            for name, _ in tools:
                cell = {"rate": statistics.median(runs[name]), "errors": 0, "cpu_us_op": None,
                        "runs": len(runs[name])}
                self.record("bulk, one TCP stream (bytes/s)", name, cell,
                            f"sockit connect ADDR < 4 GiB file (sendfile); iperf3 -n 4G; socat -u OPEN:file TCP:ADDR")
        finally:
            shutil.rmtree(os.path.dirname(src), ignore_errors=True)

    def http(self):
        d, r = self.a.duration, self.a.repeat
        if not self.want("http"):
            return
        www = tempfile.mkdtemp(prefix="sockit-bench-www-")
        os.chmod(www, 0o755)  # nginx's workers run as nobody
        with open(os.path.join(www, "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        with open(os.path.join(www, "1m.bin"), "wb") as f:
            f.write(os.urandom(1 << 20))
        for name in ("1k.bin", "1m.bin"):
            os.chmod(os.path.join(www, name), 0o644)
        lport, nport = free_port(), free_port()
        lconf = os.path.join(www, "lighttpd.conf")
        with open(lconf, "w") as f:
            f.write(f'server.document-root = "{www}"\nserver.port = {lport}\n'
                    f'server.bind = "127.0.0.1"\nserver.errorlog = "{www}/l.err"\n')
        nconf = os.path.join(www, "nginx.conf")
        with open(nconf, "w") as f:
            f.write(f"daemon off; worker_processes 1; pid {www}/n.pid; error_log {www}/n.err;\n"
                    f"events {{ worker_connections 4096; }}\n"
                    f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;\n"
                    f"  server {{ listen 127.0.0.1:{nport}; root {www}; }} }}\n")
        servers = [("sockit epoll", [SOCKIT, "serve", "http", "-q", "--workers", "1", "--root", www, "127.0.0.1:0"], None),
                   ("lighttpd", ["lighttpd", "-D", "-f", lconf], lport),
                   ("nginx", ["nginx", "-p", www, "-c", nconf], nport)]
        for name, argv, port in servers:
            if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
                log(f"  skipping {name}: not installed")
                continue
            srv = Server(argv, port=port)
            try:
                for fname in ("1k.bin", "1m.bin"):
                    for conns in (50, 200):
                        cell = median_cell(lambda: wrk(f"http://127.0.0.1:{srv.port}/{fname}", conns, d, srv), r)
                        self.record(f"HTTP {fname}, {conns} conn (wrk)", name, cell,
                                    f"wrk -t1 -c{conns} -d{d} http://127.0.0.1:PORT/{fname}")
            finally:
                srv.stop()
        shutil.rmtree(www, ignore_errors=True)

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
        md = [f"# sockit benchmark results\n",
              f"Machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.platform()}. "
              f"Server pinned to CPU {SERVER_CPU}, load to CPU {LOAD_CPU}. "
              f"Each cell is the median of several runs (`--repeat`, 3 by default; bulk interleaves its "
              f"tools run by run). "
              f"CPU/op is the server's user+system time divided by operations.\n",
              f"Generated by `make bench` (`python3 bench/run.py`) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"]
        for section, rows in self.rows.items():
            md.append(f"\n## {section}\n")
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
        path = os.path.join(ROOT, "bench", "results.md")
        with open(path, "w") as f:
            f.write("\n".join(md) + "\n")
        with open(os.path.join(ROOT, "bench", "results.json"), "w") as f:
            out = {s: [[n, {k: v for k, v in c.items() if k != "raw"}] for n, c in rows]
                   for s, rows in self.rows.items()}
            out["_commands"] = self.commands
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
        png = os.path.join(ROOT, "bench", "results.png")
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
    os.makedirs(PEERS, exist_ok=True)
    src = os.path.join(ROOT, "bench", "peers")
    for name, libs in (("epoll_echo", []), ("udp_echo", []), ("uv_echo", ["-luv"])):
        subprocess.run(["cc", "-O2", "-o", os.path.join(PEERS, name), os.path.join(src, name + ".c")] + libs,
                       check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 run of 2 s per cell")
    ap.add_argument("--only", default="", help="run cells whose name contains this")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--idle", type=int, default=19000)
    a = ap.parse_args()
    if a.quick:
        a.repeat, a.duration, a.idle = 1, 2, 2000
    if os.cpu_count() < 2:
        log("need 2 CPUs to pin server and load apart")
        return 1
    build_peers()
    s = Suite(a)
    for part in (s.models, s.peers, s.udp, s.bulk, s.http, s.idle):
        try:
            part()
        except Exception as e:  # one broken part must not lose the others' results
            log(f"!! {part.__name__}: {e}")
    s.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
