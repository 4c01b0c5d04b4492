"""Helpers of the relay tests (test_relay.py, test_relay_udp.py): `sockit
relay` as a harness Server, a TCP target in the test process, the -v line."""

import os
import socket
import subprocess
import threading

from harness import Server, Skip, require, run, tempdir
import harness

MODELS = ["epoll", "fork"]

# relay's options that take a value, beyond serve's.
RELAY_VALUE_OPTS = harness.SERVE_VALUE_OPTS | {"-w", "--connect-timeout", "--send-proxy",
                                               "--linger"}


def relay_words(args):
    words, i = [], 0
    while i < len(args):
        if args[i] in RELAY_VALUE_OPTS:
            i += 2
            continue
        if not args[i].startswith("-"):
            words.append(args[i])
        i += 1
    return words


class Relay(Server):
    """`sockit relay ARGS...` (wrap: a command to run it under, e.g.
    unshare), ready when its listening line appeared; stopped and checked as
    a Server."""

    def __init__(self, args, wrap=None, ready_timeout=10, expect_exit=0):
        self.args = list(args)
        self.expect_exit = expect_exit
        self.cmd = list(wrap or []) + [harness.SOCKIT, "relay"] + self.args
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        harness._servers.append(self)
        harness._procs.append(self.proc)
        self.pid = self.proc.pid
        self._out = harness._Drain(self.proc.stdout)
        self._err = harness._Drain(self.proc.stderr)
        self.addresses = []
        self.returncode = None
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, timeout):
        words = relay_words(self.args)
        saved = self.args
        # serve's readiness rule, for the one listening address
        self.args = (["-v"] if "-v" in saved else []) + ["relay", words[0]]
        try:
            super()._wait_ready(timeout)
        finally:
            self.args = saved


def relay(args, model=None, wrap=None, **kw):
    """Start `sockit relay [--model M] ARGS`."""
    if model:
        args = ["--model", model] + list(args)
    return Relay(args, wrap=wrap, **kw)


def connect(port, host="127.0.0.1", src=None, timeout=10):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    return s


def relay_line(r, needle, timeout=5):
    """Wait for the relay's -v line holding needle and return it."""
    r.wait_stderr(needle, timeout)
    for line in r.stderr_text().splitlines():
        if line.startswith("sockit: relay ") and needle in line:
            return line
    raise AssertionError("no %r line in %r" % (needle, r.stderr_text()[-800:]))


class Target:
    """A TCP target in this process: accepts one connection and runs fn."""

    def __init__(self, fn, host="127.0.0.1", family=socket.AF_INET):
        self.ls = socket.socket(family, socket.SOCK_STREAM)
        self.ls.bind((host, 0))
        self.ls.listen(8)
        self.ls.settimeout(20)
        self.port = self.ls.getsockname()[1]
        self.result = None
        self.error = None
        self.fn = fn
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            s, _ = self.ls.accept()
            s.settimeout(20)
            with s:
                self.result = self.fn(s)
        except Exception as e:  # reported by join()
            self.error = e

    def join(self, timeout=30):
        self.t.join(timeout)
        self.ls.close()
        assert not self.t.is_alive(), "target still running"
        if self.error:
            raise self.error
        return self.result


class FakeDNS:
    """A name server on 127.0.0.77:53 (UDP) for one name: it answers A
    queries with 127.0.0.1 and others with no record, or, once `silent` is
    set, answers nothing at all (a name server gone away)."""

    def __init__(self, name, addr="127.0.0.77"):
        self.name = name.lower().rstrip(".")
        self.silent = False
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.sock.settimeout(0.2)
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            if self.silent or len(q) < 17:
                continue
            # The question: labels up to a zero byte, then QTYPE and QCLASS.
            i, labels = 12, []
            while i < len(q) and q[i] != 0:
                labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
                i += 1 + q[i]
            qend = i + 5
            qtype = int.from_bytes(q[i + 1:i + 3], "big")
            known = ".".join(labels).lower() == self.name
            rcode = 0 if known else 3  # NXDOMAIN for any other name
            answer = b""
            if known and qtype == 1:
                answer = (b"\xc0\x0c" + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") +
                          (1).to_bytes(4, "big") + (4).to_bytes(2, "big") +
                          socket.inet_aton("127.0.0.1"))
            head = (q[:2] + bytes([0x81, 0x80 | rcode]) + (1).to_bytes(2, "big") +
                    (1 if answer else 0).to_bytes(2, "big") + b"\0\0\0\0")
            self.sock.sendto(head + q[12:qend] + answer, peer)

    def close(self):
        self.done = True
        self.sock.close()
        self.thread.join(2)


def fake_dns_namespace(name):
    """A FakeDNS for name, and the command prefix that runs a program with it
    as its only name server (a resolv.conf and a hosts file mounted over
    /etc's in a mount namespace of its own; timeout 4 s, one attempt).
    Skips where there is no such namespace or port 53 is taken."""
    require("unshare")
    d = tempdir()
    conf = os.path.join(d, "resolv.conf")
    with open(conf, "w") as f:
        f.write("nameserver 127.0.0.77\noptions timeout:4 attempts:1\n")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
    ns = ["unshare", "-m", "--propagation", "private", "sh", "-c",
          'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && '
          'shift && exec "$@"', conf, hosts]
    try:
        dns = FakeDNS(name)
    except OSError as e:
        raise Skip("cannot listen on 127.0.0.77:53: %s" % e)
    probe = run(ns + ["getent", "ahostsv4", name], check_san=False, timeout=15)
    if probe.returncode != 0 or "127.0.0.1" not in probe.out:
        dns.close()
        raise Skip("no private mount namespace, or the resolver does not ask "
                   "127.0.0.77: %s" % (probe.err.strip() or probe.out.strip()))
    return dns, ns
