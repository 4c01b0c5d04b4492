"""The seed tutorials' flows, exactly as the tutorials show them.

`server 51717` + `client localhost 51717` becomes
`sockit serve ack --once PORT` + `sockit connect --prompt localhost PORT`,
and likewise for the Unix-domain and datagram variants, the HSE lecture's
counter and hex-dump servers, and the echo server's report line.
"""

import os
import socket

from harness import Server, run_client, tempdir, unique_name

PROMPT = "Please enter the message: "
STREAM_REPLY = PROMPT + "I got your message\n"
DGRAM_REPLY = PROMPT + "Got an ack: Got your message\n"


def prompt_client(*address, data=b"hello\n"):
    r = run_client(["connect", "--prompt"] + list(address), input=data)
    assert r.returncode == 0, "client failed: %r" % r
    assert r.err == "", "client wrote to stderr: %r" % r.err
    return r.out


def ack_once(address, client_address, expected_reply, expected_report):
    """serve ack --once ADDRESS; one --prompt client; both exit 0."""
    with Server(["ack", "--once", address]) as srv:
        if srv.addresses:
            client_address = [a.replace("{port}", str(srv.port))
                              for a in client_address]
        out = prompt_client(*client_address)
        assert out == expected_reply, "client printed %r" % out
        rc = srv.wait(10)
        assert rc == 0, "server exited %s: %r" % (rc, srv.stderr_text())
        assert srv.stdout_text() == expected_report + "\n", (
            "server printed %r" % srv.stdout_text())


def test_ack_tcp_localhost():
    ack_once("0", ["localhost", "{port}"], STREAM_REPLY,
             "Here is the message: hello")


def test_ack_tcp_ipv4_literal():
    ack_once("tcp://127.0.0.1:0", ["127.0.0.1:{port}"], STREAM_REPLY,
             "Here is the message: hello")


def test_ack_unix_stream():
    path = os.path.join(tempdir(), "ack.sock")
    ack_once("unix:" + path, ["unix:" + path], STREAM_REPLY,
             "Here is the message: hello")
    assert not os.path.exists(path), "server left its socket file behind"


def test_ack_udp():
    ack_once("udp://127.0.0.1:0", ["udp://127.0.0.1:{port}"], DGRAM_REPLY,
             "Received a datagram: hello")


def test_ack_unixgram():
    path = os.path.join(tempdir(), "ackd.sock")
    ack_once("unixgram:" + path, ["unixgram:" + path], DGRAM_REPLY,
             "Received a datagram: hello")
    assert not os.path.exists(path), "server left its socket file behind"


def test_ack_message_without_newline():
    # The message ends at end of stream too (the client sends what it has).
    with Server(["ack", "--once", "0"]) as srv:
        r = run_client(["connect", "--prompt", "localhost", str(srv.port)],
                       input=b"no newline")
        assert r.returncode == 0, r
        assert r.out == STREAM_REPLY, r.out
        assert srv.wait() == 0
        assert srv.stdout_text() == "Here is the message: no newline\n", (
            srv.stdout_text())


def test_ack_serves_many_without_once():
    # Without --once the ack server goes on: three clients, three reports.
    with Server(["ack", "0"]) as srv:
        for word in ("one", "two", "three"):
            out = prompt_client("localhost", str(srv.port),
                                data=word.encode() + b"\n")
            assert out == STREAM_REPLY, out
        for word in ("one", "two", "three"):
            assert srv.wait_stdout("Here is the message: %s\n" % word), (
                srv.stdout_text())
        assert srv.alive()


def counter_three(args):
    with Server(["counter"] + args + ["0"]) as srv:
        outs = []
        for _ in range(3):
            r = run_client(["connect", "localhost", str(srv.port)])
            assert r.returncode == 0, r
            outs.append(r.out)
        assert outs == ["Connection 1!\n", "Connection 2!\n",
                        "Connection 3!\n"], outs


def test_counter_default_model():
    counter_three([])


def test_counter_fork_shares_the_count():
    counter_three(["--model", "fork"])


def test_counter_iterative():
    counter_three(["--model", "iterative"])


def test_counter_udp():
    with Server(["counter", "udp://127.0.0.1:0"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            got = []
            for _ in range(3):
                s.send(b"?")
                got.append(s.recv(100))
        assert got == [b"Connection 1!\n", b"Connection 2!\n",
                       b"Connection 3!\n"], got


def echo_report(family, host, listen):
    with Server(["echo", listen]) as srv:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((host, srv.port))
            my_port = s.getsockname()[1]
            s.sendall(b"hello")
            assert s.recv(100) == b"hello"
        line = "Received 5 bytes from %s, port %d\n" % (host, my_port)
        assert srv.wait_stdout(line), (
            "wanted %r, server printed %r" % (line, srv.stdout_text()))


def test_echo_reports_peer_ipv4_on_wildcard():
    # The wildcard socket is dual-stack: the peer is ::ffff:127.0.0.1 to
    # the kernel, and must print as the tutorial prints it.
    echo_report(socket.AF_INET, "127.0.0.1", "0")


def test_echo_reports_peer_ipv4():
    echo_report(socket.AF_INET, "127.0.0.1", "tcp://127.0.0.1:0")


def test_echo_reports_peer_ipv6():
    echo_report(socket.AF_INET6, "::1", "tcp://[::1]:0")


def test_echo_reports_udp_peer():
    with Server(["echo", "udp://127.0.0.1:0"]) as srv:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"datagram", ("127.0.0.1", srv.port))
            data, _ = s.recvfrom(100)
            my_port = s.getsockname()[1]
        assert data == b"datagram"
        line = "Received 8 bytes from 127.0.0.1, port %d\n" % my_port
        assert srv.wait_stdout(line), srv.stdout_text()


def dump_lines(srv):
    """The server's stdout, lines without the trailing blank of "%02x "."""
    return [ln.rstrip(" ") for ln in srv.stdout_text().splitlines()]


def test_dump_unixgram_hse_lecture():
    # unix_d_server: a client sends "Message", the server dumps it in hex.
    path = os.path.join(tempdir(), "dump.sock")
    with Server(["dump", "unixgram:" + path]) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"Message", path)
        assert srv.wait_stdout("4d 65 73 73 61 67 65"), srv.stdout_text()
        lines = dump_lines(srv)
        assert len(lines) == 2, lines
        assert lines[0].startswith("Received 7 bytes from "), lines
        assert lines[1] == "4d 65 73 73 61 67 65", lines


def test_dump_unnamed_sender_wording():
    # services.h: an unnamed Unix sender is "an unnamed unix socket".
    path = os.path.join(tempdir(), "dump.sock")
    with Server(["dump", "unixgram:" + path]) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"Message", path)
        assert srv.wait_stdout("4d 65"), srv.stdout_text()
        lines = dump_lines(srv)
        assert lines[0] == ("Received 7 bytes from an unnamed unix socket:"), (
            "unnamed Unix sender shown as %r" % lines[0])


def test_dump_unixgram_named_sender():
    d = tempdir()
    path = os.path.join(d, "dump.sock")
    me = os.path.join(d, "client.sock")
    with Server(["dump", "unixgram:" + path]) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(me)
            s.sendto(bytes(range(20)), path)
        assert srv.wait_stdout("10 11 12 13"), srv.stdout_text()
        assert dump_lines(srv) == [
            "Received 20 bytes from unix:%s:" % me,
            "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
            "10 11 12 13"], srv.stdout_text()


def test_dump_tcp_names_the_peer():
    with Server(["dump", "tcp://127.0.0.1:0"]) as srv:
        with socket.socket() as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            my_port = s.getsockname()[1]
            s.sendall(b"Message")
            s.shutdown(socket.SHUT_WR)
            assert s.recv(100) == b"", "dump must send nothing back"
        want = ("Received 7 bytes from 127.0.0.1, port %d:\n"
                "4d 65 73 73 61 67 65" % my_port)
        assert srv.wait_stdout(want), srv.stdout_text()


def test_dump_abstract_unixgram():
    name = unique_name()
    with Server(["dump", "unixgram:@" + name]) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"Message", "\0" + name)
        assert srv.wait_stdout("4d 65 73 73 61 67 65"), srv.stdout_text()


def test_two_word_client_form():
    # The tutorial's `client HOST PORT`, here without --prompt (raw copy).
    with Server(["echo", "0"]) as srv:
        r = run_client(["connect", "localhost", str(srv.port)],
                       input=b"hello\n")
        assert r.returncode == 0, r
        assert r.stdout == b"hello\n", r


def test_two_word_client_form_ipv6_literal():
    with Server(["echo", "tcp://[::1]:0"]) as srv:
        r = run_client(["connect", "::1", str(srv.port)], input=b"six\n")
        assert r.returncode == 0, r
        assert r.stdout == b"six\n", r


def test_once_exits_after_one_connection():
    # --once: the tutorial server serves one client and exits 0 by itself,
    # before anyone asks it to stop.
    with Server(["echo", "--once", "tcp://127.0.0.1:0"]) as srv:
        r = run_client(["connect", "127.0.0.1:%d" % srv.port],
                       input=b"only\n")
        assert r.stdout == b"only\n", r
        assert srv.wait(10) == 0, srv.stderr_text()
        r = run_client(["connect", "-z", "127.0.0.1:%d" % srv.port])
        assert r.returncode == 1, "a --once server still accepts: %r" % r
