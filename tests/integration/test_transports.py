"""Every transport, with sockit's own client and with real ones.

echo over TCP (IPv4 and IPv6), UDP, Unix stream and datagram sockets and the
abstract namespace; netcat-openbsd, ncat and socat as clients; 10 MB of
random bytes through echo; the client's half-close; `serve stdio`; several
addresses in one server process.
"""

import hashlib
import os
import socket
import subprocess
import threading
import time

from harness import (Server, exchange, poll_until, recv_all, require, run,
                     run_client, start, tempdir, timeout, unique_name)

LINE = b"hello, sockit\n"
# A datagram client stops this long after its input ends and replies stop.
DGRAM_WAIT = ["-w", "1"]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def connect_echo(address, data=LINE, extra=()):
    """`sockit connect ADDRESS` with data on stdin: must echo it exactly."""
    r = run_client(["connect"] + list(extra) + [address], input=data,
                   timeout=60)
    assert r.returncode == 0, "client failed: %r" % r
    assert len(r.stdout) == len(data) and r.stdout == data, (
        "echo returned %d bytes (sha %s), sent %d (sha %s); stderr %r"
        % (len(r.stdout), sha(r.stdout)[:12], len(data), sha(data)[:12],
           r.err))
    return r


# -- sockit connect over every transport ------------------------------------

def test_echo_tcp_ipv4():
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        assert srv.addresses == ["tcp://127.0.0.1:%d" % srv.port], (
            srv.addresses)
        connect_echo("127.0.0.1:%d" % srv.port)
        connect_echo("tcp://127.0.0.1:%d" % srv.port)
        connect_echo("tcp4://localhost:%d" % srv.port)


def test_echo_tcp_ipv6():
    with Server(["echo", "tcp://[::1]:0"]) as srv:
        assert srv.addresses == ["tcp://[::1]:%d" % srv.port], srv.addresses
        connect_echo("[::1]:%d" % srv.port)
        connect_echo("tcp6://[::1]:%d" % srv.port)


def test_echo_wildcard_takes_ipv4_and_ipv6():
    # PORT alone: one dual-stack socket answering on both families.
    with Server(["echo", "0"]) as srv:
        connect_echo("127.0.0.1:%d" % srv.port)
        connect_echo("[::1]:%d" % srv.port)
        connect_echo(str(srv.port))  # a bare PORT connects to localhost


def test_echo_udp():
    with Server(["echo", "udp://127.0.0.1:0"]) as srv:
        assert srv.addresses == ["udp://127.0.0.1:%d" % srv.port]
        r = connect_echo("udp://127.0.0.1:%d" % srv.port, extra=DGRAM_WAIT)
        assert r.elapsed < 5, "udp client took %.1fs" % r.elapsed


def test_echo_udp_ipv6():
    with Server(["echo", "udp://[::1]:0"]) as srv:
        connect_echo("udp6://[::1]:%d" % srv.port, extra=DGRAM_WAIT)


def test_echo_udp_wildcard_both_families():
    # udp://:0 is one dual-stack socket: replies go back to each family.
    with Server(["echo", "udp://:0"]) as srv:
        assert srv.addresses == ["udp://[::]:%d" % srv.port], srv.addresses
        for fam, host in ((socket.AF_INET, "127.0.0.1"),
                          (socket.AF_INET6, "::1")):
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.settimeout(5)
                s.sendto(b"to " + host.encode(), (host, srv.port))
                data, peer = s.recvfrom(100)
                assert data == b"to " + host.encode(), data
                assert peer[:2] == (host, srv.port), peer
                line = "Received %d bytes from %s, port %d\n" % (
                    len(data), host, s.getsockname()[1])
                assert srv.wait_stdout(line), srv.stdout_text()


def test_echo_unix_stream():
    path = os.path.join(tempdir(), "echo.sock")
    with Server(["echo", "unix:" + path]) as srv:
        connect_echo("unix:" + path)
        connect_echo("unix:" + path, data=b"second\n")
        assert srv.alive()
    assert not os.path.exists(path)


def test_echo_unixgram():
    path = os.path.join(tempdir(), "echo.dgram")
    with Server(["echo", "unixgram:" + path]):
        connect_echo("unixgram:" + path, extra=DGRAM_WAIT)
    assert not os.path.exists(path)


def test_echo_unix_abstract():
    name = unique_name()
    with Server(["echo", "unix:@" + name]):
        connect_echo("unix:@" + name)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect("\0" + name)
            assert exchange(s, b"abstract") == b"abstract"


def test_echo_unixgram_abstract():
    name = unique_name()
    with Server(["echo", "unixgram:@" + name]):
        connect_echo("unixgram:@" + name, extra=DGRAM_WAIT)


def test_port_by_service_name():
    # PORT may be a service name, turned into its number when parsed. No
    # fixed port is ever used: the host cannot resolve, and the error
    # names the number the name became.
    r = run_client(["connect", "nosuchhost.invalid:echo"])
    assert r.returncode == 1, r
    assert "nosuchhost.invalid:7:" in r.err, r
    r = run_client(["connect", "udp://nosuchhost.invalid:daytime"])
    assert r.returncode == 1 and "udp://nosuchhost.invalid:13:" in r.err, r
    r = run_client(["connect", "nosuchhost.invalid", "http"])
    assert r.returncode == 1 and "nosuchhost.invalid:80:" in r.err, r
    r = run_client(["connect", "127.0.0.1:nosuchservice"])
    assert r.returncode == 2 and "nosuchservice" in r.err, r


# -- real clients -------------------------------------------------------------

def test_nc_tcp():
    require("nc")
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["nc", "-N", "127.0.0.1", str(srv.port)], input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_nc_tcp_ipv6():
    require("nc")
    with Server(["echo", "0"]) as srv:
        r = run(["nc", "-N", "::1", str(srv.port)], input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_nc_unix():
    require("nc")
    path = os.path.join(tempdir(), "nc.sock")
    with Server(["echo", "unix:" + path]):
        r = run(["nc", "-N", "-U", path], input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_nc_udp():
    require("nc")
    with Server(["echo", "udp://127.0.0.1:0"]) as srv:
        r = run(["nc", "-u", "-w1", "127.0.0.1", str(srv.port)], input=LINE)
        assert r.stdout == LINE, r


def test_ncat_tcp():
    require("ncat")
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["ncat", "127.0.0.1", str(srv.port)], input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_socat_tcp():
    require("socat")
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["socat", "-t", "10", "-", "TCP:127.0.0.1:%d" % srv.port],
                input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_socat_unix():
    require("socat")
    path = os.path.join(tempdir(), "socat.sock")
    with Server(["echo", "unix:" + path]):
        r = run(["socat", "-t", "10", "-", "UNIX-CONNECT:" + path],
                input=LINE)
        assert r.returncode == 0 and r.stdout == LINE, r


def test_socat_udp():
    require("socat")
    with Server(["echo", "udp://127.0.0.1:0"]) as srv:
        r = run(["socat", "-t", "1", "-", "UDP:127.0.0.1:%d" % srv.port],
                input=LINE)
        assert r.stdout == LINE, r


def test_sockit_connect_to_socat_server():
    # The other way round: sockit's client against a real server. (Not
    # socat's PIPE: socat writes to its own pipe blocking, and deadlocks
    # once more than a pipe's worth is in flight. With nofork, cat's
    # stdin and stdout are the connection itself.)
    require("socat")
    path = os.path.join(tempdir(), "socat-echo.sock")
    start(["socat", "UNIX-LISTEN:%s,fork" % path, "EXEC:cat,nofork"],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert poll_until(lambda: os.path.exists(path), 5), "socat never bound"
    connect_echo("unix:" + path)
    connect_echo("unix:" + path, data=os.urandom(1 << 20))


# -- bulk data ----------------------------------------------------------------

BIG = 10 * 1024 * 1024


@timeout(60)
def test_10mb_tcp_sockit_connect():
    data = os.urandom(BIG)
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        connect_echo("127.0.0.1:%d" % srv.port, data=data)


@timeout(60)
def test_10mb_unix_sockit_connect():
    data = os.urandom(BIG)
    path = os.path.join(tempdir(), "big.sock")
    with Server(["echo", "unix:" + path]):
        connect_echo("unix:" + path, data=data)


@timeout(60)
def test_10mb_tcp_socat():
    require("socat")
    data = os.urandom(BIG)
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["socat", "-t", "10", "-", "TCP:127.0.0.1:%d" % srv.port],
                input=data, timeout=60)
        assert r.returncode == 0, r
        assert sha(r.stdout) == sha(data), (
            "got %d bytes back of %d" % (len(r.stdout), len(data)))


@timeout(60)
def test_10mb_unix_socat():
    require("socat")
    data = os.urandom(BIG)
    path = os.path.join(tempdir(), "bigsocat.sock")
    with Server(["echo", "unix:" + path]):
        r = run(["socat", "-t", "10", "-", "UNIX-CONNECT:" + path],
                input=data, timeout=60)
        assert r.returncode == 0, r
        assert sha(r.stdout) == sha(data), (
            "got %d bytes back of %d" % (len(r.stdout), len(data)))


@timeout(60)
def test_10mb_echo_reports_every_byte():
    # The echo report lines add up to exactly what was sent.
    data = os.urandom(BIG)
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        connect_echo("127.0.0.1:%d" % srv.port, data=data)
        total = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            total = sum(int(line.split()[1])
                        for line in srv.stdout_text().splitlines()
                        if line.startswith("Received "))
            if total >= BIG:
                break
            time.sleep(0.05)
        assert total == BIG, "reports add up to %d of %d" % (total, BIG)


# -- half-close ---------------------------------------------------------------

def one_shot_server(handler):
    """A python TCP server on 127.0.0.1:0 running handler(conn) once."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(10)
    errors = []

    def serve():
        try:
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(10)
                handler(conn)
        except Exception as e:  # reported by the test
            errors.append(e)
        finally:
            ls.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t, errors


def test_connect_half_close_output_continues():
    # Input ends at once; the peer answers only after it saw EOF, slowly,
    # and 1 MB of it: all of it must come out, and the client exit 0.
    reply = os.urandom(1 << 20)
    got = []

    def handler(conn):
        got.append(recv_all(conn))  # until the client's FIN
        time.sleep(0.3)
        for i in range(0, len(reply), 65536):
            conn.sendall(reply[i:i + 65536])
            time.sleep(0.005)

    port, t, errors = one_shot_server(handler)
    r = run_client(["connect", "127.0.0.1:%d" % port], input=b"question\n",
                   timeout=20)
    t.join(10)
    assert not errors, errors
    assert got == [b"question\n"], got
    assert r.returncode == 0, r
    assert sha(r.stdout) == sha(reply), (
        "client printed %d of %d bytes" % (len(r.stdout), len(reply)))


def test_connect_empty_input_half_closes():
    # No input at all: the peer must see EOF right away and its reply
    # still arrives.
    def handler(conn):
        assert recv_all(conn) == b""
        conn.sendall(b"you said nothing\n")

    port, t, errors = one_shot_server(handler)
    r = run_client(["connect", "127.0.0.1:%d" % port], input=b"",
                   timeout=20)
    t.join(10)
    assert not errors, errors
    assert r.returncode == 0 and r.stdout == b"you said nothing\n", r


def test_connect_keeps_sending_after_peer_half_closes():
    # The peer shuts down its side first (greeting, FIN), then reads all
    # we send: like nc -N and ncat, the client must deliver all of its
    # input, not stop at the peer's EOF (sk_relay: "until both directions
    # are done").
    data = os.urandom(4 << 20)
    got = []

    def handler(conn):
        conn.sendall(b"greeting\n")
        conn.shutdown(socket.SHUT_WR)
        got.append(recv_all(conn))

    port, t, errors = one_shot_server(handler)
    r = run_client(["connect", "127.0.0.1:%d" % port], input=data,
                   timeout=20)
    t.join(10)
    assert not errors, errors
    assert r.returncode == 0 and r.stdout == b"greeting\n", r
    assert got and len(got[0]) == len(data), (
        "the peer received %d of %d bytes after it half-closed"
        % (len(got[0]) if got else -1, len(data)))
    assert sha(got[0]) == sha(data)


# -- serve stdio --------------------------------------------------------------

def test_serve_stdio_both_ways():
    srv = Server(["stdio", "tcp://127.0.0.1:0"], stdin=subprocess.PIPE)
    with srv:
        with socket.socket() as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"from the client\n")
            assert srv.wait_stdout("from the client\n"), srv.stdout_text()
            srv.proc.stdin.write(b"from the server\n")
            srv.proc.stdin.close()  # EOF: the server half-closes
            assert recv_all(s) == b"from the server\n"
        assert srv.wait(10) == 0, srv.stderr_text()
    assert srv.stdout_bytes() == b"from the client\n"


def test_serve_stdio_binary_unix():
    # Binary both ways, concurrently; the server's side ends first.
    data = os.urandom(256 * 1024)
    back = os.urandom(256 * 1024)
    path = os.path.join(tempdir(), "stdio.sock")
    srv = Server(["stdio", "unix:" + path], stdin=subprocess.PIPE)
    with srv:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(path)
            writer = threading.Thread(
                target=lambda: (srv.proc.stdin.write(back),
                                srv.proc.stdin.close()), daemon=True)
            writer.start()
            s.sendall(data)
            got = recv_all(s)  # to the server's FIN, at its stdin's end
            writer.join(10)
            srv._out.wait_for(lambda d: len(d) >= len(data), 5)
        assert srv.wait(10) == 0, srv.stderr_text()
    assert sha(got) == sha(back), "client got %d bytes" % len(got)
    assert sha(srv.stdout_bytes()) == sha(data), (
        "server printed %d bytes" % len(srv.stdout_bytes()))


def test_serve_stdio_answers_after_client_half_closed():
    # The client sends its request and half-closes; only then does the
    # server's operator type the answer. Like `nc -l`, the answer must
    # still reach the client.
    data = os.urandom(64 * 1024)
    back = os.urandom(256 * 1024)
    srv = Server(["stdio", "tcp://127.0.0.1:0"], stdin=subprocess.PIPE)
    with srv:
        with socket.socket() as s:
            s.settimeout(10)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            srv._out.wait_for(lambda d: len(d) >= len(data), 5)
            assert srv.stdout_bytes() == data
            try:
                srv.proc.stdin.write(back)
                srv.proc.stdin.close()
            except BrokenPipeError:
                pass  # the server already left: the check below says so
            got = recv_all(s)
        srv.wait(10)
    assert len(got) == len(back) and sha(got) == sha(back), (
        "client got %d of %d bytes after its half-close"
        % (len(got), len(back)))


def test_serve_stdio_udp():
    # The first datagram picks the peer; a datagram server has no end of
    # stream, so it runs until a signal ends it.
    srv = Server(["stdio", "udp://127.0.0.1:0"], stdin=subprocess.PIPE,
                 expect_exit=None)
    with srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            s.send(b"ping\n")
            assert srv.wait_stdout("ping\n"), srv.stdout_text()
            srv.proc.stdin.write(b"pong\n")
            srv.proc.stdin.flush()
            assert s.recv(100) == b"pong\n"
            s.send(b"again\n")
            assert srv.wait_stdout("ping\nagain\n"), srv.stdout_text()
        srv.proc.stdin.close()
    assert srv.returncode in (0, -15), srv.returncode


# -- several addresses in one process ---------------------------------------

def test_several_addresses_one_process():
    path = os.path.join(tempdir(), "multi.sock")
    name = unique_name()
    with Server(["echo", "0", "udp://127.0.0.1:0", "unix:" + path,
                 "unixgram:@" + name]) as srv:
        assert len(srv.addresses) == 2, srv.addresses
        tcp, udp = srv.port_of("tcp"), srv.port_of("udp")
        connect_echo("127.0.0.1:%d" % tcp, data=b"tcp\n")
        connect_echo("udp://127.0.0.1:%d" % udp, data=b"udp\n",
                     extra=DGRAM_WAIT)
        connect_echo("unix:" + path, data=b"unix\n")
        connect_echo("unixgram:@" + name, data=b"unixgram\n",
                     extra=DGRAM_WAIT)
        # Each once more, in the other order: no listener starves.
        connect_echo("unixgram:@" + name, data=b"2\n", extra=DGRAM_WAIT)
        connect_echo("unix:" + path, data=b"2\n")
        connect_echo("udp://127.0.0.1:%d" % udp, data=b"2\n",
                     extra=DGRAM_WAIT)
        connect_echo("127.0.0.1:%d" % tcp, data=b"2\n")
        assert srv.alive()
    assert not os.path.exists(path)


def test_several_addresses_verbose_lists_all():
    path = os.path.join(tempdir(), "v.sock")
    with Server(["echo", "-v", "tcp://127.0.0.1:0", "unix:" + path]) as srv:
        assert srv.addresses[0].startswith("tcp://127.0.0.1:"), srv.addresses
        assert srv.addresses[1] == "unix:" + path, srv.addresses


def test_verbose_logs_each_connection():
    # -v: the peer's address and port, bytes each way, duration.
    with Server(["echo", "-v", "tcp://127.0.0.1:0"]) as srv:
        with socket.socket() as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            me = "tcp://127.0.0.1:%d" % s.getsockname()[1]
            assert exchange(s, b"12345") == b"12345"
        assert srv.wait_stderr("closed " + me), srv.stderr_text()
        log = srv.stderr_text()
        assert "connection from " + me in log, log
        closed = [ln for ln in log.splitlines() if "closed " + me in ln][0]
        assert "5 bytes in, 5 bytes out" in closed, closed
    r = run_client(["connect", "-v", "127.0.0.1:%d" % srv.port])
    assert r.returncode == 1, r  # the server is gone now
