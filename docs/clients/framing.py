#!/usr/bin/env python3
"""framing.py HOST PORT MESSAGE...: length-prefixed messages over a stream.

Sends every MESSAGE to `sockit serve echo` in a single write, each framed as
a 4-byte big-endian length followed by its bytes, then reads the echo and
splits it into the same messages again. The stream keeps no boundaries
between messages; the length prefixes put them back.
"""
import socket
import struct
import sys


def recv_exact(s, n):
    """Exactly n bytes, however many recv() calls they take."""
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return bytes(data)


def main():
    if len(sys.argv) < 4 or not sys.argv[2].isdigit():
        print("usage: framing.py HOST PORT MESSAGE...", file=sys.stderr)
        return 2
    msgs = [m.encode() for m in sys.argv[3:]]
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), 10) as s:
            s.sendall(b"".join(struct.pack("!I", len(m)) + m for m in msgs))
            for _ in msgs:
                (n,) = struct.unpack("!I", recv_exact(s, 4))
                print("%d bytes: %s" % (n, recv_exact(s, n).decode()))
    except (OSError, EOFError) as e:
        print("framing: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
