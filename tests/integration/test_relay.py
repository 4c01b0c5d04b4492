"""sockit relay: a port forwarder between two addresses (issue 12 item 2).

The ends are real software: socat and nc as clients and targets, curl
through the relay to `sockit serve http`, `sockit serve echo` as a target
on TCP and Unix (UDP: test_relay_udp.py). Checks run under an event model (epoll) and a
blocking one (fork, sometimes thread). Everything listens on loopback, on
ports the kernel picks (a target's port is reserved with free_port first
where a tool cannot print its own).
"""

import errno
import hashlib
import os
import re
import socket
import subprocess
import threading
import time

from harness import (SOCKIT, Server, Skip, free_port, poll_until, recv_all, require,
                     run, run_client, start, tempdir, timeout)
import harness
from relayh import MODELS, Target, connect, fake_dns_namespace, relay, relay_line


# -- the basic paths -------------------------------------------------------

def test_tcp_to_tcp_echo_with_nc():
    require("nc")
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in MODELS:
            with relay(["-v", "tcp://127.0.0.1:0",
                        "127.0.0.1:%d" % echo.port], model) as r:
                # -N: shut down the socket at end of input, then read to the end
                out = run(["nc", "-N", "127.0.0.1", str(r.port)],
                          input=b"through the relay\n", timeout=10)
                assert out.stdout == b"through the relay\n", (model, out)
                line = relay_line(r, "bytes to target")
                assert "-> tcp://127.0.0.1:%d" % echo.port in line, line
                assert "18 bytes to target, 18 bytes from target" in line, line
                assert "client closed first" in line, line
                # one line per connection: the engine's own are left out
                assert "connection from" not in r.stderr_text()
                assert "closed tcp://" not in r.stderr_text()


@timeout(60)
def test_ten_megabytes_each_way_socat_sha256():
    """socat at both ends, 10 MB of random bytes each way at once, compared
    by SHA-256; each socat waits for the other direction (-t)."""
    require("socat")
    d = tempdir()
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    with open(a, "wb") as f:
        f.write(os.urandom(10 << 20))
    with open(b, "wb") as f:
        f.write(os.urandom(10 << 20))
    digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
    # splice where it can (epoll, fork), and the copying path (--no-splice,
    # what TLS connections take)
    for model, extra in [("epoll", []), ("fork", []), ("epoll", ["--no-splice"])]:
        a_out = a + ".at-target.%s%d" % (model, len(extra))
        b_out = b + ".at-client.%s%d" % (model, len(extra))
        hold, tport = free_port()
        hold.close()
        target = start(["socat", "-t", "30",
                        "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr" % tport,
                        "OPEN:%s!!CREATE:%s" % (b, a_out)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert poll_until(lambda: _listening(tport), 5), "socat not listening"
        with relay(extra + ["-v", "tcp://127.0.0.1:0",
                            "127.0.0.1:%d" % tport], model) as r:
            c = run(["socat", "-t", "30", "OPEN:%s!!CREATE:%s" % (a, b_out),
                     "TCP:127.0.0.1:%d" % r.port], timeout=50)
            assert c.returncode == 0, c
            target.wait(20)
            assert digest(a_out) == digest(a), model + ": client -> target"
            assert digest(b_out) == digest(b), model + ": target -> client"
            line = relay_line(r, "bytes to target")
            assert "%d bytes to target, %d bytes from target" % (
                10 << 20, 10 << 20) in line, line
            assert ("spliced" in line) == (not extra), line


def _listening(port):
    """Whether a TCP socket listens on 127.0.0.1:port (asked of /proc, not by
    connecting: socat without fork serves only the first connection)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(l.split()[1] == want and l.split()[3] == "0A"
                   for l in list(f)[1:])


def test_tcp_to_unix_and_unix_to_tcp():
    d = tempdir()
    path = os.path.join(d, "echo.sock")
    with Server(["echo", "unix:" + path, "tcp://127.0.0.1:0"]) as echo:
        for model in ["epoll", "thread"]:
            with relay(["tcp://127.0.0.1:0", "unix:" + path], model) as r:
                s = connect(r.port)
                s.sendall(b"tcp to unix")
                s.shutdown(socket.SHUT_WR)
                assert recv_all(s) == b"tcp to unix", model
                s.close()
            upath = os.path.join(d, "relay-%s.sock" % model)
            with relay(["unix:" + upath, "tcp://127.0.0.1:%d" % echo.port],
                       model) as r:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(upath)
                s.sendall(b"unix to tcp")
                s.shutdown(socket.SHUT_WR)
                assert recv_all(s) == b"unix to tcp", model
                s.close()


def test_curl_through_relay_to_http():
    require("curl")
    d = tempdir()
    body = os.urandom(300000)
    with open(os.path.join(d, "blob.bin"), "wb") as f:
        f.write(body)
    with Server(["http", "--root", d, "tcp://127.0.0.1:0"]) as http:
        for model in MODELS:
            with relay(["tcp://127.0.0.1:0", "127.0.0.1:%d" % http.port],
                       model) as r:
                out = run(["curl", "-sS", "--noproxy", "*", "--max-time", "10",
                           "http://127.0.0.1:%d/blob.bin" % r.port,
                           "http://127.0.0.1:%d/blob.bin" % r.port])
                assert out.returncode == 0, out
                assert out.stdout == body + body, (model, len(out.stdout))


# -- half-close ------------------------------------------------------------

@timeout(60)
def test_half_close_client_first_slow_answer_arrives():
    """The client ends its direction; the target answers 3 s later: the
    answer still arrives (socat would have cut it after 0.5 s)."""
    for model in MODELS:
        def target(s):
            got = recv_all(s)
            time.sleep(3)
            s.sendall(b"late answer to " + got)
            return got
        t = Target(target)
        with relay(["-v", "tcp://127.0.0.1:0", "127.0.0.1:%d" % t.port],
                   model) as r:
            c = connect(r.port, timeout=15)
            c.sendall(b"question")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"late answer to question", model
            c.close()
            assert t.join() == b"question"
            line = relay_line(r, "bytes to target")
            assert "client closed first" in line, line


@timeout(60)
def test_half_close_target_first_slow_client_data_arrives():
    """The target ends its direction first; the client sends 3 s later: the
    target still receives it."""
    for model in MODELS:
        def target(s):
            s.sendall(b"greeting")
            s.shutdown(socket.SHUT_WR)
            return recv_all(s)
        t = Target(target)
        with relay(["-v", "tcp://127.0.0.1:0", "127.0.0.1:%d" % t.port],
                   model) as r:
            c = connect(r.port, timeout=15)
            assert recv_all(c) == b"greeting", model  # its end of stream too
            time.sleep(3)
            c.sendall(b"late data")
            c.shutdown(socket.SHUT_WR)
            assert t.join() == b"late data", model
            assert c.recv(10) == b""
            c.close()
            line = relay_line(r, "bytes to target")
            assert "target closed first" in line, line


def test_linger_closes_after_first_end():
    """--linger 1: the target never answers nor closes; a second after the
    client's end of stream the relay closes both."""
    for model in ["epoll"]:
        release = threading.Event()

        def target(s):
            got = recv_all(s)  # the relay's close ends this too
            release.wait(10)
            return got
        t = Target(target)
        with relay(["-v", "--linger", "1", "tcp://127.0.0.1:0",
                    "127.0.0.1:%d" % t.port], model) as r:
            c = connect(r.port, timeout=10)
            c.sendall(b"x")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b""
            c.close()
            release.set()
            assert t.join() == b"x"
            line = relay_line(r, "bytes to target")
            assert "linger" in line, line


# -- the target ------------------------------------------------------------

def test_target_down_client_sees_close_and_log_says_why():
    for model in MODELS:
        hold, port = free_port()  # bound, not listening: refused
        try:
            with relay(["-v", "tcp://127.0.0.1:0", "127.0.0.1:%d" % port],
                       model) as r:
                c = connect(r.port)
                try:
                    assert c.recv(10) == b""
                except ConnectionResetError:
                    pass
                c.close()
                line = relay_line(r, "target down")
                assert ("connect tcp://127.0.0.1:%d: Connection refused" % port
                        in line), line
        finally:
            hold.close()


def test_target_resolving_to_several_addresses_first_dead():
    """A name with two addresses, ::1 first (nothing listens there) and
    127.0.0.1 (the target): the relay tries the next. The name lives in a
    hosts file mounted over /etc/hosts in the relay's own mount namespace."""
    require("unshare")
    d = tempdir()
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n::1 relay-multi.test\n"
                "127.0.0.1 relay-multi.test\n")
    ns = ["unshare", "-m", "--propagation", "private", "sh", "-c",
          'mount --bind "$0" /etc/hosts && exec "$@"', hosts]
    probe = run(ns + ["getent", "ahosts", "relay-multi.test"], check_san=False)
    if probe.returncode != 0:
        raise Skip("no private mount namespace here: %s" % probe.err.strip())
    order = [l.split()[0] for l in probe.out.splitlines() if "STREAM" in l]
    if order[:2] != ["::1", "127.0.0.1"]:
        raise Skip("the resolver orders relay-multi.test as %r" % order)
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in MODELS:
            with relay(["-v", "tcp://127.0.0.1:0",
                        "relay-multi.test:%d" % echo.port], model,
                       wrap=ns) as r:
                for i in range(3):  # resolved and tried again each time
                    c = connect(r.port)
                    c.sendall(b"ping %d" % i)
                    c.shutdown(socket.SHUT_WR)
                    assert recv_all(c) == b"ping %d" % i, model
                    c.close()
                line = relay_line(r, "bytes to target")
                assert "-> tcp://127.0.0.1:%d" % echo.port in line, line


@timeout(60)
def test_slow_name_server_never_stalls_the_relay():
    """The target is a name. Once the relay has resolved it, its name
    server stops answering: a lookup then takes the resolver's whole timeout
    (4 s here). Under an event loop that lookup must not stop the relay:
    every new client is relayed at once with the addresses already known,
    while the name is looked up again off the loop. (Before, each
    connection called getaddrinfo in the loop, and every client of the
    relay waited out the timeout.) A resolv.conf naming the fake server is
    mounted over /etc/resolv.conf in the relay's own mount namespace."""
    dns, ns = fake_dns_namespace("slow-dns.sockit.test")
    try:
        with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
            with relay(["tcp://127.0.0.1:0", "slow-dns.sockit.test:%d" % echo.port],
                       "epoll", wrap=ns) as r:
                c = connect(r.port)
                c.sendall(b"while the name server answers")
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == b"while the name server answers"
                c.close()
                dns.silent = True
                asked = dns.queries
                time.sleep(1.5)  # past the cache's second: the next client asks again
                for i in range(3):
                    c = connect(r.port, timeout=3)  # 3 s: less than one lookup's timeout
                    c.sendall(b"ping %d" % i)
                    c.shutdown(socket.SHUT_WR)
                    try:
                        got = recv_all(c)
                    except socket.timeout:
                        raise AssertionError("client %d waited for the name server" % i)
                    assert got == b"ping %d" % i, (i, got)
                    c.close()
                assert poll_until(lambda: dns.queries > asked, 5), \
                    "the name was not looked up again"
    finally:
        dns.close()


# -- backpressure ----------------------------------------------------------

def _rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


@timeout(90)
def test_backpressure_memory_bounded_both_ways():
    """200 MB pushed each way into a reader that does not read: the relay's
    memory stays bounded (it stops reading), then every byte arrives."""
    total = 200 << 20
    chunk = os.urandom(1 << 20)
    for model, extra in [("epoll", []), ("fork", []), ("epoll", ["--no-splice"])]:
        pushed = threading.Event()

        def target(s):
            # target -> client: push until the relay stops taking it
            s.settimeout(60)
            sent = 0
            while sent < total:
                sent += s.send(chunk[:min(len(chunk), total - sent)])
            s.shutdown(socket.SHUT_WR)
            pushed.set()
            got = 0
            while True:
                b = s.recv(1 << 20)
                if not b:
                    return got
                got += len(b)
        t = Target(target)
        with relay(extra + ["tcp://127.0.0.1:0", "127.0.0.1:%d" % t.port],
                   model) as r:
            c = connect(r.port, timeout=60)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            pids = [r.pid]
            time.sleep(1.5)  # the target pushes into the relay; nobody reads
            pids += harness.children(r.pid)
            rss_stalled = _rss_kb(pids)
            assert not pushed.is_set(), "200 MB went through with no reader"
            # client -> target while the target does not read either
            c.setblocking(False)
            pushed_up = 0
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                try:
                    pushed_up += c.send(chunk)
                except BlockingIOError:
                    time.sleep(0.05)
            rss_both = _rss_kb(pids)
            assert pushed_up < total, "the target took 200 MB without reading"
            assert rss_both < 64 * 1024, (model, rss_stalled, rss_both)
            # now read everything: nothing was lost
            c.setblocking(True)
            c.settimeout(60)
            got = 0
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                got += len(b)
            assert got == total, (model, got)
            c.shutdown(socket.SHUT_WR)
            assert t.join(60) == pushed_up, model
            c.close()


# -- access control --------------------------------------------------------

def test_access_list_on_the_relay():
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in MODELS:
            with relay(["-v", "--deny", "127.0.0.2", "tcp://127.0.0.1:0",
                        "127.0.0.1:%d" % echo.port], model) as r:
                c = connect(r.port, src="127.0.0.2")
                try:
                    c.sendall(b"denied?")
                    c.shutdown(socket.SHUT_WR)
                    assert recv_all(c) == b""
                except (ConnectionResetError, BrokenPipeError):
                    pass  # refused while our bytes were in flight
                except OSError as e:
                    assert e.errno == errno.ENOTCONN, e  # reset before shutdown()
                c.close()
                c = connect(r.port, src="127.0.0.3")
                c.sendall(b"allowed")
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == b"allowed", model
                c.close()
                assert "127.0.0.2" not in echo.stdout_text()


# -- the command line ------------------------------------------------------

def test_usage_errors_exit_2():
    cases = [
        (["relay"], "missing LISTEN_ADDRESS and TARGET_ADDRESS"),
        (["relay", "tcp://127.0.0.1:0"], "missing TARGET_ADDRESS"),
        (["relay", "tcp://127.0.0.1:0", "tcp://:70000"], "port out of range"),
        (["relay", "tcp://127.0.0.1:0", "udp://127.0.0.1:9"],
         "stream to stream"),
        (["relay", "tcp://127.0.0.1:0", "127.0.0.1:9", "extra"], "extra"),
        (["relay", "-w", "soon", "tcp://127.0.0.1:0", "127.0.0.1:9"],
         "connect-timeout"),
        (["relay", "--root", "/", "tcp://127.0.0.1:0", "127.0.0.1:9"],
         "--root is an option of the http service, not of relay"),
    ]
    for args, needle in cases:
        out = run_client(args)
        assert out.returncode == 2, (args, out)
        assert needle in out.err, (args, out.err)
        assert len(out.err.strip().splitlines()) == 1, out.err
    h = run_client(["relay", "--help"])
    assert h.returncode == 0 and "LISTEN_ADDRESS TARGET_ADDRESS" in h.out


# -- TLS on the listening side, connect timeout ------------------------------

def test_tls_listening_side_copies_to_plain_target():
    """--tls ends TLS at the relay: the target gets the plain bytes (and the
    copying path carries them: a TLS connection's bytes need user space)."""
    data = os.urandom(200000)
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in MODELS:
            with relay(["-v", "--tls", "tcp://127.0.0.1:0",
                        "127.0.0.1:%d" % echo.port], model) as r:
                m = re.search(r"TLS certificate (sha256:[0-9a-f]{64})",
                              r.stderr_text())
                assert m, r.stderr_text()
                out = run_client(["connect", "--pin", m.group(1),
                                  "tcp://127.0.0.1:%d" % r.port], input=data,
                                 timeout=20)
                assert out.returncode == 0, out
                assert out.stdout == data, (model, len(out.stdout))
                line = relay_line(r, "bytes to target")
                assert "%d bytes to target" % len(data) in line, line
                assert "spliced" not in line, line


@timeout(40)
def test_connect_timeout_gives_up():
    """-w: an address that never answers (a listener whose backlog is full
    drops the SYN) is given up after the timeout (well before the kernel's
    own, past the client's 15 s), and the client's connection closed; the
    -v line says so."""
    full = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue (never accepted)
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    time.sleep(0.2)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(("127.0.0.1", port))
        hangs = False
    except socket.timeout:
        hangs = True
    except OSError:
        hangs = False
    probe.close()
    try:
        if not hangs:
            raise Skip("this kernel answers a full backlog's SYN")
        with relay(["-v", "-w", "1", "tcp://127.0.0.1:0",
                    "127.0.0.1:%d" % port]) as r:
            c = connect(r.port, timeout=15)
            try:
                assert c.recv(10) == b""
            except ConnectionResetError:
                pass
            c.close()
            line = relay_line(r, "target down", timeout=10)
            assert "timed out" in line, line
    finally:
        for f in fillers:
            f.close()
        full.close()


@timeout(60)
def test_target_ends_first_then_client_uploads_and_ends():
    """The target says its piece and ends its direction; the client then
    uploads 20 MB and ends its own while the target reads slowly: with
    both directions ended at the client's socket (a hangup) and its reading
    paused, nothing of the upload may be lost."""
    data = os.urandom(20 << 20)
    for model, extra in [("epoll", []), ("fork", []), ("poll", []),
                         ("fork", ["--no-splice"])]:
        def target(s):
            s.sendall(b"greeting")
            s.shutdown(socket.SHUT_WR)
            time.sleep(1)  # let the relay fill up and pause the client
            return hashlib.sha256(recv_all(s, limit=64 << 20)).hexdigest()
        t = Target(target)
        with relay(extra + ["-v", "tcp://127.0.0.1:0",
                            "127.0.0.1:%d" % t.port], model) as r:
            c = connect(r.port, timeout=30)
            assert recv_all(c) == b"greeting"
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            assert t.join(40) == hashlib.sha256(data).hexdigest(), (model, extra)
            c.close()
            line = relay_line(r, "bytes to target")
            assert "%d bytes to target" % len(data) in line, line


def test_stop_with_open_relayed_connection():
    """SIGTERM with a relayed connection open and idle: it gets --grace,
    then the relay exits 0 and the client sees the end."""
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in MODELS:
            r = relay(["--grace", "1", "tcp://127.0.0.1:0",
                       "127.0.0.1:%d" % echo.port], model)
            c = connect(r.port, timeout=15)
            c.sendall(b"open")
            assert c.recv(10) == b"open"
            assert r.stop(15) == 0, r.stderr_text()
            try:
                assert c.recv(10) == b""
            except ConnectionResetError:
                pass
            c.close()
            r.check_clean()


def test_client_reset_resets_the_target():
    """A client that resets (not an orderly end of stream) must not look
    to the target like a complete stream: the target sees a reset too."""
    import struct
    for model, extra in [("epoll", []), ("fork", []), ("epoll", ["--no-splice"])]:
        def target(s):
            got = b""
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        return ("end", got)
                    got += b
            except ConnectionResetError:
                return ("reset", got)
        t = Target(target)
        with relay(extra + ["-v", "tcp://127.0.0.1:0",
                            "127.0.0.1:%d" % t.port], model) as r:
            c = connect(r.port)
            c.sendall(b"partial upload")
            poll_until(lambda: False, 0.3)  # let it reach the target
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            c.close()  # RST
            how, got = t.join(20)
            assert how == "reset", (model, extra, how, got)
            assert got == b"partial upload"
            line = relay_line(r, "bytes to target")
            assert "cut short" in line, line


ALL_MODELS = ["iterative", "fork", "thread", "prefork", "select", "poll",
              "epoll"]


def test_every_model_relays_both_ways():
    """Every model drives the relay (its upstream is a watch of the
    connection): 200 KB each way, past the switch to splice."""
    data = os.urandom(200000)
    with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
        for model in ALL_MODELS:
            with relay(["-v", "tcp://127.0.0.1:0",
                        "127.0.0.1:%d" % echo.port], model) as r:
                c = connect(r.port)
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == data, model
                c.close()
                line = relay_line(r, "bytes to target")
                assert "200000 bytes to target, 200000 bytes from target" \
                    in line, (model, line)


def test_many_short_connections_leave_no_descriptors():
    """300 short relayed connections (some past the switch to splice, some
    to a dead target): the relay's descriptors come back to where they
    were, and under fork no child is left unreaped."""
    from harness import fd_count, zombies
    big = os.urandom(100000)
    hold, dead = free_port()
    try:
        with Server(["echo", "tcp://127.0.0.1:0"]) as echo:
            for model in MODELS:
                with relay(["tcp://127.0.0.1:0",
                            "127.0.0.1:%d" % echo.port], model) as r:
                    # a first connection: the model's own descriptors (a
                    # fork server's child pipe) are made as it starts to run
                    c = connect(r.port)
                    c.sendall(b"warm")
                    c.shutdown(socket.SHUT_WR)
                    assert recv_all(c) == b"warm"
                    c.close()
                    time.sleep(0.2)
                    before = fd_count(r.pid)
                    for i in range(150):
                        c = connect(r.port)
                        data = big if i % 10 == 0 else b"short %d" % i
                        c.sendall(data)
                        c.shutdown(socket.SHUT_WR)
                        assert recv_all(c) == data, (model, i)
                        c.close()
                    assert poll_until(lambda: fd_count(r.pid) == before, 5), \
                        (model, before, fd_count(r.pid))
                    assert poll_until(lambda: not zombies(r.pid), 5), model
                with relay(["tcp://127.0.0.1:0", "127.0.0.1:%d" % dead],
                           model) as r:
                    c = connect(r.port)
                    try:
                        recv_all(c)
                    except ConnectionResetError:
                        pass
                    c.close()
                    time.sleep(0.2)
                    before = fd_count(r.pid)
                    for i in range(150):
                        c = connect(r.port)
                        try:
                            assert c.recv(10) == b""
                        except ConnectionResetError:
                            pass
                        c.close()
                    assert poll_until(lambda: fd_count(r.pid) == before, 5), \
                        (model, before, fd_count(r.pid))
    finally:
        hold.close()


def test_target_reset_resets_the_client():
    """A target that resets mid-answer: the client sees a reset too, not an
    orderly end that would make a cut answer look whole."""
    import struct
    for model, extra in [("epoll", []), ("fork", []), ("epoll", ["--no-splice"])]:
        def target(s):
            s.recv(100)
            s.sendall(b"partial answer")
            time.sleep(0.3)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            # unread input makes close() reset as well: both ways a reset
            s.close()
        t = Target(target)
        with relay(extra + ["-v", "tcp://127.0.0.1:0",
                            "127.0.0.1:%d" % t.port], model) as r:
            c = connect(r.port)
            c.sendall(b"question")
            got, how = b"", None
            try:
                while True:
                    b = c.recv(100)
                    if not b:
                        how = "end"
                        break
                    got += b
            except ConnectionResetError:
                how = "reset"
            c.close()
            t.join(10)
            assert how == "reset", (model, extra, how, got)
            line = relay_line(r, "bytes to target")
            assert "Connection reset by peer" in line, line


# -- telling the target who the client is (issue 13: relay --send-proxy) -----

@timeout(60)
def test_send_proxy_tells_the_target_the_client():
    """relay --send-proxy v1|v2 in front of `serve echo --proxy-protocol`: the
    echo service names the relay's client (a 127.0.0.x the test picks), not
    the relay; and bytes pass unchanged after the header."""
    with Server(["echo", "--proxy-protocol", "tcp://127.0.0.1:0"]) as echo:
        for n, version in enumerate(("v1", "v2")):
            src = "127.0.0.%d" % (21 + n)
            with relay(["--send-proxy", version, "tcp://127.0.0.1:0",
                        "127.0.0.1:%d" % echo.port]) as r:
                c = connect(r.port, src=src)
                port = c.getsockname()[1]
                c.sendall(b"hello %s\n" % version.encode())
                c.shutdown(socket.SHUT_WR)
                assert recv_all(c) == b"hello %s\n" % version.encode(), version
                c.close()
                assert echo.wait_stdout("from %s, port %d" % (src, port)), (
                    version, echo.stdout_text()[-500:])


def test_send_proxy_bad_version_and_udp_are_usage_errors():
    for args in (["--send-proxy", "v3", "tcp://127.0.0.1:0", "127.0.0.1:9"],
                 ["--send-proxy", "v2", "udp://127.0.0.1:0", "udp://127.0.0.1:9"]):
        p = run([SOCKIT, "relay"] + args, timeout=10)
        assert p.returncode == 2, (args, p)
        assert b"send-proxy" in p.stderr, p.stderr
