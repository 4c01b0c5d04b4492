"""The measurement method of ../shared/bench/README.md, for bench/run.py's rows.

The server under test is pinned to CPU 0 and the load to CPU 1. A run's server
CPU is CPU 0's busy time in /proc/stat over the measured window (softirq work
included, which the process's own utime+stime misses), its load CPU is CPU 1's:
a side whose CPU is near 100% of the window is the one that saturated. Context
switches are read from /proc/PID/task/*/status of the server and its children
before and after the window; system calls come from a separate, shorter pass
under `strace -c -f` (strace slows every call, so never in a timed run). The
sides of a row run interleaved (A B C A B C ...) so drift in the machine's load
hits each alike; a cell is the median of its runs.

The pure parts (median, parse_strace, saturation) are tested by
tests/integration/test_bench_harness.py.
"""
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SERVER_CPU, LOAD_CPU = 0, 1
CLK = os.sysconf("SC_CLK_TCK")
SATURATED = 0.9  # a CPU busy this fraction of the window is taken as saturated


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Skip(Exception):
    """A side (or a row) that cannot run here: a peer not installed, a
    subcommand not built. The message is printed, and the run goes on."""


# ---- pure parts ----

def median(values):
    """Median of the values that are not None; None when there are none."""
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def parse_strace(text):
    """`strace -c` summary -> {syscall: calls}, with "total" their sum.
    Columns: % time, seconds, usecs/call, calls, errors (empty when 0),
    syscall. Several tables (strace -f may print one per personality) add up.
    The printed total line is not trusted: strace versions differ in whether
    it has a usecs/call column, so "total" is the sum of the rows."""
    calls = {}
    for line in text.splitlines():
        tok = line.split()
        if len(tok) < 5 or tok[-1] == "total" or not all(re.fullmatch(r"[\d.]+", t) for t in tok[:2]):
            continue
        nums = tok[2:-1]  # usecs/call calls [errors]
        if not 2 <= len(nums) <= 3 or not all(re.fullmatch(r"\d+", n) for n in nums):
            continue
        calls[tok[-1]] = calls.get(tok[-1], 0) + int(nums[1])
    if calls:
        calls["total"] = sum(calls.values())
    return calls


def saturation(server_frac, load_frac, threshold=SATURATED):
    """Which side was the bottleneck, from the busy fractions of the server's
    CPU and the load's CPU over the window: "server", "load", "both", or
    "neither" (latency-bound: both waited on each other)."""
    s = server_frac is not None and server_frac >= threshold
    lo = load_frac is not None and load_frac >= threshold
    if s and lo:
        return "both"
    return "server" if s else "load" if lo else "neither"


def kv_line(text):
    """echoload's result line (key=value ...) as a dict of strings."""
    lines = [ln for ln in text.splitlines() if "=" in ln and not ln.startswith("ready")]
    if not lines:
        raise RuntimeError(f"no result line in {text[-300:]!r}")
    return dict(x.split("=", 1) for x in lines[-1].split() if "=" in x)


# ---- /proc ----

def cpu_busy(cpu):
    """Busy seconds of one CPU since boot (all but idle and iowait)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v) - v[3] - v[4]) / CLK
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def tree(pid):
    """pid and its live descendants (fork/prefork workers, nginx workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def proc_cpu(pid):
    """utime+stime seconds of pid's live tree (its threads included) and of
    the children it has reaped. Unlike CPU 0's busy time this misses softirq
    work, but other tenants of the machine do not count in it."""
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / CLK
        except OSError:
            pass
    return total


def ctx_switches(pid):
    """Voluntary + nonvoluntary context switches of every thread of pid and
    its live descendants (threads that exited are lost: read it while they run)."""
    total = 0
    for p in tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def thread_cpu(pid):
    """{tid: utime+stime seconds} of every thread of pid (the loops of --workers)."""
    out = {}
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(t)] = (int(fields[11]) + int(fields[12])) / CLK
    except OSError:
        pass
    return out


def rss_bytes(pid):
    """Resident memory of pid and its descendants."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def nofile(n):
    """preexec_fn raising RLIMIT_NOFILE to n (within the hard limit)."""
    def f():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n if hard == resource.RLIM_INFINITY else min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    return f


def need(*programs):
    """Skip unless every program is installed (a path or a name on PATH)."""
    for p in programs:
        if not (os.path.exists(p) if "/" in p else shutil.which(p)):
            raise Skip(f"{os.path.basename(p)} not installed")


class Server:
    """A server pinned to `cpu` in its own process group. The port is given,
    or read from the first line of its stderr/stdout ("...:PORT" or "PORT");
    a given port is polled until it accepts (unless `probe` is False: a
    one-shot server would take the probe for its client). `strace_out` runs
    it under `strace -c -f -o FILE` (the untimed pass)."""

    def __init__(self, argv, port=None, port_from="stderr", cpu=SERVER_CPU, strace_out=None,
                 preexec=None, cwd=None, env=None, probe=True):
        pre = ["taskset", "-c", str(cpu)]
        if strace_out:
            pre += ["strace", "-c", "-f", "-o", strace_out]
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(pre + argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if port is None and port_from == "stdout"
                                     else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE if port is None and port_from == "stderr"
                                     else self.err,
                                     start_new_session=True, preexec_fn=preexec, cwd=cwd, env=env)
        self.strace_out = strace_out
        self.port, self.drained = port, None
        if port is None:
            stream = self.proc.stderr if port_from == "stderr" else self.proc.stdout
            line = stream.readline().decode()
            m = re.search(r":(\d+)/?\s*$", line) or re.search(r"^(\d+)\s*$", line)
            if not m:
                self.stop()
                raise RuntimeError(f"{argv[0]}: no port in {line!r}")
            self.port = int(m.group(1))
            # keep draining it: a server that goes on writing there must not block on a full pipe
            self.drained = stream
            threading.Thread(target=self._drain, args=(stream,), daemon=True).start()
        elif probe:
            self.wait_port()
        else:
            time.sleep(0.5)  # one-shot servers (iperf3 -1, socat) would take a probe for the client
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError(f"{argv[0]} exited {self.proc.returncode}: {self.err.read().decode()[-300:]}")
        time.sleep(0.1)

    @staticmethod
    def _drain(stream):
        try:
            while stream.read1(65536):
                pass
        except (OSError, ValueError):  # closed by stop()
            pass

    def wait_port(self, limit=10.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError(f"exited {self.proc.returncode}: {self.err.read().decode()[-300:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nothing accepts on port {self.port}")

    @property
    def pid(self):
        """The server itself (under strace: strace, whose tree holds it)."""
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        for s in (self.proc.stdout, self.proc.stderr):
            if s and s is not self.drained:  # the draining thread ends at EOF and closes nothing
                s.close()
        self.err.close()


class Group:
    """Several servers started in order (e.g. a sink and the relay in front
    of it), stopped in reverse; `main` is the one measured."""

    def __init__(self, servers, main):
        self.servers, self.main = servers, main
        self.port, self.pid = main.port, main.pid

    def stop(self):
        for s in reversed(self.servers):
            s.stop()


def measured(argv, warmup, timeout, server_pid, cpu=LOAD_CPU, stdin=None):
    """Run the load pinned to `cpu`; measure from `warmup` s after its start
    to its end. Returns the window: stdout, wall s, busy s of the server's and
    the load's CPUs, the server's context switches and process CPU s."""
    p = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdin=stdin or subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if warmup:
            time.sleep(warmup)
        b0, l0, t0 = cpu_busy(SERVER_CPU), cpu_busy(cpu), time.monotonic()
        c0, p0 = ctx_switches(server_pid), proc_cpu(server_pid)
        out, err = p.communicate(timeout=timeout)
        # the server's own figures first: one that exits with its load (iperf3 -1) still counts
        c1, p1 = ctx_switches(server_pid), proc_cpu(server_pid)
        b1, l1, t1 = cpu_busy(SERVER_CPU), cpu_busy(cpu), time.monotonic()
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise RuntimeError(f"{argv[0]}: no result within {timeout} s")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: exit {p.returncode}: {err.decode()[-300:]}")
    wall = max(t1 - t0, 1e-6)
    return {"out": out.decode(), "wall": wall, "server_busy": b1 - b0, "load_busy": l1 - l0,
            "ctx": max(c1 - c0, 0), "proc": max(p1 - p0, 0.0)}
