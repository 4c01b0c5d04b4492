"""Errors: exit statuses (2 usage, 1 runtime), one-line messages, Unix
socket files (stale, live, not a socket, removed at exit), clients that
misbehave, timeouts, --help and --version.
"""

import os
import socket
import subprocess
import time

from harness import (SOCKIT, Server, connect_tcp, exchange, free_port,
                     recv_all, run_client, start, tempdir)

LONG_PATH = "/tmp/" + "x" * 103  # 108 bytes: one more than sun_path holds
# For usage errors: should the check ever regress, nothing is contacted.
NOWHERE = "nosuchhost.invalid:1"


def fails(args, status, *needles, input=b"", timeout=10):
    """Run sockit ARGS: exit status, one "sockit: " line containing needles."""
    r = run_client(args, input=input, timeout=timeout)
    assert r.returncode == status, "exit %s, expected %s: %r" % (
        r.returncode, status, r)
    lines = r.err.splitlines()
    assert len(lines) == 1 and r.err.endswith("\n"), (
        "stderr is not one line: %r" % r.err)
    assert lines[0].startswith("sockit: "), lines[0]
    for n in needles:
        assert n in lines[0], "%r not in %r" % (n, lines[0])
    assert r.stdout == b"", "stdout not empty: %r" % r.stdout
    return lines[0]


# -- usage errors: exit 2 -----------------------------------------------------

def test_unknown_subcommand():
    fails(["frobnicate"], 2, "unknown subcommand", "frobnicate")


def test_no_subcommand():
    r = run_client([])
    assert r.returncode == 2, r
    assert "usage" in r.err, r


def test_unknown_service():
    fails(["serve", "nosuch", "0"], 2, 'unknown service "nosuch"')


def test_unknown_model():
    fails(["serve", "--model", "nosuch", "echo", "0"], 2,
          'unknown model "nosuch"')


def test_unknown_options():
    fails(["serve", "--bogus", "echo", "0"], 2, "unknown option", "--bogus")
    fails(["serve", "-x", "echo", "0"], 2, "unknown option", "-x")
    fails(["connect", "--bogus", NOWHERE], 2, "unknown option", "--bogus")
    fails(["connect", "-Y", NOWHERE], 2, "unknown option", "-Y")


def test_missing_arguments():
    fails(["serve"], 2, "missing SERVICE")
    fails(["serve", "echo"], 2, "missing ADDRESS")
    fails(["connect"], 2, "usage")
    fails(["connect", "a", "b", "c"], 2, "usage")
    fails(["connect", "-w"], 2, "option -w needs a value")
    fails(["connect", "--timeout"], 2, "option --timeout needs a value")


def test_serve_long_option_missing_value():
    # Like connect's: "option --model needs a value", whole and printable.
    for opt in ("--model", "--workers", "--max-conns", "--idle-timeout"):
        line = fails(["serve", "echo", "0", opt], 2)
        assert line == "sockit: option %s needs a value" % opt, (
            "serve ... %s without a value: %r" % (opt, line))


def test_serve_flag_given_a_value():
    line = fails(["serve", "--once=3", "echo", "0"], 2)
    assert line.isprintable(), "control bytes in the message: %r" % line
    assert "--once" in line, line


def test_bad_option_values():
    fails(["serve", "--workers", "0", "echo", "0"], 2, "--workers")
    fails(["serve", "--workers", "lots", "echo", "0"], 2, "--workers")
    fails(["serve", "--max-conns", "-1", "echo", "0"], 2, "--max-conns")
    fails(["serve", "--idle-timeout", "soon", "echo", "0"], 2,
          "--idle-timeout")
    fails(["connect", "-w", "0", NOWHERE], 2, "-w")
    fails(["connect", "-w", "1e3", NOWHERE], 2, "-w")
    fails(["serve", "-q", "-v", "echo", "0"], 2, "-q")
    fails(["connect", "--prompt", "-z", NOWHERE], 2)
    fails(["connect", "-z", "udp://nosuchhost.invalid:1"], 2, "stream")


def test_port_out_of_range_message():
    line = fails(["serve", "echo", "tcp://:70000"], 2)
    assert line == ('sockit: bad address "tcp://:70000": '
                    'port out of range (0-65535)'), line
    fails(["connect", "127.0.0.1:65536"], 2, "port out of range")
    fails(["connect", "127.0.0.1", "99999999999999999999"], 2,
          "port out of range")


def test_malformed_addresses():
    for word, why in [(":abc", '":abc"'), ("[::1", "]"),
                      ("unix:", "path"), ("unixgram:", "path"),
                      ("unix:@", "@"), ("tcp://127.0.0.1", "port"),
                      ("::1:80", "bracket"), ("sctp://x:1", "transport"),
                      ("tcp://[::1]x", "':'"), ("", "empty"),
                      ("tcp4://[::1]:1", "IPv4"),
                      ("a b:1", "white space")]:
        fails(["serve", "echo", word], 2, "bad address", why)
        fails(["connect", word], 2, "bad address", why)


def test_unix_path_too_long():
    for path in (LONG_PATH, "/tmp/" + "y" * 200):
        line = fails(["serve", "echo", "unix:" + path], 2, "bad address",
                     "too long")
        assert str(len(path)) in line, line
        fails(["connect", "unix:" + path], 2, "too long")
        fails(["serve", "echo", "unixgram:" + path], 2, "too long")
    assert not os.path.exists(LONG_PATH)


def test_bad_address_before_anything_is_bound():
    # A typo in the last address: nothing is served, and the Unix socket
    # of the first address is not left behind.
    path = os.path.join(tempdir(), "first.sock")
    fails(["serve", "echo", "unix:" + path, "tcp://:70000"], 2,
          "tcp://:70000")
    assert not os.path.exists(path), "left %s behind" % path


def test_quiet_port0_still_prints_address():
    # With port 0 the bound address is the only way to find the server:
    # it is printed even with -q (the harness relies on it).
    srv = Server(["echo", "-q", "tcp://127.0.0.1:0"], ready_timeout=3)
    with srv:
        assert srv.port > 0


# -- runtime errors: exit 1 ---------------------------------------------------

def test_unresolvable_host():
    fails(["connect", "nosuchhost.invalid", "80"], 1, "nosuchhost.invalid")
    fails(["serve", "echo", "nosuchhost.invalid:0"], 1, "nosuchhost.invalid")


def test_connection_refused():
    s, port = free_port()
    with s:
        fails(["connect", "127.0.0.1", str(port)], 1, "Connection refused",
              str(port))
        fails(["connect", "--prompt", "127.0.0.1:%d" % port], 1,
              "Connection refused", input=b"hello\n")
    path = os.path.join(tempdir(), "nobody.sock")
    fails(["connect", "unix:" + path], 1, "No such file")


def test_udp_no_server():
    # The ICMP port unreachable comes back as an error, not silence.
    s, port = free_port(socket.SOCK_DGRAM)
    s.close()
    fails(["connect", "-w", "2", "udp://127.0.0.1:%d" % port], 1,
          "Connection refused", input=b"anyone?\n")


def test_wrong_socket_type():
    d = tempdir()
    fails(["connect", "unixgram:%s/none" % d], 1, "No such file")
    path = os.path.join(d, "stream.sock")
    with Server(["echo", "unix:" + path]):
        fails(["connect", "unixgram:" + path], 1, "wrong type")


def test_tcp_port_in_use():
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        fails(["serve", "echo", "tcp://127.0.0.1:%d" % srv.port], 1,
              "Address already in use")
        fails(["serve", "echo", str(srv.port)], 1, "Address already in use")
        with connect_tcp(srv.port) as s:
            assert exchange(s, b"still mine") == b"still mine"


def test_udp_port_in_use():
    with Server(["echo", "udp://127.0.0.1:0"]) as srv:
        fails(["serve", "echo", "udp://127.0.0.1:%d" % srv.port], 1,
              "Address already in use")


def test_bind_unix_in_missing_directory():
    fails(["serve", "echo", "unix:/proc/x"], 1, "unix:/proc/x")
    path = os.path.join(tempdir(), "no", "such", "dir.sock")
    fails(["serve", "echo", "unix:" + path], 1, "No such file or directory")


def test_stale_unix_socket_is_replaced():
    path = os.path.join(tempdir(), "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # the file stays: a dead server's leftover
    assert os.path.exists(path)
    with Server(["echo", "unix:" + path]):
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(5)
            c.connect(path)
            assert exchange(c, b"fresh") == b"fresh"
    assert not os.path.exists(path)


def test_stale_unixgram_socket_is_replaced():
    path = os.path.join(tempdir(), "stale.dgram")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.close()
    with Server(["echo", "unixgram:" + path]):
        r = run_client(["connect", "-w", "1", "unixgram:" + path],
                       input=b"dgram\n")
        assert r.returncode == 0 and r.stdout == b"dgram\n", r


def test_live_unix_socket_is_not_stolen():
    path = os.path.join(tempdir(), "live.sock")
    with Server(["echo", "unix:" + path]) as first:
        fails(["serve", "echo", "unix:" + path], 1, "already in use")
        fails(["serve", "counter", "unix:" + path], 1, "already in use")
        assert first.alive()
        with socket.socket(socket.AF_UNIX) as c:
            c.settimeout(5)
            c.connect(path)
            assert exchange(c, b"first") == b"first"
    assert not os.path.exists(path)


def test_live_unixgram_socket_is_not_stolen():
    path = os.path.join(tempdir(), "live.dgram")
    with Server(["echo", "unixgram:" + path]):
        fails(["serve", "echo", "unixgram:" + path], 1, "already in use")
        r = run_client(["connect", "-w", "1", "unixgram:" + path],
                       input=b"still\n")
        assert r.stdout == b"still\n", r


def test_regular_file_is_not_removed():
    path = os.path.join(tempdir(), "precious")
    with open(path, "w") as f:
        f.write("keep me\n")
    fails(["serve", "echo", "unix:" + path], 1, path)
    fails(["serve", "echo", "unixgram:" + path], 1, path)
    with open(path) as f:
        assert f.read() == "keep me\n", "the file was changed"


def test_socket_file_removed_on_sigterm():
    d = tempdir()
    stream, dgram = os.path.join(d, "s.sock"), os.path.join(d, "d.sock")
    srv = Server(["echo", "unix:" + stream, "unixgram:" + dgram])
    with srv:
        assert os.path.exists(stream) and os.path.exists(dgram)
    assert srv.returncode == 0, srv.returncode
    assert not os.path.exists(stream), "stream socket file left behind"
    assert not os.path.exists(dgram), "datagram socket file left behind"


def test_socket_file_removed_on_sigint():
    path = os.path.join(tempdir(), "int.sock")
    srv = Server(["echo", "--model", "iterative", "unix:" + path])
    srv.proc.send_signal(2)
    assert srv.wait(10) == 0, srv.stderr_text()
    assert not os.path.exists(path)


def test_replaced_socket_file_is_not_removed():
    # Someone else's socket now sits at our path: at exit we leave it.
    path = os.path.join(tempdir(), "moved.sock")
    with Server(["echo", "unix:" + path]):
        os.rename(path, path + ".old")
        other = socket.socket(socket.AF_UNIX)
        other.bind(path)
    try:
        assert os.path.exists(path), "removed a socket that was not its own"
    finally:
        other.close()


def test_serve_stdio_removes_socket_file_on_sigterm():
    # `serve stdio` waiting for its one peer is stopped: like every other
    # server it exits 0 and does not leave its socket file behind.
    path = os.path.join(tempdir(), "stdio.sock")
    srv = Server(["stdio", "unix:" + path], stdin=subprocess.PIPE,
                 expect_exit=None)
    with srv:
        pass
    assert not os.path.exists(path), "socket file left behind"
    assert srv.returncode == 0, "exit status %s" % srv.returncode


# -- misbehaving clients ------------------------------------------------------

def half_message_then_normal(model_args):
    with Server(["ack"] + model_args + ["tcp://127.0.0.1:0"]) as srv:
        for how in ("close", "reset"):
            s = connect_tcp(srv.port)
            s.sendall(b"half a li")
            if how == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        # and one that connects and says nothing at all
        connect_tcp(srv.port).close()
        r = run_client(["connect", "--prompt", "127.0.0.1", str(srv.port)],
                       input=b"hello\n")
        assert r.returncode == 0, r
        assert r.out == "Please enter the message: I got your message\n", r
        assert srv.wait_stdout("Here is the message: hello\n"), (
            srv.stdout_text())
        assert srv.alive(), "server died"


def test_client_disconnects_mid_message_default_model():
    half_message_then_normal([])


def test_client_disconnects_mid_message_fork():
    half_message_then_normal(["--model", "fork"])


def test_client_disconnects_mid_message_iterative():
    half_message_then_normal(["--model", "iterative"])


def test_client_gone_before_big_echo_reply():
    # A client sends 1 MB and leaves without reading: the echo server gets
    # EPIPE/ECONNRESET, and must neither die (SIGPIPE) nor stop serving.
    with Server(["echo", "--model", "iterative", "tcp://127.0.0.1:0"]) as srv:
        s = connect_tcp(srv.port)
        try:
            s.sendall(os.urandom(1 << 20))
        except OSError:
            pass
        s.close()
        with connect_tcp(srv.port, timeout=10) as c:
            assert exchange(c, b"next") == b"next"
        assert srv.alive()


# -- sockit connect -z and -w -------------------------------------------------

def test_connect_z():
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        r = run_client(["connect", "-z", "127.0.0.1", str(srv.port)])
        assert r.returncode == 0 and r.stdout == b"" and r.err == "", r
    s, port = free_port()
    with s:
        # a closed port: the exit status says it, silently, as nc -z does;
        # -v says why
        r = run_client(["connect", "-z", "127.0.0.1", str(port)])
        assert r.returncode == 1 and r.stdout == b"" and r.err == "", r
        fails(["connect", "-z", "-v", "127.0.0.1", str(port)], 1,
              "Connection refused")
    path = os.path.join(tempdir(), "z.sock")
    with Server(["echo", "unix:" + path]):
        assert run_client(["connect", "-z", "unix:" + path]).returncode == 0


def silent_listener(backlog=8):
    """A TCP socket that accepts (in the kernel) and never answers."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(backlog)
    return ls, ls.getsockname()[1]


def test_connect_w_idle_timeout():
    # Connected, input still open, nothing ever arrives: -w 1 gives up.
    ls, port = silent_listener()
    with ls:
        p = start([SOCKIT, "connect",
                              "-w", "1", "127.0.0.1:%d" % port],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        t0 = time.monotonic()
        try:
            out, err = p.communicate(timeout=8)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise AssertionError("connect -w 1 still running after 8 s")
        took = time.monotonic() - t0
        p.stdin and p.stdin.close()
    assert p.returncode == 1, (p.returncode, err)
    assert 0.8 <= took < 5, "gave up after %.1fs" % took
    assert err.decode().startswith("sockit: ") and err.count(b"\n") == 1, err


def test_connect_w_after_input_ends():
    # Input ended (half-closed), the server never answers nor closes.
    ls, port = silent_listener()
    with ls:
        line = fails(["connect", "-w", "1", "127.0.0.1:%d" % port], 1,
                     input=b"anyone?\n")
    assert "sockit: " in line


def test_connect_prompt_w_no_reply():
    ls, port = silent_listener()
    with ls:
        r = run_client(["connect", "--prompt", "-w", "1",
                        "127.0.0.1:%d" % port], input=b"hello\n")
    assert r.returncode == 1, r
    assert r.out == "Please enter the message: ", r
    assert "timed out" in r.err and r.err.count("\n") == 1, r


def test_connect_w_connect_timeout():
    # A listener whose accept queue is full drops new SYNs: the connect
    # itself must time out after -w.
    ls, port = silent_listener(backlog=0)
    fillers = []
    with ls:
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.1)
        t0 = time.monotonic()
        fails(["connect", "-z", "-v", "-w", "1", "127.0.0.1:%d" % port], 1,
              "timed out")
        took = time.monotonic() - t0
        for f in fillers:
            f.close()
    assert 0.8 <= took < 5, "connect timed out after %.1fs" % took


def test_udp_prompt_no_server():
    # --prompt over UDP with nobody listening: an error, not a hang.
    s, port = free_port(socket.SOCK_DGRAM)
    s.close()
    r = run_client(["connect", "--prompt", "-w", "1",
                    "udp://127.0.0.1:%d" % port], input=b"hello\n")
    assert r.returncode == 1, r
    assert r.err.startswith("sockit: ") and r.err.count("\n") == 1, r


# -- help and version ---------------------------------------------------------

def test_help():
    for args, word in ((["--help"], "serve"), (["serve", "--help"], "echo"),
                       (["connect", "--help"], "--prompt"),
                       (["serve", "-h"], "--model"), (["help"], "connect")):
        r = run_client(args)
        assert r.returncode == 0, r
        assert r.out.startswith("usage: sockit"), r
        assert word in r.out, "%r not in %s help" % (word, args)
        assert r.err == "", r


def test_version():
    r = run_client(["--version"])
    assert r.returncode == 0 and r.err == "", r
    assert r.out.startswith("sockit ") and r.out.count("\n") == 1, r
    version = r.out.split()[1]
    assert all(p.isdigit() for p in version.split(".")), version
    header = os.path.join(os.path.dirname(__file__), "..", "..", "include",
                          "sockit.h")
    with open(header) as f:
        assert '#define SOCKIT_VERSION "%s"' % version in f.read()


def test_stdout_closed_early():
    # The reader of the client's output goes away: exit quietly, not hang.
    with Server(["counter", "tcp://127.0.0.1:0"]) as srv:
        p = start([SOCKIT, "connect",
                              "127.0.0.1:%d" % srv.port],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        p.stdout.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError("client hung with its stdout closed")
        p.stderr.close()


def test_server_survives_many_refused_and_reset():
    # Mixed rubbish: half-open, reset, immediate close; then a real client.
    with Server(["echo", "tcp://127.0.0.1:0"]) as srv:
        for i in range(30):
            s = connect_tcp(srv.port)
            if i % 3 == 0:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif i % 3 == 1:
                s.shutdown(socket.SHUT_WR)
                assert recv_all(s) == b""
            s.close()
        with connect_tcp(srv.port) as s:
            assert exchange(s, b"fine") == b"fine"
