#!/usr/bin/env python3
"""rolling.py - restarts under load, run inside a network namespace of its own.

    unshare --net python3 rolling.py SOCKIT SCENARIO

The namespace (made by the caller, `unshare --net`) has only its own
loopback, so its ports collide with nothing and the kernel settings set here
(net.ipv4.tcp_migrate_req) are the namespace's, not the machine's.

Scenarios, each under a steady load of HTTP requests (keep-alive clients, and
clients that open a new connection per request) for a bounded time:
  kill     HAProxy in front of three `sockit serve http` backends; one backend
           is stopped (SIGTERM) and started again, three times.
  upgrade  the same, one backend upgraded ten times with SIGUSR2.
  reuseport three `sockit serve http --reuseport` processes on one port, no
           load balancer; each is restarted in turn (stop, then a new one),
           twice round. tcp_migrate_req is 1 here, as the README tells
           administrators to set it.

Prints one JSON object: requests made, failures (with the first few errors).
Every process it starts is stopped before it exits; every wait is bounded.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOCKIT = sys.argv[1]
SCENARIO = sys.argv[2]
TMP = tempfile.mkdtemp(prefix="sockit-rolling-")
BODY = b"<h1>rolling</h1>\n" * 8
procs = []


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=10)


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def start_backend(port, extra=()):
    err = open(os.path.join(TMP, "backend-%d.err" % port), "ab")
    p = subprocess.Popen([SOCKIT, "serve", "http", "--root", TMP, "--grace", "5", *extra,
                          "tcp://127.0.0.1:%d" % port],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


HAPROXY_CFG = """
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend web
    bind 127.0.0.1:{front}
    default_backend b
backend b
    balance roundrobin
    option httpchk GET /
    http-check expect status 200
    default-server check inter 100 fall 1 rise 2
{servers}
"""


def start_haproxy(front, ports):
    servers = "\n".join("    server s%d 127.0.0.1:%d" % (i, p) for i, p in enumerate(ports))
    cfg = os.path.join(TMP, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(front=front, servers=servers))
    p = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(TMP, "haproxy.err"), "ab"))
    procs.append(p)
    return p


class Load:
    """Threads making GET / until stopped: half keep-alive, half a new
    connection per request. Every failure is counted with its reason."""

    def __init__(self, port, threads=4):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failed = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i % 2 == 0,), daemon=True)
                        for i in range(threads)]

    def one(self, conn, keep):
        conn.request("GET", "/", headers={} if keep else {"Connection": "close"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or body != BODY:
            raise RuntimeError("status %d, %d bytes" % (r.status, len(body)))

    def run(self, keep):
        conn = None
        while not self.stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.one(conn, keep)
                with self.lock:
                    self.ok += 1
                if not keep:
                    conn.close()
                    conn = None
            except Exception as e:  # every failure counts, whatever it is
                with self.lock:
                    self.failed.append("%s: %s" % (type(e).__name__, e))
                conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def upgraded_pid(errpath, n):
    with open(errpath, "rb") as f:
        found = re.findall(rb"SIGUSR2: process (\d+) serves now", f.read())
    return int(found[n - 1]) if len(found) >= n else None


def wait_gone(pid, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # exited; a reaper elsewhere owes the wait
        except OSError:
            return True
        try:  # our own child: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def scenario_haproxy(kind):
    ports = [8081, 8082, 8083]
    backends = [start_backend(p) for p in ports]
    assert all(wait_port(p) for p in ports)
    start_haproxy(8080, ports)
    assert wait_port(8080)
    time.sleep(0.5)  # the first health checks
    with Load(8080) as load:
        time.sleep(0.5)
        if kind == "kill":
            for _ in range(3):
                stop(backends[0])
                time.sleep(0.5)
                backends[0] = start_backend(ports[0])
                assert wait_port(ports[0])
                time.sleep(0.7)  # back in the pool (rise 2 at 100 ms)
        else:
            errpath = os.path.join(TMP, "backend-%d.err" % ports[0])
            pid = backends[0].pid
            for n in range(1, 11):
                os.kill(pid, signal.SIGUSR2)
                end = time.monotonic() + 10
                new = None
                while new is None and time.monotonic() < end:
                    new = upgraded_pid(errpath, n)
                    time.sleep(0.02)
                assert new, "upgrade %d did not happen" % n
                assert wait_gone(pid), "old process %d still there" % pid
                pid = new
                time.sleep(0.2)
            procs.append(pid)
        time.sleep(0.5)
    return load


def scenario_reuseport():
    with open("/proc/sys/net/ipv4/tcp_migrate_req", "w") as f:
        f.write("1")  # this namespace's setting only
    port = 8090
    backends = [start_backend(port, ["--reuseport"]) for _ in range(3)]
    assert wait_port(port)
    time.sleep(0.3)
    with Load(port) as load:
        time.sleep(0.5)
        for _ in range(2):
            for i in range(3):
                new = start_backend(port, ["--reuseport"])
                time.sleep(0.3)  # the new one listens before the old one goes
                stop(backends[i])
                backends[i] = new
                time.sleep(0.3)
        time.sleep(0.3)
    return load


def main():
    with open(os.path.join(TMP, "index.html"), "wb") as f:
        f.write(BODY)
    sh("ip", "link", "set", "lo", "up")
    try:
        load = scenario_reuseport() if SCENARIO == "reuseport" else scenario_haproxy(SCENARIO)
        print(json.dumps({"ok": load.ok, "failed": len(load.failed),
                          "errors": load.failed[:5]}))
    finally:
        for p in procs:
            if isinstance(p, int):
                try:
                    os.kill(p, signal.SIGTERM)
                    wait_gone(p, 10)
                except ProcessLookupError:
                    pass
            else:
                stop(p)
        for name in os.listdir(TMP):
            if name.endswith(".err"):
                with open(os.path.join(TMP, name), "rb") as f:
                    t = f.read().decode("utf-8", "replace")
                if "Sanitizer" in t or "runtime error" in t:
                    print(json.dumps({"sanitizer": name, "text": t[-2000:]}))
        subprocess.run(["rm", "-rf", TMP], timeout=10)


if __name__ == "__main__":
    main()
