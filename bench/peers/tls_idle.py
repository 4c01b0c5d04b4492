#!/usr/bin/env python3
"""Hold N idle TLS connections to a server (the load side of `make bench`'s
tls-idle row: the server's resident memory per idle TLS connection).

    tls_idle.py HOST PORT N HOLD_SECONDS

Opens N connections (at most 200 handshakes at once), completes each TLS
handshake (certificate not checked: a load tool on loopback), reads for a
moment so TLS 1.3 session tickets are taken in, then prints
"ready established=N errors=E secs=S" and holds them idle until HOLD_SECONDS
have passed or stdin closes, then closes every one and prints
"done established=N errors=E". Exit 0 when it ran (errors are reported).
"""
import asyncio
import resource
import ssl
import sys
import threading
import time


async def one(host, port, ctx, sem, conns, errors):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), 10)
            conns.append((r, w))
        except (OSError, ssl.SSLError, asyncio.TimeoutError):
            errors.append(1)


async def main(host, port, n, hold):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns, errors, sem = [], [], asyncio.Semaphore(200)
    t0 = time.monotonic()
    await asyncio.gather(*(one(host, port, ctx, sem, conns, errors) for _ in range(n)))
    await asyncio.sleep(0.5)  # post-handshake messages (tickets) are read by the transport
    print(f"ready established={len(conns)} errors={len(errors)} secs={time.monotonic() - t0:.2f}",
          flush=True)
    loop, stdin_closed = asyncio.get_running_loop(), asyncio.Event()

    def watch():  # a daemon thread: exiting does not wait for it
        sys.stdin.read()
        loop.call_soon_threadsafe(stdin_closed.set)
    threading.Thread(target=watch, daemon=True).start()
    try:
        await asyncio.wait_for(stdin_closed.wait(), hold)
    except asyncio.TimeoutError:
        pass
    for _, w in conns:
        w.transport.abort()  # no close_notify round trips: just the descriptors
    print(f"done established={len(conns)} errors={len(errors)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
