"""`sockit serve exec`: the child's side. Its process group ended with the
connection (a grandchild left behind, a client that resets, --timeout, the
server's stop), what it gets (environment, descriptors 0-2 only, default
signals, stderr lines with the client's address), access control before it
starts, and 1000 connections with no zombie and no leaked descriptor.
Helpers are test_exec.py's.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

from harness import (SOCKIT, fd_count, poll_until, recv_all, start, tempdir,
                     timeout)
from test_exec import (MODELS, alive, descendants, env_of, exec_server, margs,
                       talk, zombie_descendants)


# -- the child's process group ----------------------------------------------

@timeout(90)
def test_exec_grandchild_group_killed():
    # The child starts a grandchild and exits: when the connection ends the
    # group gets SIGTERM. Detached (stdio elsewhere), and holding stdout.
    detached = "sleep 60 </dev/null >/dev/null 2>&1 & echo $!"
    holding = "sleep 60 & echo $!"
    for model in MODELS:
        for prog in (detached, holding):
            with exec_server(model, prog) as srv:
                c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                c.shutdown(socket.SHUT_WR)
                got = recv_all(c)
                c.close()
                pid = int(got.split()[0])
                assert poll_until(lambda: not alive(pid), 10), (
                    "%s: grandchild %d still alive (%r)" % (model, pid, prog))


@timeout(60)
def test_exec_client_gone_ends_child():
    # The client resets the connection while the child runs: the child's
    # group gets SIGTERM and the child is reaped (no zombie).
    for model in MODELS:
        with exec_server(model, "echo $$; exec sleep 60") as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            pid = int(c.recv(100).split()[0])
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # a reset
            assert poll_until(lambda: not alive(pid), 10), (model, pid)
            assert poll_until(lambda: zombie_descendants(srv.pid) == [], 5), model


@timeout(60)
def test_exec_timeout_terminates_then_kills():
    # --timeout: SIGTERM to the group; one that ignores it gets SIGKILL
    # --grace later. The connection ends either way.
    for model in ("epoll", "fork"):
        with exec_server(model, ["sleep", "60"],
                         extra=["--timeout", "0.3"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            assert recv_all(c) == b""
            c.close()
            assert srv.wait_stderr("--timeout"), srv.stderr_text()
        prog = 'trap "" TERM; echo $$; sleep 60; echo not killed'
        with exec_server(model, prog,
                         extra=["--timeout", "0.3", "--grace", "0.5"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            got = recv_all(c)
            c.close()
            pid = int(got.split()[0])
            assert b"not killed" not in got
            assert poll_until(lambda: not alive(pid), 5), model


@timeout(60)
def test_exec_server_stop_ends_children():
    # SIGTERM to the server: busy connections get --grace, then their
    # groups get SIGTERM (then SIGKILL): no child outlives the server.
    for model in ("epoll", "thread", "fork", "prefork"):
        srv = exec_server(model, 'trap "" TERM; echo $$; exec sleep 60',
                          extra=["--grace", "0.5"])
        with srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            pid = int(c.recv(100).split()[0])
            t0 = time.monotonic()
            assert srv.stop(timeout=15) == 0, srv.stderr_text()
            assert time.monotonic() - t0 < 10, model
            c.close()
        assert poll_until(lambda: not alive(pid), 5), (model, pid)


# -- what the child gets ----------------------------------------------------

@timeout(60)
def test_exec_environment():
    os.environ["SKIT_PASSED"] = "from the server"
    os.environ["SKIT_NOT_PASSED"] = "secret"
    extra = ["--env", "GREETING=hello world", "--pass-env", "SKIT_PASSED"]
    for model in ("epoll", "fork"):
        with exec_server(model, ["env"], extra=extra) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            lport = c.getsockname()[1]
            c.shutdown(socket.SHUT_WR)
            env = env_of(recv_all(c).decode())
            c.close()
            want = {"PROTO": "TCP", "TCPREMOTEIP": "127.0.0.1",
                    "TCPREMOTEPORT": str(lport), "TCPLOCALIP": "127.0.0.1",
                    "TCPLOCALPORT": str(srv.port), "REMOTE_ADDR": "127.0.0.1",
                    "REMOTE_PORT": str(lport), "GREETING": "hello world",
                    "SKIT_PASSED": "from the server"}
            for k, v in want.items():
                assert env.get(k) == v, (model, k, env)
            assert set(env) == set(want) | {"PATH"}, (model, sorted(env))
    with exec_server("epoll", ["env"], addr="tcp://[::1]:0") as srv:
        c = socket.create_connection(("::1", srv.port), timeout=10)
        lport = c.getsockname()[1]
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
        assert env["PROTO"] == "TCP6" and env["TCPREMOTEIP"] == "::1", env
        assert env["TCPREMOTEPORT"] == str(lport) and env["TCPLOCALIP"] == "::1"
    d = tempdir()
    with exec_server("thread", ["env"], addr="unix:%s/s" % d) as srv:
        c = socket.socket(socket.AF_UNIX)
        c.connect("%s/s" % d)
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
        assert env["PROTO"] == "UNIX", env
        assert env["UNIXREMOTEPID"] == str(os.getpid()), env
        assert env["UNIXREMOTEEUID"] == str(os.geteuid()), env
        assert env["UNIXREMOTEEGID"] == str(os.getegid()), env
        assert "TCPREMOTEIP" not in env


def start_server_with(args, **popen):
    """serve ARGS with extra Popen settings; returns (proc, port)."""
    p = start([SOCKIT, "serve"] + args, stdout=subprocess.DEVNULL,
              stderr=subprocess.PIPE, **popen)
    line = p.stderr.readline().decode()
    m = re.search(r"listening on \S+:(\d+)$", line.strip())
    assert m, line
    return p, int(m.group(1))


@timeout(60)
def test_exec_descriptors_and_signals():
    # Only 0, 1 and 2 (a descriptor the server inherited stays out), default
    # dispositions and an empty mask although the server runs with signals
    # ignored and blocked (as under nohup).
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_r, True)

    def nohup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})

    def ask(port):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.shutdown(socket.SHUT_WR)
        text = recv_all(c).decode()
        c.close()
        return text

    for model in ("epoll", "prefork", "thread", "iterative"):
        # The shell lists its own descriptors (ls's would show ls's directory).
        prog = ["sh", "-c", "ls -l /proc/$$/fd"]
        p, port = start_server_with(["exec"] + margs(model) +
                                    ["tcp://127.0.0.1:0", "--"] + prog,
                                    pass_fds=(leak_r,), preexec_fn=nohup)
        try:
            text = ask(port)
        finally:
            p.terminate()
            p.wait(10)
        fds = sorted(int(m) for m in re.findall(r" (\d+) -> ", text))
        assert fds == [0, 1, 2], (model, text)
        p, port = start_server_with(["exec"] + margs(model) +
                                    ["tcp://127.0.0.1:0", "--", "cat", "/proc/self/status"],
                                    preexec_fn=nohup)
        try:
            text = ask(port)
        finally:
            p.terminate()
            p.wait(10)
        ign = int(re.search(r"SigIgn:\s+([0-9a-f]+)", text).group(1), 16)
        blk = int(re.search(r"SigBlk:\s+([0-9a-f]+)", text).group(1), 16)
        # Signals 32 and 33 are glibc's own (NPTL), hidden from programs;
        # its posix_spawn leaves them ignored. Every other one is default.
        assert ign & ~(3 << 31) == 0, (model, hex(ign))
        assert blk == 0, (model, hex(blk))
    # A server started with descriptors 0 and 1 closed: its own pipes may be
    # 0 and 1, the child still gets the right three.
    def closed_stdio():
        os.close(0)
        os.close(1)

    p, port = start_server_with(["exec", "tcp://127.0.0.1:0", "--", "sh", "-c",
                                 "ls -l /proc/$$/fd; cat"], preexec_fn=closed_stdio)
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"still joined\n")
        c.shutdown(socket.SHUT_WR)
        text = recv_all(c).decode()
        c.close()
    finally:
        p.terminate()
        p.wait(10)
    assert re.findall(r" (\d+) -> (\w+)", text) == [
        ("0", "socket"), ("1", "pipe"), ("2", "pipe")], text
    assert text.endswith("still joined\n"), text
    os.close(leak_r)
    os.close(leak_w)


@timeout(30)
def test_exec_stderr_lines_name_the_client():
    with exec_server("epoll", "echo oops >&2; printf 'no newline' >&2; echo out") as srv:
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        lport = c.getsockname()[1]
        c.shutdown(socket.SHUT_WR)
        assert recv_all(c) == b"out\n"
        c.close()
        who = "tcp://127.0.0.1:%d" % lport
        assert srv.wait_stderr("%s: no newline" % who), srv.stderr_text()
        assert "sockit: %s: oops\n" % who in srv.stderr_text(), srv.stderr_text()
        assert "out" not in srv.stdout_text()


@timeout(30)
def test_exec_access_denied_runs_nothing():
    # --allow/--deny come with every server: a refused client never starts
    # the program (the marker file stays absent).
    d = tempdir()
    mark = os.path.join(d, "ran")
    for model in ("epoll", "fork"):
        with exec_server(model, "touch %s; echo hi" % mark,
                         extra=["--allow", "127.0.0.2"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                got = recv_all(c)
            except ConnectionResetError:
                got = b""
            c.close()
            assert got == b"", (model, got)
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10,
                                         source_address=("127.0.0.2", 0))
            c.shutdown(socket.SHUT_WR)
            assert recv_all(c) == b"hi\n", model
            c.close()
        assert os.path.exists(mark), model
        os.unlink(mark)
        with exec_server(model, "touch %s; echo hi" % mark,
                         extra=["--deny", "127.0.0.1"]) as srv:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                got = recv_all(c)
            except ConnectionResetError:
                got = b""
            c.close()
            assert got == b"", (model, got)
        assert not os.path.exists(mark), model


# -- many connections ----------------------------------------------------------

def many(port, n, threads=8):
    errors = []

    def worker(k):
        for i in range(k, n, threads):
            msg = b"%d\n" % i
            try:
                got = talk(port, msg, timeout_s=10)
            except OSError as e:
                errors.append((i, e))
                continue
            if got != msg:
                errors.append((i, got))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return errors


@timeout(240)
def test_exec_many_connections_no_zombies_no_leaks():
    for model in MODELS:
        n = 1000 if model in ("epoll", "fork") else 50
        with exec_server(model, ["cat"]) as srv:
            many(srv.port, 5, threads=1)  # warm up (the reaper, workers)
            before = fd_count(srv.pid)
            errors = many(srv.port, n)
            assert errors == [], (model, errors[:5])
            assert poll_until(lambda: zombie_descendants(srv.pid) == [], 10), (
                model, zombie_descendants(srv.pid))
            assert poll_until(lambda: fd_count(srv.pid) <= before, 5), (
                model, before, fd_count(srv.pid))
            # No exec child left either (prefork workers are the only children).
            left = [k for k in descendants(srv.pid)
                    if open("/proc/%d/comm" % k).read().strip() == "cat"]
            assert poll_until(lambda: not [k for k in left if alive(k)], 5), left


@timeout(30)
def test_exec_environment_behind_the_proxy_protocol():
    """With --proxy-protocol the client the header names is the peer: the
    child sees its address and SOCKIT_PROXIED=1."""
    hdr = b"PROXY TCP4 127.0.0.9 127.0.0.1 4242 80\r\n"
    with exec_server("epoll", ["env"], extra=["--proxy-protocol"]) as srv:
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        c.sendall(hdr)
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
    assert env.get("SOCKIT_PROXIED") == "1", env
    assert env["TCPREMOTEIP"] == "127.0.0.9" and env["TCPREMOTEPORT"] == "4242", env
    assert env["REMOTE_ADDR"] == "127.0.0.9", env
    with exec_server("epoll", ["env"]) as srv:  # not proxied: no such variable
        c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        c.shutdown(socket.SHUT_WR)
        env = env_of(recv_all(c).decode())
        c.close()
    assert "SOCKIT_PROXIED" not in env, env
