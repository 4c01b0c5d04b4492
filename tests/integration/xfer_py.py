"""A second implementation of docs/PROTOCOL.md (version 1), written from the
document alone, in the Python standard library: SHA-256 (hash 2) only, no
compression. The tests use it to check the C sender and receiver against an
independent reading of the protocol, and to speak versions or bytes the C
code never would.

  send(sock, files, ...)         the sender: files are (name, bytes, mode, mtime)
  Receiver(sock, root).run()     the receiver: stores into root (no resume)
"""

import hashlib
import os
import struct

HELLO, WELCOME, REFUSE = 0x01, 0x02, 0x03
ENTRY, START, CHUNK, END, RESULT = 0x10, 0x12, 0x20, 0x21, 0x22
BYE, SUMMARY = 0x30, 0x31
SHA256 = 2
HL = 32
MAX_PAYLOAD = 16 * 1024 * 1024 + 4096


def H(b):
    return hashlib.sha256(b).digest()


def frame(ftype, payload=b""):
    return struct.pack(">BI", ftype, len(payload)) + payload


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def exact(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(1 << 20)
            if not b:
                raise EOFError("peer closed after %d of %d bytes" %
                               (len(self.buf), n))
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        t, n = struct.unpack(">BI", self.exact(5))
        if n > MAX_PAYLOAD:
            raise ValueError("frame too long")
        return t, self.exact(n)


def hello(version=1, flags=0, chunk=1 << 20):
    return frame(HELLO, b"SKXF" + struct.pack(">HBBI", version, SHA256,
                                              flags, chunk))


def entry(name, ftype=1, size=0, mode=0o644, mtime=0, target=b"",
          stream=False):
    name = name.encode() if isinstance(name, str) else name
    return frame(ENTRY, struct.pack(">BBHQqIH", ftype, 1 if stream else 0,
                                    mode, size, int(mtime), 0, len(name))
                 + name + target)


class Refused(Exception):
    pass


def send(sock, files, chunk=1 << 20, flags=0, version=1, corrupt=None):
    """Send files, a list of (name, data, mode, mtime). Returns a list of
    (name, code, message) from the receiver, one per file, in order.
    corrupt: index of a chunk whose bytes are flipped after hashing."""
    r = Reader(sock)
    sock.sendall(hello(version, flags, chunk))
    t, p = r.frame()
    if t == REFUSE:
        v, code = struct.unpack(">HH", p[:4])
        raise Refused(code, p[4:].decode("utf-8", "replace"))
    assert t == WELCOME and p[:4] == b"SKXF", (t, p)
    (version_r,) = struct.unpack(">H", p[4:6])
    if version_r != version:
        raise Refused(10, "receiver speaks protocol %d, sender %d" %
                      (version_r, version))
    out = []
    for name, data, mode, mtime in files:
        sock.sendall(entry(name, 1, len(data), mode, mtime))
    accepted = []
    for name, data, mode, mtime in files:
        t, p = r.frame()
        assert t == START, t
        code, count = struct.unpack(">HQ", p[:10])
        if code == 0:
            accepted.append((name, data, p[10:10 + count * HL], count))
        else:
            out.append((name, code, p[10:].decode("utf-8", "replace")))
    n_chunk = 0
    for name, data, offered, count in accepted:
        hashes = []
        first = 0
        # Take the offer only if the first and last offered chunks match.
        if count and H(data[:chunk]) == offered[:HL] and \
                H(data[(count - 1) * chunk:count * chunk]) == offered[-HL:]:
            hashes = [offered[i * HL:(i + 1) * HL] for i in range(count)]
            first = count
        for i in range(first, (len(data) + chunk - 1) // chunk):
            c = data[i * chunk:(i + 1) * chunk]
            h = H(c)
            hashes.append(h)
            if corrupt is not None and n_chunk == corrupt:
                c = bytes([c[0] ^ 1]) + c[1:]
            n_chunk += 1
            sock.sendall(frame(CHUNK, struct.pack(">QBI", i, 0, len(c)) + h + c))
        whole = H(b"".join(hashes))
        sock.sendall(frame(END, struct.pack(">BQQ", 0, len(data), len(hashes))
                           + whole))
    results = []
    sock.sendall(frame(BYE))
    while True:
        t, p = r.frame()
        if t == RESULT:
            code, size = struct.unpack(">HQ", p[:10])
            results.append((code, p[10:10 + HL], p[10 + HL:].decode()))
        elif t == SUMMARY:
            break
        else:
            raise AssertionError("unexpected frame %#x" % t)
    for (name, data, _, _), (code, h, msg) in zip(accepted, results):
        if code == 0:
            assert h == H(b"".join(H(data[i:i + chunk])
                                   for i in range(0, len(data), chunk))), name
        out.append((name, code, msg))
    return out


class Receiver:
    """Receives one transfer into root (files and directories; no resume:
    every START offers 0 chunks)."""

    def __init__(self, sock, root, version=1):
        self.sock, self.root, self.version = sock, root, version
        self.r = Reader(sock)
        self.stored = []

    def refuse(self, code, msg):
        self.sock.sendall(frame(REFUSE, struct.pack(">HH", self.version, code)
                                + msg.encode()))

    def safe(self, name):
        parts = name.split("/")
        return name and not name.startswith("/") and all(
            p not in ("", ".", "..") for p in parts) and all(
            ord(ch) >= 0x20 for ch in name)

    def run(self):
        t, p = self.r.frame()
        assert t == HELLO and p[:4] == b"SKXF"
        (v,) = struct.unpack(">H", p[4:6])
        if v != self.version:
            self.refuse(10, "receiver speaks protocol %d, sender %d: upgrade "
                        "the %s" % (self.version, v, "receiver" if v >
                                    self.version else "sender"))
            return
        _, hash_, flags, chunk = struct.unpack(">HBBI", p[4:12])
        if hash_ != SHA256:
            self.refuse(12, "this receiver knows only sha256")
            return
        self.sock.sendall(frame(WELCOME, b"SKXF" + struct.pack(
            ">HBBI", self.version, SHA256, 0, 0)))
        pending = []  # (name, size, mode, mtime) of files to receive
        cur = None
        while True:
            t, p = self.r.frame()
            if t == ENTRY:
                ftype, fl, mode, size, msec, mnsec, nlen = struct.unpack(
                    ">BBHQqIH", p[:26])
                name = p[26:26 + nlen].decode()
                if not self.safe(name):
                    self.sock.sendall(frame(START, struct.pack(">HQ", 20, 0)
                                            + b"name refused"))
                    continue
                path = os.path.join(self.root, name)
                if ftype == 2:
                    os.makedirs(path, exist_ok=True)
                    self.sock.sendall(frame(START, struct.pack(">HQ", 1, 0)))
                    continue
                pending.append([name, size, mode, msec, [], bytearray()])
                self.sock.sendall(frame(START, struct.pack(">HQ", 0, 0)))
            elif t == CHUNK:
                cur = pending[0]
                idx, enc, raw = struct.unpack(">QBI", p[:13])
                h, data = p[13:13 + HL], p[13 + HL:]
                assert enc == 0 and len(data) == raw and idx == len(cur[4])
                cur[4].append(H(data))
                cur[5] += data
                if H(data) != h:
                    cur.append("bad")
            elif t == END:
                cur = pending.pop(0)
                status, size, chunks = struct.unpack(">BQQ", p[:17])
                whole = H(b"".join(cur[4]))
                if len(cur) > 6 or whole != p[17:17 + HL] or \
                        size != len(cur[5]):
                    self.sock.sendall(frame(RESULT, struct.pack(
                        ">HQ", 25, 0) + bytes(HL) + b"corrupted"))
                    continue
                path = os.path.join(self.root, cur[0])
                with open(path, "wb") as f:
                    f.write(cur[5])
                os.chmod(path, cur[2])
                os.utime(path, (cur[3], cur[3]))
                self.stored.append(cur[0])
                self.sock.sendall(frame(RESULT, struct.pack(
                    ">HQ", 0, len(cur[5])) + whole))
            elif t == BYE:
                self.sock.sendall(frame(SUMMARY, struct.pack(
                    ">QQ", len(self.stored), 0)))
                return
            else:
                raise AssertionError("unexpected frame %#x" % t)
