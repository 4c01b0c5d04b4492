"""Every service under every model over every transport it supports.

The matrix: echo (RFC 862), discard (863), chargen (864), daytime (867),
time (868), ack, counter, dump and broker, each under iterative, fork,
thread, prefork, select, poll and epoll, over tcp, udp, unix and unixgram.
One generated test per cell, test_<service>_<model>_<transport>, each with
its own server (port 0, or a Unix path under the harness's temp dir), driven
by Python sockets, by `sockit connect`, and by real clients where one exists
(netcat-openbsd, socat, rdate).

broker runs on stream transports under thread/select/poll/epoll only; under
fork, prefork and iterative, and on datagram transports, `serve` refuses it
with exit status 2 and one line on stderr, before announcing any address.
"""

import os
import select
import socket
import subprocess
import time

import harness
from harness import Server, recv_all, require, run, run_client, start
from svcmatrix import (MODELS, SANITIZED, SHARED, TRANSPORTS, Background,
                       Target, assert_now, chargen_wraps, decode_time,
                       low_port_dgram_socket, model_args, parse_daytime,
                       parse_rdate, recv_nothing, use_utc)
# svcmatrix's RFC 864 checker; check_chargen below is the matrix cell.
from svcmatrix import check_chargen as check_chargen_data

SERVICES = ["echo", "discard", "chargen", "daytime", "time", "ack", "counter",
            "dump", "broker"]

# A datagram `sockit connect` stops this long after its input ends and the
# replies stop (replies take milliseconds; more slack under sanitizers).
DGRAM_W = "0.5" if SANITIZED else "0.3"


def serve(service, model, target, extra=()):
    return Server([service] + list(extra) + model_args(model)
                  + [target.listen])


def sockit_connect_bg(target, data, extra=()):
    args = ["connect"] + list(extra)
    if not target.stream:
        args += ["-w", DGRAM_W]
    return Background([harness_sockit()] + args + [target.connect_addr],
                      input=data, timeout=20)


def harness_sockit():
    return harness.SOCKIT


def assert_low_port_ignored(target, request, answered_by,
                            high_request=None):
    """UDP only: a datagram from a port below 1024 gets no answer; one from a
    high port does (the echo/chargen loop attack)."""
    if target.transport != "udp":
        return
    low = low_port_dgram_socket()
    try:
        low.sendto(request, ("127.0.0.1", target.port))
        with target.open_dgram() as high:
            high.send(request if high_request is None else high_request)
            reply = high.recv(65536)
            answered_by(reply)
        # The high one was answered, so the low one was seen first (one
        # socket, in order) or is about to be: give it a moment longer.
        try:
            recv_nothing(low, 0.3)
        except AssertionError as e:
            raise AssertionError(
                "a datagram from privileged port %d was answered: %s"
                % (low.getsockname()[1], e))
    finally:
        low.close()


# -- echo (RFC 862) ----------------------------------------------------------

def check_echo(model, target):
    line = b"echo %s %s\n" % (model.encode(), target.transport.encode())
    with serve("echo", model, target) as srv:
        target.bind(srv)
        if target.stream:
            # Python: random bytes in several writes, then half-close.
            data = os.urandom(48 * 1024)
            with target.open_stream() as s:
                for k in range(0, len(data), 5000):
                    s.sendall(data[k:k + 5000])
                s.shutdown(socket.SHUT_WR)
                got = recv_all(s)
            assert got == data, "echo returned %d of %d bytes (equal " \
                "prefix: %s)" % (len(got), len(data), data.startswith(got))
            big = os.urandom(300 * 1024)
            r = run_client(["connect", target.connect_addr], input=big,
                           timeout=20)
            assert r.returncode == 0 and r.stdout == big, (
                "sockit connect: %d of %d bytes back, exit %s, %r"
                % (len(r.stdout), len(big), r.returncode, r.err))
            r = run(target.nc(), input=line)
            assert r.returncode == 0 and r.stdout == line, r
            r = run(target.socat(), input=line)
            assert r.returncode == 0 and r.stdout == line, r
            return
        bg = [sockit_connect_bg(target, line),
              Background(target.socat(), input=line)]
        if target.nc():
            bg.append(Background(target.nc(), input=line))
        with target.open_dgram() as s:
            for msg in (b"one", os.urandom(1000), line, b"\0\r\n\xff"):
                s.send(msg)
                got = s.recv(65536)
                assert got == msg, "sent %r, echoed %r" % (msg[:40],
                                                           got[:40])
        assert_low_port_ignored(
            target, b"loop?",
            lambda reply: reply == b"loop?" or _fail("echoed %r" % reply))
        for b in bg:
            r = b.get()
            assert r.stdout == line, r
            if b.cmd[0] != "nc":  # nc -u exits 1 after its -w timeout
                assert r.returncode == 0, r


def _fail(msg):
    raise AssertionError(msg)


# -- discard (RFC 863) -------------------------------------------------------

def check_discard(model, target):
    data = os.urandom(100 * 1024)
    with serve("discard", model, target, ["-v"]) as srv:
        target.bind(srv)
        if target.stream:
            with target.open_stream() as s:
                for k in range(0, len(data), 10000):
                    s.sendall(data[k:k + 10000])
                # Nothing ever comes back, and the connection stays open
                # while the client keeps it open.
                recv_nothing(s, 0.3)
                s.sendall(b"still open\n")
                recv_nothing(s, 0.1)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(5)
                assert recv_all(s) == b"", "discard sent something"
            for cmd in ([harness_sockit(), "connect", target.connect_addr],
                        target.nc(), target.socat()):
                r = run(cmd, input=data, timeout=20)
                assert r.returncode == 0 and r.stdout == b"", r
            return
        bg = [sockit_connect_bg(target, b"into the void\n"),
              Background(target.socat(), input=b"into the void\n")]
        if target.nc():
            bg.append(Background(target.nc(), input=b"into the void\n"))
        with target.open_dgram() as s:
            s.send(data[:1000])
            # -v: the server says it had the datagram and sent 0 bytes back.
            assert srv.wait_stderr("1000 bytes in, 0 bytes out"), (
                srv.stderr_text()[-500:])
            recv_nothing(s, 0.2)
        for b in bg:
            r = b.get()
            assert r.stdout == b"", r
            if b.cmd[0] != "nc":
                assert r.returncode == 0, r
        assert srv.alive()


# -- chargen (RFC 864) -------------------------------------------------------

def read_then_kill(cmd, nbytes, timeout=10):
    """Start cmd (stdin left open: no half-close), read nbytes of its
    stdout, then kill it."""
    p = start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              stderr=subprocess.DEVNULL)
    fd = p.stdout.fileno()
    os.set_blocking(fd, True)
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < nbytes and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    p.kill()
    p.wait(5)
    p.stdout.close()
    p.stdin.close()
    return bytes(got)


STREAM_BYTES = 3 * 7030  # three 95-line cycles, ~20 KB


def check_chargen(model, target):
    with serve("chargen", model, target) as srv:
        target.bind(srv)
        if target.stream:
            with target.open_stream() as s:
                got = bytearray()
                while len(got) < STREAM_BYTES:
                    chunk = s.recv(65536)
                    assert chunk, "chargen closed after %d bytes" % len(got)
                    got += chunk
            got = bytes(got)
            n = check_chargen_data(got, min_lines=190, what="python")
            assert chargen_wraps(got), "no wrap from '~' to ' ' in %d " \
                "lines" % n
            for cmd in ([harness_sockit(), "connect", target.connect_addr],
                        target.nc()):
                out = read_then_kill(cmd, STREAM_BYTES)
                assert len(out) >= STREAM_BYTES, "%s got %d bytes" % (
                    cmd[:2], len(out))
                check_chargen_data(out, min_lines=190, what=cmd[0])
            return
        bg = sockit_connect_bg(target, b"lines please\n")
        with target.open_dgram() as s:
            for req in (b"", b"x", b"any data at all\n"):
                s.send(req)
                reply = s.recv(65536)
                assert 0 <= len(reply) <= 512, "reply of %d bytes" % len(
                    reply)
                if reply:
                    check_chargen_data(reply, whole_lines=True,
                                       what="datagram reply")
        assert_low_port_ignored(
            target, b"?",
            lambda reply: check_chargen_data(reply, whole_lines=True,
                                             what="high-port reply"))
        r = bg.get()
        assert r.returncode == 0, r
        assert 0 < len(r.stdout) <= 512, r
        check_chargen_data(r.stdout, whole_lines=True, what="sockit connect")


# -- daytime (RFC 867) -------------------------------------------------------

def check_daytime(model, target):
    use_utc()
    with serve("daytime", model, target) as srv:
        target.bind(srv)
        if target.stream:
            with target.open_stream() as s:
                assert_now(parse_daytime(recv_all(s)), "daytime (python)")
            # A request is ignored; the reply comes and the server closes.
            with target.open_stream() as s:
                s.sendall(b"what time is it?\n")
                assert_now(parse_daytime(recv_all(s)), "daytime (python)")
            for cmd in ([harness_sockit(), "connect", target.connect_addr],
                        target.nc(), target.socat()):
                r = run(cmd)
                assert r.returncode == 0, r
                assert_now(parse_daytime(r.stdout), "daytime (%s)" % cmd[0])
            return
        bg = [sockit_connect_bg(target, b"\n"),
              Background(target.socat(), input=b"\n")]
        if target.nc():
            bg.append(Background(target.nc(), input=b"\n"))
        with target.open_dgram() as s:
            for req in (b"", b"time?"):
                s.send(req)
                assert_now(parse_daytime(s.recv(512)), "daytime datagram")
        assert_low_port_ignored(target, b"",
                                lambda reply: parse_daytime(reply))
        for b in bg:
            r = b.get()
            assert_now(parse_daytime(r.stdout), "daytime (%s)" % b.cmd[0])


# -- time (RFC 868) ----------------------------------------------------------

def check_time(model, target):
    use_utc()
    with serve("time", model, target) as srv:
        target.bind(srv)
        rdate = None
        if target.transport in ("tcp", "udp"):
            require("rdate")
            # Debian's rdate: -p prints without setting, -u is UDP, -o the
            # port (-n would be SNTP, not RFC 868).
            rdate = ["rdate", "-p"] + (["-u"] if target.transport == "udp"
                                       else []) + ["-o", str(target.port),
                                                   "127.0.0.1"]
        if target.stream:
            with target.open_stream() as s:
                assert_now(decode_time(recv_all(s)), "time (python)")
            r = run_client(["connect", target.connect_addr])
            assert r.returncode == 0, r
            assert_now(decode_time(r.stdout), "time (sockit connect)")
            r = run(target.socat(), input=b"")
            assert r.returncode == 0, r
            assert_now(decode_time(r.stdout), "time (socat)")
        else:
            bg = sockit_connect_bg(target, b"\n")
            with target.open_dgram() as s:
                for req in (b"", b"ignored"):
                    s.send(req)
                    assert_now(decode_time(s.recv(512)), "time datagram")
            assert_low_port_ignored(target, b"",
                                    lambda reply: decode_time(reply))
            r = bg.get()
            assert r.returncode == 0, r
            assert_now(decode_time(r.stdout), "time (sockit connect)")
        if rdate:
            r = run(rdate, env=dict(os.environ, TZ="UTC"))
            assert r.returncode == 0, r
            assert_now(parse_rdate(r.out), "rdate")


# -- ack (the tutorial server) -----------------------------------------------

PROMPT = "Please enter the message: "


def check_ack(model, target):
    with serve("ack", model, target) as srv:
        target.bind(srv)
        if target.stream:
            with target.open_stream() as s:
                s.sendall(b"from python\n")
                assert recv_all(s) == b"I got your message"
            r = run_client(["connect", "--prompt", target.connect_addr],
                           input=b"from sockit\n")
            assert r.out == PROMPT + "I got your message\n", r
            r = run(target.nc(), input=b"from nc\n")
            assert r.stdout == b"I got your message", r
            for who in ("python", "sockit", "nc"):
                line = "Here is the message: from %s\n" % who
                assert srv.wait_stdout(line), (line, srv.stdout_text())
            return
        with target.open_dgram() as s:
            s.send(b"from python\n")
            assert s.recv(512) == b"Got your message\n"
        r = run_client(["connect", "--prompt", target.connect_addr],
                       input=b"from sockit\n")
        # The tutorial's datagram client prints "Got an ack: " first.
        assert r.out == PROMPT + "Got an ack: Got your message\n", r
        assert_low_port_ignored(
            target, b"from a low port",
            lambda reply: reply == b"Got your message\n" or _fail(reply),
            high_request=b"from a high port")
        for who in ("python", "sockit") + (
                ("a high port",) if target.transport == "udp" else ()):
            line = "Received a datagram: from %s\n" % who
            assert srv.wait_stdout(line), (line, srv.stdout_text())
        if target.transport == "udp":
            assert "low port" not in srv.stdout_text(), (
                "a datagram from a privileged port reached the service: %r"
                % srv.stdout_text())


# -- counter -----------------------------------------------------------------

def check_counter(model, target):
    with serve("counter", model, target) as srv:
        target.bind(srv)
        got = []
        if target.stream:
            with target.open_stream() as s:
                got.append(recv_all(s))
            r = run_client(["connect", target.connect_addr])
            assert r.returncode == 0, r
            got.append(r.stdout)
            r = run(target.nc(), input=b"")
            assert r.returncode == 0, r
            got.append(r.stdout)
        else:
            with target.open_dgram() as s:
                s.send(b"?")
                got.append(s.recv(512))
            # A privileged source port is not served, so it is not counted.
            assert_low_port_ignored(target, b"?", got.append)
            r = run_client(["connect", "-w", DGRAM_W, target.connect_addr],
                           input=b"?")
            assert r.returncode == 0, r
            got.append(r.stdout)
        want = [b"Connection %d!\n" % k for k in range(1, len(got) + 1)]
        assert got == want, got


# -- dump --------------------------------------------------------------------

def check_dump(model, target):
    with serve("dump", model, target) as srv:
        target.bind(srv)
        if target.stream:
            with target.open_stream() as s:
                me = s.getsockname()
                s.sendall(b"Message")
                s.shutdown(socket.SHUT_WR)
                assert recv_all(s) == b"", "dump must send nothing back"
            if target.transport == "tcp":
                want = "Received 7 bytes from 127.0.0.1, port %d:\n" \
                    "4d 65 73 73 61 67 65" % me[1]
            else:
                want = "Received 7 bytes from "
            assert srv.wait_stdout(want), (want, srv.stdout_text())
            r = run_client(["connect", target.connect_addr],
                           input=bytes(range(20)))
            assert r.returncode == 0 and r.stdout == b"", r
        else:
            with target.open_dgram() as s:
                me = s.getsockname()
                s.send(b"Message")
                recv_nothing(s, 0.1)
            if target.transport == "udp":
                want = "Received 7 bytes from 127.0.0.1, port %d:\n" \
                    "4d 65 73 73 61 67 65" % me[1]
            else:
                want = "Received 7 bytes from unix:%s:\n" \
                    "4d 65 73 73 61 67 65" % me
            assert srv.wait_stdout(want), (want, srv.stdout_text())
            r = run_client(["connect", "-w", DGRAM_W, target.connect_addr],
                           input=bytes(range(20)))
            assert r.returncode == 0 and r.stdout == b"", r
        want = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f"
        assert srv.wait_stdout(want), srv.stdout_text()
        assert srv.wait_stdout("10 11 12 13"), srv.stdout_text()


# -- broker ------------------------------------------------------------------

def check_broker(model, target):
    if model not in SHARED or not target.stream:
        r = run_client(["serve", "broker"] + model_args(model)
                       + [target.listen], timeout=5)
        assert r.returncode == 2, "broker under %s over %s: %r" % (
            model, target.transport, r)
        last = r.err.rstrip("\n").split("\n")[-1]
        assert last.startswith("sockit: ") and "broker" in last, r
        # A usage error is found before anything is bound or announced: a
        # script waiting for "listening on" must not think it is up.
        assert "listening on" not in r.out + r.err, (
            "refused with exit 2, yet announced an address first: %r"
            % r.err)
        assert r.err.count("\n") == 1, r
        if target.path:
            assert not os.path.exists(target.path), (
                "refused, yet left %s behind" % target.path)
        return
    with serve("broker", model, target) as srv:
        target.bind(srv)
        a = target.open_stream()
        b = target.open_stream()
        # a and b registered: a's "sync" lines reach b (and whoever joined
        # since: the others' "sync" lines are not counted below).
        b.settimeout(0.1)
        seen = b""
        deadline = time.monotonic() + 5
        while b"sync\n" not in seen and time.monotonic() < deadline:
            a.sendall(b"sync\n")
            try:
                seen += b.recv(4096)
            except socket.timeout:
                pass
        assert b"sync\n" in seen, "b never heard from a"
        # Then the two clients: a client counts as joined once the server
        # holds a descriptor for it (a fixed sleep lost the race on a
        # loaded machine: a line spoken before nc joined never reached it).
        base = harness.fd_count(srv.pid)
        sc = start([harness_sockit(), "connect", target.connect_addr],
                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
        nc = start(target.nc(), stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert harness.poll_until(
            lambda: harness.fd_count(srv.pid) >= base + 2, timeout=10), \
            "sockit connect and nc never joined the broker"
        # The descriptor exists before the loop has taken the connection in
        # (io_uring's accept makes it in the kernel): they have joined once
        # a's "sync" lines reach both.
        early = {"sockit": b"", "nc": b""}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(b"sync\n" in v for v in early.values()):
            a.sendall(b"sync\n")
            ready, _, _ = select.select([sc.stdout, nc.stdout], [], [], 0.1)
            for f in ready:
                early["sockit" if f is sc.stdout else "nc"] += os.read(f.fileno(), 4096)
        assert all(b"sync\n" in v for v in early.values()), \
            "sockit connect and nc never heard from a: %r" % early
        a.sendall(b"hello from a\n")
        sc.stdin.write(b"hello from sockit\n")
        sc.stdin.flush()
        b.sendall(b"hello from b\n")
        nc.stdin.write(b"hello from nc\n")
        nc.stdin.flush()
        time.sleep(0.3)
        for s in (a, b):
            s.shutdown(socket.SHUT_WR)
        a.settimeout(5)
        b.settimeout(5)
        got = {"a": recv_all(a), "b": seen + recv_all(b)}
        a.close()
        b.close()
        for name, p in (("sockit", sc), ("nc", nc)):
            out, err = p.communicate(timeout=10)  # closes its stdin first
            got[name] = early[name] + out
            assert p.returncode == 0, (name, p.returncode, err)
        for me in ("a", "b", "sockit", "nc"):
            lines = [ln for ln in got[me].split(b"\n") if ln and
                     ln != b"sync"]
            others = sorted(b"hello from " + w.encode()
                            for w in ("a", "b", "sockit", "nc") if w != me)
            assert sorted(lines) == others, (me, got[me][-300:])


CHECKS = {"echo": check_echo, "discard": check_discard,
          "chargen": check_chargen, "daytime": check_daytime,
          "time": check_time, "ack": check_ack, "counter": check_counter,
          "dump": check_dump, "broker": check_broker}


def _make(service, model, transport):
    check = CHECKS[service]

    def test():
        check(model, Target(transport))
    test.__name__ = "test_%s_%s_%s" % (service, model, transport)
    test.__module__ = __name__
    return test


for _service in SERVICES:
    for _model in MODELS:
        for _transport in TRANSPORTS:
            _t = _make(_service, _model, _transport)
            globals()[_t.__name__] = _t
del _service, _model, _transport, _t
