"""Helpers for the sockit integration tests (Python standard library only).

The tests drive the real program ($SOCKIT) and real clients (nc, ncat,
socat). Everything here is bounded in time, uses only 127.0.0.1, ::1, Unix
sockets and kernel-picked ports, and cleans up after itself:

  Server(args)        `$SOCKIT serve ARGS...` as a context manager; waits for
                      "sockit: listening on ADDRESS", then exposes .addresses,
                      .port, .stdout_text(), .stderr_text(), .stop().
  run_client(args)    `$SOCKIT ARGS...` to completion, with input, timeout.
  run(cmd)            any other command (nc, socat, ...), the same way.
  tempdir()           a short directory under /tmp (sun_path is 108 bytes).
  zombies(pid)        children of pid in state Z.
  fd_count(pid)       open descriptors of pid.
  read_http_response(rfile)  one HTTP/1.x response from a socket's
                      makefile("rb"), framed by Content-Length.

The runner (run.py) runs each test in its own process group and removes
$SKIT_TMP afterwards, so even a test killed by the watchdog leaves nothing.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKIT = os.environ.get("SOCKIT") or os.path.join(
    os.path.dirname(os.path.dirname(HERE)), "build", "sockit")

# Text that a sanitizer prints when it finds a bug; any of it fails the test.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: ThreadSanitizer",
                   "WARNING: ThreadSanitizer")

LISTENING = re.compile(r"^sockit: listening on (\S+)$")

# Options of `sockit serve` that take a value (to find SERVICE and ADDRESSes).
SERVE_VALUE_OPTS = {"--model", "--workers", "--max-conns", "--idle-timeout",
                    "--root", "--dir", "--grace", "--index", "--auth",
                    "--access-log", "--allow", "--deny", "--allow-file",
                    "--deny-file", "--max-per-source", "--rate", "--cert", "--key",
                    "--client-ca", "--alpn", "--tls-handshake-timeout",
                    "--idle-exit", "--log", "--proxy-from",
                    "--proxy-from-file", "--proxy-timeout", "--sh", "--env",
                    "--pass-env", "--timeout"}


class Skip(Exception):
    """Raised by a test that needs an external tool which is not installed."""


# Every server and process started by the current test, for the failure
# report and for the final cleanup (the runner calls cleanup()).
_servers = []
_procs = []
_tempdirs = []


def timeout(seconds):
    """Decorator: give a test its own watchdog timeout (default 30 s)."""
    def mark(func):
        func.timeout = seconds
        return func
    return mark


def require(*tools):
    """Skip the test unless every tool is on PATH."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise Skip("%s is not installed" % tool)


_model_ok = {}


def model_available(model):
    """(True, "") if `serve --model MODEL` can run here, else (False, why).

    Only --model uring can be missing: it is built only where liburing is
    installed, and runs only where the kernel lets io_uring be used (a
    start fails then with one line naming io_uring). Probed once per run.
    """
    if model != "uring":
        return True, ""
    if model not in _model_ok:
        why = ""
        r = subprocess.run([SOCKIT, "serve", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        if not re.search(rb"^\s+uring\s", r.stdout, re.M):
            why = "--model uring is not built here (no liburing)"
        else:
            p = subprocess.Popen([SOCKIT, "serve", "--model", "uring", "echo",
                                  "tcp://127.0.0.1:0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                # A start that fails exits at once; one that works is stopped.
                deadline = time.monotonic() + 0.5
                while p.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                p.terminate()
                _, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if b"io_uring" in err:
                why = "--model uring cannot run here: %s" % err.decode(
                    "utf-8", "replace").strip().splitlines()[-1]
        _model_ok[model] = why
    why = _model_ok[model]
    return why == "", why


def require_model(model):
    """Skip the test unless `--model MODEL` can run here (see model_available)."""
    ok, why = model_available(model)
    if not ok:
        raise Skip(why)


def _require_models_of(args):
    args = list(args)
    for i, a in enumerate(args[:-1]):
        if a == "--model":
            require_model(args[i + 1])


def sanitizer_report(text):
    """The sanitizer report in text (from its first line), or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            start = text.rfind("\n", 0, i) + 1
            return text[start:start + 2000]
    return None


def check_sanitizer(text, who):
    report = sanitizer_report(text)
    assert report is None, "sanitizer report from %s:\n%s" % (who, report)


def tempdir():
    """A new, short directory under $SKIT_TMP (or /tmp), removed at the end."""
    base = os.environ.get("SKIT_TMP", "/tmp")
    path = tempfile.mkdtemp(prefix="t", dir=base)
    _tempdirs.append(path)
    return path


def unique_name(prefix="skit"):
    """A name for an abstract Unix socket that no other run will use."""
    return "%s-%d-%s" % (prefix, os.getpid(), os.urandom(4).hex())


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A kernel-picked port with nothing listening on it, kept reserved.

    Returns (socket, port): the socket is bound but not listening, so TCP
    connections to the port are refused and no one else can take it while
    the caller holds the socket. Close it when done.
    """
    s = socket.socket(socket.AF_INET, kind)
    s.bind((host, 0))
    return s, s.getsockname()[1]


class Result:
    """What a finished command did."""

    def __init__(self, cmd, returncode, stdout, stderr, elapsed):
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self):
        return self.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return "<%s: exit %s, stdout %r, stderr %r>" % (
            " ".join(self.cmd), self.returncode, self.stdout[:300],
            self.stderr[:600])


def run(cmd, input=b"", timeout=10, env=None, check_san=True):
    """Run cmd to completion with input on stdin; returns a Result.

    A command still running after timeout seconds is killed and the test
    fails, naming it.
    """
    _require_models_of(cmd)
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    _procs.append(p)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(
            "%s still running after %ss (stdout %r, stderr %r)"
            % (" ".join(cmd), timeout, out[-300:], err[-600:]))
    r = Result(cmd, p.returncode, out, err, time.monotonic() - start)
    if check_san:
        check_sanitizer(r.err, " ".join(cmd))
    return r


def run_client(args, input=b"", timeout=10):
    """Run `$SOCKIT ARGS...` to completion; returns a Result."""
    return run([SOCKIT] + list(args), input=input, timeout=timeout)


def start(cmd, **kw):
    """Start a background command (registered for cleanup); returns Popen."""
    _require_models_of(cmd)
    p = subprocess.Popen(cmd, **kw)
    _procs.append(p)
    return p


def serve_addresses(args):
    """The ADDRESS words of `serve ARGS` (everything after SERVICE)."""
    words = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            if words[:1] != ["exec"]:  # exec: PROGRAM ARGS follow, not addresses
                words.extend(args[i + 1:])
            break
        if a in SERVE_VALUE_OPTS:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        words.append(a)
        i += 1
    return words[1:]


def _is_port0(word):
    if word.startswith(("unix:", "unixgram:")):
        return False
    return word == "0" or word.endswith(":0")


class _Drain(threading.Thread):
    """Reads a pipe to the end into a buffer, so the child never blocks."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.data = bytearray()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.eof = False
        self.start()

    def run(self):
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if chunk:
                    self.data += chunk
                else:
                    self.eof = True
                self.cond.notify_all()
            if not chunk:
                return

    def wait_for(self, pred, timeout):
        """Wait until pred(bytes) is true or EOF; returns pred's last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = pred(bytes(self.data))
                left = deadline - time.monotonic()
                if v or self.eof or left <= 0:
                    return v
                self.cond.wait(min(left, 0.1))

    def text(self):
        with self.lock:
            return self.data.decode("utf-8", "replace")

    def raw(self):
        with self.lock:
            return bytes(self.data)


class ServerFailed(AssertionError):
    pass


class Server:
    """`$SOCKIT serve ARGS...`, started and ready to be connected to.

    Ready means: one "sockit: listening on ADDRESS" line per port-0 address
    (every address with -v) has appeared on stderr, and every Unix socket
    path exists. `stdin` may be subprocess.PIPE (for `serve stdio`).
    On leaving the `with` block normally the server is stopped with SIGTERM
    and must exit 0 without sanitizer reports; on an exception it is killed.
    """

    def __init__(self, args, stdin=subprocess.DEVNULL, ready_timeout=10,
                 expect_exit=0):
        self.args = list(args)
        _require_models_of(self.args)
        self.expect_exit = expect_exit
        self.cmd = [SOCKIT, "serve"] + self.args
        self.proc = subprocess.Popen(self.cmd, stdin=stdin,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        _servers.append(self)
        _procs.append(self.proc)
        self.pid = self.proc.pid
        self._out = _Drain(self.proc.stdout)
        self._err = _Drain(self.proc.stderr)
        self.addresses = []
        self.returncode = None
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    # -- startup ---------------------------------------------------------

    def _wait_ready(self, timeout):
        words = serve_addresses(self.args)
        verbose = "-v" in self.args or "--verbose" in self.args
        want = len(words) if verbose else sum(map(_is_port0, words))

        def lines(data):
            found = []
            for line in data.decode("utf-8", "replace").splitlines():
                m = LISTENING.match(line)
                if m:
                    found.append(m.group(1))
            return found

        self._err.wait_for(lambda d: len(lines(d)) >= want, timeout)
        self.addresses = lines(self._err.raw())
        if len(self.addresses) < want:
            self.proc.poll()
            raise ServerFailed(
                "server %s not ready after %ss (exit %s): wanted %d "
                "'listening on' lines, stderr: %r"
                % (" ".join(self.cmd), timeout, self.proc.returncode, want,
                   self._err.text()[-800:]))
        # Unix addresses print nothing without -v: wait for the socket.
        deadline = time.monotonic() + timeout
        for w in words:
            if not w.startswith(("unix:", "unixgram:")):
                continue
            while not self._unix_bound(w):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise ServerFailed(
                        "server %s never bound %s (exit %s), stderr: %r"
                        % (" ".join(self.cmd), w, self.proc.returncode,
                           self._err.text()[-800:]))
                time.sleep(0.01)

    @staticmethod
    def _unix_bound(word):
        """Whether a socket is bound (and listening, for streams) at word.

        Asks the kernel (/proc/net/unix), not the file system: a stale
        socket file from an earlier server must not count as ready.
        """
        stream = word.startswith("unix:")
        path = word.split(":", 1)[1]
        try:
            with open("/proc/net/unix") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) < 8 or " ".join(fields[7:]) != path:
                        continue
                    flags, kind = int(fields[3], 16), int(fields[4], 16)
                    if not stream and kind != 1:
                        return True
                    if stream and kind == 1 and flags & 0x10000:
                        return True
        except OSError:
            return True  # no /proc: trust the listening lines
        return False

    # -- what it bound ---------------------------------------------------

    @property
    def port(self):
        """The port of the first TCP/UDP address the server printed."""
        for a in self.addresses:
            m = re.search(r":(\d+)$", a)
            if m and not a.startswith(("unix:", "unixgram:")):
                return int(m.group(1))
        raise AssertionError("server printed no port: %r" % self.addresses)

    def port_of(self, scheme):
        """The port of the first printed address of a transport (tcp, udp)."""
        for a in self.addresses:
            if a.startswith(scheme + "://"):
                return int(a.rsplit(":", 1)[1])
        raise AssertionError("no %s address in %r" % (scheme, self.addresses))

    # -- output ----------------------------------------------------------

    def stdout_text(self):
        return self._out.text()

    def stdout_bytes(self):
        return self._out.raw()

    def stderr_text(self):
        return self._err.text()

    def wait_stdout(self, needle, timeout=5):
        """Wait until needle appears on stdout; returns whether it did."""
        if isinstance(needle, str):
            needle = needle.encode()
        return self._out.wait_for(lambda d: needle in d, timeout)

    def wait_stderr(self, needle, timeout=5):
        if isinstance(needle, str):
            needle = needle.encode()
        return self._err.wait_for(lambda d: needle in d, timeout)

    # -- life ------------------------------------------------------------

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=10):
        """Wait for the server to exit by itself (--once); returns status."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server %s still running after %ss"
                                 % (" ".join(self.cmd), timeout))
        self._finish_pipes()
        return self.returncode

    def stop(self, timeout=10):
        """SIGTERM, then wait (bounded; SIGKILL after). Returns exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("server %s ignored SIGTERM for %ss"
                                     % (" ".join(self.cmd), timeout))
        self.returncode = self.proc.returncode
        self._finish_pipes()
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.returncode = self.proc.returncode
        self._finish_pipes()

    def _finish_pipes(self):
        # The pipes end when every process holding them (forked workers
        # too) has exited; do not wait forever for a stray worker.
        self._out.join(5)
        self._err.join(5)

    def check_clean(self):
        """Assert no sanitizer report appeared on the server's stderr."""
        check_sanitizer(self.stderr_text(), "server " + " ".join(self.cmd))

    def __enter__(self):
        return self

    def __exit__(self, etype, value, tb):
        if etype is not None:
            self.kill()
            return False
        rc = self.stop()
        self.check_clean()
        if self.expect_exit is not None:
            assert rc == self.expect_exit, (
                "server %s exited %s, expected %s; stderr: %r"
                % (" ".join(self.cmd), rc, self.expect_exit,
                   self.stderr_text()[-800:]))
        return False


# -- /proc ---------------------------------------------------------------

def _stat(pid):
    """(state, ppid) of a process from /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def children(pid):
    """Pids whose parent is pid."""
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st and st[1] == pid:
                kids.append(int(name))
    return kids


def zombies(pid):
    """Children of pid that have exited and were not reaped (state Z)."""
    return [k for k in children(pid) if (_stat(k) or ("?",))[0] == "Z"]


def fd_count(pid):
    """Number of open descriptors of pid."""
    return len(os.listdir("/proc/%d/fd" % pid))


def poll_until(pred, timeout=5, interval=0.05):
    """Call pred until it returns true or timeout passes; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# -- sockets ---------------------------------------------------------------

def connect_tcp(port, host="127.0.0.1", timeout=5):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def recv_all(s, limit=64 << 20):
    """Read until the peer closes (bounded by the socket's timeout)."""
    chunks = []
    total = 0
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        total += len(b)
        assert total <= limit, "peer sent more than %d bytes" % limit


def exchange(s, data):
    """Send data, half-close, and return everything the peer sends back."""
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    return recv_all(s)


# -- HTTP ------------------------------------------------------------------

class HttpResponse:
    """One HTTP/1.x response: .version, .status, .reason, .headers (a list
    of (name, value) in order), .body and .raw (every byte it took)."""

    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.raw = raw

    def header(self, name):
        """The value of the first field called name (any case), or None."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def header_values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return "<HTTP %d %s, %r, %d body bytes>" % (
            self.status, self.reason, self.headers, len(self.body))


def read_http_response(rfile, head=False, limit=64 << 20):
    """Read one response from rfile (a buffered binary file: a socket's
    makefile("rb")). head: it answers a HEAD request (no body). The body is
    framed by Content-Length (none for 1xx, 204, 304), else runs to EOF.
    Returns None on EOF before the first byte; a truncated response fails
    the test. Bounded by the socket's timeout."""
    raw = bytearray()
    line = rfile.readline(65537)
    if not line:
        return None
    raw += line
    assert line.endswith(b"\r\n"), "bad status line %r" % bytes(raw)
    parts = line[:-2].decode("latin-1").split(" ", 2)
    assert len(parts) >= 2 and parts[0].startswith("HTTP/1.") and \
        parts[1].isdigit(), "bad status line %r" % line
    status = int(parts[1])
    headers = []
    while True:
        line = rfile.readline(65537)
        raw += line
        assert line.endswith(b"\r\n"), "truncated head %r" % bytes(raw)
        if line == b"\r\n":
            break
        name, sep, value = line[:-2].decode("latin-1").partition(":")
        assert sep and name and name == name.strip(), "bad field %r" % line
        headers.append((name, value.strip(" \t")))
        assert len(raw) < 65536, "response head too long"
    resp = HttpResponse(parts[0], status, parts[2] if len(parts) > 2 else "",
                        headers, b"", b"")
    cl = resp.header("Content-Length")
    if head or status < 200 or status in (204, 304):
        body = b""
    elif cl is not None:
        n = int(cl)
        assert n <= limit, "Content-Length %d too large" % n
        body = rfile.read(n)
        assert len(body) == n, "body: %d of %d bytes" % (len(body), n)
    else:
        body = rfile.read(limit)
    resp.body = body
    resp.raw = bytes(raw) + body
    return resp


# -- runner support ------------------------------------------------------

def failure_context(lines=8):
    """The last stderr lines of every server of this test, for a report."""
    parts = []
    for srv in _servers:
        text = srv.stderr_text().rstrip("\n")
        if not text:
            continue
        tail = "\n".join("    " + ln for ln in text.splitlines()[-lines:])
        parts.append("  server %s stderr:\n%s" % (" ".join(srv.args), tail))
    return "\n".join(parts)


def cleanup():
    """Kill everything the test started; check servers for sanitizer reports.

    Returns a list of problems (sanitizer reports the test did not see).
    """
    problems = []
    for p in _procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
    for srv in _servers:
        srv._finish_pipes()
        report = sanitizer_report(srv.stderr_text())
        if report:
            problems.append("sanitizer report from server %s:\n%s"
                            % (" ".join(srv.cmd), report))
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)
    del _procs[:], _servers[:], _tempdirs[:]
    return problems
