"""docs/TUTORIAL.md, run: every command the tutorial shows that can run on
loopback, checked against what the tutorial says it shows.

Each command is taken as the tutorial writes it (the test first checks that
the text is in TUTORIAL.md, so the two cannot drift apart silently), with the
tutorial's port 51717 replaced by a port the kernel picked: servers listen on
127.0.0.1:0 and print theirs. Shell commands run under bash with $SOCKIT's
directory first on PATH, from the top of the source tree (or a temporary
directory when they write files). Not run: the wildcard bind (`serve ack
51717`, which would listen on every interface), the `sockit bench` runs of
section 4 (commands to try, not claims), and the netem aside (root only).
"""

import os
import re
import shlex
import socket
import subprocess
import threading
import time

from harness import (SOCKIT, Server, free_port, poll_until, require, run,
                     start, tempdir, timeout)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DOC_PATH = os.path.join(ROOT, "docs", "TUTORIAL.md")
CLIENTS = os.path.join(ROOT, "docs", "clients")
DOC_PORT = "51717"


def doc():
    with open(DOC_PATH) as f:
        return f.read()


def doc_has(text):
    """The tutorial shows text verbatim (a command, or what it prints)."""
    assert text in doc(), "docs/TUTORIAL.md no longer shows: %s" % text


def env():
    e = dict(os.environ)
    e["PATH"] = os.path.dirname(os.path.abspath(SOCKIT)) + ":" + e["PATH"]
    return e


def shell(command, port, input=b"", cwd=ROOT, timeout=20, subst=()):
    """Run a command line of the tutorial, with its port replaced (and any
    other (old, new) pairs of subst: a temporary directory)."""
    doc_has(command)
    line = command.replace(DOC_PORT, str(port))
    for old, new in subst:
        line = line.replace(old, new)
    return run(["bash", "-c", "cd %s && %s" % (shlex.quote(cwd), line)],
               input=input, env=env(), timeout=timeout)


def shell_bg(command, port, stdin=subprocess.DEVNULL, cwd=ROOT):
    """Start a command line of the tutorial in the background."""
    doc_has(command)
    line = command.replace(DOC_PORT, str(port))
    return start(["bash", "-c", "cd %s && exec %s" % (shlex.quote(cwd), line)
                  if "|" not in line else "cd %s && %s" % (
                      shlex.quote(cwd), line)],
                 stdin=stdin, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, env=env())


def server(command, **kw):
    """`sockit serve ...` as the tutorial writes it, on a kernel-picked port
    of the same address (127.0.0.1:51717 -> 127.0.0.1:0)."""
    doc_has(command)
    words = shlex.split(command)
    assert words[:2] == ["sockit", "serve"], words
    return Server([w.replace(":" + DOC_PORT, ":0") for w in words[2:]], **kw)


def expect_shown(text, port):
    """What the tutorial says a command prints, with the real port."""
    doc_has(text)
    return text.replace(DOC_PORT, str(port))


def server_sockets(port):
    """(state, Recv-Q) of the server side of every connection to
    127.0.0.1:port, from `ss`, including connections still waiting in the
    listen backlog (a client's FIN counts 1 in Recv-Q, in CLOSE-WAIT)."""
    r = run(["ss", "-tnH", "( sport = :%d )" % port])
    assert r.returncode == 0, r
    return [(f[0], int(f[1])) for f in
            (line.split() for line in r.out.splitlines() if line.strip())
            if f[0] != "LISTEN"]


def closed_port(kind=socket.SOCK_STREAM):
    """A port nothing listens on (bound a moment ago, then released)."""
    s, port = free_port(kind)
    s.close()
    return port


# -- before you start ------------------------------------------------------

def test_lesson_server_and_client():
    with server("sockit serve --once ack 127.0.0.1:51717") as srv:
        r = shell("sockit connect --prompt 127.0.0.1 51717", srv.port,
                  input=b"hello\n")
        assert r.returncode == 0, r
        assert r.out == "Please enter the message: I got your message\n", r
        assert srv.wait(10) == 0
        assert srv.stdout_text() == "Here is the message: hello\n"
    doc_has("`Here is the message: ...`")


# -- 1. the client before the server ---------------------------------------

def test_client_before_server_is_refused():
    s, port = free_port()  # bound, not listening: connections are refused
    try:
        r = shell("sockit connect 127.0.0.1 51717", port)
    finally:
        s.close()
    assert r.returncode == 1, r
    assert r.err == expect_shown(
        "sockit: connect tcp://127.0.0.1:51717: Connection refused",
        port) + "\n", r
    doc_has("$ echo $?\n    1\n")


def test_client_retry_waits_for_the_server():
    # Needs `sockit connect --retry N` (the cli branch): without it the
    # client exits 2 at once ("unknown option") and this test fails.
    port = closed_port()
    client = shell_bg(
        "echo hello | sockit connect --retry 20 127.0.0.1 51717", port)
    time.sleep(0.5)  # the client starts first, as in the tutorial
    if client.poll() is not None:
        out, err = client.communicate()
        raise AssertionError("the --retry client did not wait for the "
                             "server: exit %s, stderr %r"
                             % (client.returncode, err))
    line = "sockit serve --once ack 127.0.0.1:51717"
    doc_has(line)
    with Server(shlex.split(line.replace(DOC_PORT, str(port)))[2:]) as srv:
        out, err = client.communicate(timeout=20)
        assert client.returncode == 0, (client.returncode, err)
        assert out == b"I got your message", out
        assert srv.wait(10) == 0
        assert srv.stdout_text() == "Here is the message: hello\n"
    doc_has("Terminal 2 prints `Here is the message: hello` and terminal 1 "
            "`I got your message`")


# -- 2. the server on another machine ---------------------------------------

def test_bound_to_loopback_only():
    require("ss")
    with server("sockit serve ack 127.0.0.1:51717") as srv:
        port = srv.port
        r = shell("ss -ltn 'sport = :51717'", port)
        assert r.returncode == 0, r
        listening = [line.split() for line in r.out.splitlines()
                     if line.startswith("LISTEN")]
        assert len(listening) == 1, r.out
        assert listening[0][3] == "127.0.0.1:%d" % port, r.out
        doc_has("LISTEN 0      4096       127.0.0.1:51717      0.0.0.0:*")

        # Another loopback address of the same machine: nobody listens.
        r = shell("echo hi | sockit connect 127.0.0.2 51717", port)
        assert r.returncode == 1, r
        assert r.err == expect_shown(
            "sockit: connect tcp://127.0.0.2:51717: Connection refused",
            port) + "\n", r

        r = shell("sockit connect -v -z 127.0.0.1 51717", port)
        assert r.returncode == 0, r
        assert r.err == expect_shown(
            "sockit: tcp://127.0.0.1:51717 accepts connections", port
        ) + "\n", r


# -- 3. many messages on one connection --------------------------------------

@timeout(60)
def test_two_sends_arrive_in_one_read():
    require("ss")
    with server("sockit serve --model iterative dump 127.0.0.1:51717") as srv:
        port = srv.port
        busy = shell_bg("sockit connect 127.0.0.1 51717", port,
                        stdin=subprocess.PIPE)
        assert poll_until(lambda: len(server_sockets(port)) == 1, 10), \
            "the first client never connected"
        second = shell_bg("(printf 'one\\n'; sleep 1; printf 'two\\n') | "
                          "sockit connect 127.0.0.1 51717", port)
        # Both sends wait in the kernel, unread: Recv-Q 8 on the server side.
        assert poll_until(lambda: any(q >= 8 for _, q in server_sockets(port)),
                          15), "the second client's bytes never arrived: %r" \
            % server_sockets(port)
        out, err = busy.communicate(timeout=10)  # Ctrl-D in terminal 2
        assert busy.returncode == 0, (busy.returncode, err)
        out, err = second.communicate(timeout=10)
        assert second.returncode == 0, (second.returncode, err)
        assert srv.wait_stdout("6f 6e 65 0a 74 77 6f 0a", 10), \
            srv.stdout_text()
        records = re.findall(r"Received (\d+) bytes from 127\.0\.0\.1, "
                             r"port \d+:\n([0-9a-f ]*)\n", srv.stdout_text())
        assert records == [("8", "6f 6e 65 0a 74 77 6f 0a ")], \
            "two sends, one read, expected; the server printed %r" % \
            srv.stdout_text()
    doc_has("    Received 8 bytes from 127.0.0.1, port 40000:\n"
            "    6f 6e 65 0a 74 77 6f 0a\n")


def test_length_prefixed_framing():
    with server("sockit serve echo 127.0.0.1:51717") as srv:
        r = shell("python3 docs/clients/framing.py 127.0.0.1 51717 one "
                  "'two words' three", srv.port)
        assert r.returncode == 0, r
        shown = "3 bytes: one\n9 bytes: two words\n5 bytes: three\n"
        doc_has("\n".join("    " + line for line in shown.splitlines()))
        assert r.out == shown, r


# -- 4. two clients at once -------------------------------------------------

def second_client(model):
    """The tutorial's first client stays connected (and is served: its line
    comes back); then the second client sends `hi` with -w 2."""
    line = "sockit serve --model %s echo 127.0.0.1:51717" % model
    if model in ("iterative", "fork", "thread", "epoll"):
        srv = server(line)  # the ones the tutorial shows
    else:
        srv = Server(["--model", model, "echo", "127.0.0.1:0"])
    with srv:
        first = shell_bg("sockit connect 127.0.0.1 51717", srv.port,
                         stdin=subprocess.PIPE)
        first.stdin.write(b"first\n")
        first.stdin.flush()
        got = first.stdout.read(6)
        assert got == b"first\n", "the first client got %r" % got
        r = shell("echo hi | sockit connect -w 2 127.0.0.1 51717", srv.port)
        out, err = first.communicate(timeout=10)  # closes its stdin
        assert first.returncode == 0, (first.returncode, err)
        return r


@timeout(60)
def test_iterative_makes_the_second_client_wait():
    r = second_client("iterative")
    assert r.returncode == 1, r
    assert r.out == "", r
    assert r.err == expect_shown("sockit: no data for 2.000 s, giving up",
                                 0) + "\n", r


@timeout(60)
def test_other_models_serve_both():
    # "Start the server with any other model": every model but iterative.
    models = run([SOCKIT, "serve", "--help"]).out
    models = models.split("Models")[1].split("Options:")[0]
    names = re.findall(r"^  (\w+) ", models, re.M)
    assert {"iterative", "fork", "thread", "epoll"} <= set(names), names
    for model in [n for n in names if n != "iterative"]:
        r = second_client(model)
        assert r.returncode == 0 and r.out == "hi\n", (model, r)
    doc_has("sockit serve -q --model thread echo 127.0.0.1:51717")
    doc_has("sockit bench -c 50 -d 5 127.0.0.1:51717")


# -- 5. very large messages --------------------------------------------------

SIZE = 20000000


def big_file():
    d = tempdir()
    r = shell("head -c 20000000 /dev/urandom > big.bin", 0, cwd=d)
    assert r.returncode == 0, r
    assert os.path.getsize(os.path.join(d, "big.bin")) == SIZE
    return d


@timeout(60)
def test_large_message_to_discard():
    d = big_file()
    with server("sockit serve -v discard 127.0.0.1:51717") as srv:
        r = shell("sockit connect 127.0.0.1 51717 < big.bin", srv.port,
                  cwd=d, timeout=30)
        assert r.returncode == 0, r
        assert r.out == "", r
        assert srv.wait_stderr(": %d bytes in, 0 bytes out," % SIZE, 10), \
            srv.stderr_text()
    doc_has(": 20000000 bytes in, 0 bytes out,")


@timeout(60)
def test_large_message_echoed_in_chunks():
    d = big_file()
    with server("sockit serve echo 127.0.0.1:51717") as srv:
        r = shell("sockit connect 127.0.0.1 51717 < big.bin | sha256sum",
                  srv.port, cwd=d, timeout=30)
        assert r.returncode == 0, r
        mine = shell("sha256sum < big.bin", 0, cwd=d)
        assert r.out == mine.out and len(r.out.split()[0]) == 64, (r, mine)

        def reads():
            return [int(n) for n in re.findall(
                r"^Received (\d+) bytes from 127\.0\.0\.1, port \d+$",
                srv.stdout_text(), re.M)]
        assert poll_until(lambda: sum(reads()) == SIZE, 10), \
            "the reads add up to %d bytes" % sum(reads())
        counts = reads()
        assert max(counts) <= 262144, max(counts)
        assert len(counts) >= SIZE // 262144, len(counts)
    doc_has("`Received 262144 bytes from 127.0.0.1, port 40000`")


# -- 6. UDP -----------------------------------------------------------------

def test_udp_ack():
    with server("sockit serve ack udp://127.0.0.1:51717") as srv:
        r = shell("sockit connect --prompt udp://127.0.0.1:51717", srv.port,
                  input=b"hello\n")
        assert r.returncode == 0, r
        assert r.out == expect_shown(
            "Please enter the message: Got an ack: Got your message",
            0) + "\n", r
        assert srv.wait_stdout("Received a datagram: hello")


def test_udp_client_before_server():
    port = closed_port(socket.SOCK_DGRAM)
    r = shell("echo hi | sockit connect udp://127.0.0.1:51717", port)
    assert r.returncode == 1, r
    assert r.err == expect_shown(
        "sockit: read socket (no server at that address?): Connection "
        "refused", port) + "\n", r


def test_udp_keeps_boundaries():
    with server("sockit serve dump udp://127.0.0.1:51717") as srv:
        for line in ("printf 'one\\ntwo\\n' | sockit connect -w 1 "
                     "udp://127.0.0.1:51717",
                     "printf 'three\\n' | sockit connect -w 1 "
                     "udp://127.0.0.1:51717"):
            r = shell(line, srv.port)
            assert r.returncode == 0, r
        assert srv.wait_stdout("74 68 72 65 65 0a", 5), srv.stdout_text()
        records = re.findall(r"^Received (\d+) bytes from ", srv.stdout_text(),
                             re.M)
        assert records == ["8", "6"], srv.stdout_text()
    doc_has("prints `Received 8 bytes ...` and then `Received 6 bytes ...`")


@timeout(60)
def test_udp_loss_is_counted():
    require("ss")
    with server("sockit serve -q echo udp://127.0.0.1:51717") as srv:
        port = srv.port
        r = shell("sockit bench --mode udp -c 100 -s 60000 -d 2 "
                  "udp://127.0.0.1:51717", port, timeout=40)
        assert r.returncode == 0, r
        m = re.search(r"^errors\s+.*\blost (\d+)", r.out, re.M)
        assert m, "no lost datagrams reported: %r" % r.out
        lost = int(m.group(1))
        ss = shell("ss -uanm 'sport = :51717'", port)
        d = re.search(r"skmem:\(.*\bd(\d+)\)", ss.out)
        assert d, ss
        dropped = int(d.group(1))
        assert lost > 0 and dropped > 0, (lost, dropped, r.out, ss.out)
    doc_has("`skmem:(...,d485)`")


# -- 7. a client in another language -----------------------------------------

def short(path):
    with open(path) as f:
        n = len(f.read().splitlines())
    assert n < 40, "%s has %d lines, the tutorial says under 40" % (path, n)


def slow_ack_server():
    """A server that sends its reply in two pieces, 0.2 s apart: a client
    that stops after one read prints half of it."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    ls.settimeout(20)

    def serve():
        try:
            c, _ = ls.accept()
            with c:
                c.settimeout(10)
                data = b""
                while not data.endswith(b"\n"):
                    b = c.recv(100)
                    if not b:
                        break
                    data += b
                c.sendall(b"I got ")
                time.sleep(0.2)
                c.sendall(b"your message")
        except OSError:
            pass
        finally:
            ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t


def check_client(command, name, subst=()):
    with server("sockit serve ack 127.0.0.1:51717") as srv:
        r = shell(command, srv.port, timeout=30, subst=subst)
        assert r.returncode == 0, r
        assert r.out == "I got your message\n", r
        assert srv.wait_stdout("Here is the message: hello from " + name)
    port, t = slow_ack_server()
    r = shell(command, port, timeout=30, subst=subst)
    t.join(10)
    assert r.returncode == 0 and r.out == "I got your message\n", \
        "the %s client does not read the whole reply: %r" % (name, r)
    r = shell(command, closed_port(), timeout=30, subst=subst)
    assert r.returncode == 1 and "refused" in r.err, r


def test_python_client():
    short(os.path.join(CLIENTS, "ack_client.py"))
    check_client("python3 docs/clients/ack_client.py 127.0.0.1 51717 "
                 "'hello from Python'", "Python")


@timeout(90)
def test_java_client():
    require("javac", "java")
    short(os.path.join(CLIENTS, "AckClient.java"))
    classes = tempdir()
    doc_has("javac -d /tmp/ackclient docs/clients/AckClient.java")
    r = run(["javac", "-d", classes,
             os.path.join(CLIENTS, "AckClient.java")], timeout=60)
    assert r.returncode == 0, r
    line = ("java -cp /tmp/ackclient AckClient 127.0.0.1 51717 "
            "'hello from Java'")
    doc_has(line)
    check_client(line, "Java", subst=[("/tmp/ackclient", classes)])


def test_doc_states_the_replies():
    doc_has("    $ python3 docs/clients/ack_client.py 127.0.0.1 51717 "
            "'hello from Python'\n    I got your message\n")
    doc_has("'hello from Java'\n    I got your message\n")
