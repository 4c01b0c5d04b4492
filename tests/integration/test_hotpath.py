"""The event engine's hot path (issue 14): the system calls the server makes
per operation, counted with strace (no timing: counts do not depend on how
busy the machine is).

Each test attaches `strace -f` to a running server, drives a bounded
workload with a client of its own, and checks what the server called.
"""

import os
import re
import signal
import socket
import subprocess

from harness import (Server, Skip, model_available, poll_until, read_http_response, require,
                     tempdir, timeout)

SERIAL = True  # run alone (run.py -j): counts system calls and wakeups under load

CALL = re.compile(r"^(?:\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$")


class Strace:
    """strace -f attached to pid for the `with` block; .calls is a list of
    (name, args, result, rest) for the traced system calls."""

    def __init__(self, pid, calls):
        require("strace")
        self.out = os.path.join(tempdir(), "strace.txt")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-e", "trace=" + calls, "-o", self.out, "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.calls = []

    def __enter__(self):
        # strace says "Process N attached" once per thread of the server.
        line = self.proc.stderr.readline().decode()
        if "attached" not in line:
            self.proc.kill()
            raise AssertionError("strace did not attach: %r" % line)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with open(self.out) as f:
            for line in f:
                m = CALL.match(line.strip())
                if m:
                    self.calls.append((m.group(1), m.group(2), m.group(3), m.group(4)))
        return False

    def count(self, name, args="", rest=""):
        return sum(1 for c in self.calls
                   if c[0] == name and args in c[1] and rest in c[3])


def get_many(port, n, path, rounds):
    """n keep-alive connections; each round every connection sends its
    request while the server is stopped (so it sees them all in one wakeup,
    and each connection's write share is a fraction of the response), then
    every response is read whole."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(n)]
    files = [s.makefile("rb") for s in socks]
    try:
        for _ in range(rounds):
            yield socks
            for f in files:
                r = read_http_response(f)
                assert r is not None and r.status == 200, r
    finally:
        for f in files:
            f.close()
        for s in socks:
            s.close()


@timeout(90)
def test_large_responses_change_no_interest_while_writable():
    """A connection that used its write share with its socket still writable
    is served again after the others without asking epoll for writability:
    large responses cost no epoll_ctl beyond what a full socket needs (the
    old loop made two per 1 MiB response: EPOLLOUT on, then off)."""
    root = tempdir()
    with open(os.path.join(root, "big"), "wb") as f:
        f.write(os.urandom(1 << 20))
    n, rounds = 32, 3
    with Server(["http", "-q", "--root", root, "--model", "epoll",
                 "tcp://127.0.0.1:0"]) as srv:
        with Strace(srv.pid, "epoll_ctl,sendfile") as st:
            for socks in get_many(srv.port, n, "/big", rounds):
                os.kill(srv.pid, signal.SIGSTOP)
                try:
                    for s in socks:
                        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                finally:
                    os.kill(srv.pid, signal.SIGCONT)
        mods = st.count("epoll_ctl", "EPOLL_CTL_MOD")
        # A socket found full: EAGAIN, or less taken than asked.
        full = sum(1 for name, args, res, rest in st.calls if name == "sendfile" and (
            "EAGAIN" in rest or int(res) < int(args.rsplit(",", 1)[1])))
        sent = st.count("sendfile") - st.count("sendfile", rest="EAGAIN")
        assert sent >= n * rounds, st.calls[:20]
        # A socket that is full may wait for writability: at most one change
        # each way for each time that happened.
        assert mods <= 2 * full + 2, \
            "%d epoll_ctl MOD for %d responses (%d sendfile, %d EAGAIN)" % (
                mods, n * rounds, sent, full)
        assert srv.alive()


@timeout(60)
def test_reports_of_one_wakeup_leave_in_one_write():
    """The per-read report lines (the default output) of one wakeup leave
    together, in one write to stdout, instead of a poll and a write each."""
    check_reports_of_one_wakeup_leave_in_one_write("epoll")


@timeout(60)
def test_reports_of_one_wakeup_leave_in_one_write_uring():
    """The same under --model uring (it wrote one line per report)."""
    ok, why = model_available("uring")
    if not ok:
        raise Skip(why)
    check_reports_of_one_wakeup_leave_in_one_write("uring")


def check_reports_of_one_wakeup_leave_in_one_write(model):
    n = 20
    with Server(["echo", "--model", model, "tcp://127.0.0.1:0"]) as srv:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                 for _ in range(n)]
        try:
            # Every connection is open (its report-free accept is done)
            # before the calls are counted.
            for s in socks:
                s.sendall(b"warm\n")
                assert s.recv(64) == b"warm\n"
            assert srv.wait_stdout("Received 5 bytes", timeout=10)
            with Strace(srv.pid, "write,writev,pwritev2,poll,sendto") as st:
                os.kill(srv.pid, signal.SIGSTOP)
                try:
                    for i, s in enumerate(socks):
                        s.sendall(b"msg%03d\n" % i)
                finally:
                    os.kill(srv.pid, signal.SIGCONT)
                for i, s in enumerate(socks):
                    got = b""
                    while not got.endswith(b"\n"):
                        b = s.recv(64)
                        assert b, "connection %d closed" % i
                        got += b
                    assert got == b"msg%03d\n" % i
                ok = poll_until(lambda: srv.stdout_text().count("Received 7 bytes") == n, 10)
                assert ok, srv.stdout_text()[-500:]
        finally:
            for s in socks:
                s.close()
        to_stdout = sum(1 for c in st.calls
                        if c[0] in ("write", "writev", "pwritev2", "poll")
                        and (c[1].startswith("1,") or c[1].startswith("[{fd=1,")))
        if model != "uring":  # (uring sends through the ring)
            assert st.count("sendto") >= n, st.calls[:30]
        # One wakeup (or a few, if the kernel handed the reads over in
        # parts): far fewer calls than one (or two) per line.
        assert to_stdout <= n // 4, "%d calls on stdout for %d report lines: %r" % (
            to_stdout, n, [c for c in st.calls if c[1].startswith(("1,", "[{fd=1,"))][:10])
        assert srv.alive()


@timeout(60)
def test_discard_drops_input_in_the_kernel():
    """serve discard drops a TCP stream's bytes with recv(MSG_TRUNC) and no
    buffer (nothing copied to user space), and still counts them (-v)."""
    total = 4 << 20
    with Server(["discard", "-v", "--model", "epoll", "tcp://127.0.0.1:0"]) as srv:
        with Strace(srv.pid, "recvfrom") as st:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            chunk = b"d" * 65536
            for _ in range(total // len(chunk)):
                s.sendall(chunk)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""  # the server saw our FIN and closed
            s.close()
            assert srv.wait_stderr("%d bytes in" % total, timeout=10), srv.stderr_text()
        dropped = [c for c in st.calls if "NULL" in c[1] and "MSG_TRUNC" in c[1]]
        copied = [c for c in st.calls if "MSG_TRUNC" not in c[1] and c[2] not in ("0", "-1")]
        got = sum(int(c[2]) for c in dropped if int(c[2]) > 0)
        assert got == total, (got, st.calls[:5])
        assert not copied, copied[:5]


SOL_UDP = 17
UDP_SEGMENT = 103


def udp_replies(sock, n):
    got = []
    for _ in range(n):
        got.append(sock.recv(65536))
    return got


@timeout(60)
def test_udp_replies_to_one_peer_leave_as_one_gso_send():
    """Datagrams from one peer answered in one batch leave as one
    UDP_SEGMENT (GSO) message, and the peer still gets each reply as its
    own datagram, in order."""
    n = 8
    with Server(["echo", "-q", "--model", "epoll", "udp://127.0.0.1:0"]) as srv:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(10)
        try:
            with Strace(srv.pid, "sendmmsg,sendmsg,sendto") as st:
                os.kill(srv.pid, signal.SIGSTOP)
                try:
                    for i in range(n):
                        c.sendto(b"gso-%04d" % i, ("127.0.0.1", srv.port_of("udp")))
                finally:
                    os.kill(srv.pid, signal.SIGCONT)
                got = udp_replies(c, n)
        finally:
            c.close()
        assert got == [b"gso-%04d" % i for i in range(n)], got
        # (strace names it UDP_SEGMENT, or only by number: 0x67)
        gso = [x for x in st.calls if x[0] == "sendmmsg" and "cmsg_level=SOL_UDP" in x[1]
               and ("UDP_SEGMENT" in x[1] or "0x67" in x[1])]
        assert len(gso) == 1 and st.count("sendmmsg") + st.count("sendto") == 1, st.calls
        assert srv.alive()


@timeout(60)
def test_udp_replies_to_several_peers_in_one_batch_keep_each_peers_order():
    """Datagrams from several peers, interleaved in one batch (the server
    stopped while they arrive), are all answered, each peer's in the order
    it sent them."""
    peers, n = 4, 4  # 16 datagrams: one recvmmsg batch
    with Server(["echo", "-q", "--model", "epoll", "udp://127.0.0.1:0"]) as srv:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(peers)]
        try:
            for c in socks:
                c.settimeout(10)
            os.kill(srv.pid, signal.SIGSTOP)
            try:
                for i in range(n):
                    for p, c in enumerate(socks):
                        c.sendto(b"peer-%d-%04d" % (p, i), ("127.0.0.1", srv.port_of("udp")))
            finally:
                os.kill(srv.pid, signal.SIGCONT)
            got = [udp_replies(c, n) for c in socks]
        finally:
            for c in socks:
                c.close()
        for p in range(peers):
            assert got[p] == [b"peer-%d-%04d" % (p, i) for i in range(n)], got[p]
        assert srv.alive()


@timeout(60)
def test_udp_coalesced_receive_is_split_into_datagrams():
    """A peer's GSO message reaches the server's socket (UDP_GRO) whole;
    the server answers each datagram in it on its own."""
    n, size = 6, 100
    with Server(["echo", "-q", "--model", "epoll", "udp://127.0.0.1:0"]) as srv:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(10)
        try:
            payload = b"".join(bytes([65 + i]) * size for i in range(n))
            with Strace(srv.pid, "recvmmsg") as st:
                try:
                    c.sendmsg([payload], [(SOL_UDP, UDP_SEGMENT, size.to_bytes(2, "little"))],
                              0, ("127.0.0.1", srv.port_of("udp")))
                except OSError as e:  # a kernel without UDP GSO
                    raise Skip("no UDP_SEGMENT here: %s" % e)
                got = udp_replies(c, n)
        finally:
            c.close()
        assert got == [bytes([65 + i]) * size for i in range(n)], [g[:4] for g in got]
        # It came in coalesced (UDP_GRO: 0x68), as one message.
        gro = [x for x in st.calls if "cmsg_level=SOL_UDP" in x[1]
               and ("UDP_GRO" in x[1] or "0x68" in x[1])]
        assert gro, st.calls
        assert srv.alive()


@timeout(60)
def test_uring_asks_for_a_peer_only_when_it_is_named():
    """--model uring: no getpeername for a connection nobody names (-q);
    with echo's report on, one per connection, not one per read."""
    ok, why = model_available("uring")
    if not ok:
        raise Skip(why)
    n, reads = 4, 3
    for opts, want in ((["-q"], 0), ([], n)):
        with Server(["echo"] + opts + ["--model", "uring", "tcp://127.0.0.1:0"]) as srv:
            with Strace(srv.pid, "getpeername") as st:
                for _ in range(n):
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
                        for i in range(reads):
                            c.sendall(b"%d" % i)
                            assert c.recv(1) == b"%d" % i
                if want:
                    assert srv.wait_stdout("Received 1 bytes", 5)
            assert st.count("getpeername") == want, (opts, st.calls)
