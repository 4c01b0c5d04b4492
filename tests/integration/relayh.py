"""Helpers of the relay tests (test_relay.py, test_relay_udp.py): `sockit
relay` as a harness Server, a TCP target in the test process, the -v line."""

import socket
import subprocess
import threading

from harness import Server
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
