"""Helpers shared by test_services.py and test_scale.py (not a test file).

  Target(transport)        where a test server listens (tcp, udp, unix,
                           unixgram) and how each kind of client reaches it.
  check_chargen(data)      RFC 864: the exact line pattern, or a precise
                           assertion naming the first wrong byte.
  parse_daytime(data)      RFC 867 in ctime format -> seconds since 1970.
  decode_time(data)        RFC 868: 4 bytes big-endian since 1900 -> Unix time.
  parse_rdate(text)        what `rdate -p` prints -> seconds since 1970.
  Background(cmd)          harness.run() in a thread, to overlap slow clients.
  low_port_dgram_socket()  a UDP socket bound to 127.0.0.1:<600..1000> (root).
  together(n, func)        n threads at once; every failure reported.
  proc_threads / cpu_seconds   from /proc/PID/status and /proc/PID/stat.

Everything is bounded in time and uses only 127.0.0.1, Unix sockets under
the harness's temporary directory and kernel-picked ports.
"""

import calendar
import os
import random
import re
import socket
import struct
import threading
import time

import harness
from harness import Skip, run, tempdir

MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll", "epoll", "uring"]
# Models that serve many connections at once in one address space: the only
# ones that can run broker (docs/ARCHITECTURE.md, the model table).
SHARED = ["thread", "select", "poll", "epoll", "uring"]
TRANSPORTS = ["tcp", "udp", "unix", "unixgram"]
STREAM = ("tcp", "unix")

SANITIZED = "build-san" in os.environ.get("SOCKIT", "")

SECONDS_1900_TO_1970 = 2208988800


def model_args(model, workers=2):
    """--model MODEL, and a small --workers where the model takes one."""
    args = ["--model", model]
    if model in ("prefork", "poll", "epoll", "uring") and workers:
        args += ["--workers", str(workers)]
    return args


# -- where the server is, and how clients reach it ---------------------------

class Target:
    """A server address of one transport, and the clients' view of it.

    Before the server starts: .listen is the address to give `serve`.
    After: call .bind(srv) so that the port the kernel picked is known.
    """

    def __init__(self, transport):
        self.transport = transport
        self.dir = None
        self.path = None
        self.port = None
        if transport in ("unix", "unixgram"):
            self.dir = tempdir()
            self.path = os.path.join(self.dir, "s.sock")
            self.listen = "%s:%s" % (transport, self.path)
        else:
            self.listen = "%s://127.0.0.1:0" % transport
        self._n = 0

    @property
    def stream(self):
        return self.transport in STREAM

    def bind(self, srv):
        if self.transport in ("tcp", "udp"):
            self.port = srv.port_of(self.transport)
        return self

    # sockit connect
    @property
    def connect_addr(self):
        if self.transport == "tcp":
            return "127.0.0.1:%d" % self.port
        if self.transport == "udp":
            return "udp://127.0.0.1:%d" % self.port
        return self.listen

    # Python sockets
    def open_stream(self, timeout=5):
        if self.transport == "tcp":
            return harness.connect_tcp(self.port, timeout=timeout)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    def client_path(self):
        """A fresh path for a Unix datagram client to bind (to get replies)."""
        self._n += 1
        return os.path.join(self.dir, "c%d.sock" % self._n)

    def open_dgram(self, timeout=5):
        """A datagram socket bound (so it can be answered) and connected."""
        if self.transport == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(timeout)
            s.connect(("127.0.0.1", self.port))
            return s
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(self.client_path())
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    # netcat-openbsd (None where this test does not use it)
    def nc(self):
        if self.transport == "tcp":
            return ["nc", "-N", "127.0.0.1", str(self.port)]
        if self.transport == "unix":
            return ["nc", "-N", "-U", self.path]
        if self.transport == "udp":
            return ["nc", "-u", "-w1", "127.0.0.1", str(self.port)]
        return None  # nc -U -u works too, but socat covers unixgram faster

    # socat: stream clients half-close at EOF and wait up to -t for the
    # rest; datagram clients wait -t for replies after the input ends.
    def socat(self, wait=0.5):
        if self.transport == "tcp":
            addr = "TCP:127.0.0.1:%d" % self.port
            wait = 10
        elif self.transport == "unix":
            addr = "UNIX-CONNECT:" + self.path
            wait = 10
        elif self.transport == "udp":
            addr = "UDP:127.0.0.1:%d" % self.port
        else:
            addr = "UNIX-SENDTO:%s,bind=%s" % (self.path, self.client_path())
        return ["socat", "-t", str(wait), "-", addr]


# -- RFC 864 -----------------------------------------------------------------

PRINTABLE = 95
LINE_CHARS = 72
LINE_LEN = LINE_CHARS + 2
CYCLE = PRINTABLE * LINE_LEN  # 7030 bytes: 95 lines, then it repeats


def _chargen_reference(first, nbytes):
    """The RFC 864 stream from a line starting with character `first`."""
    lines = []
    k = first - 0x20
    need = nbytes // LINE_LEN + 2
    for n in range(need):
        start = (k + n) % PRINTABLE
        lines.append(bytes(0x20 + (start + i) % PRINTABLE
                           for i in range(LINE_CHARS)) + b"\r\n")
    return b"".join(lines)[:nbytes]


def check_chargen(data, whole_lines=False, min_lines=0, what="chargen"):
    """Assert data is RFC 864 output; returns the number of complete lines.

    Each line: 72 characters from the 95 printable ASCII characters (0x20 to
    0x7e) in order, wrapping from '~' to ' ', then CR LF; each line starts
    one character later than the one before. The first byte must begin a
    line (any starting character). A final partial line is allowed unless
    whole_lines.
    """
    assert data, "%s: no data" % what
    first = data[0]
    assert 0x20 <= first <= 0x7e, "%s: first byte %r is not printable" % (
        what, bytes([first]))
    ref = _chargen_reference(first, len(data))
    if data != ref:
        i = next(k for k in range(len(data)) if data[k] != ref[k])
        line, col = divmod(i, LINE_LEN)
        raise AssertionError(
            "%s: byte %d (line %d, column %d) is %r, RFC 864 wants %r; "
            "the line: %r" % (what, i, line, col, data[i:i + 1],
                              ref[i:i + 1],
                              data[line * LINE_LEN:(line + 1) * LINE_LEN]))
    full, rest = divmod(len(data), LINE_LEN)
    if whole_lines:
        assert rest == 0, "%s: %d bytes is not a whole number of %d-byte " \
            "lines" % (what, len(data), LINE_LEN)
    assert full >= min_lines, "%s: %d complete lines, wanted %d" % (
        what, full, min_lines)
    return full


def chargen_wraps(data):
    """Whether data contains the wrap inside a line ('~' then ' ') and a line
    starting with ' ' right after one starting with '~'."""
    inside = b"~ " in data
    starts = [data[k] for k in range(0, len(data) - LINE_LEN + 1, LINE_LEN)]
    across = any(a == 0x7e and b == 0x20 for a, b in zip(starts, starts[1:]))
    return inside and across


# -- RFC 867, RFC 868, rdate -------------------------------------------------

DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAYTIME = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) ([ 12]\d|3[01]) ([01]\d|2[0-3]):([0-5]\d):([0-5]\d) "
    r"(\d{4})\r\n$")


def use_utc():
    """Make this test process (and the servers it starts) use UTC."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def parse_daytime(data):
    """RFC 867 reply "Sat Nov 21 07:00:00 2026\\r\\n" (ctime format, UTC:
    see use_utc) -> seconds since 1970. Asserts the exact format."""
    text = data.decode("ascii", "replace")
    m = DAYTIME.match(text)
    assert m, "daytime reply %r is not 'Www Mmm dd hh:mm:ss yyyy\\r\\n'" % (
        data,)
    wday, mon, day, hh, mm, ss, year = m.groups()
    t = calendar.timegm((int(year), MONTHS.index(mon) + 1, int(day),
                         int(hh), int(mm), int(ss), 0, 0, 0))
    assert DAYS[time.gmtime(t).tm_wday] == wday, (
        "daytime reply %r: the weekday is wrong for that date" % (data,))
    return t


def decode_time(data):
    """RFC 868: 4 bytes, seconds since 1900 big-endian -> since 1970."""
    assert len(data) == 4, "time reply is %d bytes (%r), RFC 868 wants 4" % (
        len(data), data[:20])
    return struct.unpack(">I", data)[0] - SECONDS_1900_TO_1970


RDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\w{3}) +(\d+) "
                   r"(\d\d):(\d\d):(\d\d) (\S+ )?(\d{4})")


def parse_rdate(text):
    """The date `TZ=UTC rdate -p` prints -> seconds since 1970."""
    m = RDATE.search(text)
    assert m, "rdate printed no date: %r" % text
    _, mon, day, hh, mm, ss, _, year = m.groups()
    return calendar.timegm((int(year), MONTHS.index(mon) + 1, int(day),
                            int(hh), int(mm), int(ss), 0, 0, 0))


def assert_now(t, what, slack=5):
    now = time.time()
    assert abs(t - now) <= slack, "%s: %s is %.0f s away from now (%s)" % (
        what, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), t - now,
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)))


# -- running clients ---------------------------------------------------------

class Background:
    """harness.run(cmd) in a thread: slow clients (nc -w1) overlap the rest."""

    def __init__(self, cmd, input=b"", timeout=10):
        self.cmd = cmd
        self.timeout = timeout
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run,
                                       args=(cmd, input, timeout),
                                       daemon=True)
        self.thread.start()

    def _run(self, cmd, input, timeout):
        try:
            self.result = run(cmd, input=input, timeout=timeout)
        except BaseException as e:  # noqa: B902 - re-raised in get()
            self.error = e

    def get(self):
        self.thread.join(self.timeout + 5)
        assert not self.thread.is_alive(), "%s hung" % " ".join(self.cmd)
        if self.error is not None:
            raise self.error
        return self.result


def together(n, func, timeout=60):
    """Run func(i) for i in range(n) in n threads at once; assert none
    failed or hung."""
    errors = []

    def body(i):
        try:
            func(i)
        except Exception as e:  # collected for the assertion below
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=body, args=(i,), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    assert not hung, "%d of %d clients still running after %ss (errors: %s)" \
        % (hung, n, timeout, errors[:3])
    assert not errors, "%d of %d clients failed: %s" % (len(errors), n,
                                                        errors[:3])


def low_port_dgram_socket():
    """A UDP socket bound to 127.0.0.1 on a port in 600..1000 (needs root
    or CAP_NET_BIND_SERVICE); Skip if none can be bound."""
    ports = list(range(600, 1001))
    random.shuffle(ports)
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", port))
            return s
        except PermissionError:
            s.close()
            raise Skip("binding a port below 1024 needs root")
        except OSError:
            s.close()
    raise Skip("no port in 600..1000 was free")


def recv_nothing(s, wait):
    """Assert no data arrives on s for wait seconds (and it is not closed)."""
    s.settimeout(wait)
    try:
        got = s.recv(65536)
    except socket.timeout:
        return
    raise AssertionError("expected nothing, got %r" % got[:100])


# -- /proc -------------------------------------------------------------------

def proc_threads(pid):
    """Threads: from /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line for %d" % pid)


def cpu_seconds(pid):
    """utime + stime of pid (its own, not its children's), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    rest = data[data.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
