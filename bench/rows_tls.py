"""Issue 10's rows: sockit's TLS against nginx, socat and stunnel, with the
same certificate and key (self-signed ECDSA P-256, context.Ctx.cert) and
OpenSSL's default TLS 1.3 suite on every side (all link the same libssl;
nginx is told `ssl_protocols TLSv1.2 TLSv1.3`, rows_core.nginx_conf)."""
import json
import os
import re
import subprocess
import time

import measure
from cells import Row, Side
from measure import Server, Group, free_port, need
from rows_core import nginx_start, sockit_server, transfer, wrk_run
from rows_files import SOCKIT_B  # another build as one more side (handshake and idle rows)


def tls_args(ctx):
    cert, key, _ = ctx.cert()
    return ["--tls", "--cert", cert, "--key", key]


def sockit_tls(ctx, service, extra, exe=None):
    def start(strace_out):
        if exe is None:
            return sockit_server(ctx, service, extra + tls_args(ctx))(strace_out)
        return Server([exe, "serve", service] + extra + tls_args(ctx) + ["127.0.0.1:0"],
                      strace_out=strace_out)
    return start


def https_rows(ctx):
    www = ctx.www()
    rows = []
    run = wrk_run(ctx, lambda s: f"https://127.0.0.1:{s.port}/1k.bin")
    sides = [Side("sockit serve http --tls -q", sockit_tls(ctx, "http", ["-q", "--workers", "1", "--root", www]),
                  run, lambda: need("wrk")),
             Side("nginx (1 worker, ssl)", lambda so: nginx_start(ctx, www, ctx.cert()[:2])(so), run,
                  lambda: need("wrk", "nginx"))]
    goal = [[("rate", ">=", 1.2)], [("cpu", "<=", 0.8)]]  # issue 10
    rows.append(Row("tls-https-1k", "HTTPS GET 1 KiB, keep-alive, wrk -t1 -c50", sides,
                    f"wrk -t1 -c50 -d{ctx.duration}s https://127.0.0.1:PORT/1k.bin", unit="request",
                    targets=[(sides[0].name, sides[1].name, goal)]))

    def sb_run(srv, traced):  # the same, from sockit's own load generator
        d = 1 if traced else ctx.duration
        argv = [ctx.sockit, "bench", "--json", "-q", "--mode", "http", "--path", "/1k.bin", "-c", "50",
                "--workers", "1", "-d", str(d), "--warmup", "0.5", "--pin", ctx.cert()[2],
                f"127.0.0.1:{srv.port}"]
        m = measure.measured(argv, 0.5, d + 60, srv.pid)
        j = json.loads(m["out"])
        m.update(ops=j.get("ops", 0), rate=j.get("rate", 0.0), errors=sum(j.get("errors", {}).values()))
        return m
    sides2 = [Side(s.name, s.start, sb_run) for s in sides]
    sides2[1].check = lambda: need("nginx")
    rows.append(Row("tls-https-1k-sb", "HTTPS GET 1 KiB, keep-alive, sockit bench --tls -c 50", sides2,
                    f"sockit bench --mode http --path /1k.bin -c 50 --workers 1 -d {ctx.duration} "
                    "--pin PIN 127.0.0.1:PORT", unit="request",
                    targets=[(sides[0].name, sides[1].name, goal)]))
    return rows


def s_time_run(ctx, reuse):
    def run(srv, traced):
        t = 1 if traced else max(2, ctx.duration - 1)
        argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{srv.port}", "-time", str(t)]
        argv += ["-reuse", "-tls1_2"] if reuse else ["-new"]
        m = measure.measured(argv, 0, t + 60, srv.pid)
        got = re.search(r"(\d+) connections in [\d.]+s", m["out"])
        if not got:
            raise RuntimeError(f"s_time: no count in {m['out'][-200:]!r}")
        n = int(got.group(1))
        marks = sum(ln.count("r") for ln in m["out"].splitlines() if re.fullmatch(r"[*r]+", ln))
        m.update(ops=n, rate=n / m["wall"], errors=0)
        if reuse:
            m["extra"] = {"resumed share": marks / max(n, 1)}
        return m
    return run


def handshake_rows(ctx):
    rows = []
    for kind, reuse, note in (
            ("full", False, "TLS 1.3 full handshakes (ECDHE + ECDSA P-256), nothing sent after."),
            ("resumed", True, "Resumed handshakes: `openssl s_time -reuse` resumes only over TLS 1.2 "
                              "(it never reads a TLS 1.3 ticket), so this row is TLS 1.2 session "
                              "resumption; \"resumed\" counts the connections s_time marked reused.")):
        run = s_time_run(ctx, reuse)
        sides = [Side("sockit serve echo --tls -q", sockit_tls(ctx, "echo", ["-q"]), run),
                 Side("nginx (1 worker, ssl)", lambda so: nginx_start(ctx, ctx.www(), ctx.cert()[:2])(so),
                      run, lambda: need("nginx"))]
        if SOCKIT_B:
            sides.append(Side("sockit B serve echo --tls -q", sockit_tls(ctx, "echo", ["-q"], SOCKIT_B), run))
        rows.append(Row(f"tls-hs-{kind}", f"TLS handshakes, {kind} (openssl s_time, one at a time)", sides,
                        "openssl s_time -connect 127.0.0.1:PORT -time T " + ("-reuse -tls1_2" if reuse else "-new"),
                        unit="handshake", note=note,
                        targets=[(sides[0].name, sides[1].name, [[("rate", ">=", 1.0)], [("cpu", "<=", 1.0)]])]))
    return rows


def tls_bulk_row(ctx):
    """One TLS stream of the same bytes into three receivers on CPU 0."""
    size = ctx.tls_bulk_size
    def sz(traced):
        return ctx.strace_bulk if traced else size

    def sockit_connect(srv, traced):
        return transfer(ctx, sz(traced), lambda s: [ctx.sockit, "connect", "--pin", ctx.cert()[2], "127.0.0.1",
                                                    str(s.port)], srv, ctx.zero_file(sz(traced)))

    def socat_start(strace_out):
        need("socat")
        port, (cert, key, _) = free_port(), ctx.cert()
        return Server(["socat", "-u", f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={cert},"
                       f"key={key},verify=0", "OPEN:/dev/null"], port=port, strace_out=strace_out, probe=False)

    def socat_run(srv, traced):
        path = ctx.zero_file(sz(traced))
        return transfer(ctx, sz(traced), lambda s: ["socat", "-u", f"OPEN:{path}",
                                                    f"OPENSSL:127.0.0.1:{s.port},verify=0"], srv)

    def stunnel_start(strace_out):
        need("stunnel4")
        cert, key, _ = ctx.cert()
        sink = Server([ctx.sockit, "serve", "discard", "-q", "127.0.0.1:0"])
        d = ctx.scratch("stunnel")
        port = free_port()
        conf = os.path.join(d, "stunnel.conf")
        with open(conf, "w") as f:
            f.write(f"foreground = yes\npid =\noutput = {d}/log\n[bench]\naccept = 127.0.0.1:{port}\n"
                    f"connect = 127.0.0.1:{sink.port}\ncert = {cert}\nkey = {key}\n")
        try:
            tun = Server(["stunnel4", conf], port=port, strace_out=strace_out)
        except Exception:
            sink.stop()
            raise
        return Group([sink, tun], tun)

    sides = [Side("sockit connect --tls -> serve discard --tls", sockit_tls(ctx, "discard", ["-q"]), sockit_connect),
             Side("socat OPENSSL -> OPENSSL-LISTEN", socat_start, socat_run),
             Side("sockit connect --tls -> stunnel -> serve discard", stunnel_start, sockit_connect)]
    return Row("tls-bulk", f"bulk through TLS, one stream, {size >> 30} GiB", sides,
               "sockit connect --pin PIN 127.0.0.1 PORT < file; socat -u OPEN:file OPENSSL:127.0.0.1:PORT,verify=0",
               unit="GiB", rate_unit="Gbit/s", cpu_unit="ms", cpu_scale=1e3,
               targets=[(sides[0].name, sides[1].name, [[("rate", ">=", 2.0)]]),
                        (sides[0].name, sides[2].name, [[("rate", ">=", 1.0)]])],
               note="Server CPU is CPU 0: the TLS receiver (for stunnel, stunnel and the plain "
                    "`serve discard` behind it). The strace pass of stunnel counts stunnel only.")


def established(port):
    """TCP connections in ESTABLISHED state whose local port is port (the server's side)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


def tls_idle_row(ctx):
    """Resident memory per idle TLS connection: RSS of the server (and its
    children) with N idle TLS connections held by bench/peers/tls_idle.py,
    less its RSS before. A freshly started server each run."""
    n = ctx.tls_idle
    holder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "tls_idle.py")

    def run(srv, traced):
        time.sleep(0.2)
        rss0, b0, l0 = measure.rss_bytes(srv.pid), measure.cpu_busy(0), measure.cpu_busy(1)
        c0, p0, t0 = measure.ctx_switches(srv.pid), measure.proc_cpu(srv.pid), time.monotonic()
        p = subprocess.Popen(["taskset", "-c", str(measure.LOAD_CPU), "python3", holder, "127.0.0.1",
                              str(srv.port), str(n if not traced else min(n, 500)), "120"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=measure.nofile(n + 100))
        try:
            line = p.stdout.readline().decode()
            kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
            if "established" not in kv:
                raise RuntimeError(f"tls_idle: {line!r} {p.stderr.read().decode()[-300:]}")
            time.sleep(1)  # idle: whatever the server releases when a connection goes quiet
            rss1 = measure.rss_bytes(srv.pid)
            held = established(srv.port)  # a probe's or the last run's may linger: at most up
            b1, l1, t1 = measure.cpu_busy(0), measure.cpu_busy(1), time.monotonic()
            c1, p1 = measure.ctx_switches(srv.pid), measure.proc_cpu(srv.pid)
        finally:
            p.stdin.close()
            p.wait(timeout=60)
            p.stdout.close()
            p.stderr.close()
        up = int(kv["established"])
        held = min(held, up)
        # Per connection the server still holds: one it closed (an idle timeout) is
        # memory it no longer pays for, so it counts as an error, not as a connection.
        return {"wall": t1 - t0, "server_busy": b1 - b0, "load_busy": l1 - l0, "ctx": c1 - c0,
                "proc": p1 - p0,
                "ops": max(held, 1), "rate": held, "errors": int(kv["errors"]) + max(up - held, 0),
                "extra": {"RSS/conn (KiB)": (rss1 - rss0) / max(held, 1) / 1024}}

    def sockit_start(exe):
        def start(strace_out):
            return Server([exe, "serve", "echo", "-q"] + tls_args(ctx) + ["127.0.0.1:0"],
                          strace_out=strace_out, preexec=measure.nofile(n + 100))
        return start

    # nginx closes a connection that sends no request within client_header_timeout
    # (60 s): on a loaded machine the 10,000 handshakes take longer than that, and the
    # first connections were gone before the measurement. sockit has no idle timeout.
    nginx_idle = "client_header_timeout 600s;"
    sides = [Side("sockit serve echo --tls -q", sockit_start(ctx.sockit), run),
             Side("nginx (1 worker, ssl)",
                  lambda so: nginx_start(ctx, ctx.www(), ctx.cert()[:2], nginx_idle)(so), run,
                  lambda: need("nginx"))]
    if SOCKIT_B:
        sides.append(Side("sockit B serve echo --tls -q", sockit_start(SOCKIT_B), run))
    return Row("tls-idle", f"{n} idle TLS connections: server memory", sides,
               f"bench/peers/tls_idle.py 127.0.0.1 PORT {n} (TLS 1.3 handshakes, then idle)",
               unit="connection", rate_unit="held", max_repeat=5,
               targets=[(sides[0].name, sides[1].name, [[("RSS/conn (KiB)", "<=", 1.0)]])],
               note="CPU per connection is the handshake's; RSS/conn: the server's resident memory "
                    "with the connections idle (1 s after the last handshake) less before, per "
                    "connection the server still holds (ESTABLISHED on its port; one it closed "
                    "is an error). nginx gets client_header_timeout 600s: its 60 s default "
                    "closed the first connections while a slow ramp went on. The strace pass "
                    "holds 500.")


def rows(ctx):
    return https_rows(ctx) + handshake_rows(ctx) + [tls_bulk_row(ctx), tls_idle_row(ctx)]
