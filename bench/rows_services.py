"""Issues 12 and 13's rows: `sockit relay` against socat and haproxy, `serve
exec` against ncat -e, HTTP behind haproxy with and without a PROXY v2
header, and --workers 2 with and without --reuseport. relay, exec and
--proxy-protocol are skipped, saying "not built", until the binary has them.

The relay under test is alone on CPU 0; the client and the sink behind the
relay share CPU 1 (so CPU per GiB or per connection tells relays apart)."""
import os
import re
import subprocess

import measure
from cells import Row, Side
from measure import LOAD_CPU, Group, Server, Skip, free_port, need
from rows_core import echoload_side, sockit_server, transfer, wrk_run


def built(ctx, argv, what):
    """Skip unless `sockit ARGV` exits 0 (e.g. `relay --help`)."""
    try:
        r = subprocess.run([ctx.sockit] + argv, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Skip(f"{what}: not built ({e})")
    if r.returncode != 0:
        raise Skip(f"{what}: not built (`sockit {' '.join(argv)}` exits {r.returncode})")
    return r.stdout.decode() + r.stderr.decode()


def relay_built(ctx):
    built(ctx, ["relay", "--help"], "sockit relay")


def exec_built(ctx):
    built(ctx, ["serve", "exec", "--help"], "sockit serve exec")
    # `serve ANY --help` prints serve's help: exec is built once it is listed as a service
    text = built(ctx, ["serve", "--help"], "sockit serve exec")
    if not re.search(r"^\s+exec\s", text, re.M):
        raise Skip("sockit serve exec: not built (not among `sockit serve --help`'s services)")


def proxy_built(ctx):
    built(ctx, ["serve", "http", "--proxy-protocol", "--help"], "sockit serve --proxy-protocol")


def sink(ctx, service):
    """The target behind a relay: a sockit service on the load's CPU."""
    return Server([ctx.sockit, "serve", service, "-q", "127.0.0.1:0"], cpu=LOAD_CPU)


def haproxy_conf(ctx, port, target, server_opts="", mode="tcp"):
    d = ctx.scratch("haproxy")
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"global\n  nbthread 1\n  maxconn 4000\n  pidfile {d}/pid\n"
                f"defaults\n  mode {mode}\n  timeout connect 5s\n  timeout client 60s\n"
                f"  timeout server 60s\n"
                f"listen r\n  bind 127.0.0.1:{port}\n  server s 127.0.0.1:{target} {server_opts}\n")
    return conf


def relay_front(ctx, kind, service):
    """start(strace_out) for a relay of `kind` (sockit, socat, haproxy) on
    CPU 0 in front of a `service` sink on CPU 1."""
    def start(strace_out):
        s = sink(ctx, service)
        port = free_port()
        try:
            if kind == "sockit":
                argv = [ctx.sockit, "relay", f"127.0.0.1:{port}", f"127.0.0.1:{s.port}"]
            elif kind == "socat":
                argv = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"TCP:127.0.0.1:{s.port}"]
            else:
                argv = ["haproxy", "-db", "-f", haproxy_conf(ctx, port, s.port)]
            r = Server(argv, port=port, strace_out=strace_out, preexec=measure.nofile(20000))
        except Exception:
            s.stop()
            raise
        return Group([s, r], r)
    return start


def relay_check(ctx, kind):
    def check():
        if kind == "sockit":
            relay_built(ctx)
        else:
            need(kind)
    return check


def relay_rows(ctx):
    size = ctx.bulk_size

    def sz(traced):
        return ctx.strace_bulk if traced else size

    def bulk_run(srv, traced):
        return transfer(ctx, sz(traced), lambda s: [ctx.sockit, "connect", "127.0.0.1", str(s.port)], srv,
                        ctx.zero_file(sz(traced)))
    kinds = (("sockit relay", "sockit"), ("socat TCP-LISTEN,fork TCP", "socat"),
             ("haproxy (tcp mode, 1 thread)", "haproxy"))
    gib = size >> 30
    bulk = Row("relay-bulk", f"relay, one TCP stream, {gib} GiB (connect < file -> relay -> serve discard)",
               [Side(name, relay_front(ctx, kind, "discard"), bulk_run, relay_check(ctx, kind))
                for name, kind in kinds],
               f"sockit connect 127.0.0.1 RELAY < {gib} GiB file; the relay forwards to sockit serve discard",
               unit="GiB", rate_unit="Gbit/s", cpu_unit="ms", cpu_scale=1e3,
               targets=[("sockit relay", kinds[1][0], [[("cpu", "<=", 0.5)]]),
                        ("sockit relay", kinds[2][0], [[("cpu", "<=", 0.8), ("rate", ">=", 1.0)]])],
               note="Server CPU: the relay's (CPU 0); the client and the sink share CPU 1.")
    conn = Row("relay-conn", "relay, short connections, 50 at a time, 64 B each way (echoload)",
               [echoload_side(ctx, name, relay_front(ctx, kind, "echo"), "conn", 50, 64, 1,
                              relay_check(ctx, kind)) for name, kind in kinds if kind != "socat"],
               f"echoload -m conn -S 16 -w 0.5 127.0.0.1 RELAY 50 {ctx.duration} 64; the relay forwards "
               "to sockit serve echo on CPU 1", unit="connection",
               targets=[("sockit relay", kinds[2][0], [[("rate", ">=", 1.0), ("cpu", "<=", 1.0)]])])
    return [bulk, conn]


def exec_row(ctx):
    def sockit_exec(strace_out):
        port = free_port()
        return Server([ctx.sockit, "serve", "exec", "-q", f"127.0.0.1:{port}", "--", "/bin/cat"], port=port,
                      strace_out=strace_out)

    def ncat_exec(strace_out):
        port = free_port()
        return Server(["ncat", "-k", "-l", "127.0.0.1", str(port), "-e", "/bin/cat"], port=port,
                      strace_out=strace_out)
    return Row("exec-conn", "exec /bin/cat, short connections, 50 at a time, 64 B each way (echoload)",
               [echoload_side(ctx, "sockit serve exec -- /bin/cat", sockit_exec, "conn", 50, 64, 1,
                              lambda: exec_built(ctx)),
                echoload_side(ctx, "ncat -k -l -e /bin/cat", ncat_exec, "conn", 50, 64, 1,
                              lambda: need("ncat"))],
               f"echoload -m conn -S 16 -w 0.5 127.0.0.1 PORT 50 {ctx.duration} 64", unit="connection",
               targets=[("sockit serve exec -- /bin/cat", "ncat -k -l -e /bin/cat", [[("rate", ">=", 1.5)]])],
               note="Server CPU: CPU 0, the server and every /bin/cat it starts.")


def proxy_row(ctx):
    """wrk -> haproxy (CPU 1, tcp mode) -> sockit serve http (CPU 0), with and
    without a PROXY v2 header on each of haproxy's connections."""
    www = ctx.www()

    def behind_haproxy(header):
        def start(strace_out):
            extra = ["--proxy-protocol"] if header else []
            srv = Server([ctx.sockit, "serve", "http", "-q", "--workers", "1", "--root", www] + extra +
                         ["127.0.0.1:0"], strace_out=strace_out)
            port = free_port()
            try:
                hp = Server(["haproxy", "-db", "-f", haproxy_conf(ctx, port, srv.port,
                                                                  "send-proxy-v2" if header else "")],
                            port=port, cpu=LOAD_CPU, preexec=measure.nofile(20000))
            except Exception:
                srv.stop()
                raise
            g = Group([srv, hp], srv)
            g.port = port  # the load goes to haproxy; the server measured is sockit
            return g
        return start

    def check(header):
        def f():
            need("haproxy", "wrk")
            if header:
                proxy_built(ctx)
        return f
    run = wrk_run(ctx, lambda s: f"http://127.0.0.1:{s.port}/1k.bin")
    return Row("proxy-http", "HTTP GET 1 KiB through haproxy (tcp mode), with and without PROXY v2", [
        Side("serve http --proxy-protocol <- haproxy send-proxy-v2", behind_haproxy(True), run, check(True)),
        Side("serve http <- haproxy (no header)", behind_haproxy(False), run, check(False))],
        f"wrk -t1 -c50 -d{ctx.duration}s http://127.0.0.1:HAPROXY/1k.bin; haproxy and wrk on CPU 1",
        unit="request", note="Server CPU: sockit's (CPU 0); one header per haproxy connection.",
        targets=[("serve http --proxy-protocol <- haproxy send-proxy-v2", "serve http <- haproxy (no header)",
                  [[("cpu", "<=", 1.05)]])])


def reuseport_row(ctx):
    def run_for(side):
        def run(srv, traced):
            t0 = measure.thread_cpu(srv.pid)
            m = side.run(srv, traced)
            t1 = measure.thread_cpu(srv.pid)
            loops = sorted((t1[t] - t0.get(t, 0.0) for t in t1), reverse=True)[:2]
            total = sum(loops)
            if total > 0 and len(loops) == 2:
                m.setdefault("extra", {})["busiest loop share"] = loops[0] / total
            return m
        return run
    sides = []
    for name, extra in (("sockit --workers 2 --reuseport", ["--reuseport"]),
                        ("sockit --workers 2 (one shared listener)", [])):
        s = echoload_side(ctx, name, sockit_server(ctx, "echo", ["-q", "--workers", "2"] + extra),
                          "conn", 50, 64, 1)
        sides.append(Side(name, s.start, run_for(s), s.check))
    return Row("reuseport-conn", "short connections, --workers 2, with and without --reuseport (echoload)",
               sides, f"echoload -m conn -S 16 -w 0.5 127.0.0.1 PORT 50 {ctx.duration} 64",
               unit="connection",
               note="Both loops on CPU 0. busiest loop share: the busier loop thread's part of the two "
                    "loops' CPU time (0.5 = an even spread).")


def rows(ctx):
    return relay_rows(ctx) + [exec_row(ctx), proxy_row(ctx), reuseport_row(ctx)]
