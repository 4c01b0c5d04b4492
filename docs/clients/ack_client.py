#!/usr/bin/env python3
"""ack_client.py HOST PORT MESSAGE: the Sockets Tutorial's client in Python.

Sends MESSAGE and a newline to `sockit serve ack` and prints the reply.
TCP is a byte stream: one recv() may return only part of the reply, so the
client reads until the server closes the connection (recv() returns b"").
"""
import socket
import sys


def main():
    if len(sys.argv) != 4 or not sys.argv[2].isdigit():
        print("usage: ack_client.py HOST PORT MESSAGE", file=sys.stderr)
        return 2
    host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    reply = bytearray()
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(message.encode() + b"\n")  # loops over short writes
            s.shutdown(socket.SHUT_WR)  # the message is complete
            while True:
                chunk = s.recv(4096)  # whatever has arrived, 1..4096 bytes
                if not chunk:  # the server closed: the reply is whole
                    break
                reply += chunk
    except OSError as e:
        print("ack_client: %s port %d: %s" % (host, port, e), file=sys.stderr)
        return 1
    print(reply.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
