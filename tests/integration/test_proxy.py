"""The PROXY protocol received (serve --proxy-protocol, --proxy-from) and
sent (connect --send-proxy).

A generator here writes v1 lines and v2 headers (every family, LOCAL, TLVs,
CRC32C good and bad) from the specification (haproxy's
doc/proxy-protocol.txt), independently of sockit's own writer. The real
client is always 127.0.0.1 (or a 127.0.0.x the test binds), and the header
names another 127.0.0.x, so the tests can tell which address the server
used: the echo service's "Received N bytes from ADDR, port P" report, the -v
log, http's access log, and --allow/--deny/--max-per-source decisions. The
malformed cases are those that broke other servers. Then HAProxy itself
(send-proxy, send-proxy-v2) in front of serve http and echo.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import time

from harness import (SOCKIT, Server, model_available, poll_until, recv_all, require, run,
                     tempdir, timeout)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
MODELS_ALL = ["iterative", "fork", "thread", "prefork", "select", "poll",
              "epoll", "uring"]
MODELS = ["epoll", "fork"]


# -- the generator ---------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def v1(proto, src=None, dst=None, sport=None, dport=None):
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport,
                                          dport)).encode()


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def v2(cmd, fam, proto, block, tlvs=b"", crc=None, length=None):
    """cmd: 0 LOCAL, 1 PROXY; fam 1 INET, 2 INET6, 3 UNIX; proto 1 STREAM.
    crc: None (no CRC TLV), "good" or "bad". length: override the length."""
    body = block + tlvs
    if crc is not None:
        body += tlv(0x03, b"\0\0\0\0")
    n = len(body) if length is None else length
    head = SIG + bytes([0x20 | cmd, (fam << 4) | proto]) + struct.pack("!H", n)
    h = head + body
    if crc is not None:
        value = crc32c(h)
        if crc == "bad":
            value ^= 1
        h = h[:-4] + struct.pack("!I", value)
    return h


def inet(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET, src) +
            socket.inet_pton(socket.AF_INET, dst) + struct.pack("!HH", sport, dport))


def inet6(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport))


def unix_block(src, dst):
    return src.encode().ljust(108, b"\0") + dst.encode().ljust(108, b"\0")


def v2_inet(src, sport=1234, tlvs=b"", crc=None, cmd=1):
    return v2(cmd, 1, 1, inet(src, "127.0.0.1", sport, 80), tlvs, crc)


# The TLVs a proxy may send: ALPN, authority, unique ID, SSL (with
# sub-TLVs), NOOP, and a custom one.
ALL_TLVS = (tlv(0x01, b"h2") + tlv(0x02, b"example.com") +
            tlv(0x05, b"req-42") +
            tlv(0x20, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") +
                tlv(0x23, b"TLS_AES_128_GCM_SHA256")) +
            tlv(0x04, b"\0" * 7) + tlv(0xE0, b"custom"))


# -- clients ---------------------------------------------------------------

def client(port, src="127.0.0.1", host="127.0.0.1", path=None):
    if path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        return s
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def through(port, header, data=b"hello\n", split=False, src="127.0.0.1",
            path=None):
    """Send header then data (byte by byte with split), end our side, and
    return what came back: b"" if the server closed without answering."""
    s = client(port, src, path=path)
    try:
        if split:
            for i in range(len(header)):
                s.sendall(header[i:i + 1])
                time.sleep(0.001)  # separate segments, not a timing check
        else:
            s.sendall(header)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)
    except (ConnectionResetError, BrokenPipeError):
        return b""
    except OSError as e:
        if e.errno == 107:  # ENOTCONN: reset before our shutdown()
            return b""
        raise
    finally:
        s.close()


def echo_server(*extra, model="epoll"):
    args = ["--model", model]
    if model == "prefork":
        args += ["--workers", "3"]
    return Server(args + ["-v", "--proxy-protocol"] + list(extra) +
                  ["echo", "tcp://127.0.0.1:0"])


def reported(srv, text):
    return srv.wait_stdout(text)


# -- valid headers -----------------------------------------------------------

VALID = [
    # (header, what the report names, port)
    (v1("TCP4", "127.0.0.9", "127.0.0.1", 1234, 80), "127.0.0.9", 1234),
    (v1("TCP6", "2001:db8::7", "::1", 40000, 443), "2001:db8::7", 40000),
    (v2(1, 1, 1, inet("127.0.0.8", "127.0.0.1", 4321, 80)), "127.0.0.8", 4321),
    (v2(1, 2, 1, inet6("2001:db8::9", "::1", 555, 80)), "2001:db8::9", 555),
    (v2(1, 1, 1, inet("127.0.0.10", "127.0.0.1", 7, 80), ALL_TLVS, "good"),
     "127.0.0.10", 7),
    (v2(1, 1, 1, inet("127.0.0.11", "127.0.0.1", 8, 80), crc="good"),
     "127.0.0.11", 8),
]


def test_every_family_and_tlvs():
    """v1 TCP4/TCP6, v2 INET/INET6 with and without TLVs and a good CRC32C:
    the data after the header is the service's, the header's source is the
    peer; v1 UNKNOWN and v2 LOCAL keep the real peer."""
    for model in MODELS:
        with echo_server(model=model) as srv:
            for header, who, port in VALID:
                data = b"after " + header[:3] + b"\n"
                assert through(srv.port, header, data) == data, (model, header)
                assert reported(srv, "Received %d bytes from %s, port %d"
                                % (len(data), who, port)), (model, who)
            for header in (v1("UNKNOWN"),
                           v1("UNKNOWN") [:-2] + b" TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                           v2(0, 0, 0, b""),
                           v2(1, 0, 0, b"")):
                data = b"local %d\n" % len(header)
                assert through(srv.port, header, data, src="127.0.0.3") == data
                assert reported(srv, "Received %d bytes from 127.0.0.3, port"
                                % len(data))
            assert srv.wait_stderr("PROXY v2 LOCAL from tcp://127.0.0.3:")
            assert srv.wait_stderr("PROXY v1 UNKNOWN from tcp://127.0.0.3:")


def test_v2_unix_source_and_unix_listener():
    """A v2 UNIX source shows as unix:PATH; a Unix listener takes headers
    from its (trusted by default) local peers."""
    d = tempdir()
    path = os.path.join(d, "pp.sock")
    hdr = v2(1, 3, 1, unix_block("/run/client.sock", "/run/sockit.sock"))
    with Server(["-v", "--proxy-protocol", "echo", "tcp://127.0.0.1:0",
                 "unix:" + path]) as srv:
        assert through(srv.port, hdr, b"u\n") == b"u\n"
        assert srv.wait_stderr("connection from unix:/run/client.sock")
        assert reported(srv, "Received 2 bytes from unix:/run/client.sock")
        tcp = v1("TCP4", "127.0.0.12", "127.0.0.1", 999, 80)
        assert through(None, tcp, b"x\n", path=path) == b"x\n"
        assert reported(srv, "Received 2 bytes from tcp://127.0.0.12:999")


def test_every_model_runs_the_stage():
    """Each model, the header byte by byte (its TLVs split over reads), and a
    second header after it that is the service's data."""
    second = v1("TCP4", "10.0.0.1", "10.0.0.2", 1, 2)
    hdr = v2(1, 1, 1, inet("127.0.0.13", "127.0.0.1", 2020, 80), ALL_TLVS,
             "good")
    for model in MODELS_ALL:
        if not model_available(model)[0]:
            continue  # uring where it is not built or the kernel refuses it
        with echo_server(model=model) as srv:
            assert through(srv.port, hdr, second, split=True) == second, model
            assert reported(srv, "Received %d bytes from 127.0.0.13, port 2020"
                            % len(second)), model
            assert "10.0.0.1, port" not in srv.stdout_text()


def test_long_v2_header_length_honoured():
    """A v2 header far longer than 108 (or 232) bytes: all of it is the
    header, not one byte of it reaches the service; also at the largest
    length the format allows, in pieces."""
    with echo_server() as srv:
        for i, pad in enumerate((200, 2000, 65535 - 12 - 3 - 7)):
            hdr = v2(1, 1, 1, inet("127.0.0.14", "127.0.0.1", 3000 + i, 80),
                     tlv(0x04, b"N" * pad), "good")
            assert through(srv.port, hdr, b"tail\n") == b"tail\n", pad
            assert reported(srv, "Received 5 bytes from 127.0.0.14, port %d"
                            % (3000 + i))
    with echo_server(model="fork") as srv:
        hdr = v2(1, 1, 1, inet("127.0.0.14", "127.0.0.1", 3031, 80),
                 tlv(0x04, b"N" * (65535 - 12 - 3)))
        assert len(hdr) == 16 + 65535
        s = client(srv.port)
        for i in range(0, len(hdr), 5000):
            s.sendall(hdr[i:i + 5000])
            time.sleep(0.001)
        s.sendall(b"end\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"end\n"
        s.close()
        assert reported(srv, "Received 4 bytes from 127.0.0.14, port 3031")


MALFORMED = [
    ("no header at all", b"GET / HTTP/1.0\r\n\r\n"),
    ("a TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ("v1 with no CRLF in 107 bytes", b"PROXY TCP4 " + b"1" * 120 + b"\r\n"),
    ("v1 with LF only", b"PROXY TCP4 127.0.0.9 127.0.0.1 1 2\n"),
    ("v1 leading zero", b"PROXY TCP4 127.0.0.09 127.0.0.1 1 2\r\n"),
    ("v1 two spaces", b"PROXY TCP4  127.0.0.9 127.0.0.1 1 2\r\n"),
    ("v1 lower case", b"proxy TCP4 127.0.0.9 127.0.0.1 1 2\r\n"),
    ("v1 port too big", b"PROXY TCP4 127.0.0.9 127.0.0.1 65536 2\r\n"),
    ("v1 family mismatch", b"PROXY TCP6 127.0.0.9 127.0.0.1 1 2\r\n"),
    ("v2 bad CRC32C", v2_inet("127.0.0.9", crc="bad")),
    ("v2 bad CRC32C with TLVs", v2_inet("127.0.0.9", tlvs=ALL_TLVS, crc="bad")),
    ("v2 version 1", SIG + b"\x11\x11\x00\x0c" + inet("127.0.0.9", "127.0.0.1", 1, 2)),
    ("v2 command 2", SIG + b"\x22\x11\x00\x0c" + inet("127.0.0.9", "127.0.0.1", 1, 2)),
    ("v2 family 4", SIG + b"\x21\x41\x00\x0c" + inet("127.0.0.9", "127.0.0.1", 1, 2)),
    ("v2 length short of the address", v2(1, 1, 1, inet("127.0.0.9", "127.0.0.1", 1, 2), length=8)),
    ("v2 TLV past the end", v2(1, 1, 1, inet("127.0.0.9", "127.0.0.1", 1, 2),
                               struct.pack("!BH", 0x02, 50) + b"abc")),
    ("v2 TLV header cut", v2(1, 1, 1, inet("127.0.0.9", "127.0.0.1", 1, 2), b"\x02\x00")),
    ("v2 ALPN twice", v2_inet("127.0.0.9", tlvs=tlv(1, b"h2") + tlv(1, b"h2"))),
    ("v2 SSL sub-TLV past its TLV", v2_inet("127.0.0.9", tlvs=tlv(0x20, b"\x01\0\0\0\0\x21\x00\x09ab"))),
    ("v2 unique ID of 129 bytes", v2_inet("127.0.0.9", tlvs=tlv(0x05, b"u" * 129))),
]


def test_malformed_closed():
    """Every malformed header (sent whole, and byte by byte) is closed
    without a byte of the data reaching the service; -v says why."""
    for model in MODELS:
        with echo_server(model=model) as srv:
            for why, hdr in MALFORMED:
                for split in (False, True):
                    assert through(srv.port, hdr, b"data\n", split=split) == b"", \
                        (model, why, split)
            # A healthy one afterwards: the server is fine.
            good = v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 2)
            assert through(srv.port, good, b"ok\n") == b"ok\n"
            assert srv.wait_stdout("Received 3 bytes from 127.0.0.9")
            assert srv.wait_stderr("v2: CRC32C mismatch: connection closed")
            assert srv.wait_stderr("v1: no CRLF within 107 bytes")
            assert srv.wait_stderr("not a PROXY protocol header")
        assert "data" not in srv.stdout_text()
        assert srv.stdout_text().count("Received") == 1


def test_truncated_then_end_of_stream():
    """A header cut short by the peer's FIN: closed, nothing served."""
    with echo_server() as srv:
        for hdr in (v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 2)[:20],
                    v2_inet("127.0.0.9", tlvs=ALL_TLVS)[:40], SIG[:5]):
            assert through(srv.port, hdr, b"") == b""
        assert srv.wait_stderr("end of stream inside the header")
        assert through(srv.port, b"", b"") == b""
        assert srv.wait_stderr("end of stream before any header")
    assert "Received" not in srv.stdout_text()


def test_local_header_carrying_an_address():
    """LOCAL with an address block: the address is ignored (the proxy's own
    health check), the real endpoints stay; the same for v1 UNKNOWN."""
    with echo_server("--deny", "127.0.0.9") as srv:
        hdr = v2_inet("127.0.0.9", tlvs=ALL_TLVS, cmd=0)
        assert through(srv.port, hdr, b"hc\n", src="127.0.0.4") == b"hc\n"
        assert reported(srv, "Received 3 bytes from 127.0.0.4, port")
        assert "127.0.0.9" not in srv.stdout_text()


def test_ipv6_loopback_trusted_by_default():
    """::1 is a default trusted sender; an IPv4 client named in the header
    of an IPv6 connection is that client."""
    with Server(["-v", "--proxy-protocol", "echo", "tcp://[::1]:0"]) as srv:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(("::1", srv.port))
        s.sendall(v1("TCP4", "127.0.0.19", "127.0.0.1", 6060, 80) + b"six\n")
        s.shutdown(socket.SHUT_WR)
        assert recv_all(s) == b"six\n"
        s.close()
        assert reported(srv, "Received 4 bytes from 127.0.0.19, port 6060")
        assert srv.wait_stderr("PROXY v1 from tcp://[::1]:")


def test_untrusted_sender_closed():
    """--proxy-from names the proxies: anyone else is closed at accept, even
    with a valid header; the default trusts loopback only."""
    hdr = v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 2)
    with echo_server("--proxy-from", "127.0.0.2") as srv:
        assert through(srv.port, hdr, b"x\n", src="127.0.0.1") == b""
        assert through(srv.port, hdr, b"y\n", src="127.0.0.2") == b"y\n"
        assert srv.wait_stderr(
            "refused tcp://127.0.0.1:")
        assert srv.wait_stderr("not a trusted PROXY protocol sender")
    assert "Received 2 bytes" in srv.stdout_text()
    assert srv.stdout_text().count("Received") == 1
    with echo_server("--proxy-from", "10.0.0.0/8", "--proxy-from",
                     "127.0.0.5") as srv:
        assert through(srv.port, hdr, b"x\n", src="127.0.0.4") == b""
        assert through(srv.port, hdr, b"z\n", src="127.0.0.5") == b"z\n"
    d = tempdir()
    lst = os.path.join(d, "proxies")
    with open(lst, "w") as f:
        f.write("# our balancers\n127.0.0.6\n")
    with echo_server("--proxy-from-file", lst) as srv:
        assert through(srv.port, hdr, b"x\n", src="127.0.0.1") == b""
        assert through(srv.port, hdr, b"f\n", src="127.0.0.6") == b"f\n"


def test_sighup_rereads_proxy_from_file():
    """SIGHUP re-reads --proxy-from-file as it does --allow-file; a bad file
    keeps the old list."""
    d = tempdir()
    lst = os.path.join(d, "proxies")
    with open(lst, "w") as f:
        f.write("127.0.0.6\n")
    hdr = v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 2)
    with echo_server("--proxy-from-file", lst) as srv:
        assert through(srv.port, hdr, b"a\n", src="127.0.0.7") == b""
        with open(lst, "w") as f:
            f.write("127.0.0.7\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.wait_stderr("SIGHUP: --proxy-from-file re-read")
        assert through(srv.port, hdr, b"b\n", src="127.0.0.7") == b"b\n"
        assert through(srv.port, hdr, b"c\n", src="127.0.0.6") == b""
        with open(lst, "w") as f:
            f.write("not an address\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.wait_stderr("the old --proxy-from list stays")
        assert through(srv.port, hdr, b"d\n", src="127.0.0.7") == b"d\n"


def test_server_speaks_first_waits_for_the_header():
    """daytime sends at once on a plain listener; behind --proxy-protocol it
    sends nothing until the header is complete, then answers the client it
    names."""
    for model in MODELS:
        with Server(["--model", model, "-v", "--proxy-protocol", "daytime",
                     "tcp://127.0.0.1:0"]) as srv:
            hdr = v2_inet("127.0.0.15", tlvs=ALL_TLVS, crc="good")
            s = client(srv.port)
            s.sendall(hdr[:20])
            s.settimeout(0.3)
            try:
                early = s.recv(100)
            except socket.timeout:
                early = None  # nothing sent: right
            assert early is None, early
            s.settimeout(10)
            s.sendall(hdr[20:])
            line = recv_all(s)
            s.close()
            assert re.search(rb"\d\d:\d\d:\d\d", line), line
            assert srv.wait_stderr("connection from tcp://127.0.0.15:1234")


def test_deadline():
    """A header not complete within --proxy-timeout: closed (said with -v);
    the default is 3 s."""
    with echo_server("--proxy-timeout", "0.3") as srv:
        s = client(srv.port)
        s.sendall(b"PROXY TCP4 127.")
        assert recv_all(s) == b""  # closed by the server, within its timeout
        s.close()
        assert srv.wait_stderr("PROXY header timeout: tcp://127.0.0.1:")
    with echo_server(model="fork") as srv:
        s = client(srv.port)  # its 10 s timeout bounds the wait for the 3 s default
        assert recv_all(s) == b""
        s.close()
        assert srv.wait_stderr("PROXY header timeout")


def test_peer_replaced_in_access_lists_and_logs():
    """The header's source is what --allow/--deny see (not the proxy's
    address), and what the -v lines name."""
    for model in MODELS:
        with echo_server("--deny", "127.0.0.9", "--deny", "127.0.0.1",
                         model=model) as srv:
            bad = v1("TCP4", "127.0.0.9", "127.0.0.1", 1111, 80)
            good = v1("TCP4", "127.0.0.8", "127.0.0.1", 2222, 80)
            # The proxy is 127.0.0.1, denied itself: its clients are judged.
            assert through(srv.port, bad, b"no\n") == b""
            assert through(srv.port, good, b"yes\n") == b"yes\n"
            assert srv.wait_stderr("refused tcp://127.0.0.9:1111: not allowed")
            assert srv.wait_stderr("PROXY v1 from tcp://127.0.0.1:")
            assert srv.wait_stderr("client tcp://127.0.0.8:2222")
            assert srv.wait_stderr("connection from tcp://127.0.0.8:2222")
            assert srv.wait_stderr("closed tcp://127.0.0.8:2222")
        assert "connection from tcp://127.0.0.9" not in srv.stderr_text()
        assert "connection from tcp://127.0.0.1" not in srv.stderr_text()


def test_max_per_source_counts_the_header_source():
    """--max-per-source 1: two connections naming the same client are one
    too many, whatever the proxy; another client is served."""
    for model in ("epoll", "thread"):
        with echo_server("--max-per-source", "1", model=model) as srv:
            a = client(srv.port)
            a.sendall(v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 80) + b"a\n")
            assert a.recv(10) == b"a\n"  # held open, counted for 127.0.0.9
            assert through(srv.port, v1("TCP4", "127.0.0.9", "127.0.0.1", 2, 80),
                           b"b\n") == b""
            assert through(srv.port, v1("TCP4", "127.0.0.8", "127.0.0.1", 3, 80),
                           b"c\n") == b"c\n"
            a.close()
            # Released when it closes: 127.0.0.9 is served again.
            assert poll_until(lambda: through(
                srv.port, v1("TCP4", "127.0.0.9", "127.0.0.1", 4, 80),
                b"d\n") == b"d\n", timeout=10)
            assert srv.wait_stderr("too many connections from this source")


def test_http_access_log():
    """http's access log names the header's client, a v2 UNIX source as
    unix:PATH; the request right behind the header is served."""
    d = tempdir()
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("hi\n")
    log = os.path.join(d, "access.log")
    with Server(["--proxy-protocol", "http", "--root", d, "--access-log", log,
                 "tcp://127.0.0.1:0"]) as srv:
        req = b"GET / HTTP/1.0\r\n\r\n"
        r = through(srv.port, v1("TCP4", "127.0.0.9", "127.0.0.1", 1, 80), req)
        assert r.startswith(b"HTTP/1.1 200 ") and r.endswith(b"\r\n\r\nhi\n"), r
        r = through(srv.port, v2(1, 3, 1, unix_block("/run/c.sock", "/run/s")),
                    req)
        assert r.startswith(b"HTTP/1.1 200 "), r
        r = through(srv.port, v2_inet("127.0.0.9", cmd=0), req, src="127.0.0.4")
        assert r.startswith(b"HTTP/1.1 200 "), r
        assert poll_until(lambda: os.path.exists(log) and
                          open(log).read().count("\n") >= 3, timeout=10)
    lines = open(log).read().splitlines()
    assert lines[0].startswith("127.0.0.9 - - ["), lines
    assert lines[1].startswith("unix:/run/c.sock - - ["), lines
    assert lines[2].startswith("127.0.0.4 - - ["), lines


def test_inetd_header_on_stdin():
    """--inetd: the header comes first on the socket on standard input (a
    Unix socketpair here: its peer is trusted by default)."""
    a, b = socket.socketpair()
    p = subprocess.Popen([SOCKIT, "serve", "--inetd", "--proxy-protocol",
                          "echo"], stdin=b, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    b.close()
    try:
        a.settimeout(10)
        a.sendall(v2_inet("127.0.0.16", tlvs=ALL_TLVS, crc="good") + b"inetd\n")
        a.shutdown(socket.SHUT_WR)
        assert recv_all(a) == b"inetd\n"
        out, err = p.communicate(timeout=10)
    finally:
        a.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err


def test_tls_after_the_header():
    """The header comes before the ClientHello: connect --send-proxy --tls
    into serve --tls --proxy-protocol."""
    with Server(["--proxy-protocol", "--tls", "echo",
                 "tcp://127.0.0.1:0"]) as srv:
        r = run([SOCKIT, "connect", "--send-proxy", "v2", "--tls", "--insecure",
                 "-s", "127.0.0.17", "127.0.0.1", str(srv.port)],
                input=b"secret\n", timeout=20)
        assert r.returncode == 0 and r.stdout == b"secret\n", r
        assert reported(srv, "Received 7 bytes from 127.0.0.17, port")


# -- connect --send-proxy --------------------------------------------------------

def test_connect_send_proxy_into_sockit():
    with echo_server() as srv:
        for v in ("v1", "v2"):
            r = run([SOCKIT, "connect", "--send-proxy", v, "-s", "127.0.0.5",
                     "127.0.0.1", str(srv.port)], input=b"hey\n", timeout=20)
            assert r.returncode == 0 and r.stdout == b"hey\n", r
            assert srv.wait_stderr("PROXY %s from tcp://127.0.0.5:" % v)
        assert reported(srv, "Received 4 bytes from 127.0.0.5, port")


def _parse_py(data):
    """A parser of our own (the specification's, in Python): (version,
    src, sport, dst, dport, header length)."""
    if data.startswith(b"PROXY "):
        end = data.index(b"\r\n")
        f = data[:end].decode().split(" ")
        return 1, f[2], int(f[4]), f[3], int(f[5]), end + 2
    assert data[:12] == SIG
    n = 16 + struct.unpack("!H", data[14:16])[0]
    assert data[12] == 0x21 and data[13] == 0x11
    src = socket.inet_ntop(socket.AF_INET, data[16:20])
    dst = socket.inet_ntop(socket.AF_INET, data[20:24])
    sp, dp = struct.unpack("!HH", data[24:28])
    return 2, src, sp, dst, dp, n


def test_connect_send_proxy_into_a_python_parser():
    """The header names connect's own socket: source its local address,
    destination the server's; stdin's bytes follow it, untouched."""
    for v in (1, 2):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        port = ls.getsockname()[1]
        p = subprocess.Popen([SOCKIT, "connect", "--send-proxy", "v%d" % v,
                              "-s", "127.0.0.18", "127.0.0.1", str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            ls.settimeout(10)
            c, peer = ls.accept()
            c.settimeout(10)
            p.stdin.write(b"payload")
            p.stdin.close()
            data = recv_all(c)
            c.close()
            assert p.wait(timeout=10) == 0
        finally:
            ls.close()
            if p.poll() is None:
                p.kill()
                p.wait()
        ver, src, sp, dst, dp, n = _parse_py(data)
        assert (ver, src, sp, dst, dp) == (v, "127.0.0.18", peer[1],
                                          "127.0.0.1", port), data
        assert data[n:] == b"payload", data


def test_usage_errors():
    for args, needle in (
            (["--proxy-protocol", "echo", "udp://127.0.0.1:0"], "datagram"),
            (["--proxy-from", "not-an-address", "echo", "127.0.0.1:0"],
             "--proxy-from"),
            (["--proxy-timeout", "0", "echo", "127.0.0.1:0"],
             "--proxy-timeout"),
            (["--proxy-protocol", "stdio", "127.0.0.1:0"], "stdio")):
        r = run([SOCKIT, "serve"] + args, timeout=10)
        assert r.returncode == 2 and needle in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r
    for args, needle in ((["--send-proxy", "v3", "127.0.0.1", "9"], "v1 or v2"),
                         (["--send-proxy", "v1", "udp://127.0.0.1:9"], "stream")):
        r = run([SOCKIT, "connect"] + args, timeout=10)
        assert r.returncode == 2 and needle in r.err, r


# -- HAProxy -----------------------------------------------------------------------

def _haproxy_cfg(d, http_port, echo_port, front_http, front_echo, send):
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    maxconn 100
defaults
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend web
    mode http
    bind 127.0.0.1:%d
    default_backend web
backend web
    mode http
    server s1 127.0.0.1:%d %s
frontend echo
    mode tcp
    bind 127.0.0.1:%d
    default_backend echo
backend echo
    mode tcp
    server s1 127.0.0.1:%d %s
""" % (front_http, http_port, send, front_echo, echo_port, send))
    return cfg


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@timeout(90)
def test_haproxy_send_proxy():
    """HAProxy (send-proxy and send-proxy-v2) in front of serve http and
    echo: curl from 127.0.0.7 shows as 127.0.0.7 in the access log and the
    echo report, and --deny 127.0.0.7 refuses it (not the proxy)."""
    require("haproxy", "curl")
    d = tempdir()
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("through haproxy\n")
    for send in ("send-proxy", "send-proxy-v2"):
        for deny in (False, True):
            log = os.path.join(d, "access-%s-%d.log" % (send, deny))
            extra = ["--deny", "127.0.0.7"] if deny else []
            web = Server(["-v", "--proxy-protocol", "--proxy-from", "127.0.0.1"]
                         + extra + ["http", "--root", d, "--access-log", log,
                                    "tcp://127.0.0.1:0"])
            echo = Server(["-v", "--proxy-protocol"] + extra +
                          ["echo", "tcp://127.0.0.1:0"])
            hp = None
            try:
                fh, fe = _free_ports(2)
                cfg = _haproxy_cfg(d, web.port, echo.port, fh, fe, send)
                hp = subprocess.Popen(["haproxy", "-f", cfg, "-db"],
                                      stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)

                def up():
                    try:
                        socket.create_connection(("127.0.0.1", fh), 1).close()
                        return True
                    except OSError:
                        return False
                assert poll_until(up, timeout=15), "haproxy did not start"
                r = run(["curl", "-sS", "--noproxy", "*", "--max-time", "10",
                         "-o", "-", "-w", "%{http_code}", "--interface",
                         "127.0.0.7", "http://127.0.0.1:%d/" % fh], timeout=20)
                s = socket.socket()
                s.settimeout(10)
                s.bind(("127.0.0.7", 0))
                s.connect(("127.0.0.1", fe))
                s.sendall(b"via haproxy\n")
                s.shutdown(socket.SHUT_WR)
                try:
                    echoed = recv_all(s)
                except ConnectionResetError:
                    echoed = b""
                s.close()
                if not deny:
                    assert r.stdout == b"through haproxy\n200", (send, r)
                    assert echoed == b"via haproxy\n", send
                    assert poll_until(lambda: os.path.exists(log) and
                                      "127.0.0.7 - - [" in open(log).read(),
                                      timeout=10), send
                    assert echo.wait_stdout("Received 12 bytes from 127.0.0.7"), send
                else:
                    assert r.stdout.endswith(b"502") or r.stdout.endswith(b"503"), \
                        (send, r)
                    assert echoed == b"", send
                    assert web.wait_stderr("refused tcp://127.0.0.7:"), send
                    assert echo.wait_stderr("refused tcp://127.0.0.7:"), send
                    assert not os.path.exists(log) or \
                        "127.0.0.7" not in open(log).read()
            finally:
                if hp is not None:
                    hp.terminate()
                    try:
                        hp.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        hp.kill()
                        hp.wait()
                web.stop()
                echo.stop()
