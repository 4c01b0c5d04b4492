"""`sockit serve --tls`: every stream service under every model, HTTPS,
mutual TLS, hostile handshakes, SIGHUP reloads, against real clients.

Clients: `sockit connect --pin/--ca`, openssl s_client, curl (--cacert,
--pinnedpubkey), socat OPENSSL:, ncat --ssl, sslscan, and Python's ssl
module for what misbehaves on purpose (half a ClientHello, garbage).
Certificates come from tlscerts.Certs (a CA, a leaf for localhost and
127.0.0.1, a client certificate) or the server's ephemeral one (its pin is
read from the line the server prints).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import time

from harness import (Server, poll_until, require, run, run_client, tempdir, timeout)
from svcmatrix import MODELS, check_chargen
from tlscerts import Certs

PIN = re.compile(r"^sockit: TLS certificate (sha256:[0-9a-f]{64}) \(pin it with connect "
                 r"--pin sha256:\.\.\.\)$", re.M)


def pin_of(srv):
    # The line is read from the server's stderr by a thread of the harness:
    # under load it may not have been taken in yet when the port is known.
    poll_until(lambda: PIN.search(srv.stderr_text()), 5)
    m = PIN.search(srv.stderr_text())
    assert m, "no pin line in %r" % srv.stderr_text()
    return m.group(1)


def tls_server(args, model=None):
    extra = ["--model", model] if model else []
    return Server(["--tls"] + extra + list(args))


def connect_pin(srv, data, address=None, timeout_s=20, extra=()):
    addr = address or "tcp://127.0.0.1:%d" % srv.port
    return run_client(["connect", "--pin", pin_of(srv)] + list(extra) + [addr],
                      input=data, timeout=timeout_s)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def echo_check(srv, size, address=None):
    data = os.urandom(size)
    r = connect_pin(srv, data, address)
    assert r.returncode == 0, r
    assert len(r.stdout) == size and sha(r.stdout) == sha(data), (
        "echo over TLS: %d of %d bytes, sha256 differs" % (len(r.stdout), size))


def client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl over memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert len(hello) > 100, hello
    return hello


def py_tls(port, host="127.0.0.1"):
    """A TLS client socket that trusts anything (the server's cert is checked
    by the caller where it matters)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection((host, port), timeout=10)
    return ctx.wrap_socket(s, server_hostname="localhost")


# -- every model, every stream service ------------------------------------------

@timeout(60)
def test_tls_echo_1mib_every_model():
    """1 MiB of random bytes echoed over TLS under each model, sha256 compared;
    10 MB under thread and epoll; over a Unix socket under poll."""
    for model in MODELS:
        with tls_server(["-q", "echo", "tcp://127.0.0.1:0"], model) as srv:
            echo_check(srv, 1 << 20)
            if model in ("thread", "epoll", "uring"):
                echo_check(srv, 10 * 1000 * 1000)
    path = os.path.join(tempdir(), "tls.sock")
    with tls_server(["-q", "echo", "unix:" + path], "poll") as srv:
        echo_check(srv, 1 << 20, address="unix:" + path)


@timeout(60)
def test_tls_server_speaks_first_every_model():
    """daytime and counter write first: into an established session, then
    close with a close_notify (connect exits 0 only after receiving it)."""
    for model in MODELS:
        for svc, pattern in (("daytime", rb"^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}\r?\n$"),
                             ("counter", rb"^Connection \d+!")):
            with tls_server(["-q", svc, "tcp://127.0.0.1:0"], model) as srv:
                r = connect_pin(srv, b"")
                assert r.returncode == 0, (model, svc, r)
                assert re.match(pattern, r.stdout), (model, svc, r.stdout)


@timeout(30)
def test_tls_other_services():
    """chargen, discard, ack, time over TLS (epoll, fork and uring)."""
    for model in ("epoll", "fork", "uring"):
        with tls_server(["-q", "time", "tcp://127.0.0.1:0"], model) as srv:
            r = connect_pin(srv, b"")
            assert r.returncode == 0 and len(r.stdout) == 4, r
        with tls_server(["-q", "discard", "tcp://127.0.0.1:0"], model) as srv:
            r = connect_pin(srv, os.urandom(200000))
            assert r.returncode == 0 and r.stdout == b"", r
        with tls_server(["-q", "ack", "tcp://127.0.0.1:0"], model) as srv:
            r = connect_pin(srv, b"hello\n")
            assert r.returncode == 0 and b"I got your message" in r.stdout, r
        with tls_server(["-q", "chargen", "tcp://127.0.0.1:0"], model) as srv:
            s = py_tls(srv.port)
            got = b""
            while len(got) < 100000:
                chunk = s.recv(65536)
                assert chunk, "chargen ended early"
                got += chunk
            s.close()
            assert check_chargen(got, min_lines=1000, what="chargen over TLS") >= 1000


@timeout(30)
def test_tls_broker_event_model():
    """broker under epoll: a line from one TLS client reaches the other."""
    with tls_server(["-q", "broker", "tcp://127.0.0.1:0"], "epoll") as srv:
        a, b = py_tls(srv.port), py_tls(srv.port)
        # a is a member once the server has its Finished: until a line from b
        # arrives, b says it again (bounded).
        a.settimeout(0.2)
        got = b""
        deadline = time.monotonic() + 10
        while b"pong\n" not in got and time.monotonic() < deadline:
            b.sendall(b"pong\n")
            try:
                got += a.recv(4096)
            except socket.timeout:
                pass
        assert b"pong\n" in got, got
        a.close()
        b.close()


# -- real clients ---------------------------------------------------------------

@timeout(30)
def test_tls_openssl_s_client_protocol_and_alpn():
    """openssl s_client against serve http --tls: TLS 1.3, ALPN http/1.1 chosen
    by the http service by itself; TLS 1.2 is accepted, TLS 1.1 refused."""
    require("openssl")
    root = tempdir()
    with tls_server(["-q", "http", "--root", root, "tcp://127.0.0.1:0"]) as srv:
        r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port,
                 "-alpn", "h2,http/1.1"], input=b"", timeout=10)
        assert "ALPN protocol: http/1.1" in r.out, r
        # (the session block comes only if a ticket arrived before s_client ended)
        assert re.search(r"^New, TLSv1\.3, Cipher is TLS_", r.out, re.M), r
        r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port, "-tls1_2"],
                input=b"", timeout=10)
        assert re.search(r"^New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES\d+-GCM|CHACHA20)", r.out,
                         re.M), r
        r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port, "-tls1_1",
                 "-cipher", "DEFAULT:@SECLEVEL=0"], input=b"", timeout=10)
        assert r.returncode != 0 and "Cipher is (NONE)" in r.out, r
    with tls_server(["-q", "--alpn", "x-test,other", "echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.port,
                 "-alpn", "other"], input=b"", timeout=10)
        assert "ALPN protocol: other" in r.out, r


@timeout(30)
def test_tls_sslscan_offers_nothing_weak():
    """sslscan: TLS 1.2 and 1.3 only, every TLS 1.2 suite ECDHE with an AEAD
    cipher, no renegotiation, no compression."""
    require("sslscan")
    with tls_server(["-q", "echo", "tcp://127.0.0.1:0"]) as srv:
        xml = os.path.join(tempdir(), "scan.xml")
        r = run(["sslscan", "--no-colour", "--no-heartbleed", "--xml=" + xml,
                 "127.0.0.1:%d" % srv.port], timeout=25)
        assert r.returncode == 0, r
        text = open(xml).read()
    protos = dict(re.findall(r'<protocol type="\w+" version="([\d.]+)" enabled="(\d)"', text))
    assert protos.get("1.2") == "1" and protos.get("1.3") == "1", protos
    for old in ("2", "3", "1.0", "1.1"):
        assert protos.get(old) == "0", (old, protos)
    reneg = re.search(r'<renegotiation supported="(\d)"', text)
    assert reneg and reneg.group(1) == "0", text
    comp = re.search(r'<compression supported="(\d)"', text)
    assert comp is None or comp.group(1) == "0", text
    ciphers = re.findall(r'<cipher status="\w+" sslversion="([^"]+)" bits="\d+" '
                         r'cipher="([^"]+)"', text)
    assert ciphers, text
    for version, name in ciphers:
        assert version in ("TLSv1.2", "TLSv1.3"), (version, name)
        if version == "TLSv1.2":
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name), name


@timeout(40)
def test_tls_https_curl_keepalive_range_conditional_and_log():
    """curl --cacert --http1.1 with two URLs on one connection, a Range and a
    conditional request; the access log and -v lines carry version and
    cipher. Then curl --pinnedpubkey against the ephemeral certificate."""
    require("curl")
    certs = Certs()
    root = tempdir()
    body_a = os.urandom(5000)
    with open(os.path.join(root, "a.bin"), "wb") as f:
        f.write(body_a)
    with open(os.path.join(root, "b.txt"), "w") as f:
        f.write("hello over tls\n")
    big = os.urandom(3 << 20)  # past the small-file cache: the sendfile path
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    log = os.path.join(tempdir(), "access.log")
    args = ["-v", "--cert", certs.path("leaf.pem"), "--key", certs.path("leaf.key"), "http",
            "--root", root, "--access-log", log, "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        base = "https://localhost:%d" % srv.port
        srv.wait_stderr("at https://127.0.0.1:%d/" % srv.port, timeout=5)
        out = os.path.join(tempdir(), "a.out")
        r = run(["curl", "-sS", "-v", "--http1.1", "--cacert", certs.path("ca.pem"),
                 "--resolve", "localhost:%d:127.0.0.1" % srv.port, "-o", out,
                 base + "/a.bin", "-o", "/dev/stdout", base + "/b.txt"], timeout=15)
        assert r.returncode == 0, r
        assert open(out, "rb").read() == body_a
        assert r.out == "hello over tls\n", r
        assert re.search(r"Re-?using existing connection", r.err), r.err
        assert "ALPN: server accepted http/1.1" in r.err or \
            "ALPN, server accepted to use http/1.1" in r.err, r.err
        r = run(["curl", "-sS", "--http1.1", "--cacert", certs.path("ca.pem"),
                 "--resolve", "localhost:%d:127.0.0.1" % srv.port, "-r", "10-19",
                 "-w", "\n%{http_code}", base + "/a.bin"], timeout=10)
        assert r.returncode == 0 and r.stdout.endswith(b"\n206"), r
        assert r.stdout[:-4] == body_a[10:20], r
        r = run(["curl", "-sS", "--http1.1", "--cacert", certs.path("ca.pem"),
                 "--resolve", "localhost:%d:127.0.0.1" % srv.port,
                 "-H", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT",
                 "-w", "%{http_code}", base + "/b.txt"], timeout=10)
        assert r.returncode == 0 and r.out == "304", r
        # A large file: SSL_sendfile with kernel TLS, else read and encrypted
        # (conn_io.c's copy); -v says which.
        r = run(["curl", "-sS", "--http1.1", "--cacert", certs.path("ca.pem"),
                 "--resolve", "localhost:%d:127.0.0.1" % srv.port, base + "/big.bin"],
                timeout=15)
        assert r.returncode == 0 and sha(r.stdout) == sha(big), (r.returncode, len(r.stdout))
        assert re.search(r"kernel TLS (on: files by SSL_sendfile|off: files copied)\)",
                         srv.stderr_text()), srv.stderr_text()
        poll_until(lambda: open(log).read().count("\n") >= 5, timeout=5)
        srv.wait_stderr('"GET /b.txt HTTP/1.1" 200 15 "TLSv1.3 TLS_', timeout=5)
    lines = open(log).read().splitlines()
    assert len(lines) == 5, lines
    for line in lines:
        assert re.search(r'" "TLSv1\.3 TLS_[A-Z0-9_]+"$', line), line
    # The ephemeral certificate, pinned the way curl pins: base64 of the SPKI SHA-256.
    with tls_server(["-q", "http", "--root", root, "tcp://127.0.0.1:0"]) as srv:
        b64 = base64.b64encode(bytes.fromhex(pin_of(srv)[len("sha256:"):])).decode()
        r = run(["curl", "-sS", "-k", "--http1.1", "--pinnedpubkey", "sha256//" + b64,
                 "https://127.0.0.1:%d/b.txt" % srv.port], timeout=10)
        assert r.returncode == 0 and r.out == "hello over tls\n", r
        wrong = base64.b64encode(b"\0" * 32).decode()
        r = run(["curl", "-sS", "-k", "--http1.1", "--pinnedpubkey", "sha256//" + wrong,
                 "https://127.0.0.1:%d/b.txt" % srv.port], timeout=10)
        assert r.returncode != 0, r


@timeout(30)
def test_tls_socat_and_ncat_clients():
    """socat OPENSSL: with verify=1 cafile= echoes 1 MiB; ncat --ssl with
    verification reads daytime."""
    require("socat", "ncat")
    certs = Certs()
    pair = ["--cert", certs.path("leaf.pem"), "--key", certs.path("leaf.key")]
    data = os.urandom(1 << 20)
    with Server(["-q"] + pair + ["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run(["socat", "-t", "5", "-",
                 "OPENSSL:127.0.0.1:%d,verify=1,cafile=%s,commonname=localhost"
                 % (srv.port, certs.path("ca.pem"))], input=data, timeout=20)
        assert r.returncode == 0, r
        assert sha(r.stdout) == sha(data), (len(r.stdout), len(data))
    with Server(["-q"] + pair + ["daytime", "tcp://127.0.0.1:0"]) as srv:
        r = run(["ncat", "--ssl", "--ssl-verify", "--ssl-trustfile", certs.path("ca.pem"),
                 "--recv-only", "localhost", str(srv.port)], timeout=10)
        assert re.match(r"^\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}", r.out), r


@timeout(30)
def test_tls_sni_picks_the_pair():
    """Two --cert/--key pairs: the client's SNI picks the second, anything else
    (no SNI, an unknown name) gets the first."""
    certs = Certs()
    args = ["-q", "--cert", certs.path("leaf.pem"), "--key", certs.path("leaf.key"),
            "--cert", certs.path("other.pem"), "--key", certs.path("other.key"), "echo",
            "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        for name, want in (("other.test", "other"), ("localhost", "leaf"),
                           ("unknown.test", "leaf"), (None, "leaf")):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=10),
                                server_hostname=name)
            der = s.getpeercert(binary_form=True)
            s.close()
            assert der == pem_der(certs.path(want + ".pem")), (name, want)
        r = run_client(["connect", "--ca", certs.path("ca.pem"), "--sni", "other.test",
                        "tcp://127.0.0.1:%d" % srv.port], input=b"sni\n")
        assert r.returncode == 0 and r.stdout == b"sni\n", r


# -- mutual TLS -----------------------------------------------------------------

@timeout(30)
def test_tls_mutual_required_refused_and_accepted():
    certs = Certs()
    args = ["-v", "--cert", certs.path("leaf.pem"), "--key", certs.path("leaf.key"),
            "--client-ca", certs.path("ca.pem"), "--require-client-cert", "echo",
            "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        addr = "tcp://127.0.0.1:%d" % srv.port
        common = ["connect", "--ca", certs.path("ca.pem")]
        r = run_client(common + [addr], input=b"none\n")
        assert r.returncode == 1 and r.stdout == b"", r
        r = run_client(common + ["--cert", certs.path("self.pem"), "--key",
                                 certs.path("self.key"), addr], input=b"stranger\n")
        assert r.returncode == 1 and r.stdout == b"", r
        r = run_client(common + ["--cert", certs.path("client.pem"), "--key",
                                 certs.path("client.key"), addr], input=b"friend\n")
        assert r.returncode == 0 and r.stdout == b"friend\n", r
        srv.wait_stderr("client CN=client", timeout=5)
        err = srv.stderr_text()
        assert err.count("TLS handshake failed") >= 2, err
        assert "none" not in err and "stranger" not in err, err


def test_tls_option_errors():
    """Usage errors name the problem: a datagram address with --tls, --key
    without --cert, --require-client-cert without --client-ca, a missing file."""
    for args, needle in (
            (["--tls", "echo", "udp://127.0.0.1:0"], "datagram"),
            (["--key", "k.pem", "echo", "0"], "--key k.pem"),
            (["--require-client-cert", "echo", "0"], "--client-ca"),
            (["--tls", "stdio", "0"], "stdio"),
            (["--cert", "/nonexistent.pem", "echo", "0"], "/nonexistent.pem")):
        r = run_client(["serve"] + args, timeout=10)
        assert r.returncode in (1, 2) and needle in r.err and r.err.count("\n") == 1, (args, r)
        if needle != "/nonexistent.pem":
            assert r.returncode == 2, (args, r)


# -- hostile handshakes ---------------------------------------------------------

def read_until_closed(s, limit_s):
    s.settimeout(limit_s)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got


@timeout(30)
def test_tls_garbage_and_half_hello_closed():
    """Garbage instead of a ClientHello is refused at once; half a ClientHello
    and silence is closed at the handshake deadline (1 s here); both logged;
    the service never sees either."""
    with tls_server(["-v", "--tls-handshake-timeout", "1", "echo",
                     "tcp://127.0.0.1:0"], "epoll") as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        got = read_until_closed(s, 5)
        assert b"HTTP" not in got, got  # nothing echoed: an alert at most
        s.close()
        srv.wait_stderr("TLS handshake failed", timeout=5)
        hello = client_hello()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(hello[:len(hello) // 2])
        read_until_closed(s, 8)  # returns once the server closes (bounded)
        s.close()
        srv.wait_stderr("TLS handshake timeout", timeout=5)
        assert "connection from" not in srv.stderr_text(), srv.stderr_text()
        echo_check(srv, 1000)


@timeout(40)
def test_tls_idle_half_handshakes_do_not_block_others():
    """200 connections stuck in their handshake; another client is served
    meanwhile (epoll, thread and uring). With --max-conns 2, two stuck handshakes
    hold the slots until their deadline, then the waiting client is served."""
    hello = client_hello()
    for model in ("epoll", "thread", "uring"):
        with tls_server(["-q", "echo", "tcp://127.0.0.1:0"], model) as srv:
            stuck = []
            for _ in range(200):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall(hello[:40])
                stuck.append(s)
            echo_check(srv, 100000)
            for s in stuck:
                s.close()
    with tls_server(["-v", "--max-conns", "2", "--tls-handshake-timeout", "1", "echo",
                     "tcp://127.0.0.1:0"], "epoll") as srv:
        stuck = [socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                 for _ in range(2)]
        for s in stuck:
            s.sendall(hello[:40])
        poll_until(lambda: True, timeout=0.2)
        echo_check(srv, 1000)  # waits in the backlog until the deadline frees a slot
        assert srv.stderr_text().count("TLS handshake timeout") == 2, srv.stderr_text()
        for s in stuck:
            s.close()


# -- SIGHUP ---------------------------------------------------------------------

def peer_der(port):
    s = py_tls(port)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def pem_der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


@timeout(30)
def test_tls_sighup_reload_keeps_connections():
    """SIGHUP with a new certificate in place: new connections get it while an
    open one keeps working; a broken file is an error line and the
    certificate in use stays."""
    certs = Certs()
    d = tempdir()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    shutil.copy(certs.path("leaf.pem"), cert)
    shutil.copy(certs.path("leaf.key"), key)
    with Server(["--model", "thread", "--cert", cert, "--key", key, "echo",
                 "tcp://127.0.0.1:0"]) as srv:
        assert peer_der(srv.port) == pem_der(certs.path("leaf.pem"))
        live = py_tls(srv.port)
        live.sendall(b"before\n")
        assert read_exact(live, 7) == b"before\n"
        shutil.copy(certs.path("other.pem"), cert)
        shutil.copy(certs.path("other.key"), key)
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_stderr("SIGHUP: TLS certificates and keys reloaded", timeout=5)
        assert peer_der(srv.port) == pem_der(certs.path("other.pem"))
        live.sendall(b"after\n")
        assert read_exact(live, 6) == b"after\n"
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_stderr("(the old certificates stay in use)", timeout=5)
        assert peer_der(srv.port) == pem_der(certs.path("other.pem"))
        live.sendall(b"still\n")
        assert read_exact(live, 6) == b"still\n"
        live.close()
        assert srv.alive()


def served_sha256(port):
    """The SHA-256 of the certificate `openssl s_client` is served (a new
    connection, so a new worker or thread under every model)."""
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
             "-servername", "localhost"], input=b"", timeout=10)
    m = re.search(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    assert m, "no certificate from s_client: %r" % (r.stdout[-500:] + r.stderr[-500:])
    return sha(ssl.PEM_cert_to_DER_cert(m.group(0).decode()))


@timeout(240)
def test_tls_sighup_reload_every_model():
    """Under every model (the forking ones: their workers are told), SIGHUP
    with a new certificate in place: new connections get it (its sha256 read
    by openssl s_client) while the connections open across the reload keep
    working; a broken file is one error line and the certificate in use
    stays. Then the server is stopped with those connections still open, so
    that every connection thread ends at once just before the process exits
    (under ASan: whatever OpenSSL keeps per thread must be freed by then)."""
    require("openssl")
    certs = Certs()
    first, second = (sha(pem_der(certs.path(n))) for n in ("leaf.pem", "other.pem"))
    for model in MODELS:
        d = tempdir()
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(certs.path("leaf.pem"), cert)
        shutil.copy(certs.path("leaf.key"), key)
        # iterative serves one connection at a time: none stays open there;
        # a prefork worker serves one: some workers stay free for s_client
        nlive = {"iterative": 0, "prefork": 4}.get(model, 16)
        workers = ["--workers", "8"] if model == "prefork" else []
        with Server(["--model", model] + workers + ["--cert", cert, "--key", key, "echo",
                                                    "tcp://127.0.0.1:0"]) as srv:
            assert served_sha256(srv.port) == first, model
            live = [py_tls(srv.port) for _ in range(nlive)]
            for i, s in enumerate(live):
                s.sendall(b"before %02d\n" % i)
                assert read_exact(s, 10) == b"before %02d\n" % i, model
            shutil.copy(certs.path("other.pem"), cert)
            shutil.copy(certs.path("other.key"), key)
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_stderr("SIGHUP: TLS certificates and keys reloaded", timeout=5)
            # a forking model's workers take it in on their own time: bounded
            poll_until(lambda: served_sha256(srv.port) == second, 10)
            for _ in range(3):  # every worker, not just the first to accept
                assert served_sha256(srv.port) == second, model
            for i, s in enumerate(live):
                s.sendall(b"after %02d\n" % i)
                assert read_exact(s, 9) == b"after %02d\n" % i, model
            with open(cert, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_stderr("(the old certificates stay in use)", timeout=5)
            time.sleep(0.3)  # a worker that wrongly took the broken file would show now
            for _ in range(3):
                assert served_sha256(srv.port) == second, model
            assert srv.stderr_text().count("(the old certificates stay in use)") == 1, (
                model, srv.stderr_text())
            assert srv.alive(), model
            # stopped with the live connections open (Server's exit: SIGTERM,
            # then the sanitizer check of its stderr)
        for s in live:
            s.close()


def read_exact(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        assert chunk, "closed after %r" % got
        got += chunk
    return got



# -- bench --tls ----------------------------------------------------------------

@timeout(40)
def test_tls_bench_echo_and_conn():
    """bench --tls against serve --tls: echo (small, and messages of several
    TLS records), bulk --check-echo and conn run with every reply checked and
    no error; conn counts its handshakes, resumed ones by default and full
    ones with --no-resume."""
    with tls_server(["-q", "echo", "tcp://127.0.0.1:0"], "epoll") as srv:
        common = ["bench", "--pin", pin_of(srv), "--json", "-q", "-c", "4", "--workers", "2",
                  "-d", "1", "--warmup", "0.2"]
        target = "127.0.0.1:%d" % srv.port
        results = {}
        for name, extra in (("echo", ["--mode", "echo"]),
                            ("records", ["--mode", "echo", "-s", "100000"]),
                            ("bulk", ["--mode", "bulk", "--check-echo"]),
                            ("conn", ["--mode", "conn"]),
                            ("full", ["--mode", "conn", "--no-resume"])):
            r = run_client(common + extra + [target], timeout=20)
            assert r.returncode == 0, r
            j = json.loads(r.out)
            assert j["ops"] > 0 and not any(j["errors"].values()), (name, j)
            results[name] = j
        conn, full = results["conn"], results["full"]
        assert conn["tls_handshakes"] > 0 and conn["tls_resumed"] > 0, conn
        assert conn["tls_handshakes_s"] > 0, conn
        assert full["tls_handshakes"] > 0 and full["tls_resumed"] == 0, full
        r = run_client(["bench", "--tls", "--mode", "udp", "udp://127.0.0.1:9"], timeout=10)
        assert r.returncode == 2 and "stream address" in r.err, r
