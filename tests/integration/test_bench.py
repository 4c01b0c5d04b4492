"""`sockit bench`: every mode for about a second against the matching sockit
service, with --json; replies that are wrong must be counted as errors
(servers here that corrupt every tenth reply); targets that are not loopback
are refused. No assertion depends on how fast anything is.
"""

import json
import os
import socket
import threading

from harness import Server, free_port, run_client, tempdir, unique_name

SERIAL = True  # run alone (run.py -j): the load generator at full speed

RUN = ["-d", "1", "--warmup", "0.2", "--json", "-q"]
ERROR_KINDS = {"connect", "read", "write", "timeout", "mismatch",
               "http_status", "closed", "lost"}


def bench(args, timeout=30):
    """Run `sockit bench ARGS` with RUN; returns (Result, parsed JSON)."""
    r = run_client(["bench"] + RUN + list(args), timeout=timeout)
    assert r.returncode == 0, "bench failed: %r" % r
    lines = r.out.splitlines()
    assert len(lines) == 1, "not one JSON line: %r" % r.out
    return r, json.loads(lines[0])


def consistent(d, mode, errors_ok=False):
    """The report adds up: ops, rate, percentiles in order, error kinds."""
    assert d["mode"] == mode, d
    assert d["ops"] > 0, d
    assert set(d["errors"]) == ERROR_KINDS, d["errors"]
    if not errors_ok:
        assert sum(d["errors"].values()) == 0, d["errors"]
    lat = d["latency_us"]
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] \
        <= lat["max"], lat
    assert d["duration_s"] > 0
    assert abs(d["rate"] * d["duration_s"] - d["ops"]) <= 1 + d["ops"] * 1e-3
    assert d["throughput_bytes_s"] > 0, d
    assert d["connects"] >= 1, d


# -- every mode against sockit's own services --------------------------------

def test_echo_tcp_pipelined():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["-c", "8", "--pipeline", "4", "-s", "100",
                      "127.0.0.1:%d" % srv.port])
        consistent(d, "echo")
        assert d["connections"] == 8 and d["pipeline"] == 4
        assert d["size"] == 100
        # Every op is one whole, checked 100-byte echo.
        assert abs(d["throughput_bytes_s"] - 100 * d["rate"]) <= 100


def test_echo_unix_and_ipv6():
    path = os.path.join(tempdir(), "e.sock")
    with Server(["echo", "-q", "unix:" + path, "tcp://[::1]:0"]) as srv:
        _, d = bench(["-c", "4", "unix:" + path])
        consistent(d, "echo")
        assert d["target"] == "unix:" + path
        _, d = bench(["-c", "4", "-s", "3000", "[::1]:%d" % srv.port])
        consistent(d, "echo")


def test_conn():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "conn", "-c", "4",
                      "127.0.0.1:%d" % srv.port])
        consistent(d, "conn")
        # One connection per op (the warmup's connections come on top).
        assert d["connects"] >= d["ops"]


def test_bulk_to_discard():
    with Server(["discard", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "bulk", "-c", "2", "-s", "64k",
                      "127.0.0.1:%d" % srv.port])
        consistent(d, "bulk")
        assert d["size"] == 65536


def test_bulk_check_echo():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "bulk", "--check-echo", "-c", "2",
                      "127.0.0.1:%d" % srv.port])
        consistent(d, "bulk")


def test_udp():
    with Server(["echo", "-q", "udp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "udp", "-c", "4",
                      "udp://127.0.0.1:%d" % srv.port])
        consistent(d, "udp")


def test_unixgram():
    name = unique_name()
    with Server(["echo", "-q", "unixgram:@" + name]):
        _, d = bench(["--mode", "udp", "-c", "2", "unixgram:@" + name])
        consistent(d, "udp")


def test_idle_with_server_pid():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "idle", "-c", "40", "--server-pid",
                      str(srv.pid), "127.0.0.1:%d" % srv.port])
        consistent(d, "idle")
        assert d["ops"] == 40 and d["held"] == 40, d
        assert d["server_pids"] == [srv.pid]
        assert d["rss_before_kb"] > 0 and d["rss_after_kb"] > 0, d
        assert isinstance(d["rss_per_conn_bytes"], int), d


def test_idle_finds_the_server():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        _, d = bench(["--mode", "idle", "-c", "10",
                      "127.0.0.1:%d" % srv.port])
        consistent(d, "idle")
        assert d["server_pids"] == [srv.pid], d
        assert d["rss_after_kb"] is not None


# -- http, against a small server written here --------------------------------

class HttpServer:
    """Keep-alive HTTP/1.1 on 127.0.0.1: 200 for /, 404 for anything else.
    The head and the body go out in separate writes, so that the client
    sees responses split across reads."""

    BODY = b"hello, bench\n"

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        c.settimeout(5)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = c.recv(4096)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ")[1]
                status = b"200 OK" if path == b"/" else b"404 Not Found"
                c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d"
                          b"\r\n\r\n" % len(self.BODY))
                c.sendall(self.BODY)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(2)


def test_http():
    hs = HttpServer()
    try:
        _, d = bench(["--mode", "http", "-c", "4", "127.0.0.1:%d" % hs.port])
        consistent(d, "http")
        assert d["status"]["2xx"] == d["ops"], d
        _, d = bench(["--mode", "http", "-c", "2", "--pipeline", "3",
                      "127.0.0.1:%d" % hs.port])
        consistent(d, "http")
        # Non-2xx responses are errors, never successes.
        _, d = bench(["--mode", "http", "-c", "2", "--path", "/missing",
                      "127.0.0.1:%d" % hs.port])
        assert d["ops"] == 0, d
        assert d["errors"]["http_status"] > 0, d
        assert d["status"]["4xx"] > 0 and d["status"]["2xx"] == 0, d
    finally:
        hs.close()


# -- wrong answers are errors -------------------------------------------------

class CorruptingEcho:
    """An echo server (TCP and UDP on 127.0.0.1) that flips a byte in every
    tenth reply (counted over all connections)."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.replies = 0
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._udp, daemon=True)]
        for t in self.threads:
            t.start()

    def corrupt(self, data):
        with self.lock:
            self.replies += 1
            n = self.replies
        if n % 10 == 0:
            data = bytearray(data)
            data[len(data) // 2] ^= 0x01
            data = bytes(data)
        return data

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        c.settimeout(5)
        try:
            while not self.stop.is_set():
                data = c.recv(65536)
                if not data:
                    return
                c.sendall(self.corrupt(data))
        except OSError:
            pass
        finally:
            c.close()

    def _udp(self):
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp.sendto(self.corrupt(data), peer)

    def close(self):
        self.stop.set()
        self.tcp.close()
        self.udp.close()
        for t in self.threads:
            t.join(2)


def test_corrupted_echo_is_mismatch():
    srv = CorruptingEcho()
    try:
        port = srv.tcp.getsockname()[1]
        _, d = bench(["-c", "2", "--warmup", "0",
                      "127.0.0.1:%d" % port])
        consistent(d, "echo", errors_ok=True)
        errs = d["errors"]
        assert errs["mismatch"] > 0, errs
        assert sum(errs.values()) == errs["mismatch"], errs
        # One message per read here, so about one reply in ten is wrong;
        # none of them was counted as a success.
        share = errs["mismatch"] / float(errs["mismatch"] + d["ops"])
        assert 0.05 < share < 0.2, (share, d)
        _, d = bench(["--mode", "conn", "-c", "2", "127.0.0.1:%d" % port])
        assert d["errors"]["mismatch"] > 0, d
    finally:
        srv.close()


def test_corrupted_udp_is_mismatch():
    srv = CorruptingEcho()
    try:
        port = srv.udp.getsockname()[1]
        _, d = bench(["--mode", "udp", "-c", "2", "--warmup", "0",
                      "udp://127.0.0.1:%d" % port])
        consistent(d, "udp", errors_ok=True)
        assert d["errors"]["mismatch"] > 0, d
    finally:
        srv.close()


# -- the network rule, usage, nothing to connect to ---------------------------

def refused(args, *needles):
    r = run_client(["bench"] + list(args), timeout=10)
    assert r.returncode == 2, r
    assert r.stdout == b"", r
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: "), r
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_non_loopback_refused():
    for target in ["10.0.0.1:80", "192.0.2.7:7", "tcp://0.0.0.0:7",
                   "udp://198.51.100.1:7", "[2001:db8::1]:80",
                   "tcp6://[::ffff:10.1.2.3]:9"]:
        mode = ["--mode", "udp"] if target.startswith("udp") else []
        refused(mode + ["-d", "1", target], "refusing", "loopback")


def test_usage_errors():
    refused(["--mode", "nosuch", "127.0.0.1:9"], "unknown mode")
    refused(["-d", "3601", "127.0.0.1:9"], "-d")
    refused(["-d", "0", "127.0.0.1:9"], "-d")
    refused(["--warmup", "61", "127.0.0.1:9"], "--warmup")
    refused(["-c", "0", "127.0.0.1:9"], "-c")
    refused(["--bogus", "127.0.0.1:9"], "unknown option")
    refused(["--mode", "udp", "127.0.0.1:9"], "datagram address")
    refused(["udp://127.0.0.1:9"], "stream address")
    refused(["--pipeline", "2", "--mode", "conn", "127.0.0.1:9"], "--pipeline")
    refused(["--mode", "udp", "-s", "4", "udp://127.0.0.1:9"], "-s")
    refused([], "usage")


def test_nothing_listening_exits_1():
    s, port = free_port()
    try:
        r = run_client(["bench", "-d", "1", "127.0.0.1:%d" % port])
        assert r.returncode == 1, r
        assert "refused" in r.err, r
    finally:
        s.close()


# -- deadlines: servers that never answer, or hang up -------------------------

class QuietServer:
    """TCP and UDP on 127.0.0.1 that never answer. TCP connections are
    accepted and held without a reply (hangup=True: closed at once); UDP
    answers only bench's probe (connection id ffffffff) and drops the rest."""

    def __init__(self, hangup=False):
        self.hangup = hangup
        self.stop = threading.Event()
        self.held = []
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._udp, daemon=True)]
        for t in self.threads:
            t.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.hangup:
                c.close()
            else:
                self.held.append(c)

    def _udp(self):
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if data[:4] == b"\xff\xff\xff\xff":
                self.udp.sendto(data, peer)

    def close(self):
        self.stop.set()
        self.tcp.close()
        self.udp.close()
        for t in self.threads:
            t.join(2)
        for c in self.held:
            c.close()


def test_silent_server_times_out_and_reconnects():
    srv = QuietServer()
    try:
        port = srv.tcp.getsockname()[1]
        _, d = bench(["-c", "2", "--warmup", "0", "--timeout", "0.2",
                      "127.0.0.1:%d" % port])
        assert d["ops"] == 0, d
        errs = d["errors"]
        # Each connection times out, is reopened after a short delay, and
        # times out again: more than one timeout and one connect each.
        assert errs["timeout"] > 2, errs
        assert sum(errs.values()) == errs["timeout"], errs
        assert d["connects"] > 2, d
    finally:
        srv.close()


def test_hangup_server_reconnects():
    srv = QuietServer(hangup=True)
    try:
        port = srv.tcp.getsockname()[1]
        _, d = bench(["-c", "2", "--warmup", "0", "127.0.0.1:%d" % port])
        assert d["ops"] == 0, d
        errs = d["errors"]
        failed = errs["closed"] + errs["read"] + errs["write"]
        assert failed > 2 and sum(errs.values()) == failed, errs
        assert d["connects"] > 2, d
    finally:
        srv.close()


def test_udp_no_reply_is_lost():
    srv = QuietServer()
    try:
        port = srv.udp.getsockname()[1]
        _, d = bench(["--mode", "udp", "-c", "2", "--warmup", "0",
                      "udp://127.0.0.1:%d" % port])
        assert d["ops"] == 0, d
        errs = d["errors"]
        assert errs["lost"] > 2, errs  # one per --timeout (0.2 s) per socket
        assert sum(errs.values()) == errs["lost"], errs
    finally:
        srv.close()


def test_idle_check_times_out():
    srv = QuietServer()
    try:
        port = srv.tcp.getsockname()[1]
        _, d = bench(["--mode", "idle", "-c", "3", "-d", "0.5", "--timeout",
                      "0.3", "127.0.0.1:%d" % port])
        # All three were held, and none answered the check after the hold.
        assert d["held"] == 3, d
        assert d["ops"] == 0, d
        assert d["errors"]["timeout"] == 3, d["errors"]
        assert sum(d["errors"].values()) == 3, d["errors"]
    finally:
        srv.close()
