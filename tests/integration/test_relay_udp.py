"""sockit relay, UDP to UDP: one upstream socket per client address (a
session), closed after --idle-timeout; access lists and per-source limits
on new sessions. The target is `sockit serve echo` on UDP."""

import re
import socket
import time

from harness import Server, poll_until, timeout
from relayh import fake_dns_namespace, relay


@timeout(40)
def test_udp_sessions_and_their_timeout():
    with Server(["echo", "udp://127.0.0.1:0"]) as echo:
        with relay(["-v", "--idle-timeout", "1", "udp://127.0.0.1:0",
                    "udp://127.0.0.1:%d" % echo.port]) as r:
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for s in (a, b):
                s.settimeout(5)
                s.bind(("127.0.0.1", 0))
            for i in range(3):
                a.sendto(b"from a %d" % i, ("127.0.0.1", r.port))
                b.sendto(b"from b %d" % i, ("127.0.0.1", r.port))
                assert a.recvfrom(100) == (b"from a %d" % i,
                                           ("127.0.0.1", r.port))
                assert b.recvfrom(100) == (b"from b %d" % i,
                                           ("127.0.0.1", r.port))
            sessions = lambda: len(re.findall(r"udp session \S+ -> ",
                                              r.stderr_text()))
            # (the log lines travel apart from the datagrams: wait for them)
            assert poll_until(lambda: sessions() == 2, 5), r.stderr_text()
            # silent for the idle timeout: both sessions close
            assert r.wait_stderr("closed", 5)
            assert poll_until(
                lambda: r.stderr_text().count(" idle") >= 2, 5), \
                r.stderr_text()
            assert r.stderr_text().count(
                "3 datagrams to target, 3 from target") == 2, r.stderr_text()
            # a new datagram opens a new session
            a.sendto(b"again", ("127.0.0.1", r.port))
            assert a.recvfrom(100)[0] == b"again"
            assert poll_until(lambda: sessions() == 3, 5), r.stderr_text()
            a.close()
            b.close()


def test_udp_access_list_drops_denied_sender():
    with Server(["echo", "udp://127.0.0.1:0"]) as echo:
        with relay(["-v", "--deny", "127.0.0.2", "udp://127.0.0.1:0",
                    "udp://127.0.0.1:%d" % echo.port]) as r:
            bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            bad.bind(("127.0.0.2", 0))
            bad.settimeout(0.5)
            good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            good.bind(("127.0.0.3", 0))
            good.settimeout(5)
            bad.sendto(b"denied", ("127.0.0.1", r.port))
            good.sendto(b"allowed", ("127.0.0.1", r.port))
            assert good.recvfrom(100)[0] == b"allowed"
            try:
                got = bad.recvfrom(100)
            except socket.timeout:
                got = None
            assert got is None, got
            assert r.wait_stderr("refused udp://127.0.0.2:", 5), r.stderr_text()
            assert "not allowed by the access list" in r.stderr_text()
            bad.close()
            good.close()



def test_udp_sessions_per_source_limit():
    """--max-per-source 1: a second client port from the same address gets
    no session while the first lives; another address does."""
    with Server(["echo", "udp://127.0.0.1:0"]) as echo:
        with relay(["-v", "--max-per-source", "1", "udp://127.0.0.1:0",
                    "udp://127.0.0.1:%d" % echo.port]) as r:
            socks = []
            for src in ("127.0.0.1", "127.0.0.1", "127.0.0.2"):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src, 0))
                s.settimeout(0.5)
                socks.append(s)
            got = []
            for i, s in enumerate(socks):
                s.sendto(b"n%d" % i, ("127.0.0.1", r.port))
                try:
                    got.append(s.recvfrom(100)[0])
                except socket.timeout:
                    got.append(None)
            assert got == [b"n0", None, b"n2"], (got, r.stderr_text())
            assert r.wait_stderr("too many sessions from its source", 5), \
                r.stderr_text()
            for s in socks:
                s.close()


@timeout(60)
def test_udp_slow_name_server_never_stalls_other_sessions():
    """The UDP relay's target is a name whose name server stops answering
    after the first lookup: a new client's session opens at once with the
    addresses already known (before, each new session called getaddrinfo in
    the relay's only loop, and every client waited out the resolver's 4 s)."""
    dns, ns = fake_dns_namespace("slow-udp.sockit.test")
    try:
        with Server(["echo", "udp://127.0.0.1:0"]) as echo:
            with relay(["udp://127.0.0.1:0", "udp://slow-udp.sockit.test:%d" % echo.port],
                       wrap=ns) as r:
                def ask(i):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.settimeout(3)  # less than one lookup's timeout
                    s.bind(("127.0.0.1", 0))
                    s.sendto(b"client %d" % i, ("127.0.0.1", r.port))
                    try:
                        got, _ = s.recvfrom(100)
                    except socket.timeout:
                        raise AssertionError("client %d waited for the name server" % i)
                    finally:
                        s.close()
                    assert got == b"client %d" % i, (i, got)
                ask(-1)  # while the name server answers (the relay has looked up by now)
                dns.silent = True
                time.sleep(1.5)  # past the cache's second: new sessions ask again
                for i in range(3):
                    ask(i)
    finally:
        dns.close()
