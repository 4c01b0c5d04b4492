"""Issue 14's rows, measured with load generators that are not sockit's own:
echoload (../shared/bench/echoload.c) for TCP echo, UDP echo and short
connections, iperf3 for bulk, wrk for HTTP. Each row: sockit against the
hand-written loops in bench/peers and the usual servers."""
import os
import re

import measure
from cells import Row, Side
from measure import Server, free_port, need


def echoload_side(ctx, name, start, mode, conns, size, pipeline, check=None):
    """A side driven by echoload: `start(strace_out)` is the server; `check`
    (raising Skip) what else it needs."""
    def run(srv, traced):
        d, warm = (1, 0.2) if traced else (ctx.duration, 0.5)
        argv = [ctx.echoload, "-q", "-m", mode, "-w", str(warm)]
        if mode == "conn":
            argv += ["-S", "16"]  # 16 source addresses: TIME_WAIT does not run out of ports
        argv += ["127.0.0.1", str(srv.port), str(conns), str(d), str(size), str(pipeline)]
        m = measure.measured(argv, warm, d + 60, srv.pid)
        kv = measure.kv_line(m["out"])
        ops = int(kv["completed"])
        m.update(ops=ops, rate=ops / float(kv["secs"]), errors=int(kv["errors"]))
        if mode == "udp":
            m["extra"] = {"lost": int(kv.get("lost", 0))}
        return m

    def check_all():
        need(ctx.echoload)
        if check:
            check()
    return Side(name, start, run, check_all)


def sockit_server(ctx, service, extra, addr="127.0.0.1:0"):
    def start(strace_out):
        return Server([ctx.sockit, "serve", service] + extra + [addr], strace_out=strace_out)
    return start


def peer_server(ctx, exe):
    def start(strace_out):
        need(os.path.join(ctx.peers, exe))
        return Server([os.path.join(ctx.peers, exe), "0"], port_from="stdout", strace_out=strace_out)
    return start


def echo_rows(ctx):
    rows = []
    for p in ctx.pipelines:
        sides = [echoload_side(ctx, name, start, "tcp", 50, 64, p) for name, start in (
            ("sockit epoll (default output)", sockit_server(ctx, "echo", [])),
            ("sockit epoll -q", sockit_server(ctx, "echo", ["-q"])),
            ("sockit uring -q", sockit_server(ctx, "echo", ["-q", "--model", "uring"])),
            ("peer epoll_echo", peer_server(ctx, "epoll_echo")),
            ("peer uv_echo", peer_server(ctx, "uv_echo")))]
        goal = [[("cpu", "<=", 0.9)]]  # issue 14: at most 0.9x the plain epoll loop, 1 and 32 in flight
        rows.append(Row(f"ext-echo-p{p}", f"echo 64 B, 50 connections, {p} in flight each (echoload)",
                        sides, f"echoload -m tcp -w 0.5 127.0.0.1 PORT 50 {ctx.duration} 64 {p}",
                        unit="round trip",
                        targets=[(s.name, "peer epoll_echo", goal) for s in sides[:2]]))
    for p in ctx.udp_pipelines:
        sides = [echoload_side(ctx, name, start, "udp", 16, 64, p) for name, start in (
            ("sockit epoll (default output)", sockit_server(ctx, "echo", [], "udp://127.0.0.1:0")),
            ("sockit epoll -q", sockit_server(ctx, "echo", ["-q"], "udp://127.0.0.1:0")),
            ("sockit uring -q",
             sockit_server(ctx, "echo", ["-q", "--model", "uring"], "udp://127.0.0.1:0")),
            ("peer udp_echo", peer_server(ctx, "udp_echo")))]
        goal = [[("cpu", "<=", 0.67 if p >= 8 else 1.0)]]  # issue 14
        rows.append(Row(f"ext-udp-p{p}", f"UDP echo 64 B, 16 sockets, {p} in flight each (echoload)",
                        sides, f"echoload -m udp -w 0.5 127.0.0.1 PORT 16 {ctx.duration} 64 {p}",
                        unit="datagram", targets=[(s.name, "peer udp_echo", goal) for s in sides[:2]]))
    sides = [echoload_side(ctx, name, start, "conn", 50, 64, 1) for name, start in (
        ("sockit epoll (default output)", sockit_server(ctx, "echo", [])),
        ("sockit epoll -q", sockit_server(ctx, "echo", ["-q"])),
        ("sockit uring -q", sockit_server(ctx, "echo", ["-q", "--model", "uring"])),
        ("peer uv_echo", peer_server(ctx, "uv_echo")))]
    rows.append(Row("ext-conn", "short connections, 50 at a time, 64 B each way (echoload)", sides,
                    f"echoload -m conn -S 16 -w 0.5 127.0.0.1 PORT 50 {ctx.duration} 64",
                    unit="connection", targets=[(s.name, "peer uv_echo", [[("rate", ">=", 1.3)],
                                                                          [("cpu", "<=", 0.75)]])
                                                for s in sides[:2]]))
    return rows


def transfer(ctx, size, argv_for, srv, stdin_path=None):
    """A timed transfer of `size` bytes: ops in GiB, rate in Gbit/s."""
    f = open(stdin_path, "rb") if stdin_path else None
    try:
        m = measure.measured(argv_for(srv), 0, 600, srv.pid, stdin=f)
    finally:
        if f:
            f.close()
    m.update(ops=size / 2**30, rate=size * 8 / m["wall"] / 1e9, errors=0)
    return m


def bulk_row(ctx):
    """One TCP stream: `sockit connect < file` (sendfile) into `serve discard`
    against iperf3, the same number of bytes (sockit's from a sparse file on
    /dev/shm: zeros, no memory). socat, 5x slower with its 8 KiB buffer, is
    left to tls-bulk and relay-bulk: here it would cost a minute and a half."""
    size = ctx.bulk_size

    def sz(traced):
        return ctx.strace_bulk if traced else size

    def sockit_run(srv, traced):
        path = ctx.zero_file(sz(traced))
        return transfer(ctx, sz(traced), lambda s: [ctx.sockit, "connect", "127.0.0.1", str(s.port)], srv, path)

    def iperf_start(strace_out):
        need("iperf3")
        port = free_port()
        return Server(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)], port=port,
                      strace_out=strace_out, probe=False)

    def iperf_run(srv, traced):
        return transfer(ctx, sz(traced), lambda s: ["iperf3", "-c", "127.0.0.1", "-p", str(s.port),
                                                    "-n", str(sz(traced))], srv)

    sides = [Side("sockit connect -> serve discard -q", sockit_server(ctx, "discard", ["-q"]), sockit_run),
             Side("iperf3 -s / -c -n", iperf_start, iperf_run)]
    gib = size / 2**30
    return Row("ext-bulk", f"bulk, one TCP stream, {gib:g} GiB", sides,
               f"sockit connect 127.0.0.1 PORT < {gib:g} GiB file; iperf3 -c 127.0.0.1 -n {gib:g}G",
               unit="GiB", rate_unit="Gbit/s", cpu_unit="ms", cpu_scale=1e3,
               targets=[(sides[0].name, sides[1].name, [[("rate", ">=", 1.0)]])],
               note="Server CPU is the receiver's (CPU 0). The strace pass moves "
                    f"{ctx.strace_bulk >> 20} MiB.")


def wrk_run(ctx, url_for, conns=50, tls=False):
    def run(srv, traced):
        d = 1 if traced else ctx.duration
        m = measure.measured(["wrk", "-t1", f"-c{conns}", f"-d{d}s", url_for(srv)], 0, d + 60, srv.pid)
        out = m["out"]
        reqs = int(re.search(r"(\d+) requests in", out).group(1))
        errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        m.update(ops=reqs, rate=reqs / m["wall"],
                 errors=(int(errs.group(1)) if errs else 0) + (sum(map(int, sock.groups())) if sock else 0))
        return m
    return run


def nginx_conf(ctx, port, root, tls=None, extra=""):
    """A one-worker nginx serving `root` on 127.0.0.1:port (TLS with tls=(cert, key))."""
    d = ctx.scratch("nginx")
    listen = f"listen 127.0.0.1:{port}" + (" ssl" if tls else "") + ";"
    # TLS 1.2 and 1.3, as sockit: nginx 1.22's default has no TLS 1.3 (1.23.4 added it), and
    # without this line every TLS row compared sockit's TLS 1.3 with nginx's TLS 1.2.
    ssl = (f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]}; ssl_protocols TLSv1.2 TLSv1.3; "
           f"ssl_session_cache shared:S:10m; ssl_session_tickets on;" if tls else "")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"daemon off; worker_processes 1; worker_rlimit_nofile 20000; pid {d}/n.pid;\n"
                f"error_log {d}/n.err;\nevents {{ worker_connections 20000; }}\n"
                f"http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;\n"
                f"  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};\n"
                f"  uwsgi_temp_path {d}; scgi_temp_path {d};\n"
                f"  server {{ {listen} root {root}; {ssl} {extra} }} }}\n")
    return d, conf


def nginx_start(ctx, root, tls=None, extra=""):
    def start(strace_out):
        need("nginx")
        port = free_port()
        d, conf = nginx_conf(ctx, port, root, tls, extra)
        return Server(["nginx", "-p", d, "-c", conf], port=port, strace_out=strace_out,
                      preexec=measure.nofile(20000))
    return start


def lighttpd_start(ctx, root):
    def start(strace_out):
        need("lighttpd")
        port = free_port()
        d = ctx.scratch("lighttpd")
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(f'server.document-root = "{root}"\nserver.port = {port}\n'
                    f'server.bind = "127.0.0.1"\nserver.errorlog = "{d}/l.err"\n'
                    f'server.max-keep-alive-requests = 1000000\n')
        return Server(["lighttpd", "-D", "-f", conf], port=port, strace_out=strace_out)
    return start


def http_rows(ctx):
    rows = []
    www = ctx.www()
    for fname, label in (("1k.bin", "1 KiB"), ("1m.bin", "1 MiB")):
        def url(srv, fname=fname):
            return f"http://127.0.0.1:{srv.port}/{fname}"
        run = wrk_run(ctx, url)
        sides = [Side("sockit serve http -q", sockit_server(ctx, "http", ["-q", "--workers", "1", "--root", www]),
                      run, lambda: need("wrk")),
                 Side("sockit serve http -q --model uring",
                      sockit_server(ctx, "http", ["-q", "--model", "uring", "--root", www]),
                      run, lambda: need("wrk")),
                 Side("lighttpd", lighttpd_start(ctx, www), run, lambda: need("wrk", "lighttpd")),
                 Side("nginx (1 worker)", nginx_start(ctx, www), run, lambda: need("wrk", "nginx"))]
        goal = [[("cpu", "<=", 0.75)]] if fname == "1k.bin" else [[("rate", ">=", 1.1)]]  # issue 14
        rows.append(Row(f"ext-http-{fname[:2]}", f"HTTP GET {label}, keep-alive, wrk -t1 -c50", sides,
                        f"wrk -t1 -c50 -d{ctx.duration}s http://127.0.0.1:PORT/{fname}", unit="request",
                        targets=[(sides[0].name, "lighttpd", goal), (sides[1].name, "lighttpd", goal)]))
    return rows


def rows(ctx):
    return echo_rows(ctx) + [bulk_row(ctx)] + http_rows(ctx)

