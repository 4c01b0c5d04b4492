"""Who may connect: --allow/--deny (and their files), --max-per-source, --rate.

Real clients from several sources: every address in 127.0.0.0/8 is the
loopback interface's, so a client socket bound to 127.0.0.2 or 127.0.0.3
before it connects is a different source to the server; ::1 is the IPv6
one. Each check runs under an event model (epoll) and a blocking one (fork;
prefork too for the shared per-source table).
"""

import errno
import os
import re
import socket
import time

from harness import (Server, poll_until, recv_all, require, run, run_client,
                     tempdir)

MODELS = ["epoll", "fork", "uring"]


def model_args(model):
    args = ["--model", model]
    if model in ("epoll", "uring"):
        args += ["--workers", "2"]
    if model == "prefork":
        # A prefork worker serves one connection at a time: room for the
        # connections a check holds open and the one it expects refused.
        args += ["--workers", "4"]
    return args


def client(port, src, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def echoed(port, src, host="127.0.0.1", data=b"hello\n"):
    """What echo sends back to a client from src (b"" if it was refused)."""
    s = client(port, src, host)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)
    except (ConnectionResetError, BrokenPipeError):
        return b""  # refused while our bytes were in flight
    except OSError as e:
        if e.errno == errno.ENOTCONN:  # reset before our shutdown()
            return b""
        raise
    finally:
        s.close()


def refused_silently(port, src, host="127.0.0.1"):
    """Connect and send nothing: a refused peer sees the connection closed
    without a single byte (even from a server that speaks first)."""
    s = client(port, src, host)
    try:
        return recv_all(s) == b""
    except ConnectionResetError:
        return True
    finally:
        s.close()


# -- rules ---------------------------------------------------------------

def check_allow_then_deny(model):
    args = model_args(model) + ["-v", "--allow", "127.0.0.2", "--deny",
                                "0.0.0.0/0", "echo", "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        assert echoed(srv.port, "127.0.0.2") == b"hello\n"
        assert echoed(srv.port, "127.0.0.3") == b""
        assert refused_silently(srv.port, "127.0.0.4")
        assert echoed(srv.port, "127.0.0.2") == b"hello\n"
        assert srv.wait_stderr("refused tcp://127.0.0.3:")
    assert "connection from tcp://127.0.0.3" not in srv.stderr_text()


def check_server_speaks_first(model):
    """chargen writes at once: a denied peer must still get nothing."""
    args = model_args(model) + ["--deny", "127.0.0.3", "chargen",
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        assert refused_silently(srv.port, "127.0.0.3")
        s = client(srv.port, "127.0.0.2")
        assert len(s.recv(100)) > 0
        s.close()


def check_ipv6(model):
    """::1 against IPv6 rules; an IPv6 rule never touches IPv4 clients."""
    args = model_args(model) + ["--deny", "::/0", "echo", "tcp://[::1]:0",
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        p6 = int(srv.addresses[0].rsplit(":", 1)[1])
        p4 = int(srv.addresses[1].rsplit(":", 1)[1])
        assert refused_silently(p6, "::1", host="::1")
        assert echoed(p4, "127.0.0.2") == b"hello\n"
    args = model_args(model) + ["--allow", "::1", "echo", "tcp://[::1]:0",
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        p6 = int(srv.addresses[0].rsplit(":", 1)[1])
        p4 = int(srv.addresses[1].rsplit(":", 1)[1])
        assert echoed(p6, "::1", host="::1") == b"hello\n"
        assert echoed(p4, "127.0.0.1") == b""  # an allow given: IPv4 unmatched


def check_udp(model):
    args = model_args(model) + ["-v", "--allow", "127.0.0.2", "--deny",
                                "0.0.0.0/0", "echo", "udp://127.0.0.1:0"]
    with Server(args) as srv:
        port = srv.port
        bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bad.bind(("127.0.0.3", 0))
        good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        good.bind(("127.0.0.2", 0))
        good.settimeout(10)
        bad.sendto(b"from .3", ("127.0.0.1", port))
        good.sendto(b"from .2", ("127.0.0.1", port))
        assert good.recvfrom(100)[0] == b"from .2"
        assert srv.wait_stderr("refused udp://127.0.0.3:")
        # The datagram from .3 was handled before .2's (one socket, in
        # order): had it been answered, the reply would be queued by now.
        bad.setblocking(False)
        try:
            got = bad.recv(100)
        except BlockingIOError:
            got = None
        assert got is None, "denied peer got %r" % got
        bad.close()
        good.close()


def check_unix(model):
    d = tempdir()
    path = os.path.join(d, "s")
    args = model_args(model) + ["--deny", "unix", "echo", "unix:" + path,
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        try:
            assert recv_all(s) == b""
        except ConnectionResetError:
            pass
        s.close()
        port = int([a for a in srv.addresses if a.startswith("tcp")][0]
                   .rsplit(":", 1)[1])
        assert echoed(port, "127.0.0.2") == b"hello\n"


# -- per-source limits ---------------------------------------------------

def check_max_per_source(model):
    args = model_args(model) + ["--max-per-source", "2", "echo",
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        held = []
        for _ in range(2):
            s = client(srv.port, "127.0.0.2")
            s.sendall(b"x")
            assert s.recv(10) == b"x"  # served: counted
            held.append(s)
        assert refused_silently(srv.port, "127.0.0.2")
        # Everyone else is served meanwhile.
        assert echoed(srv.port, "127.0.0.3") == b"hello\n"
        other = client(srv.port, "127.0.0.3")
        other.sendall(b"y")
        assert other.recv(10) == b"y"
        # One of .2's connections ends: .2 may connect again.
        held.pop().close()
        assert poll_until(lambda: echoed(srv.port, "127.0.0.2") == b"hello\n",
                          timeout=10)
        for s in held + [other]:
            s.close()


def check_rate(model):
    # 0.01/s: no token comes back during the test, whatever the machine's speed.
    args = model_args(model) + ["-v", "--rate", "0.01/s,burst=2", "echo",
                                "tcp://127.0.0.1:0", "udp://127.0.0.1:0"]
    with Server(args) as srv:
        tcp = int(srv.addresses[0].rsplit(":", 1)[1])
        assert echoed(tcp, "127.0.0.2") == b"hello\n"
        assert echoed(tcp, "127.0.0.2") == b"hello\n"
        assert echoed(tcp, "127.0.0.2") == b""
        assert refused_silently(tcp, "127.0.0.2")
        assert echoed(tcp, "127.0.0.3") == b"hello\n"
        assert srv.wait_stderr("(--rate)")
        # Datagrams: the same bucket size per source; .2's UDP bucket is its
        # TCP one (a source is an address), so it is empty: refused.
        udp = srv.port_of("udp")
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u2.bind(("127.0.0.2", 0))
        u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u4.bind(("127.0.0.4", 0))
        u4.settimeout(10)
        for k in range(3):
            u4.sendto(b"d%d" % k, ("127.0.0.1", udp))
        # Two tokens: two answers (which two, and in which order, is up to
        # the event loops sharing the socket), and never a third.
        got = {u4.recvfrom(100)[0], u4.recvfrom(100)[0]}
        assert len(got) == 2 and got <= {b"d0", b"d1", b"d2"}, got
        # The third was refused, unlogged: refusals for one reason are
        # logged once a second. The next one, a second on, counts it: the
        # TCP one after the first (logged) refusal above, and that datagram.
        time.sleep(1.1)
        u2.sendto(b"x", ("127.0.0.1", udp))
        assert srv.wait_stderr("refused udp://127.0.0.2:")
        line = [ln for ln in srv.stderr_text().splitlines()
                if "refused udp://127.0.0.2:" in ln][0]
        assert "(and 2 more since the last message)" in line, line
        u4.setblocking(False)
        try:
            got = u4.recv(100)
        except BlockingIOError:
            got = None
        assert got is None, got
        u2.close()
        u4.close()


def check_refusals_logged_rate_limited(model):
    """-v logs refusals at most once a second per reason, and the lines
    account for every refusal: each says how many went unsaid before it."""
    args = model_args(model) + ["-v", "--deny", "127.0.0.3", "echo",
                                "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        start = time.monotonic()
        for _ in range(50):
            assert refused_silently(srv.port, "127.0.0.3")
        elapsed = time.monotonic() - start
        time.sleep(1.1)  # the next refusal is logged, with what went unsaid
        assert refused_silently(srv.port, "127.0.0.3")

        def lines():
            return [ln for ln in srv.stderr_text().splitlines()
                    if ln.startswith("sockit: refused tcp://127.0.0.3:")]

        def accounted():
            return sum(1 + int(m.group(1)) if m else 1
                       for m in (re.search(r"\(and (\d+) more since", ln)
                                 for ln in lines()))
        assert poll_until(lambda: accounted() == 51, timeout=10), lines()
        assert len(lines()) <= elapsed + 2, (elapsed, lines())


MODEL_CHECKS = [check_refusals_logged_rate_limited, check_allow_then_deny, check_server_speaks_first, check_ipv6,
                check_udp, check_unix, check_max_per_source, check_rate]


def _make(check, model):
    def test():
        check(model)
    test.__name__ = "test_%s_%s" % (check.__name__[len("check_"):], model)
    test.__module__ = __name__
    return test


for _check in MODEL_CHECKS:
    for _model in MODELS:
        _t = _make(_check, _model)
        globals()[_t.__name__] = _t
del _check, _model, _t


def test_max_per_source_prefork_shared():
    """prefork: the workers are separate processes; the count is one."""
    check_max_per_source("prefork")


def test_thread_model():
    check_allow_then_deny("thread")


# -- command-line errors -------------------------------------------------

def test_bad_specs_are_usage_errors():
    cases = [
        ("--allow", "10.0.0.1/8",
         'sockit: --allow: bad address "10.0.0.1/8": host bits set; did you '
         'mean 10.0.0.0/8?'),
        ("--deny", "1.2.3",
         'sockit: --deny: bad address "1.2.3": incomplete IPv4 address'),
        ("--deny", "010.0.0.1",
         'sockit: --deny: bad address "010.0.0.1": leading zeros are '
         'ambiguous'),
        ("--allow", "localhost",
         'sockit: --allow: bad address "localhost": host names are not '
         'resolved'),
        ("--allow", "::/129", "prefix /129 out of range (0-128)"),
        ("--rate", "10", '--rate "10": expected R/s'),
        ("--rate", "0/s", '--rate "0/s"'),
        ("--rate", "5/s,burst=x", "--rate burst"),
        ("--max-per-source", "0", "--max-per-source"),
    ]
    for opt, val, want in cases:
        r = run_client(["serve", opt, val, "echo", "tcp://127.0.0.1:0"],
                       timeout=10)
        assert r.returncode == 2, (opt, val, r)
        assert want in r.err, (opt, val, r.err)
        assert len(r.err.strip().splitlines()) == 1, r.err


def test_bad_file_lines():
    d = tempdir()
    path = os.path.join(d, "deny.txt")
    with open(path, "w") as f:
        f.write("# blocked\n10.0.0.0/8\n010.0.0.1\n")
    r = run_client(["serve", "--deny-file", path, "echo",
                    "tcp://127.0.0.1:0"], timeout=10)
    assert r.returncode == 2, r
    assert r.err.strip() == ('sockit: %s:3: bad address "010.0.0.1": leading '
                             'zeros are ambiguous (octal to some parsers)'
                             % path), r.err
    r = run_client(["serve", "--allow-file", os.path.join(d, "nope"), "echo",
                    "tcp://127.0.0.1:0"], timeout=10)
    assert r.returncode == 2, r
    assert "nope: No such file or directory" in r.err, r.err


def test_files_in_order_with_options():
    """--allow-file then --deny: the file's rules come first."""
    d = tempdir()
    path = os.path.join(d, "allow.txt")
    with open(path, "w") as f:
        f.write("127.0.0.2   # the one client\n\n::1\n")
    args = ["--allow-file", path, "--deny", "127.0.0.0/8", "echo",
            "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        assert echoed(srv.port, "127.0.0.2") == b"hello\n"
        assert echoed(srv.port, "127.0.0.3") == b""


def test_real_clients():
    """socat and ncat, from chosen source addresses."""
    require("socat", "ncat")
    args = ["--allow", "127.0.0.2", "echo", "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        r = run(["socat", "-t", "5", "-",
                 "TCP:127.0.0.1:%d,bind=127.0.0.2" % srv.port],
                input=b"via socat\n", timeout=10)
        assert r.stdout == b"via socat\n", r
        r = run(["socat", "-t", "5", "-",
                 "TCP:127.0.0.1:%d,bind=127.0.0.3" % srv.port],
                input=b"", timeout=10)
        assert r.stdout == b"", r
        r = run(["ncat", "-s", "127.0.0.3", "127.0.0.1", str(srv.port)],
                input=b"", timeout=10)
        assert r.stdout == b"", r


def test_help_documents_access():
    r = run_client(["serve", "--help"])
    for opt in ("--allow SPEC", "--deny SPEC", "--allow-file FILE",
                "--deny-file FILE", "--max-per-source N",
                "--rate R/s[,burst=B]"):
        assert opt in r.out, opt


def test_stdio_access():
    args = ["--allow", "127.0.0.2", "stdio", "tcp://127.0.0.1:0"]
    import subprocess
    with Server(args, stdin=subprocess.PIPE, expect_exit=None) as srv:
        assert refused_silently(srv.port, "127.0.0.3")
        s = client(srv.port, "127.0.0.2")
        s.sendall(b"to stdout\n")
        s.shutdown(socket.SHUT_WR)
        srv.wait_stdout("to stdout")
        s.close()
    r = run_client(["serve", "--rate", "1/s", "stdio", "tcp://127.0.0.1:0"])
    assert r.returncode == 2 and "not for the stdio service" in r.err, r


def test_http_with_curl():
    """The http service under the same rules, with curl choosing its source."""
    require("curl")
    d = tempdir()
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("hello from sockit\n")
    args = ["--deny", "127.0.0.3", "--deny-file", os.devnull, "http",
            "--root", d, "tcp://127.0.0.1:0"]
    with Server(args) as srv:
        url = "http://127.0.0.1:%d/" % srv.port
        base = ["curl", "-sS", "--noproxy", "*", "--max-time", "10"]
        r = run(base + ["--interface", "127.0.0.2", url], timeout=20)
        assert r.returncode == 0 and r.stdout == b"hello from sockit\n", r
        r = run(base + ["--interface", "127.0.0.3", url], timeout=20)
        # Closed before a byte: "Empty reply from server" (52) or a reset (56).
        assert r.returncode in (52, 56) and r.stdout == b"", r


def test_once_is_not_spent_on_a_refused_peer():
    """--once serves one client: a refused one does not count."""
    for model in ("epoll", "fork", "uring"):
        args = ["--model", model, "--once", "--deny", "127.0.0.3", "echo",
                "udp://127.0.0.1:0"]
        with Server(args) as srv:
            bad = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            bad.bind(("127.0.0.3", 0))
            bad.sendto(b"refused", ("127.0.0.1", srv.port))
            good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            good.bind(("127.0.0.2", 0))
            good.settimeout(10)
            good.sendto(b"served", ("127.0.0.1", srv.port))
            assert good.recvfrom(100)[0] == b"served"
            assert srv.wait() == 0
            bad.close()
            good.close()
        args = ["--model", model, "--once", "--deny", "127.0.0.3", "echo",
                "tcp://127.0.0.1:0"]
        with Server(args) as srv:
            assert refused_silently(srv.port, "127.0.0.3")
            assert echoed(srv.port, "127.0.0.2") == b"hello\n"
            assert srv.wait() == 0
