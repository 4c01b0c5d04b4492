"""`sockit connect --tls` against real TLS peers on loopback.

openssl s_server, socat OPENSSL-LISTEN and ncat --ssl as servers, with
certificates made by the openssl command for each test (a CA, leaves for
localhost/127.0.0.1 and for another name, an expired and a not-yet-valid
leaf, a second CA, a client certificate); Python's ssl module for the
servers that misbehave on purpose (no close_notify). Each refusal is exit
status 1 with one line naming what failed and what to do.
"""

import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time

from harness import (SOCKIT, Server, free_port, poll_until, require, run, run_client,
                     start, tempdir, timeout)
from tlscerts import Certs, openssl  # the certificate fixtures


# -- servers ------------------------------------------------------------------

class SServer:
    """`openssl s_server -rev` (each line comes back reversed) for one
    connection, on a port the kernel picks."""

    def __init__(self, certs, cert="leaf", extra=()):
        require("openssl")
        self.p = start(["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept",
                        "1", "-rev", "-cert", certs.path(cert + ".pem"), "-key",
                        certs.path(cert + ".key")] + list(extra),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.p.stdout.readline().decode()
            if not line:
                break
            if line.startswith("ACCEPT"):
                self.port = int(line.rsplit(":", 1)[1])
                break
        assert self.port, "openssl s_server did not start"
        self.out = b""
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for chunk in iter(lambda: self.p.stdout.read(4096), b""):
            self.out += chunk

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=5)


def port_listening(port):
    """True when a TCP port on 127.0.0.1 is in LISTEN state (from
    /proc/net/tcp: no probe connection, which a one-shot server would take)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return True
    return False


def wait_listening(port):
    assert poll_until(lambda: port_listening(port), timeout=10), (
        "nothing listens on port %d" % port)


def python_tls_server(certs, handler):
    """A Python ssl server for one connection running handler(tls_socket,
    raw_socket) in a thread; returns (port, thread)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.path("leaf.pem"), certs.path("leaf.key"))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(10)

    def serve():
        try:
            raw, _ = ls.accept()
            raw.settimeout(10)
            s = ctx.wrap_socket(raw, server_side=True)
            handler(s)
        finally:
            ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t


def refused(args, *needles, input=b"hello\n"):
    """connect must fail with exit 1 and one line containing the needles."""
    r = run_client(["connect"] + args, input=input, timeout=15)
    assert r.returncode == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sockit: TLS: "), r
    for n in needles:
        assert n in lines[0], "%r lacks %r" % (lines[0], n)
    assert r.stdout == b"", r
    return lines[0]


# -- tests --------------------------------------------------------------------

def test_tls_s_server_exchange_and_verbose():
    c = Certs()
    with SServer(c, extra=["-alpn", "foo,http/1.1"]) as s:
        r = run_client(["connect", "-v", "--ca", c.path("ca.pem"), "--alpn",
                        "http/1.1", s.addr], input=b"hello, tls\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"slt ,olleh\n", r
        assert "TLS: TLSv1.3, cipher TLS_" in r.err, r
        assert "ALPN http/1.1" in r.err, r
        assert "server CN=localhost" in r.err, r


@timeout(60)
def test_tls_socat_echo_1mb_both_ways():
    require("socat")
    c = Certs()
    with open(c.path("both.pem"), "wb") as f:
        f.write(open(c.path("leaf.pem"), "rb").read())
        f.write(open(c.path("leaf.key"), "rb").read())
    hold, port = free_port()
    hold.close()
    p = start(["socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,verify=0,"
               "cert=%s" % (port, c.path("both.pem")), "EXEC:cat"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        data = os.urandom(1 << 20)
        r = run_client(["connect", "--ca", c.path("ca.pem"), "localhost:%d" % port],
                       input=data, timeout=30)
        assert r.returncode == 0, r
        assert hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(data).hexdigest(), (
            "echo returned %d bytes of %d" % (len(r.stdout), len(data)))
    finally:
        p.kill()
        p.wait(timeout=5)


def test_tls_ncat_ssl_both_ways_and_its_missing_close_notify():
    """ncat --ssl -l sends its stdin and prints what it receives. Both ways the
    bytes arrive whole. Our input stays open until ncat's bytes are all here:
    a half-close from us makes ncat end its session at once and drop what it
    has not sent yet (behind a close_notify, which nobody could detect). Then
    ncat's end of stream is either a proper close_notify (exit 0) or a bare
    shutdown, which sockit reports as a possible truncation (exit 1)."""
    require("ncat")
    c = Certs()
    a, b = os.urandom(100000), os.urandom(100000)
    hold, port = free_port()
    hold.close()
    nc = start(["ncat", "--ssl", "--ssl-cert", c.path("leaf.pem"), "--ssl-key",
                c.path("leaf.key"), "-l", "127.0.0.1", str(port)],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
               stderr=subprocess.DEVNULL)
    got_b = bytearray()

    def drain(f, into):
        for chunk in iter(lambda: f.read1(65536), b""):
            into.extend(chunk)
    reader = threading.Thread(target=drain, args=(nc.stdout, got_b), daemon=True)
    reader.start()
    wait_listening(port)
    cl = start([SOCKIT, "connect", "--ca", c.path("ca.pem"), "127.0.0.1:%d" % port],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    cl_reader = threading.Thread(target=drain, args=(cl.stdout, out), daemon=True)
    cl_reader.start()
    try:
        cl.stdin.write(b)
        cl.stdin.flush()
        assert poll_until(lambda: len(got_b) >= len(b), timeout=10), (
            "ncat received %d bytes of %d" % (len(got_b), len(b)))
        nc.stdin.write(a)
        nc.stdin.close()
        assert poll_until(lambda: len(out) >= len(a), timeout=10), (
            "received %d bytes of %d from ncat" % (len(out), len(a)))
        cl.stdin.close()
        cl.wait(timeout=15)
        cl_reader.join(10)
        err = cl.stderr.read()
    finally:
        if cl.poll() is None:
            cl.kill()
    nc.wait(timeout=10)
    reader.join(10)
    assert bytes(got_b) == b
    assert bytes(out) == a, "received %d bytes, not what ncat sent" % len(out)
    if cl.returncode == 0:
        assert err == b"", err  # ncat's close_notify arrived: a proper end
        return
    assert cl.returncode == 1, (cl.returncode, err)
    assert err.decode().strip() == ("sockit: TLS: connection closed without "
                                    "close_notify: data may be truncated"), err


def test_tls_refusals_name_ca_dates_pin():
    c = Certs()
    with SServer(c, cert="other") as s:
        refused(["--ca", c.path("ca.pem"), "localhost:%d" % s.port],
                "certificate verify failed for tcp://", "hostname mismatch",
                "(certificate is for other.test; use --sni NAME)")
    with SServer(c, cert="leaf") as s:
        refused(["--tls", s.addr], "certificate verify failed",
                "unable to get local issuer certificate",
                "use --ca FILE with that CA, or --pin sha256:...")
    with SServer(c, cert="leaf") as s:
        refused(["--ca", c.path("ca2.pem"), s.addr], "unable to get local issuer")
    with SServer(c, cert="expired") as s:
        refused(["--ca", c.path("ca.pem"), s.addr], "certificate has expired",
                "2021")
    with SServer(c, cert="notyet") as s:
        refused(["--ca", c.path("ca.pem"), s.addr], "certificate is not yet valid",
                "2040")
    with SServer(c, cert="self") as s:
        refused(["--tls", s.addr], "self-signed certificate",
                "(use --pin sha256:... or --ca FILE)")
    wrong = "sha256:" + "ab" * 32
    with SServer(c, cert="leaf") as s:
        refused(["--ca", c.path("ca.pem"), "--pin", wrong, s.addr],
                "TLS: wrong pin: the server's key is %s (expected %s)"
                % (c.pin("leaf"), wrong))


def test_tls_pin_trusts_self_signed():
    c = Certs()
    with SServer(c, cert="self") as s:
        r = run_client(["connect", "--pin", c.pin("self"), s.addr],
                       input=b"pinned\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"dennip\n", r
        assert r.err == "", r


def test_tls_insecure_warns():
    c = Certs()
    with SServer(c, cert="other") as s:
        r = run_client(["connect", "--insecure", s.addr], input=b"abc\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"cba\n", r
        assert ("sockit: warning: --insecure: the server's identity is not "
                "checked") in r.err, r


def test_tls_client_certificate():
    c = Certs()
    with SServer(c, extra=["-Verify", "1", "-CAfile", c.path("ca.pem")]) as s:
        r = run_client(["connect", "--ca", c.path("ca.pem"), "--cert",
                        c.path("client.pem"), "--key", c.path("client.key"), s.addr],
                       input=b"mutual\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"lautum\n", r
    with SServer(c, extra=["-Verify", "1", "-CAfile", c.path("ca.pem")]) as s:
        refused(["--ca", c.path("ca.pem"), s.addr], "refused the connection",
                "certificate required", "use --cert FILE --key FILE")


def test_tls_half_close_then_reply():
    """At the end of stdin the client sends close_notify and keeps reading:
    the server sees the end of stream, then answers, then closes properly."""
    c = Certs()
    got = []

    def handler(s):
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:  # close_notify
                break
            data += chunk
        got.append(data)
        s.sendall(b"got %d bytes\n" % len(data))
        s.unwrap().close()  # our close_notify, then close

    port, t = python_tls_server(c, handler)
    data = os.urandom(300000)
    r = run_client(["connect", "--ca", c.path("ca.pem"), "127.0.0.1:%d" % port],
                   input=data, timeout=15)
    t.join(10)
    assert r.returncode == 0, r
    assert got == [data]
    assert r.stdout == b"got 300000 bytes\n", r


def test_tls_truncation_is_an_error():
    c = Certs()

    def handler(s):
        s.sendall(b"partial data\n")
        while True:
            try:
                if not s.recv(4096):
                    break
            except ssl.SSLError:
                break
        socket.socket(fileno=s.detach()).close()  # no close_notify

    port, t = python_tls_server(c, handler)
    r = run_client(["connect", "--ca", c.path("ca.pem"), "127.0.0.1:%d" % port],
                   input=b"", timeout=15)
    t.join(10)
    assert r.returncode == 1, r
    assert r.stdout == b"partial data\n", r
    assert r.err.strip() == ("sockit: TLS: connection closed without close_notify: "
                             "data may be truncated"), r


def test_tls_to_a_plain_server():
    with Server(["echo", "-q", "tcp://127.0.0.1:0"]) as srv:
        refused(["--tls", "127.0.0.1:%d" % srv.port],
                "(is it a TLS server?)")


def test_tls_usage_errors():
    d = tempdir()
    cases = [
        (["--tls", "unix:" + os.path.join(d, "s")], 2,
         "--tls over a Unix socket needs --pin sha256:..., --sni NAME or --insecure"),
        (["--tls", "udp://127.0.0.1:9"], 2, "--tls needs a stream address"),
        (["--tls", "--prompt", "127.0.0.1:9"], 2,
         "--prompt and --tls cannot be used together"),
        (["--pin", "sha256:zz", "127.0.0.1:9"], 2, 'bad pin "sha256:zz"'),
        # files are checked before connecting (nothing listens on port 9)
        (["--cert", os.path.join(d, "none.pem"), "127.0.0.1:9"], 1,
         "TLS: --cert %s: no such file" % os.path.join(d, "none.pem")),
        (["--ca", os.path.join(d, "none"), "127.0.0.1:9"], 1, "no such file"),
    ]
    for args, status, needle in cases:
        r = run_client(["connect"] + args, timeout=10)
        assert r.returncode == status, r
        assert needle in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r


def test_tls_unix_socket_with_sni_and_pin():
    """Over a Unix socket: socat's TLS server, checked by --sni or a pin."""
    require("socat")
    c = Certs()
    with open(c.path("both.pem"), "wb") as f:
        f.write(open(c.path("leaf.pem"), "rb").read())
        f.write(open(c.path("leaf.key"), "rb").read())
    path = os.path.join(c.dir, "tls.sock")
    # socat's OPENSSL-LISTEN is TCP only: a second socat bridges a Unix
    # socket to it, so the TLS bytes cross the Unix socket unchanged.
    hold, port = free_port()
    hold.close()
    tls = start(["socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,verify=0,"
                 "cert=%s" % (port, c.path("both.pem")), "EXEC:cat"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bridge = start(["socat", "UNIX-LISTEN:%s,fork" % path,
                    "TCP:127.0.0.1:%d" % port],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        assert poll_until(lambda: os.path.exists(path), timeout=10)
        for opts in (["--sni", "localhost", "--ca", c.path("ca.pem")],
                     ["--pin", c.pin("leaf")]):
            r = run_client(["connect"] + opts + ["unix:" + path], input=b"over unix\n",
                           timeout=15)
            assert r.returncode == 0, r
            assert r.stdout == b"over unix\n", r
    finally:
        for q in (tls, bridge):
            q.kill()
            q.wait(timeout=5)


def test_tls_z_checks_the_handshake():
    c = Certs()
    with SServer(c, cert="self") as s:
        r = run_client(["connect", "-z", "-v", "--pin", c.pin("self"), s.addr],
                       timeout=15)
        assert r.returncode == 0, r
        assert "accepts TLS connections" in r.err, r
    with SServer(c, cert="self") as s:
        refused(["-z", "--tls", s.addr], "self-signed certificate")


def test_tls_handshake_timeout():
    """A server that never answers the ClientHello: -w bounds the handshake."""
    with Server(["discard", "-q", "tcp://127.0.0.1:0"]) as srv:
        line = refused(["--tls", "-w", "0.5", "127.0.0.1:%d" % srv.port], input=b"")
        assert line == ("sockit: TLS: handshake with tcp://127.0.0.1:%d timed out "
                        "after 0.500 s" % srv.port), line


def test_tls_example_client():
    """examples/tls_client: the library's TLS client in a few dozen lines."""
    c = Certs()
    exe = os.path.join(os.path.dirname(SOCKIT), "examples", "tls_client")
    with SServer(c) as s:
        r = run([exe, "localhost", str(s.port), c.path("ca.pem")], input=b"example\n",
                timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"elpmaxe\n", r
        assert "tls_client: TLSv1.3" in r.err and "server CN=localhost" in r.err, r
    with SServer(c, cert="self") as s:
        r = run([exe, "127.0.0.1", str(s.port), c.pin("self")], input=b"pin\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"nip\n", r
    with SServer(c, cert="self") as s:
        r = run([exe, "127.0.0.1", str(s.port)], input=b"x\n", timeout=15)
        assert r.returncode == 1, r
        assert "self-signed certificate" in r.err, r


def test_tls_ca_directory_and_ipv6():
    c = Certs()
    d = os.path.join(c.dir, "cadir")
    os.mkdir(d)
    with open(os.path.join(d, "ca.pem"), "wb") as f:
        f.write(open(c.path("ca.pem"), "rb").read())
    openssl("rehash", d, cwd=d)
    with SServer(c) as s:
        r = run_client(["connect", "--ca", d, s.addr], input=b"dir\n", timeout=15)
        assert r.returncode == 0, r
        assert r.stdout == b"rid\n", r
    # over IPv6 the address is checked against the certificate's IP names
    # (127.0.0.1 only here): refused, and the message says what it is for
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        return
    p = start(["openssl", "s_server", "-accept", "[::1]:0", "-naccept", "1", "-rev",
               "-cert", c.path("leaf.pem"), "-key", c.path("leaf.key")],
              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        port = None
        for line in iter(p.stdout.readline, b""):
            if line.startswith(b"ACCEPT"):
                port = int(line.decode().rsplit(":", 1)[1])
                break
        assert port
        refused(["--ca", c.path("ca.pem"), "[::1]:%d" % port], "IP address mismatch",
                "(certificate is for localhost, 127.0.0.1; use --sni NAME)")
    finally:
        p.kill()
        p.wait(timeout=5)
