"""make bench's harness (bench/measure.py, bench/cells.py): its pure parts
(parsing `strace -c`, medians, which side saturated, echoload's result line,
the interleaving of sides, skipping a missing peer) and one real strace pass
over a sockit server. Nothing here measures speed.
"""

import os
import shutil
import socket
import subprocess
import sys

from harness import SOCKIT, Skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import cells  # noqa: E402
import measure  # noqa: E402

SERIAL = True  # run alone (run.py -j): the benchmark harness at full speed

# strace 6.1 (Debian 12): the errors column is empty when there were none,
# and the total line has a usecs/call column
STRACE_61 = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 52.10    0.001042           2       400           sendto
 40.00    0.000800           1       401         1 recvfrom
  7.90    0.000158          15        10         2 epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.002000           2       811         3 total
"""

# older strace: no usecs/call on the total line; -f on a mixed process can
# print a second table (another personality) that adds up
STRACE_OLD = """\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
100.00    0.000010           1        10           read
------ ----------- ----------- --------- --------- ----------------
100.00    0.000010                    10           total
System call usage summary for 32 bit mode:
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
100.00    0.000001           0         5         5 read
------ ----------- ----------- --------- --------- ----------------
100.00    0.000001                     5         5 total
"""


def test_parse_strace_counts_calls_not_errors():
    calls = measure.parse_strace(STRACE_61)
    assert calls == {"sendto": 400, "recvfrom": 401, "epoll_wait": 10, "total": 811}, calls


def test_parse_strace_adds_tables_and_ignores_the_total_line():
    calls = measure.parse_strace(STRACE_OLD)
    assert calls == {"read": 15, "total": 15}, calls


def test_parse_strace_of_nothing_is_empty():
    assert measure.parse_strace("") == {}
    assert measure.parse_strace("strace: Process 12 attached\n+++ exited with 0 +++\n") == {}


def test_median_skips_missing_values():
    assert measure.median([3, None, 1, 2]) == 2
    assert measure.median([4, 1]) == 2.5
    assert measure.median([None]) is None
    assert measure.median(x for x in []) is None


def test_saturation_names_the_busy_side():
    assert measure.saturation(0.99, 0.40) == "server"
    assert measure.saturation(0.50, 0.95) == "load"
    assert measure.saturation(0.92, 0.97) == "both"
    assert measure.saturation(0.60, 0.70) == "neither"
    assert measure.saturation(0.90, 0.89) == "server"  # the threshold itself counts
    assert measure.saturation(None, 0.95) == "load"
    assert measure.saturation(0.5, 0.5, threshold=0.5) == "both"


def test_kv_line_reads_echoloads_result():
    out = ("ready established=50 errors=0 setup_s=0.01\n"
           "conns=50 size=64 rtt_per_s=1000.0 errors=2 mode=tcp completed=3000 secs=3.000\n")
    kv = measure.kv_line(out)
    assert kv["completed"] == "3000" and kv["errors"] == "2" and kv["mode"] == "tcp", kv
    try:
        measure.kv_line("ready established=5\n")
    except RuntimeError:
        pass
    else:
        raise AssertionError("a ready line alone is not a result")


class FakeServer:
    def __init__(self, log, name):
        self.log, self.name, self.pid, self.port = log, name, os.getpid(), 0

    def stop(self):
        self.log.append("stop " + self.name)


def fake_side(log, name, ops, busy):
    def start(strace_out):
        log.append("start " + name)
        if strace_out:
            with open(strace_out, "w") as f:
                f.write(STRACE_61)
        return FakeServer(log, name)

    def run(srv, traced):
        return {"ops": ops, "rate": ops / 2.0, "errors": 0, "wall": 2.0, "server_busy": busy,
                "load_busy": 1.9, "ctx": ops // 10, "proc": busy / 2}
    return cells.Side(name, start, run)


def test_run_row_interleaves_sides_and_reports_skips():
    log = []

    def missing():
        raise measure.Skip("frobd not installed")
    row = cells.Row("t", "a test row", [
        fake_side(log, "A", 1000, 1.0),
        cells.Side("peer", None, None, missing),
        fake_side(log, "B", 100, 1.0)], unit="op")
    res = cells.run_row(row, 3, with_strace=True)
    starts = [x for x in log if x.startswith("start")]
    # three interleaved runs, then one strace pass per side
    assert starts == ["start A", "start B"] * 4, starts
    assert log.count("stop A") == 4 and log.count("stop B") == 4, log
    assert res["skipped"] == [("peer", "frobd not installed")], res["skipped"]
    a, b = res["cells"]
    assert a["side"] == "A" and a["runs"] == 3 and a["cpu_op"] == 1000.0, a   # 1 s / 1000 ops in us
    assert b["cpu_op"] == 10000.0, b
    assert a["saturated"] == "load", a  # load 95% of the window, server 50%
    assert abs(a["sys_op"] - 811 / 1000) < 1e-9, a
    assert a["top_sys"][0] == ("recvfrom", 0.401), a["top_sys"]
    md = cells.markdown("t", res)
    assert "| A | 500.0 | 1,000.00 | 1.00x |" in md, md
    assert "| B | 50.0 | 10,000.00 | 10.00x |" in md, md
    assert "- peer: skipped (frobd not installed)" in md, md


def test_run_row_reports_a_side_that_fails():
    log = []
    broken = fake_side(log, "broken", 1, 1.0)

    def fail(srv, traced):
        raise RuntimeError("exit 1: address in use")
    broken.run = fail
    res = cells.run_row(cells.Row("t", "t", [broken, fake_side(log, "ok", 10, 1.0)]), 2, with_strace=False)
    assert [c["side"] for c in res["cells"]] == ["ok"], res
    assert res["skipped"] == [("broken", "failed: exit 1: address in use")], res["skipped"]
    assert log.count("start broken") == 1, log  # not retried after failing its first run


def test_strace_pass_on_a_real_server():
    """The untimed pass: a sockit echo server under strace -c -f, one client,
    then stopped; the summary names the calls an echo makes."""
    if shutil.which("strace") is None:
        raise Skip("strace not installed")
    if not os.path.exists("/proc/self/task"):
        raise Skip("no /proc")
    if subprocess.run(["strace", "-f", "-o", "/dev/null", "true"], capture_output=True,
                      timeout=10).returncode != 0:
        raise Skip("strace cannot trace here (ptrace not permitted)")
    out = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sockit-bench-strace-%d" % os.getpid())
    srv = measure.Server([SOCKIT, "serve", "echo", "-q", "127.0.0.1:0"], strace_out=out, cpu=0)
    try:
        pids = measure.tree(srv.pid)
        assert len(pids) >= 2, pids  # strace and the server it runs
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
            c.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                chunk = c.recv(64)
                assert chunk, "server closed early"
                got += chunk
            assert got == b"x" * 64
        assert measure.ctx_switches(srv.pid) > 0
        srv.stop()
        with open(out) as f:
            calls = measure.parse_strace(f.read())
    finally:
        srv.stop()
        if os.path.exists(out):
            os.unlink(out)
    assert calls.get("accept4", 0) + calls.get("accept", 0) >= 1, calls
    assert calls["total"] >= 10, calls


def test_verdict_checks_the_issues_goals():
    sockit = {"cpu_op": 4.0, "rate": 130.0, "extra": {"RSS/conn (KiB)": 20.0}}
    peer = {"cpu_op": 5.0, "rate": 100.0, "extra": {"RSS/conn (KiB)": 25.0}}
    assert cells.verdict(sockit, peer, [[("cpu", "<=", 0.9)]]) == ("met", {"cpu": 0.8})
    assert cells.verdict(sockit, peer, [[("cpu", "<=", 0.75)]])[0] == "missed"
    # any alternative will do; within one, every condition must hold
    assert cells.verdict(sockit, peer, [[("rate", ">=", 1.3)], [("cpu", "<=", 0.75)]])[0] == "met"
    assert cells.verdict(sockit, peer, [[("rate", ">=", 1.3), ("cpu", "<=", 0.75)]])[0] == "missed"
    assert cells.verdict(sockit, peer, [[("RSS/conn (KiB)", "<=", 1.0)]])[0] == "met"
    assert cells.verdict(sockit, {"cpu_op": None}, [[("cpu", "<=", 1.0)]])[0] == "n/a"
    res = {"cells": [dict(sockit, side="s"), dict(peer, side="p")],
           "targets": [("s", "p", [[("cpu", "<=", 0.9)]]), ("s", "gone", [[("cpu", "<=", 1)]])]}
    table = cells.summary({"r": res}, ["r"])
    assert "| r | s | p | cpu 0.80x | cpu <= 0.9x | met |" in table, table
    assert "| r | s | gone | | cpu <= 1x | not run |" in table, table
