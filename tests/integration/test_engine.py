"""The engine's contracts seen from the command line: options a model does
not use are refused, not ignored; Unix stream peers are named by their
credentials."""

import os
import socket

from harness import Server, run_client, tempdir


def test_workers_refused_by_models_without_workers():
    for model in ("iterative", "fork", "thread"):
        r = run_client(["serve", "--model", model, "--workers", "2", "echo",
                        "tcp://127.0.0.1:0"], timeout=10)
        assert r.returncode == 2, (model, r)
        assert r.err == "sockit: --workers is not used by the %s model\n" % (
            model), r.err


def test_workers_accepted_by_models_with_workers():
    for model in ("prefork", "select", "poll", "epoll"):
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
