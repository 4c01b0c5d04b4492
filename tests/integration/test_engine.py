"""The engine's contracts seen from the command line: options a model does
not use are refused, not ignored; Unix stream peers are named by their
credentials."""

import os
import socket

from harness import Server, Skip, model_available, run_client, tempdir


def test_workers_refused_by_models_without_workers():
    for model in ("iterative", "fork", "thread"):
        r = run_client(["serve", "--model", model, "--workers", "2", "echo",
                        "tcp://127.0.0.1:0"], timeout=10)
        assert r.returncode == 2, (model, r)
        assert r.err == "sockit: --workers is not used by the %s model\n" % (
            model), r.err


def test_workers_accepted_by_models_with_workers():
    for model in ("prefork", "select", "poll", "epoll", "uring"):
        with Server(["echo", "--model", model, "--workers", "2",
                     "tcp://127.0.0.1:0"]) as srv:
            assert srv.alive(), model


def check_unix_peer_named_by_credentials(model):
    path = os.path.join(tempdir(), "p.sock")
    with Server(["echo", "-v", "--model", model, "unix:" + path]) as srv:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"hi")
        assert s.recv(2) == b"hi"
        s.close()
        who = "unix peer pid %d uid %d" % (os.getpid(), os.getuid())
        assert srv.wait_stderr("closed " + who + ":", 5), srv.stderr_text()
        assert "connection from " + who + "\n" in srv.stderr_text()


def test_unix_peer_named_by_credentials_epoll():
    check_unix_peer_named_by_credentials("epoll")


def test_unix_peer_named_by_credentials_fork():
    check_unix_peer_named_by_credentials("fork")


def test_unix_peer_described_one_way_in_service_reports():
    """echo's and dump's reports name a Unix peer as the -v log does, not as
    the unnamed address ("unnamed, port 0") it has."""
    who = "unix peer pid %d uid %d" % (os.getpid(), os.getuid())
    for service, want in (("echo", "Received 2 bytes from %s\n" % who),
                          ("dump", "Received 2 bytes from %s:\n68 69" % who)):
        path = os.path.join(tempdir(), service + ".sock")
        with Server([service, "unix:" + path]) as srv:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(b"hi")
                if service == "echo":
                    assert s.recv(2) == b"hi"
            assert srv.wait_stdout(want, 5), (service, srv.stdout_text())


def test_unix_peer_described_one_way_by_serve_stdio():
    path = os.path.join(tempdir(), "stdio.sock")
    with Server(["-v", "stdio", "unix:" + path]) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
            who = "unix peer pid %d uid %d" % (os.getpid(), os.getuid())
            assert srv.wait_stderr("connection from " + who + "\n", 5), srv.stderr_text()


def test_uring_names_a_tcp_peer_taken_lazily():
    """--model uring asks for a TCP peer's address only when something names
    it (its multishot accept brings none): the -v lines and echo's report
    still name the right client."""
    ok, why = model_available("uring")
    if not ok:
        raise Skip(why)
    with Server(["echo", "-v", "--model", "uring", "tcp://127.0.0.1:0"]) as srv:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            port = s.getsockname()[1]
            s.sendall(b"hi")
            assert s.recv(2) == b"hi"
            s.close()
            who = "tcp://127.0.0.1:%d" % port
            assert srv.wait_stderr("closed " + who + ":", 5), srv.stderr_text()
            assert "connection from " + who + "\n" in srv.stderr_text()
            assert srv.wait_stdout("Received 2 bytes from 127.0.0.1, port %d\n" % port, 5), \
                srv.stdout_text()
